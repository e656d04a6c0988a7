package opcuasim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/gopcuaserver"
	"github.com/bmsgw/bmsgw/internal/opcuaproxy"
)

// instance is one run of the gopcua server, from Start to Stop.
//
// gopcua's server listens on the first endpoint URL it is given and has no
// way to close the connections it accepted, so a Stop would leave its
// per-connection goroutines blocked on reads until the clients hang up.
// The simulator therefore owns the public listener and forwards each
// connection to gopcua on an internal loopback port (proxy.go): closing
// the forwarded connections ends gopcua's goroutines at once, the public
// port stays the same across restarts, and delays and dropped connections
// can be injected.
type instance struct {
	sim    *Server
	srv    *server.Server
	cancel context.CancelFunc
	proxy  *opcuaproxy.Proxy
	public string // the public endpoint URL

	// done is closed by stop; it cuts notification sends short.
	done chan struct{}
	// subs serves subscriptions and monitored items.
	subs *gopcuaserver.Service
	// wg tracks the simulator's own goroutines (notification senders);
	// spawnMu and stopping keep spawn from adding to it once stop waits.
	wg       sync.WaitGroup
	spawnMu  sync.Mutex
	stopping bool
}

// startInstance builds and starts a gopcua server behind a proxy serving
// the public listener ln.
func (s *Server) startInstance(ctx context.Context, ln net.Listener) (*instance, error) {
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("listen address: %w", err)
	}
	pub, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("listen port %q: %w", port, err)
	}
	// The internal port is found by listening and closing, so another
	// process could take it in between; try a few times.
	var lastErr error
	for range 5 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		internal, err := opcuaproxy.FreePort(ctx)
		if err != nil {
			return nil, err
		}
		inst, err := s.tryStart(ctx, host, pub, internal, ln)
		if err == nil {
			return inst, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("start gopcua server: %w", lastErr)
}

// tryStart starts gopcua on the internal port and the proxy in front.
func (s *Server) tryStart(ctx context.Context, host string, pub, internal int, ln net.Listener) (*instance, error) {
	inst := &instance{
		sim:    s,
		public: fmt.Sprintf("opc.tcp://%s", net.JoinHostPort(host, strconv.Itoa(pub))),
		done:   make(chan struct{}),
	}
	srv := server.New(
		// gopcua listens on the first endpoint; the second is the one
		// clients are told about (GetEndpoints answers only that one).
		server.EndPoint("127.0.0.1", internal),
		server.EndPoint(host, pub),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.ServerName("bmsgw opcuasim"),
		server.ProductName("bmsgw opcuasim"),
		server.SetLogger(gopcuaserver.Logger{L: s.logger.With("component", "gopcua"), Errors: slog.LevelInfo}),
	)
	inst.srv = srv
	if err := inst.setup(); err != nil {
		return nil, err
	}
	// gopcua's goroutines live as long as this context: it is the
	// server's lifetime, not the caller's start-up deadline.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	inst.cancel = cancel
	if err := srv.Start(runCtx); err != nil {
		cancel()
		srv.Close()
		return nil, err
	}
	inst.proxy = opcuaproxy.New(ln, net.JoinHostPort("127.0.0.1", strconv.Itoa(internal)), opcuaproxy.Hooks{
		Accepted: func() { s.count(func(st *Stats) { st.Connections++ }) },
		Closed:   inst.subs.ConnectionClosed,
		Delay:    s.delayState,
		Warn:     s.logger.Warn,
	})
	inst.proxy.Start()
	return inst, nil
}

// setup adds the namespaces, the operation limits and the service
// handlers; it runs before Start, when handlers can still be replaced.
func (inst *instance) setup() error {
	s, srv := inst.sim, inst.srv
	for i := uint16(1); i <= max(s.nsCount, 1); i++ {
		ns := &namespace{Folder: gopcuaserver.Folder{URI: fmt.Sprintf("urn:bmsgw:opcuasim:ns%d", i)}, sim: s}
		if got := srv.AddNamespace(ns); got != int(i) {
			return fmt.Errorf("namespace %d registered as %d", i, got)
		}
		ns.SetID(i)
		ns.Top = gopcuaserver.FolderNode(ua.NewNumericNodeID(i, id.ObjectsFolder), fmt.Sprintf("Simulator ns%d", i))
		if root, err := srv.Namespace(0); err == nil && root.Objects() != nil {
			root.Objects().AddRef(ns.Top, server.RefTypeIDOrganizes, true)
		}
	}
	inst.addLimits()
	inst.registerHandlers()
	return nil
}

// addLimits publishes the operation limits in namespace 0, replacing
// gopcua's fixed MaxNodesPerRead of 32.
func (inst *instance) addLimits() {
	ns0, err := inst.srv.Namespace(0)
	if err != nil {
		return
	}
	limits := []struct {
		id    uint32
		name  string
		value uint32
	}{
		{id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead, "MaxNodesPerRead", inst.sim.opts.MaxNodesPerRead},
		{id.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite, "MaxNodesPerWrite", inst.sim.opts.MaxNodesPerWrite},
		{id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall, "MaxMonitoredItemsPerCall", inst.sim.opts.MaxMonitoredItemsPerCall},
	}
	for _, l := range limits {
		value := l.value
		ns0.AddNode(server.NewNode(
			ua.NewNumericNodeID(0, l.id),
			map[ua.AttributeID]*ua.DataValue{
				ua.AttributeIDBrowseName: server.DataValueFromValue(attrs.BrowseName(l.name)),
				ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			},
			nil,
			func() *ua.DataValue { return goodValue(ua.MustVariant(value), time.Time{}) },
		))
	}
}

// stop shuts the instance down: connections first, so that gopcua's
// per-connection goroutines end, then subscriptions, the server and its
// context, then the simulator's own goroutines.
func (inst *instance) stop() error {
	close(inst.done)
	inst.proxy.Close()
	inst.subs.DeleteAll()
	err := inst.srv.Close()
	inst.cancel()
	inst.spawnMu.Lock()
	inst.stopping = true
	inst.spawnMu.Unlock()
	inst.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
