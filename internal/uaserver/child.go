package uaserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/gopcuaserver"
	"github.com/bmsgw/bmsgw/internal/opcuaproxy"
)

// sendTimeout bounds a write on the socket.
const sendTimeout = 5 * time.Second

// childOptions are knobs for tests only.
type childOptions struct {
	// stockWrite leaves gopcua's own Write handler in place, with its
	// crash on a namespace that does not exist: the hostile-client test
	// uses it to crash a real child.
	stockWrite bool
	// deadServer closes gopcua's server right after the start, while the
	// process goes on answering pings: a test's stand-in for a server
	// that stopped serving.
	deadServer bool
}

// RunChild is the child process: `bmsgw uaserver --socket PATH` runs it.
// It connects to the supervisor's socket, presents the token from
// TokenEnv, takes its configuration, serves the OPC UA endpoint and then
// the snapshots it is sent, and forwards vendor writes that pass its
// checks. It returns nil when the supervisor closes the socket, and an
// error when it cannot serve.
func RunChild(ctx context.Context, socket string, logger *slog.Logger) error {
	return runChild(ctx, socket, os.Getenv(TokenEnv), logger, childOptions{})
}

func runChild(ctx context.Context, socket, token string, logger *slog.Logger, opts childOptions) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("connect to gateway socket %s: %w", socket, err)
	}
	defer nc.Close()
	// Closing the socket when ctx ends unblocks the read loop.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c := newConn(nc)
	if err := c.send(message{Hello: &hello{Token: token, PID: os.Getpid()}}, sendTimeout); err != nil {
		return fmt.Errorf("greet gateway: %w", err)
	}
	m, err := c.receive()
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	if m.Config == nil {
		return errors.New("read configuration: the gateway sent something else first")
	}
	ch, err := newChild(m.Config, c, logger, opts)
	if err == nil {
		err = ch.start(ctx)
	}
	if err != nil {
		c.send(message{Fatal: err.Error()}, sendTimeout)
		return err
	}
	defer ch.stop()
	if err := c.send(message{Ready: &ready{Endpoint: ch.endpoint}}, sendTimeout); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	if opts.deadServer {
		ch.srv.Close()
	}
	ch.spawn(func() { ch.watchServer(c) })
	logger.Info("opc ua server serving", "endpoint", ch.endpoint)
	for {
		m, err := c.receive()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read from gateway: %w", err)
		}
		switch {
		case m.Snapshot != nil:
			if err := ch.apply(m.Snapshot); err != nil {
				logger.Warn("opc ua server kept the last snapshot", "err", err)
			}
		case m.Ping != 0:
			if err := c.send(message{Pong: m.Ping}, sendTimeout); err != nil {
				return fmt.Errorf("answer ping: %w", err)
			}
		case m.WriteResult != nil:
			ch.writeDone(m.WriteResult)
		}
	}
}

// child is the OPC UA side of the child process.
type child struct {
	cfg      *childConfig
	gw       *conn
	logger   *slog.Logger
	opts     childOptions
	writable map[string]bool
	peers    []netip.Prefix
	endpoint string
	host     string
	port     int
	internal int // gopcua's own port, behind the proxy

	ns     *namespace
	srv    *server.Server
	cancel context.CancelFunc
	// life is the server's lifetime, cancelled by stop: write responses
	// sent after their handler returned need a context, and gopcua's
	// handlers get none.
	life   context.Context
	proxy  *opcuaproxy.Proxy
	subs   *gopcuaserver.Service
	public string

	done     chan struct{}
	wg       sync.WaitGroup
	spawnMu  sync.Mutex
	stopping bool

	wmu     sync.Mutex
	nextID  uint64
	waiting map[uint64]chan *wireResult
}

func newChild(cfg *childConfig, gw *conn, logger *slog.Logger, opts childOptions) (*child, error) {
	// The supervisor checked these already; a child checks again so that
	// it never listens beyond loopback on a bad configuration.
	if err := checkEndpoint(cfg.Endpoint, ""); err != nil && !errors.Is(err, ErrInsecureNetwork) {
		return nil, err
	}
	host, port, _ := parseEndpoint(cfg.Endpoint)
	writable, err := parseWritable(cfg.Writable)
	if err != nil {
		return nil, err
	}
	peers, err := parsePeers(cfg.AllowedPeers)
	if err != nil {
		return nil, err
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 2 * time.Second
	}
	return &child{cfg: cfg, gw: gw, logger: logger, opts: opts, writable: writable, peers: peers,
		host: host, port: port, ns: newNamespace(), done: make(chan struct{}), waiting: map[uint64]chan *wireResult{}}, nil
}

// start listens on the public endpoint and starts gopcua behind the proxy.
func (ch *child) start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(ch.host, strconv.Itoa(ch.port)))
	if err != nil {
		return fmt.Errorf("listen on %s: %w", ch.cfg.Endpoint, err)
	}
	pubPort := ln.Addr().(*net.TCPAddr).Port
	ch.public = "opc.tcp://" + net.JoinHostPort(ch.host, strconv.Itoa(pubPort))
	ch.endpoint = ch.public
	var lastErr error
	for range 5 {
		internal, err := opcuaproxy.FreePort(ctx)
		if err != nil {
			ln.Close()
			return err
		}
		if lastErr = ch.tryStart(ctx, pubPort, internal, ln); lastErr == nil {
			return nil
		}
	}
	ln.Close()
	return fmt.Errorf("start gopcua server: %w", lastErr)
}

func (ch *child) tryStart(ctx context.Context, pub, internal int, ln net.Listener) error {
	srv := server.New(
		// gopcua listens on the first endpoint; the second is the one
		// clients are told about.
		server.EndPoint("127.0.0.1", internal),
		server.EndPoint(ch.host, pub),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.ServerName("bmsgw gateway"),
		server.ProductName("bmsgw"),
		server.ManufacturerName("bmsgw"),
		server.SetLogger(gopcuaserver.Logger{L: ch.logger.With("component", "gopcua"), Errors: slog.LevelDebug}),
	)
	ch.srv = srv
	if got := srv.AddNamespace(ch.ns); got < 1 {
		return fmt.Errorf("namespace registered as %d", got)
	}
	ch.ns.Top = gopcuaserver.FolderNode(ch.ns.nodeID(RootID), RootID)
	if root, err := srv.Namespace(0); err == nil && root.Objects() != nil {
		root.Objects().AddRef(ch.ns.Top, server.RefTypeIDOrganizes, true)
	}
	ch.registerHandlers()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := srv.Start(runCtx); err != nil {
		cancel()
		srv.Close()
		return err
	}
	ch.cancel, ch.life, ch.internal = cancel, runCtx, internal
	ch.proxy = opcuaproxy.New(ln, net.JoinHostPort("127.0.0.1", strconv.Itoa(internal)),
		opcuaproxy.Hooks{Closed: ch.subs.ConnectionClosed, Warn: ch.logger.Warn})
	ch.proxy.Start()
	// An empty address space until the first snapshot: the top folder.
	t, _ := buildTree(&Snapshot{}, nil, nil)
	ch.ns.swap(t)
	return nil
}

// stop shuts the server down: connections, subscriptions, gopcua, then
// the child's own goroutines. Pending writes are answered with
// BadShutdown by nobody: their clients are gone with the connections.
func (ch *child) stop() {
	close(ch.done)
	ch.proxy.Close()
	ch.subs.DeleteAll()
	ch.srv.Close()
	ch.cancel()
	ch.spawnMu.Lock()
	ch.stopping = true
	ch.spawnMu.Unlock()
	ch.wg.Wait()
}

// apply serves a new snapshot and notifies the monitored items of every
// value that changed.
func (ch *child) apply(s *Snapshot) error {
	if err := s.Check(); err != nil {
		return err
	}
	prev := ch.ns.current()
	t, err := buildTree(s, ch.writable, prev)
	if err != nil {
		return err
	}
	old := ch.ns.swap(t)
	ch.notify(t.changedNodes(old))
	return nil
}

// probeFailures is how many failed probes in a row make the child give
// its server up.
const probeFailures = 2

// watchServer reads the server's own state as an OPC UA client would,
// every probe interval, until the child stops. After probeFailures
// failures in a row it tells the supervisor, which replaces the child.
func (ch *child) watchServer(gw *conn) {
	every, timeout := ch.cfg.ProbeInterval, ch.cfg.ProbeTimeout
	if every <= 0 {
		every = 5 * time.Second
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failed := 0
	for {
		select {
		case <-ch.done:
			return
		case <-t.C:
		}
		err := ch.probe(timeout)
		if err == nil {
			failed = 0
			continue
		}
		if failed++; failed < probeFailures {
			ch.logger.Warn("opc ua server did not answer its probe", "err", err)
			continue
		}
		msg := fmt.Sprintf("opc ua server stopped answering: %d probes in a row failed, the last: %v", failed, err)
		ch.logger.Error(msg)
		// The supervisor replaces the child when it reads this.
		_ = gw.send(message{Fatal: msg}, timeout)
		return
	}
}

// probe connects to gopcua's own port (behind the proxy), reads the
// server's state and disconnects.
func (ch *child) probe(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ch.life, timeout)
	defer cancel()
	c, err := opcua.NewClient("opc.tcp://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(ch.internal)),
		opcua.AutoReconnect(false), opcua.RequestTimeout(timeout), opcua.DialTimeout(timeout))
	if err != nil {
		return err
	}
	if err := c.Connect(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
		NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_State), AttributeID: ua.AttributeIDValue,
	}}})
	switch {
	case err != nil:
		return fmt.Errorf("read the server state: %w", err)
	case len(res.Results) != 1 || res.Results[0].Status != ua.StatusOK:
		return fmt.Errorf("read the server state: %v", res.Results)
	}
	return nil
}

// spawn runs f in a goroutine that stop waits for, unless stopping.
func (ch *child) spawn(f func()) {
	ch.spawnMu.Lock()
	defer ch.spawnMu.Unlock()
	if ch.stopping {
		return
	}
	ch.wg.Go(f)
}
