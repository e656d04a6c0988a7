// Package opcuasim serves a mapping's OPC UA points from a scriptable
// gopcua server on loopback, for tests and `bmsgw sim`.
//
// A Server listens on opc.tcp://127.0.0.1:<port> with security None and
// anonymous access. Every point becomes a writable variable of the point's
// data type (bool → Boolean, int16 → Int16 … float64 → Double) that
// remembers what clients write and refuses writes of another type. Tests
// script it as the BMS would: Set a value, Get what the gateway wrote,
// Remove a node so that it becomes unknown, Stop and Start it again on the
// same port, slow its answers down with SetDelay, drop connections, and
// count the requests it served with Stats.
//
// gopcua's server is used for the protocol (transport, secure channel,
// sessions, subscriptions and publishing); the services where it is unsafe
// or too loose for a test peer are answered here instead (see services.go).
package opcuasim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Options configure a simulator. The zero value is usable.
type Options struct {
	// Addr is the host:port to listen on. Default: "127.0.0.1:0", a port
	// chosen by the OS on the first Start and kept for later ones.
	Addr string
	// MaxNodesPerRead, MaxNodesPerWrite and MaxMonitoredItemsPerCall are
	// the operation limits the server advertises in
	// Server.ServerCapabilities.OperationLimits and enforces (a larger
	// request is refused with BadTooManyOperations). 0: no limit.
	MaxNodesPerRead          uint32
	MaxNodesPerWrite         uint32
	MaxMonitoredItemsPerCall uint32
}

// Stats counts what the server has served since it was created, across
// restarts.
type Stats struct {
	// Connections is the number of TCP connections accepted.
	Connections int
	// ReadRequests and ReadNodes count Read service calls and the nodes
	// they asked for.
	ReadRequests, ReadNodes int
	// WriteRequests and WriteNodes count Write service calls and the
	// nodes they carried.
	WriteRequests, WriteNodes int
	// MonitorRequests and MonitoredItems count CreateMonitoredItems calls
	// and the items they asked for.
	MonitorRequests, MonitoredItems int
}

// Errors returned by the scripting methods.
var (
	// ErrUnknownNode is returned for a node id the simulator does not serve.
	ErrUnknownNode = errors.New("unknown node")
	// ErrRunning is returned by Start when the server is already running.
	ErrRunning = errors.New("simulator already running")
)

// variable is one served node and its current value.
type variable struct {
	id      *ua.NodeID
	key     string
	name    string
	typ     site.DataType
	value   any // typed: bool, int16, uint16, int32, uint32, float32, float64
	changed time.Time
	removed bool
}

// Server is an OPC UA simulator. Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	logger  *slog.Logger
	nsCount uint16 // namespaces 1..nsCount are served by the simulator

	// startMu serialises Start, Stop and Close.
	startMu sync.Mutex

	mu    sync.Mutex
	vars  map[string]*variable
	order []*variable
	addr  string // the resolved listen address once started
	delay time.Duration
	// delayChanged is closed (and replaced) when the delay changes, so
	// data held back by the proxy follows the new delay.
	delayChanged chan struct{}
	muted        bool
	stats        Stats
	run          *instance // nil while stopped
}

// New builds a simulator serving the OPC UA points among points (others
// are ignored) without starting it. Node ids must be in namespace 1 or
// above; one node id may be shared by points of the same data type.
func New(points []*site.Point, opts Options, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s := &Server{opts: opts, logger: logger, vars: make(map[string]*variable), delayChanged: make(chan struct{})}
	var errs []error
	now := time.Now()
	for _, p := range points {
		if p.OPCUA == nil {
			continue
		}
		nid, err := ua.ParseNodeID(p.OPCUA.NodeID)
		if err != nil {
			errs = append(errs, fmt.Errorf("point %s: node id %q: %w", p.ID, p.OPCUA.NodeID, err))
			continue
		}
		if nid.Namespace() == 0 {
			errs = append(errs, fmt.Errorf("point %s: node id %q is in namespace 0, which belongs to the OPC UA standard", p.ID, p.OPCUA.NodeID))
			continue
		}
		zero, ok := zeroValue(p.Type)
		if !ok {
			errs = append(errs, fmt.Errorf("point %s: data type %q is not supported", p.ID, p.Type))
			continue
		}
		key := nid.String()
		if v, ok := s.vars[key]; ok {
			if v.typ != p.Type {
				errs = append(errs, fmt.Errorf("point %s: node %s is also mapped as %s, not %s", p.ID, key, v.typ, p.Type))
			}
			continue
		}
		v := &variable{id: nid, key: key, name: browseName(nid), typ: p.Type, value: zero, changed: now}
		s.vars[key] = v
		s.order = append(s.order, v)
		s.nsCount = max(s.nsCount, nid.Namespace())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(s.order, func(i, j int) bool { return s.order[i].key < s.order[j].key })
	return s, nil
}

// Start starts serving. The first Start listens on Options.Addr; later
// ones (after Stop) listen on the same address again. ctx bounds the
// start-up only.
func (s *Server) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()

	s.mu.Lock()
	running, addr := s.run != nil, s.addr
	s.mu.Unlock()
	if running {
		return ErrRunning
	}
	if addr == "" {
		addr = s.opts.Addr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	inst, err := s.startInstance(ctx, ln)
	if err != nil {
		ln.Close()
		return err
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.run = inst
	s.mu.Unlock()
	s.logger.Info("opc ua simulator started", "endpoint", s.Endpoint(), "nodes", len(s.order))
	return nil
}

// Endpoint returns the server's endpoint URL, opc.tcp://127.0.0.1:<port>,
// or "" before the first Start.
func (s *Server) Endpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return ""
	}
	return "opc.tcp://" + s.addr
}

// Stop stops serving: the listener and every connection are closed, and
// the server's goroutines end. Values, removed nodes and statistics are
// kept for a later Start on the same port. Stopping a stopped server does
// nothing.
func (s *Server) Stop() error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	inst := s.run
	s.run = nil
	s.mu.Unlock()
	if inst == nil {
		return nil
	}
	err := inst.stop()
	s.logger.Info("opc ua simulator stopped", "endpoint", s.Endpoint())
	return err
}

// Close stops the server for good. It is safe to call more than once.
func (s *Server) Close() error { return s.Stop() }

// Running reports whether the server is serving.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run != nil
}

// Set sets the raw value of a node, as the BMS would, and notifies the
// monitored items of clients. The value is converted to the node's data
// type (booleans: non-zero is true); it must fit that type.
func (s *Server) Set(nodeID string, raw float64) error {
	s.mu.Lock()
	v, err := s.lookup(nodeID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	val, err := convert(v.typ, raw)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("set %s: %w", nodeID, err)
	}
	v.value = val
	v.changed = time.Now()
	inst := s.run
	s.mu.Unlock()
	if inst != nil {
		inst.notify(v)
	}
	return nil
}

// Get returns the current value of a node with its Go type (bool, int16,
// uint16, int32, uint32, float32 or float64).
func (s *Server) Get(nodeID string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookup(nodeID)
	if err != nil {
		return nil, err
	}
	return v.value, nil
}

// Float returns the current value of a node as a float64 (booleans are 0
// and 1).
func (s *Server) Float(nodeID string) (float64, error) {
	val, err := s.Get(nodeID)
	if err != nil {
		return 0, err
	}
	return toFloat(val), nil
}

// Remove makes a node unknown: reads, writes and new monitored items get
// BadNodeIdUnknown, and existing monitored items are notified with that
// status. It works while stopped too.
func (s *Server) Remove(nodeID string) error {
	s.mu.Lock()
	v, err := s.lookup(nodeID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	v.removed = true
	inst := s.run
	s.mu.Unlock()
	if inst != nil {
		inst.notify(v)
	}
	return nil
}

// Restore serves a removed node again with its last value.
func (s *Server) Restore(nodeID string) error {
	s.mu.Lock()
	v, err := s.lookup(nodeID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	v.removed = false
	v.changed = time.Now()
	inst := s.run
	s.mu.Unlock()
	if inst != nil {
		inst.notify(v)
	}
	return nil
}

// SetDelay delays everything clients send by d before the server sees it,
// as a slow server or link would; a long delay freezes the server. Data
// already held back follows the new delay: SetDelay(0) releases it at
// once. Stop cuts a delay short.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	close(s.delayChanged)
	s.delayChanged = make(chan struct{})
	s.mu.Unlock()
}

// Mute stops (true) or resumes (false) data change notifications, as a
// server whose subscriptions went quiet would: reads and writes still
// work, monitored items are still created, but no values are published.
// Values changed while muted are not sent later.
func (s *Server) Mute(on bool) {
	s.mu.Lock()
	s.muted = on
	s.mu.Unlock()
}

// DropConnections closes every client connection without stopping the
// server, as a network fault would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	inst := s.run
	s.mu.Unlock()
	if inst != nil {
		inst.proxy.DropAll()
	}
}

// Stats returns the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Nodes returns the node ids served, sorted.
func (s *Server) Nodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.order))
	for i, v := range s.order {
		out[i] = v.key
	}
	return out
}

// lookup finds a variable by node id string; s.mu must be held.
func (s *Server) lookup(nodeID string) (*variable, error) {
	nid, err := ua.ParseNodeID(nodeID)
	if err != nil {
		return nil, fmt.Errorf("node id %q: %w", nodeID, err)
	}
	v, ok := s.vars[nid.String()]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownNode, nodeID)
	}
	return v, nil
}

// delayState returns the configured request delay and a channel closed
// when it changes.
func (s *Server) delayState() (time.Duration, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delay, s.delayChanged
}

// count updates the statistics under the lock.
func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// browseName is the browse name a node is shown with: its identifier.
func browseName(nid *ua.NodeID) string {
	switch nid.Type() {
	case ua.NodeIDTypeString:
		return nid.StringID()
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return strconv.FormatUint(uint64(nid.IntID()), 10)
	}
	return nid.String()
}

// dataTypeIDs maps point data types to OPC UA built-in types.
var dataTypeIDs = map[site.DataType]struct {
	typeID ua.TypeID
	nodeID uint32
}{
	site.TypeBool:    {ua.TypeIDBoolean, id.Boolean},
	site.TypeInt16:   {ua.TypeIDInt16, id.Int16},
	site.TypeUint16:  {ua.TypeIDUint16, id.UInt16},
	site.TypeInt32:   {ua.TypeIDInt32, id.Int32},
	site.TypeUint32:  {ua.TypeIDUint32, id.UInt32},
	site.TypeFloat32: {ua.TypeIDFloat, id.Float},
	site.TypeFloat64: {ua.TypeIDDouble, id.Double},
}

// zeroValue returns the zero value of a data type with its Go type.
func zeroValue(t site.DataType) (any, bool) {
	v, err := convert(t, 0)
	return v, err == nil
}

// convert turns a raw number into a value of the data type.
func convert(t site.DataType, raw float64) (any, error) {
	inRange := func(lo, hi float64) error {
		if raw != raw || raw < lo || raw > hi || raw != float64(int64(raw)) {
			return fmt.Errorf("%v does not fit %s", raw, t)
		}
		return nil
	}
	switch t {
	case site.TypeBool:
		return raw != 0, nil
	case site.TypeInt16:
		return int16(raw), inRange(-1<<15, 1<<15-1)
	case site.TypeUint16:
		return uint16(raw), inRange(0, 1<<16-1)
	case site.TypeInt32:
		return int32(raw), inRange(-1<<31, 1<<31-1)
	case site.TypeUint32:
		return uint32(raw), inRange(0, 1<<32-1)
	case site.TypeFloat32:
		return float32(raw), nil
	case site.TypeFloat64:
		return raw, nil
	}
	return nil, fmt.Errorf("data type %q is not supported", t)
}

// toFloat returns a typed value as a float64.
func toFloat(v any) float64 {
	switch x := v.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case int16:
		return float64(x)
	case uint16:
		return float64(x)
	case int32:
		return float64(x)
	case uint32:
		return float64(x)
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return 0
}
