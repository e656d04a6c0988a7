package uaserver

import (
	"errors"
	"net"
	"sync"
	"time"
)

// helloTimeout bounds the wait for a new client's first bytes.
const helloTimeout = 10 * time.Second

// proxy accepts clients on the public listener and forwards each to
// gopcua's internal loopback port; it is opcuasim's proxy without the
// injected delays. It exists because gopcua's server (a) performs the
// Hello/Acknowledge handshake inside its accept loop without a deadline,
// so one silent client blocks every later one, (b) cannot close the
// connections it accepted, and (c) sees only the proxy's address as the
// peer: the proxy remembers which client each forwarded connection
// belongs to, for the write handler's allow-list.
type proxy struct {
	ln      net.Listener
	target  string
	onClose func(upstreamAddr string)
	warn    func(msg string, args ...any)

	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	pairs  map[*pair]struct{}
	peers  map[string]string // upstream local address → client address
	closed bool
}

type pair struct {
	client net.Conn

	mu       sync.Mutex
	upstream net.Conn
	closed   bool
}

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

func newProxy(ln net.Listener, target string, onClose func(string), warn func(string, ...any)) *proxy {
	return &proxy{ln: ln, target: target, onClose: onClose, warn: warn, done: make(chan struct{}),
		pairs: map[*pair]struct{}{}, peers: map[string]string{}}
}

func (p *proxy) start() { p.wg.Go(p.serve) }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.warn("opc ua server accept failed", "err", err)
			continue
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

// peer returns the client address behind gopcua's remote address.
func (p *proxy) peer(upstreamLocal string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.peers[upstreamLocal]
	return a, ok
}

func (p *proxy) handle(pr *pair) {
	defer p.forget(pr)
	buf := make([]byte, 64<<10)
	pr.client.SetReadDeadline(time.Now().Add(helloTimeout))
	n, err := pr.client.Read(buf)
	if err != nil {
		return
	}
	pr.client.SetReadDeadline(time.Time{})
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.warn("opc ua server cannot reach gopcua", "err", err)
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
	p.wg.Go(func() { p.pipe(pr, pr.client, up) })
	p.pipe(pr, up, pr.client)
}

func (p *proxy) forget(pr *pair) {
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
	if tracked && up != nil && p.onClose != nil {
		p.onClose(up.LocalAddr().String())
	}
}

func (p *proxy) pipe(pr *pair, dst, src net.Conn) {
	defer p.forget(pr)
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	p.mu.Unlock()
	close(p.done)
	p.ln.Close()
	for _, pr := range pairs {
		pr.close()
	}
	p.wg.Wait()
}
