// Package opcuaproxy is the TCP proxy that both of the project's gopcua
// servers (the OPC UA simulator and the gateway's OPC UA server) put in
// front of gopcua v0.8.0's server, because that server
//
//   - performs the Hello/Acknowledge handshake inside its accept loop
//     without a deadline, so one client that connects and stays silent
//     blocks every later one: the proxy connects to gopcua only once a
//     client has sent its first bytes;
//   - cannot close the connections it accepted: the proxy can (Close,
//     DropAll);
//   - sees only the proxy's address as the peer: the proxy remembers which
//     client each forwarded connection belongs to (Peer).
package opcuaproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// HelloTimeout bounds the wait for a new client's first bytes (its OPC UA
// Hello).
const HelloTimeout = 10 * time.Second

// Hooks adapt the proxy to its server; all are optional.
type Hooks struct {
	// Accepted is called for every client connection accepted.
	Accepted func()
	// Closed is called with the local address of gopcua's side of a
	// forwarded connection once it is closed.
	Closed func(upstreamLocal string)
	// Delay returns how long to hold what a client sends before it is
	// forwarded, and a channel closed when that changes (a simulated slow
	// server); nil: no delay.
	Delay func() (time.Duration, <-chan struct{})
	// Warn logs what goes wrong (accept errors, gopcua unreachable).
	Warn func(msg string, args ...any)
}

// Proxy accepts clients on a listener and forwards each to gopcua's
// internal address.
type Proxy struct {
	ln     net.Listener
	target string
	hooks  Hooks

	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	pairs  map[*pair]struct{}
	peers  map[string]string // upstream local address → client address
	closed bool
}

// pair is one forwarded connection: the client's side and, once the
// client has spoken, gopcua's.
type pair struct {
	client net.Conn

	mu       sync.Mutex
	upstream net.Conn
	closed   bool
}

// setUpstream attaches gopcua's side; it reports false if the pair was
// closed meanwhile.
func (pr *pair) setUpstream(c net.Conn) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		return false
	}
	pr.upstream = c
	return true
}

func (pr *pair) close() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		return
	}
	pr.closed = true
	pr.client.Close()
	if pr.upstream != nil {
		pr.upstream.Close()
	}
}

// New returns a proxy from ln to target (host:port); Start starts it.
func New(ln net.Listener, target string, hooks Hooks) *Proxy {
	if hooks.Warn == nil {
		hooks.Warn = func(string, ...any) {}
	}
	return &Proxy{ln: ln, target: target, hooks: hooks, done: make(chan struct{}),
		pairs: map[*pair]struct{}{}, peers: map[string]string{}}
}

// Start serves the listener in a goroutine that Close waits for.
func (p *Proxy) Start() { p.wg.Go(p.serve) }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.hooks.Warn("opc ua proxy: accept failed", "err", err)
			continue
		}
		if p.hooks.Accepted != nil {
			p.hooks.Accepted()
		}
		pr := &pair{client: c}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.pairs[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.handle(pr) })
	}
}

// Peer returns the client's address behind the remote address gopcua
// sees (the local address of the proxy's connection to it).
func (p *Proxy) Peer(upstreamLocal string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.peers[upstreamLocal]
	return a, ok
}

// handle waits for the client's first bytes, connects to gopcua and
// forwards both ways until either side closes.
func (p *Proxy) handle(pr *pair) {
	defer p.forget(pr)
	buf := make([]byte, 64<<10)
	pr.client.SetReadDeadline(time.Now().Add(HelloTimeout))
	n, err := pr.client.Read(buf)
	if err != nil {
		return
	}
	pr.client.SetReadDeadline(time.Time{})
	if !p.wait(time.Now()) {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.hooks.Warn("opc ua proxy: cannot reach gopcua", "err", err)
		return
	}
	if !pr.setUpstream(up) {
		up.Close()
		return
	}
	p.mu.Lock()
	p.peers[up.LocalAddr().String()] = pr.client.RemoteAddr().String()
	p.mu.Unlock()
	if _, err := up.Write(buf[:n]); err != nil {
		return
	}
	p.wg.Go(func() { p.pipe(pr, pr.client, up, false) })
	p.pipe(pr, up, pr.client, true)
}

// forget closes a pair and stops tracking it.
func (p *Proxy) forget(pr *pair) {
	pr.close()
	p.mu.Lock()
	_, tracked := p.pairs[pr]
	delete(p.pairs, pr)
	pr.mu.Lock()
	up := pr.upstream
	pr.mu.Unlock()
	if tracked && up != nil {
		delete(p.peers, up.LocalAddr().String())
	}
	p.mu.Unlock()
	if tracked && up != nil && p.hooks.Closed != nil {
		p.hooks.Closed(up.LocalAddr().String())
	}
}

// pipe copies src to dst until either side closes, then closes both;
// delayed holds each read for the Delay hook's time.
func (p *Proxy) pipe(pr *pair, dst, src net.Conn, delayed bool) {
	defer p.forget(pr)
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if delayed && !p.wait(time.Now()) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wait holds data received at start for the Delay hook's time, following
// changes of the delay (a delay set to 0 releases it at once), unless the
// proxy closes first; it reports whether to go on.
func (p *Proxy) wait(start time.Time) bool {
	if p.hooks.Delay == nil {
		return true
	}
	for {
		d, changed := p.hooks.Delay()
		left := time.Until(start.Add(d))
		if left <= 0 {
			return true
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
			return true
		case <-changed:
			t.Stop()
		case <-p.done:
			t.Stop()
			return false
		}
	}
}

// DropAll closes every forwarded connection; the listener stays open.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	p.mu.Unlock()
	for _, pr := range pairs {
		pr.close()
	}
}

// Close closes the listener and every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	close(p.done)
	p.ln.Close()
	p.DropAll()
	p.wg.Wait()
}

// FreePort returns a loopback TCP port that was free a moment ago, for
// gopcua to listen on behind the proxy.
func FreePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
