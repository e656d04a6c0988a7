package uaserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/control"
)

// Options configure a Supervisor. Durations left zero take the defaults
// given.
type Options struct {
	// Endpoint is where vendors connect, opc.tcp://host:port. Default
	// opc.tcp://127.0.0.1:4840. Port 0 picks a free port once; restarts
	// keep it.
	Endpoint string
	// AllowInsecureNetwork must be exactly InsecureAcknowledgement for an
	// endpoint that is not loopback: the server has no transport
	// security and accepts any identity.
	AllowInsecureNetwork string
	// Writable lists the points vendors may override, as "site/point";
	// each gets a writable Override node. Default: none (read-only).
	Writable []string
	// AllowedPeers are the client addresses (CIDRs or single addresses)
	// whose writes are accepted; required when Writable is not empty.
	AllowedPeers []string
	// WriteTimeout bounds how long the child waits for the gateway to
	// decide on a write before answering BadTimeout. Default 2s.
	WriteTimeout time.Duration
	// Executable and Args start the child; "--socket PATH" is appended.
	// Default: this program (os.Executable) with Args ["uaserver"].
	Executable string
	Args       []string
	// Env is added to the child's environment.
	Env []string
	// PingInterval and PingTimeout: the child must answer a ping within
	// PingTimeout or it is taken for hung and killed. Defaults 1s and 5s.
	PingInterval, PingTimeout time.Duration
	// ProbeInterval and ProbeTimeout: the child reads its own OPC UA
	// server's state as a client every ProbeInterval, each read within
	// ProbeTimeout; after probeFailures failed reads in a row it reports
	// the server dead and is replaced. A ping only shows that the child's
	// process answers, not that its OPC UA server does. Defaults 5s and
	// 5s.
	ProbeInterval, ProbeTimeout time.Duration
	// StartTimeout bounds a start: connect, configure, listen. Default 10s.
	StartTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait before a restart; it
	// doubles after each failure and resets once a child ran for
	// BackoffMax. Defaults 200ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Logger receives the supervisor's and the child's logs. Default: none.
	Logger *slog.Logger
}

// WriteRequest is a vendor's write of an Override node that passed the
// child's checks (writable, namespace, type, peer). The gateway applies
// it as an override through the engine (priority order and journal) and
// must call Respond once, with nil or the engine's error: the client's
// write status waits for it (up to Options.WriteTimeout).
type WriteRequest struct {
	Site  string
	Point string
	// Value is the engineering value; booleans are 0 and 1.
	Value float64
	// Clear: the client wrote a null value to release its override, as a
	// BACnet head-end relinquishes a priority; Value is then 0.
	Clear bool
	// Peer is the client's address, host:port.
	Peer string

	reply func(*wireResult)
}

// Respond answers the write: nil is Good; control.ErrOutOfRange and
// control.ErrNotWritable give BadOutOfRange and BadNotWritable, an
// ua.StatusCode is passed on, anything else is BadRequestNotAllowed.
// Respond after the child restarted does nothing.
func (w WriteRequest) Respond(err error) {
	if w.reply == nil {
		return
	}
	res := &wireResult{Status: uint32(writeStatus(err))}
	if err != nil {
		res.Error = err.Error()
	}
	w.reply(res)
}

func writeStatus(err error) ua.StatusCode {
	var code ua.StatusCode
	switch {
	case err == nil:
		return ua.StatusOK
	case errors.Is(err, control.ErrOutOfRange):
		return ua.StatusBadOutOfRange
	case errors.Is(err, control.ErrNotWritable):
		return ua.StatusBadNotWritable
	case errors.As(err, &code):
		return code
	}
	return ua.StatusBadRequestNotAllowed
}

// State is the supervisor's view of the child.
type State struct {
	// Up is true while a child serves.
	Up bool
	// PID is the running child's process id, 0 when none.
	PID int
	// Endpoint is the endpoint served (with the port chosen).
	Endpoint string
	// Starts counts children started; Restarts those after the first.
	Starts, Restarts int
	// LastError is why the last child ended.
	LastError string
}

// Supervisor runs the OPC UA server child process and feeds it. Its
// methods are safe for concurrent use; Publish never blocks.
type Supervisor struct {
	opts    Options
	logger  *slog.Logger
	writes  chan WriteRequest
	publish chan struct{}
	done    chan struct{}

	mu     sync.Mutex
	latest *Snapshot
	state  State
	err    error
	ran    bool
}

// New checks the options and builds a supervisor; Run starts it.
func New(opts Options) (*Supervisor, error) {
	if opts.Endpoint == "" {
		opts.Endpoint = "opc.tcp://127.0.0.1:4840"
	}
	var errs []error
	errs = append(errs, checkEndpoint(opts.Endpoint, opts.AllowInsecureNetwork))
	_, err := parseWritable(opts.Writable)
	errs = append(errs, err)
	_, err = parsePeers(opts.AllowedPeers)
	errs = append(errs, err)
	if len(opts.Writable) > 0 && len(opts.AllowedPeers) == 0 {
		errs = append(errs, fmt.Errorf("%w: writable points need allowed_peers, the client addresses whose writes are accepted", ErrBadOptions))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the program to run the opc ua server: %w", err)
		}
		opts.Executable = exe
		if opts.Args == nil {
			opts.Args = []string{"uaserver"}
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.WriteTimeout, 2*time.Second)
	def(&opts.PingInterval, time.Second)
	def(&opts.PingTimeout, 5*time.Second)
	def(&opts.ProbeInterval, 5*time.Second)
	def(&opts.ProbeTimeout, 5*time.Second)
	def(&opts.StartTimeout, 10*time.Second)
	def(&opts.BackoffMin, 200*time.Millisecond)
	def(&opts.BackoffMax, 30*time.Second)
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		opts: opts, logger: logger.With("component", "uaserver"),
		writes: make(chan WriteRequest, 64), publish: make(chan struct{}, 1), done: make(chan struct{}),
		state: State{Endpoint: opts.Endpoint},
	}, nil
}

// Publish hands the supervisor the latest snapshot. It never blocks: the
// child gets the latest one published when it can take it, and a child
// that (re)starts gets it first. s must not be modified afterwards.
func (s *Supervisor) Publish(snap *Snapshot) {
	s.mu.Lock()
	s.latest = snap
	s.mu.Unlock()
	select {
	case s.publish <- struct{}{}:
	default:
	}
}

// Writes returns the vendors' writes. A write that finds the channel
// full is refused with BadResourceUnavailable.
func (s *Supervisor) Writes() <-chan WriteRequest { return s.writes }

// Done is closed when Run has returned.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Err returns Run's error once Done is closed.
func (s *Supervisor) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// State returns the child's state.
func (s *Supervisor) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Run starts the child and restarts it with backoff whenever it exits or
// stops answering, until ctx ends; then it stops the child and returns
// nil. It returns an error only when it cannot start at all (no socket).
// Run may be called once.
func (s *Supervisor) Run(ctx context.Context) (err error) {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return errors.New("uaserver: Run called twice")
	}
	s.ran = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.err = err
		s.state.Up, s.state.PID = false, 0
		s.mu.Unlock()
		close(s.done)
	}()
	dir, err := os.MkdirTemp("", "bmsgw-uaserver-") // mode 0700: only this user
	if err != nil {
		return fmt.Errorf("create the opc ua server's socket folder: %w", err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "gw.sock")
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	ln := l.(*net.UnixListener)
	defer ln.Close()

	backoff := s.opts.BackoffMin
	for {
		started := time.Now()
		err := s.runChild(ctx, ln, sock)
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		s.state.Up, s.state.PID, s.state.LastError = false, 0, err.Error()
		s.mu.Unlock()
		if time.Since(started) >= s.opts.BackoffMax {
			backoff = s.opts.BackoffMin
		}
		s.logger.Warn("opc ua server child ended; restarting", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, s.opts.BackoffMax)
	}
}

// errHung is returned when a child stops answering pings.
var errHung = errors.New("opc ua server child stopped answering")

// runChild runs one child from start to end and returns why it ended.
func (s *Supervisor) runChild(ctx context.Context, ln *net.UnixListener, sock string) error {
	token, err := newToken()
	if err != nil {
		return err
	}
	args := append(append([]string{}, s.opts.Args...), "--socket", sock)
	cmd := exec.Command(s.opts.Executable, args...)
	cmd.Env = append(append(os.Environ(), s.opts.Env...), TokenEnv+"="+token)
	stderr := &lineLogger{logger: s.logger}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.opts.Executable, err)
	}
	pid := cmd.Process.Pid
	s.mu.Lock()
	s.state.Starts++
	if s.state.Starts > 1 {
		s.state.Restarts++
	}
	s.mu.Unlock()
	exited := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { exited <- cmd.Wait(); stderr.flush() })
	var exitErr error
	hasExited := false
	defer func() {
		if !hasExited {
			cmd.Process.Kill()
			<-exited
		}
		wg.Wait()
	}()
	waitExit := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case exitErr = <-exited:
			hasExited = true
		case <-t.C:
		}
	}

	c, err := s.accept(ln, token, exited, &hasExited, &exitErr)
	if err != nil {
		return err
	}
	defer c.c.Close()
	cfg := &childConfig{Endpoint: s.State().Endpoint, Writable: s.opts.Writable, AllowedPeers: s.opts.AllowedPeers, WriteTimeout: s.opts.WriteTimeout,
		ProbeInterval: s.opts.ProbeInterval, ProbeTimeout: s.opts.ProbeTimeout}
	if err := c.send(message{Config: cfg}, s.opts.StartTimeout); err != nil {
		return fmt.Errorf("configure child: %w", err)
	}
	c.c.SetReadDeadline(time.Now().Add(s.opts.StartTimeout))
	m, err := c.receive()
	if err != nil {
		return fmt.Errorf("wait for the child to listen: %w", err)
	}
	c.c.SetReadDeadline(time.Time{})
	if m.Fatal != "" {
		return fmt.Errorf("child: %s", m.Fatal)
	}
	if m.Ready == nil {
		return errors.New("child did not report ready")
	}
	s.mu.Lock()
	s.state.Up, s.state.PID, s.state.Endpoint = true, pid, m.Ready.Endpoint
	latest := s.latest
	s.mu.Unlock()
	s.logger.Info("opc ua server child serving", "endpoint", m.Ready.Endpoint, "pid", pid)

	msgs := make(chan message, 16)
	readErr := make(chan error, 1)
	stopReader := make(chan struct{})
	wg.Go(func() {
		for {
			m, err := c.receive()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-stopReader:
				return
			}
		}
	})
	// Stop the reader before the deferred wait for it (defers run last
	// registered first).
	defer func() {
		close(stopReader)
		c.c.Close()
	}()
	sendTimeout := s.opts.PingTimeout
	if latest != nil {
		if err := c.send(message{Snapshot: latest}, sendTimeout); err != nil {
			return fmt.Errorf("send snapshot: %w", err)
		}
	}
	// ended says why the child ended after a socket error: it exited,
	// it stopped reading (hung), or the socket broke.
	ended := func(what string, err error) error {
		waitExit(time.Second)
		switch {
		case hasExited:
			return fmt.Errorf("child %d exited: %v", pid, exitErr)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("child %d: %w: %s: %v", pid, errHung, what, err)
		}
		return fmt.Errorf("child %d: %s: %w", pid, what, err)
	}
	ping := time.NewTicker(s.opts.PingInterval)
	defer ping.Stop()
	var seq uint64
	var pingSent time.Time
	awaiting := false
	for {
		select {
		case <-ctx.Done():
			// Closing the socket makes the child stop; it is killed if
			// it does not exit in time.
			c.c.Close()
			waitExit(5 * time.Second)
			return ctx.Err()
		case exitErr = <-exited:
			hasExited = true
			return fmt.Errorf("child %d exited: %v", pid, exitErr)
		case err := <-readErr:
			return ended("read", err)
		case <-s.publish:
			s.mu.Lock()
			latest := s.latest
			s.mu.Unlock()
			if err := c.send(message{Snapshot: latest}, sendTimeout); err != nil {
				return ended("send snapshot", err)
			}
		case now := <-ping.C:
			if awaiting {
				if now.Sub(pingSent) > s.opts.PingTimeout {
					return fmt.Errorf("child %d: %w for %s", pid, errHung, now.Sub(pingSent).Round(time.Millisecond))
				}
				continue
			}
			seq++
			awaiting, pingSent = true, now
			if err := c.send(message{Ping: seq}, sendTimeout); err != nil {
				return ended("send ping", err)
			}
		case m := <-msgs:
			switch {
			case m.Pong != 0:
				if m.Pong == seq {
					awaiting = false
				}
			case m.Write != nil:
				s.dispatch(c, m.Write)
			case m.Fatal != "":
				return fmt.Errorf("child %d: %s", pid, m.Fatal)
			}
		}
	}
}

// accept waits for the child to connect with its token.
func (s *Supervisor) accept(ln *net.UnixListener, token string, exited chan error, hasExited *bool, exitErr *error) (*conn, error) {
	deadline := time.Now().Add(s.opts.StartTimeout)
	ln.SetDeadline(deadline)
	defer ln.SetDeadline(time.Time{})
	type result struct {
		c   *conn
		err error
	}
	got := make(chan result, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				got <- result{nil, err}
				return
			}
			c := newConn(nc)
			nc.SetReadDeadline(deadline)
			m, err := c.receive()
			if err == nil && m.Hello != nil && m.Hello.Token == token {
				nc.SetReadDeadline(time.Time{})
				got <- result{c, nil}
				return
			}
			// Not our child: someone else of this user found the socket.
			s.logger.Warn("opc ua server socket: refused a connection without the child's token")
			nc.Close()
		}
	})
	select {
	case r := <-got:
		if r.err != nil {
			return nil, fmt.Errorf("wait for the child to connect: %w", r.err)
		}
		return r.c, nil
	case err := <-exited:
		*hasExited, *exitErr = true, err
		ln.SetDeadline(time.Now())
		if r := <-got; r.c != nil {
			r.c.c.Close()
		}
		return nil, fmt.Errorf("child exited before connecting: %v", err)
	}
}

// dispatch hands a write to the gateway, or refuses it when the gateway
// is not keeping up.
func (s *Supervisor) dispatch(c *conn, w *wireWrite) {
	id := w.ID
	var once sync.Once
	reply := func(res *wireResult) {
		once.Do(func() {
			res.ID = id
			if err := c.send(message{WriteResult: res}, time.Second); err != nil {
				s.logger.Debug("opc ua write result not delivered", "err", err)
			}
		})
	}
	req := WriteRequest{Site: w.Site, Point: w.Point, Value: w.Value, Clear: w.Clear, Peer: w.Peer, reply: reply}
	s.logger.Info("opc ua write received", "site", w.Site, "point", w.Point, "value", w.Value, "clear", w.Clear, "peer", w.Peer)
	select {
	case s.writes <- req:
	default:
		req.Respond(ua.StatusBadResourceUnavailable)
	}
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make child token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// lineLogger logs what the child prints, line by line.
type lineLogger struct {
	logger *slog.Logger
	mu     sync.Mutex
	buf    []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		line, rest, ok := cutLine(l.buf)
		if !ok {
			break
		}
		l.logger.Info("opc ua server child", "line", string(line))
		l.buf = rest
	}
	if len(l.buf) > 64<<10 {
		l.logger.Info("opc ua server child", "line", string(l.buf))
		l.buf = nil
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.logger.Info("opc ua server child", "line", string(l.buf))
		l.buf = nil
	}
}

func cutLine(b []byte) (line, rest []byte, ok bool) {
	for i, c := range b {
		if c == '\n' {
			return b[:i], b[i+1:], true
		}
	}
	return nil, b, false
}

// Interface guards.
var _ io.Writer = (*lineLogger)(nil)
