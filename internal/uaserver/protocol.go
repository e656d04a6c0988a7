package uaserver

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// InsecureAcknowledgement is the exact text Options.AllowInsecureNetwork
// must hold for the server to listen on an address other than loopback:
// gopcua's server offers security None only, so everything it sends is
// readable and forgeable on the network, and it accepts any identity.
const InsecureAcknowledgement = "i accept that opc ua traffic is unencrypted and unauthenticated"

// TokenEnv is the environment variable that carries the child's token:
// the child presents it on the socket so that only the process the
// supervisor started can take its place.
const TokenEnv = "BMSGW_UASERVER_TOKEN"

// Errors of the options.
var (
	// ErrInsecureNetwork is returned for a non-loopback endpoint without
	// the acknowledgement.
	ErrInsecureNetwork = errors.New("opc ua server would listen beyond loopback without transport security")
	// ErrBadOptions is wrapped by the other option errors.
	ErrBadOptions = errors.New("bad opc ua server options")
)

// childConfig is what the supervisor tells a child first.
type childConfig struct {
	Endpoint     string        `json:"endpoint"`
	Writable     []string      `json:"writable,omitempty"`
	AllowedPeers []string      `json:"allowed_peers,omitempty"`
	WriteTimeout time.Duration `json:"write_timeout"`
	// ProbeInterval and ProbeTimeout: how often the child checks that its
	// OPC UA server answers a client, and how long one check may take.
	ProbeInterval time.Duration `json:"probe_interval,omitempty"`
	ProbeTimeout  time.Duration `json:"probe_timeout,omitempty"`
}

// message is one JSON line on the socket, either way; exactly one field
// is set.
type message struct {
	// Supervisor to child.
	Config      *childConfig `json:"config,omitempty"`
	Snapshot    *Snapshot    `json:"snapshot,omitempty"`
	Ping        uint64       `json:"ping,omitempty"`
	WriteResult *wireResult  `json:"write_result,omitempty"`
	// Child to supervisor.
	Hello *hello     `json:"hello,omitempty"`
	Ready *ready     `json:"ready,omitempty"`
	Fatal string     `json:"fatal,omitempty"`
	Pong  uint64     `json:"pong,omitempty"`
	Write *wireWrite `json:"write,omitempty"`
}

type hello struct {
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

type ready struct {
	Endpoint string `json:"endpoint"`
}

type wireWrite struct {
	ID    uint64  `json:"id"`
	Site  string  `json:"site"`
	Point string  `json:"point"`
	Value float64 `json:"value"`
	// Clear: the client wrote a null value, which releases the override.
	Clear bool   `json:"clear,omitempty"`
	Peer  string `json:"peer"`
}

type wireResult struct {
	ID uint64 `json:"id"`
	// Status is the OPC UA status code for the client, 0 for Good.
	Status uint32 `json:"status"`
	Error  string `json:"error,omitempty"`
}

// maxLine bounds one message (a snapshot of a large site is a few MB).
const maxLine = 64 << 20

// conn is one end of the socket: JSON lines, writes serialised.
type conn struct {
	c  net.Conn
	r  *bufio.Reader
	mu sync.Mutex
	w  *bufio.Writer
}

func newConn(c net.Conn) *conn {
	return &conn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriter(c)}
}

// send writes one message; deadline bounds a peer that stopped reading.
func (c *conn) send(m message, deadline time.Duration) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(deadline))
	if _, err := c.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return c.w.Flush()
}

// receive reads one message; only one goroutine may call it.
func (c *conn) receive() (message, error) {
	var m message
	line, err := c.readLine()
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("decode message: %w", err)
	}
	return m, nil
}

func (c *conn) readLine() ([]byte, error) {
	var buf []byte
	for {
		part, isPrefix, err := c.r.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf = append(buf, part...)
		if len(buf) > maxLine {
			return nil, fmt.Errorf("message longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return buf, nil
		}
	}
}

// parseEndpoint splits opc.tcp://host:port.
func parseEndpoint(endpoint string) (host string, port int, err error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "opc.tcp" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", 0, fmt.Errorf("%w: endpoint %q: want opc.tcp://host:port", ErrBadOptions, endpoint)
	}
	h, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("%w: endpoint %q: %v", ErrBadOptions, endpoint, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: endpoint %q: bad port %q", ErrBadOptions, endpoint, p)
	}
	return h, port, nil
}

// isLoopback reports whether host is a loopback address or "localhost".
// Other names are not resolved: they count as the network.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// checkEndpoint validates an endpoint and refuses a non-loopback one
// unless ack is InsecureAcknowledgement.
func checkEndpoint(endpoint, ack string) error {
	host, _, err := parseEndpoint(endpoint)
	if err != nil {
		return err
	}
	if ack != "" && ack != InsecureAcknowledgement {
		return fmt.Errorf("%w: allow_insecure_network must be exactly %q", ErrBadOptions, InsecureAcknowledgement)
	}
	if !isLoopback(host) && ack != InsecureAcknowledgement {
		return fmt.Errorf("%w: endpoint %s is not loopback; gopcua's server offers security None only (no encryption, no authentication), so set allow_insecure_network to %q to accept that, or keep the endpoint on 127.0.0.1 and let vendors with their own OPC UA server be read by the gateway's client instead",
			ErrInsecureNetwork, endpoint, InsecureAcknowledgement)
	}
	return nil
}

// parsePeers parses CIDRs or single addresses.
func parsePeers(peers []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, p := range peers {
		if pre, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pre.Masked())
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: allowed peer %q is not an address or CIDR", ErrBadOptions, p))
			continue
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, errors.Join(errs...)
}

// peerAllowed reports whether the address (host:port) is in one of the
// prefixes.
func peerAllowed(addr string, allowed []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseWritable checks "site/point" entries.
func parseWritable(ws []string) (map[string]bool, error) {
	out := map[string]bool{}
	var errs []error
	for _, w := range ws {
		site, point, ok := strings.Cut(w, "/")
		if !ok || site == "" || point == "" || strings.Contains(point, "/") {
			errs = append(errs, fmt.Errorf("%w: writable %q: want site/point", ErrBadOptions, w))
			continue
		}
		out[w] = true
	}
	return out, errors.Join(errs...)
}
