// Package modbussim is a scriptable Modbus/TCP and Modbus/TCP Security
// device on simonvetter/modbus's server, for tests, benchmarks and
// `bmsgw sim`: it serves any number of units with the four tables,
// remembers writes, counts requests, and can be made busy, silent, slow or
// unreachable.
package modbussim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Config configures a simulated device. The zero Config serves every unit
// id over Modbus/TCP on a free loopback port.
type Config struct {
	// URL is where to listen: tcp://127.0.0.1:0 (the default) or
	// tcp+tls://127.0.0.1:0. Port 0 takes a free port; Addr reports it,
	// and Start after Stop listens on the same port again.
	URL string
	// Units are the unit ids served. Empty serves every unit id; requests
	// for other units get exception 0x0B (gateway target device failed to
	// respond), as from a TCP gateway whose serial device is missing.
	Units []uint8
	// Strict answers exception 0x02 (illegal data address) for addresses
	// that were never set, like devices with a sparse register map.
	// Otherwise every address exists and reads 0 until set.
	Strict bool
	// Certificate is the server certificate for tcp+tls://, and
	// ClientCAs the CAs client certificates must chain to (Modbus/TCP
	// Security is mutual TLS).
	Certificate *tls.Certificate
	ClientCAs   *x509.CertPool
	// MaxClients is the most connections served at once. Default 100.
	MaxClients int
}

// Fault makes a unit misbehave.
type Fault struct {
	// Exception answers requests with this exception code: 0x01-0x06,
	// 0x08, 0x0A or 0x0B (e.g. 0x06 server device busy, 0x0B gateway
	// target device failed to respond).
	Exception uint8
	// Silent sends no answer at all: the request is held until the server
	// stops or SilentHold passes, and then its connection is closed.
	Silent bool
	// Delay holds each answer this long.
	Delay time.Duration
	// Count limits the fault to the unit's next Count requests; 0 keeps it
	// until ClearFault.
	Count int
}

// SilentHold is how long a silent unit holds a request before its
// connection is closed unanswered.
const SilentHold = 10 * time.Second

// Counts are requests received by function code. The server library does
// not tell FC6 from FC16 or FC5 from FC15 for one register or coil: those
// count as 6 and 5.
type Counts map[uint8]int

// Total returns the number of requests of all function codes.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Server is a simulated Modbus device (or a TCP gateway with several
// units). It is safe for concurrent use.
type Server struct {
	cfg    Config
	scheme string
	host   string
	log    *slog.Logger

	mu      sync.Mutex
	units   map[uint8]*unit
	faults  map[uint8]*Fault
	delay   time.Duration
	counts  map[uint8]Counts // by unit
	onWrite func(unitID uint8, table site.ModbusTable, addr uint16, values []uint16)
	srv     *modbus.ModbusServer
	addr    string        // host:port once started
	quit    chan struct{} // closed by Stop, releasing held requests
	running bool
}

type unit struct {
	coils, discrete map[uint16]bool
	holding, input  map[uint16]uint16
}

func newUnit() *unit {
	return &unit{
		coils: map[uint16]bool{}, discrete: map[uint16]bool{},
		holding: map[uint16]uint16{}, input: map[uint16]uint16{},
	}
}

// New validates the configuration and builds a stopped server. A nil
// logger discards the log.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if cfg.URL == "" {
		cfg.URL = "tcp://127.0.0.1:0"
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = 100
	}
	scheme, host, ok := strings.Cut(cfg.URL, "://")
	switch {
	case !ok || (scheme != "tcp" && scheme != "tcp+tls"):
		return nil, fmt.Errorf("modbussim url %q: use tcp://host:port or tcp+tls://host:port", cfg.URL)
	case scheme == "tcp+tls" && (cfg.Certificate == nil || cfg.ClientCAs == nil):
		return nil, errors.New("modbussim: tcp+tls needs a certificate and client CAs")
	case cfg.MaxClients < 0:
		return nil, fmt.Errorf("modbussim: max clients %d is negative", cfg.MaxClients)
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		return nil, fmt.Errorf("modbussim url %q: %w", cfg.URL, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, scheme: scheme, host: host, log: logger,
		units: map[uint8]*unit{}, faults: map[uint8]*Fault{}, counts: map[uint8]Counts{},
	}
	for _, id := range cfg.Units {
		s.units[id] = newUnit()
	}
	return s, nil
}

// Start listens and serves. The listener is bound when Start returns. It
// does nothing if the server is running.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	if s.addr != "" {
		return s.startLocked(s.addr)
	}
	host, port, _ := net.SplitHostPort(s.host)
	if port != "0" {
		return s.startLocked(s.host)
	}
	// The server library binds the address itself and does not report
	// it, so take a free port from the OS and hand it over; another
	// process may grab it in between, so try again a few times.
	var err error
	for range 20 {
		var l net.Listener
		l, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return fmt.Errorf("modbussim: find a free port: %w", err)
		}
		addr := l.Addr().String()
		l.Close()
		if err = s.startLocked(addr); !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
	}
	return err
}

func (s *Server) startLocked(addr string) error {
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{
		URL:           s.scheme + "://" + addr,
		MaxClients:    uint(s.cfg.MaxClients),
		TLSServerCert: s.cfg.Certificate,
		TLSClientCAs:  s.cfg.ClientCAs,
		Logger:        slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}, &handler{s})
	if err != nil {
		return fmt.Errorf("modbussim %s: %w", addr, err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("modbussim listen on %s: %w", addr, err)
	}
	s.srv, s.addr, s.running = srv, addr, true
	s.quit = make(chan struct{})
	s.log.Info("modbus simulator listening", "url", s.scheme+"://"+addr)
	return nil
}

// Stop closes the listener and every connection; requests held by a
// silent or slow unit are released. Values, faults and counts are kept,
// and Start listens on the same port again.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	s.running = false
	close(s.quit)
	return s.srv.Stop()
}

// Close stops the server. It is safe on a server that never started and
// more than once.
func (s *Server) Close() error { return s.Stop() }

// DropConnections closes every client connection, as a device that
// reboots or a NAT that forgets its state: it stops and starts the server
// on the same port.
func (s *Server) DropConnections() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Run starts the server and stops it when ctx is done.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Stop()
}

// Addr returns the host:port the server listens on, "" before the first
// Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns the URL a client connects to, e.g. tcp://127.0.0.1:40123.
func (s *Server) URL() string { return s.scheme + "://" + s.Addr() }

// SetFault makes a unit misbehave until ClearFault (or for f.Count
// requests).
func (s *Server) SetFault(unitID uint8, f Fault) error {
	if f.Exception != 0 && exception(f.Exception) == nil {
		return fmt.Errorf("modbussim: exception code 0x%02X is not one the server library can send", f.Exception)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[unitID] = &f
	return nil
}

// ClearFault makes a unit behave again.
func (s *Server) ClearFault(unitID uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, unitID)
}

// SetDelay holds every answer of every unit for d (0: none), like a slow
// link.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Counts returns the requests received from all units by function code,
// faulted ones included.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Counts{}
	for _, c := range s.counts {
		for fc, n := range c {
			out[fc] += n
		}
	}
	return out
}

// UnitCounts returns the requests received for one unit by function code.
func (s *Server) UnitCounts(unitID uint8) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Counts{}
	for fc, n := range s.counts[unitID] {
		out[fc] = n
	}
	return out
}

// ResetCounts sets the request counts to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[uint8]Counts{}
}

// Set stores values from addr on in a table of a unit: registers for
// holding and input registers, and for coils and discrete inputs bits
// (non-zero is true). In a Strict server it also creates the addresses.
func (s *Server) Set(unitID uint8, table site.ModbusTable, addr uint16, values ...uint16) error {
	if int(addr)+len(values) > 1<<16 {
		return fmt.Errorf("modbussim: %d values from %d run past address 65535", len(values), addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.unitLocked(unitID)
	for i, v := range values {
		a := addr + uint16(i)
		switch table {
		case site.Coil:
			u.coils[a] = v != 0
		case site.DiscreteInput:
			u.discrete[a] = v != 0
		case site.HoldingRegister:
			u.holding[a] = v
		case site.InputRegister:
			u.input[a] = v
		default:
			return fmt.Errorf("modbussim: unknown table %q", table)
		}
	}
	return nil
}

// Get returns n values from addr on in a table of a unit (bits as 0 and
// 1); addresses never set read 0.
func (s *Server) Get(unitID uint8, table site.ModbusTable, addr uint16, n int) ([]uint16, error) {
	if int(addr)+n > 1<<16 {
		return nil, fmt.Errorf("modbussim: %d values from %d run past address 65535", n, addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[unitID]
	if u == nil {
		u = newUnit()
	}
	out := make([]uint16, n)
	for i := range out {
		a := addr + uint16(i)
		switch table {
		case site.Coil:
			out[i] = b2u(u.coils[a])
		case site.DiscreteInput:
			out[i] = b2u(u.discrete[a])
		case site.HoldingRegister:
			out[i] = u.holding[a]
		case site.InputRegister:
			out[i] = u.input[a]
		default:
			return nil, fmt.Errorf("modbussim: unknown table %q", table)
		}
	}
	return out, nil
}

func b2u(b bool) uint16 {
	if b {
		return 1
	}
	return 0
}

func (s *Server) unitLocked(id uint8) *unit {
	u := s.units[id]
	if u == nil {
		u = newUnit()
		s.units[id] = u
	}
	return u
}

// served reports whether the server answers for a unit.
func (s *Server) served(id uint8) bool {
	return len(s.cfg.Units) == 0 || slices.Contains(s.cfg.Units, id)
}

// handler serves the library's requests; its methods are not part of the
// Server's API.
type handler struct{ s *Server }

// admit counts a request and applies faults and delays. It returns the
// exception to answer with, or nil to serve the request.
func (s *Server) admit(unitID, fc uint8) error {
	s.mu.Lock()
	c := s.counts[unitID]
	if c == nil {
		c = Counts{}
		s.counts[unitID] = c
	}
	c[fc]++
	delay, quit := s.delay, s.quit
	var f Fault
	if p := s.faults[unitID]; p != nil {
		f = *p
		if p.Count > 0 {
			if p.Count--; p.Count == 0 {
				delete(s.faults, unitID)
			}
		}
	}
	served := s.served(unitID)
	s.mu.Unlock()

	if f.Silent {
		hold(quit, SilentHold)
		// A protocol error makes the library close the connection
		// without an answer.
		return modbus.ErrProtocolError
	}
	if !hold(quit, delay+f.Delay) {
		return modbus.ErrProtocolError
	}
	if f.Exception != 0 {
		return exception(f.Exception)
	}
	if !served {
		return modbus.ErrGWTargetFailedToRespond
	}
	return nil
}

// hold waits for d; it returns false if the server stopped first.
func hold(quit <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		return false
	}
}

// exception returns the library error that makes it answer with an
// exception code, or nil for codes it cannot send.
func exception(code uint8) error {
	switch code {
	case 0x01:
		return modbus.ErrIllegalFunction
	case 0x02:
		return modbus.ErrIllegalDataAddress
	case 0x03:
		return modbus.ErrIllegalDataValue
	case 0x04:
		return modbus.ErrServerDeviceFailure
	case 0x05:
		return modbus.ErrAcknowledge
	case 0x06:
		return modbus.ErrServerDeviceBusy
	case 0x08:
		return modbus.ErrMemoryParityError
	case 0x0A:
		return modbus.ErrGWPathUnavailable
	case 0x0B:
		return modbus.ErrGWTargetFailedToRespond
	}
	return nil
}

// bitsIn serves reads and writes of a bit table.
func (s *Server) bitsIn(unitID uint8, m func(*unit) map[uint16]bool, addr, qty uint16, write bool, args []bool) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.unitLocked(unitID)
	t := m(u)
	if s.cfg.Strict {
		for i := range qty {
			if _, ok := t[addr+i]; !ok {
				return nil, modbus.ErrIllegalDataAddress
			}
		}
	}
	if write {
		for i, v := range args {
			t[addr+uint16(i)] = v
		}
		if s.onWrite != nil {
			vals := make([]uint16, len(args))
			for i, v := range args {
				vals[i] = b2u(v)
			}
			s.onWrite(unitID, site.Coil, addr, vals)
		}
		return nil, nil
	}
	out := make([]bool, qty)
	for i := range out {
		out[i] = t[addr+uint16(i)]
	}
	return out, nil
}

// OnWrite makes the server call f with every write a client makes, once
// it is applied: the unit, the table, the first address and the values
// (bits as 0 and 1). f runs on the goroutine serving the client, with
// the server locked, so it sees writes in the order they land; it must
// be quick and must not call the server. nil removes it. Tests use it to
// learn when a value lands without polling the server.
func (s *Server) OnWrite(f func(unitID uint8, table site.ModbusTable, addr uint16, values []uint16)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onWrite = f
}

// regsIn serves reads and writes of a register table.
func (s *Server) regsIn(unitID uint8, m func(*unit) map[uint16]uint16, addr, qty uint16, write bool, args []uint16) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.unitLocked(unitID)
	t := m(u)
	if s.cfg.Strict {
		for i := range qty {
			if _, ok := t[addr+i]; !ok {
				return nil, modbus.ErrIllegalDataAddress
			}
		}
	}
	if write {
		for i, v := range args {
			t[addr+uint16(i)] = v
		}
		if s.onWrite != nil { // clients write holding registers only
			s.onWrite(unitID, site.HoldingRegister, addr, args)
		}
		return nil, nil
	}
	out := make([]uint16, qty)
	for i := range out {
		out[i] = t[addr+uint16(i)]
	}
	return out, nil
}

func (h *handler) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	fc := uint8(1)
	if req.IsWrite {
		fc = 15
		if req.Quantity == 1 {
			fc = 5
		}
	}
	if err := h.s.admit(req.UnitId, fc); err != nil {
		return nil, err
	}
	return h.s.bitsIn(req.UnitId, func(u *unit) map[uint16]bool { return u.coils }, req.Addr, req.Quantity, req.IsWrite, req.Args)
}

func (h *handler) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	if err := h.s.admit(req.UnitId, 2); err != nil {
		return nil, err
	}
	return h.s.bitsIn(req.UnitId, func(u *unit) map[uint16]bool { return u.discrete }, req.Addr, req.Quantity, false, nil)
}

func (h *handler) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	fc := uint8(3)
	if req.IsWrite {
		fc = 16
		if req.Quantity == 1 {
			fc = 6
		}
	}
	if err := h.s.admit(req.UnitId, fc); err != nil {
		return nil, err
	}
	return h.s.regsIn(req.UnitId, func(u *unit) map[uint16]uint16 { return u.holding }, req.Addr, req.Quantity, req.IsWrite, req.Args)
}

func (h *handler) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	if err := h.s.admit(req.UnitId, 4); err != nil {
		return nil, err
	}
	return h.s.regsIn(req.UnitId, func(u *unit) map[uint16]uint16 { return u.input }, req.Addr, req.Quantity, false, nil)
}
