package opcuasim

import (
	"errors"
	"net"
	"sync"
	"time"
)

// helloTimeout bounds the wait for a new client's first bytes (its OPC UA
// Hello).
const helloTimeout = 10 * time.Second

// proxy accepts client connections on the public listener and forwards
// each to gopcua's internal port, delaying client-to-server traffic by the
// simulator's configured delay. It tracks the connections so that they can
// be dropped, or closed on Stop.
//
// It connects to gopcua only once a client has sent its first bytes:
// gopcua performs the Hello/Acknowledge handshake inside its accept loop
// without a deadline, so one client that connects and stays silent (or a
// delayed one) would otherwise block every later connection.
type proxy struct {
	ln     net.Listener
	target string
	sim    *Server
	// closed is called with the local address of gopcua's side of a
	// connection once it is closed.
	onClose func(upstreamAddr string)

	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	pairs  map[*pair]struct{}
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

func newProxy(ln net.Listener, target string, sim *Server, onClose func(string)) *proxy {
	return &proxy{ln: ln, target: target, sim: sim, onClose: onClose, done: make(chan struct{}), pairs: make(map[*pair]struct{})}
}

// start serves the listener in a goroutine that close waits for.
func (p *proxy) start() { p.wg.Go(p.serve) }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.sim.logger.Warn("opc ua simulator accept failed", "err", err)
			continue
		}
		p.sim.count(func(st *Stats) { st.Connections++ })
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

// handle waits for the client's first bytes, connects to gopcua and
// forwards both ways until either side closes.
func (p *proxy) handle(pr *pair) {
	defer p.forget(pr)
	buf := make([]byte, 64<<10)
	pr.client.SetReadDeadline(time.Now().Add(helloTimeout))
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
		p.sim.logger.Warn("opc ua simulator cannot reach its server", "err", err)
		return
	}
	if !pr.setUpstream(up) {
		up.Close()
		return
	}
	if _, err := up.Write(buf[:n]); err != nil {
		return
	}
	p.wg.Go(func() { p.pipe(pr, pr.client, up, false) })
	p.pipe(pr, up, pr.client, true)
}

// forget closes a pair and stops tracking it.
func (p *proxy) forget(pr *pair) {
	pr.close()
	p.mu.Lock()
	_, tracked := p.pairs[pr]
	delete(p.pairs, pr)
	p.mu.Unlock()
	if !tracked || p.onClose == nil {
		return
	}
	pr.mu.Lock()
	up := pr.upstream
	pr.mu.Unlock()
	if up != nil {
		p.onClose(up.LocalAddr().String())
	}
}

// pipe copies src to dst until either side closes, then closes both.
func (p *proxy) pipe(pr *pair, dst, src net.Conn, delayed bool) {
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

// wait holds data received at start for the configured delay, following
// changes of the delay (SetDelay(0) releases it at once), unless the
// proxy closes first; it reports whether to go on.
func (p *proxy) wait(start time.Time) bool {
	for {
		d, changed := p.sim.delayState()
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

// dropAll closes every forwarded connection; the listener stays open.
func (p *proxy) dropAll() {
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

// close closes the listener and every connection and waits for the
// proxy's goroutines.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	close(p.done)
	p.ln.Close()
	p.dropAll()
	p.wg.Wait()
}
