// Package opcua is the gateway's OPC UA client: it selects the endpoint
// and security, checks the server certificate against a trust folder,
// keeps a session that reconnects with backoff, and reads, writes and
// watches points by node id as a control.Driver.
package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// closeTimeout bounds closing a session: a CloseSession request to a
// server that stopped answering must not hold up shutdown.
const closeTimeout = 2 * time.Second

// Client is an OPC UA connection to one server. Read, Write and Watch
// share one session, which is opened on first use and rebuilt after it is
// lost. A Client is safe for concurrent use.
type Client struct {
	opts   Options
	logger *slog.Logger
	trust  *trustStore
	app    *keyPair // application instance certificate, nil with policy none and no files
	user   *keyPair // user certificate for X.509 authentication, or nil
	appURI string

	// dialing is a one-slot semaphore: one connection attempt at a time,
	// and a caller waiting for it can give up with its context.
	dialing chan struct{}

	mu      sync.Mutex
	sess    *session // nil while not connected
	closed  bool
	state   control.DeviceState
	backoff time.Duration // the last wait after a failed attempt; 0 after success
	retryAt time.Time     // no new attempt before this
	lastErr error         // the error of the last failed attempt
	logged  string        // the last connection error logged at Warn or Error

	// wg tracks the goroutines of sessions (state watchers, closers).
	wg sync.WaitGroup
}

// New checks the options, loads the certificates and returns a client
// that is not connected yet. logger may be nil.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("opc ua connection %s: %w", opts.Name, err)
	}
	c := &Client{
		opts:    opts,
		logger:  logger.With("conn", opts.Name, "endpoint", opts.Endpoint),
		dialing: make(chan struct{}, 1),
		state:   control.DeviceState{Device: opts.Name, Since: time.Now()},
	}
	c.trust = &trustStore{dir: opts.TrustDir, tofu: opts.TrustOnFirstUse, logger: c.logger, now: time.Now}

	var errs []error
	if opts.CertificateFile != "" {
		kp, err := loadKeyPair(opts.CertificateFile, opts.PrivateKeyFile)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.app = kp
		}
	}
	if opts.UserCertificateFile != "" {
		kp, err := loadKeyPair(opts.UserCertificateFile, opts.UserPrivateKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("user certificate: %w", err))
		} else {
			c.user = kp
		}
	}
	c.appURI = opts.ApplicationURI
	if c.app != nil {
		uris := certURIs(c.app.cert)
		switch {
		case len(uris) == 0:
			errs = append(errs, fmt.Errorf("certificate %s has no application URI in its subject alternative names; servers refuse such certificates (EnsureCertificate makes a suitable one)", opts.CertificateFile))
		case c.appURI == "":
			c.appURI = uris[0]
		case !hasURI(c.app.cert, c.appURI):
			errs = append(errs, fmt.Errorf("application URI %s is not in certificate %s, which names %v", c.appURI, opts.CertificateFile, uris))
		}
	}
	if c.appURI == "" {
		c.appURI = DefaultApplicationURI
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("opc ua connection %s: %w", opts.Name, err)
	}
	return c, nil
}

// Close closes the session and waits for the client's goroutines. It is
// safe to call more than once, and after a failed New on a nil Client.
func (c *Client) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.kill(ErrClosed)
		c.closeSession(s)
	}
	c.wg.Wait()
	return nil
}

// States reports the server as one device: up while a session is open.
func (c *Client) States() []control.DeviceState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []control.DeviceState{c.state}
}

// Read reads the points in as few Read requests as the server's
// MaxNodesPerRead allows and returns one Reading per point, in order.
func (c *Client) Read(ctx context.Context, points []*site.Point) []control.Reading {
	out := make([]control.Reading, len(points))
	var (
		idx   []int
		nodes []*nodeRef
	)
	now := time.Now()
	for i, p := range points {
		out[i] = control.Reading{Point: p.ID, Time: now}
		nid, err := nodeID(p)
		if err != nil {
			out[i].Err = err
			continue
		}
		idx = append(idx, i)
		nodes = append(nodes, &nodeRef{p: p, id: nid})
	}
	if len(nodes) == 0 {
		return out
	}
	var results []*valueResult
	err := c.withSession(ctx, func(s *session) error {
		var err error
		results, err = s.read(ctx, nodes)
		return err
	})
	now = time.Now()
	for k, i := range idx {
		if err != nil {
			out[i].Err = fmt.Errorf("read %s from %s: %w", points[i].ID, c.opts.Name, err)
			out[i].Time = now
			continue
		}
		out[i] = reading(points[i], nodes[k].id, results[k].dv, now)
	}
	return out
}

// Write checks each write against the point's guard rails, encodes the
// values with the points' data types and writes them in as few Write
// requests as the server's MaxNodesPerWrite allows. It returns one error
// per write: nil, a guard-rail error, or the server's status for the node
// as a *StatusError.
func (c *Client) Write(ctx context.Context, ws []control.Write) []error {
	errs := make([]error, len(ws))
	var (
		idx  []int
		vals []*nodeValue
	)
	for i, w := range ws {
		if err := control.CheckWrite(w); err != nil {
			errs[i] = fmt.Errorf("write %s: %w", w.Point.ID, err)
			continue
		}
		nid, err := nodeID(w.Point)
		if err != nil {
			errs[i] = err
			continue
		}
		v, err := encode(w.Point, w.Value)
		if err != nil {
			errs[i] = fmt.Errorf("write %s: %w", w.Point.ID, err)
			continue
		}
		idx = append(idx, i)
		vals = append(vals, &nodeValue{nodeRef: nodeRef{p: w.Point, id: nid}, v: v})
	}
	if len(vals) == 0 {
		return errs
	}
	// Chunks already written are not written again if a later one needs
	// a new session.
	done := 0
	err := c.withSession(ctx, func(s *session) error {
		n, err := s.write(ctx, vals[done:])
		done += n
		return err
	})
	for k, i := range idx {
		w := ws[i]
		switch {
		case k >= done:
			errs[i] = fmt.Errorf("write %s to %s: %w", w.Point.ID, c.opts.Name, err)
		case vals[k].status != nil:
			errs[i] = fmt.Errorf("write %s: %w", w.Point.ID, vals[k].status)
		default:
			c.logger.Info("wrote point", "point", w.Point.ID, "node", vals[k].id.String(), "value", w.Value)
		}
	}
	return errs
}

// withSession runs f on the current session, opening one if needed. If f
// fails because the session is gone and the session was not brand new,
// it is rebuilt and f runs once more: a server restart should cost one
// retry, not an error.
func (c *Client) withSession(ctx context.Context, f func(*session) error) error {
	for attempt := 0; ; attempt++ {
		s, fresh, err := c.session(ctx)
		if err != nil {
			return err
		}
		err = f(s)
		if err == nil || !connectionError(err) || ctx.Err() != nil {
			return err
		}
		c.drop(s, err)
		if fresh || attempt > 0 {
			return err
		}
	}
}

// session returns an open session, connecting if there is none. fresh
// tells that it was opened by this call. While a failed attempt's backoff
// runs, it fails at once with ErrNotConnected.
func (c *Client) session(ctx context.Context) (s *session, fresh bool, err error) {
	if s, err := c.current(); s != nil || err != nil {
		return s, false, err
	}
	select {
	case c.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-c.dialing }()
	if s, err := c.current(); s != nil || err != nil {
		return s, false, err
	}
	c.mu.Lock()
	if time.Now().Before(c.retryAt) {
		err := fmt.Errorf("%w (next attempt in %s): %w", ErrNotConnected, time.Until(c.retryAt).Round(time.Millisecond), c.lastErr)
		c.mu.Unlock()
		return nil, false, err
	}
	c.mu.Unlock()

	s, err = c.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the server.
			return nil, false, err
		}
		c.failed(err)
		return nil, false, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.closeSession(s)
		return nil, false, ErrClosed
	}
	c.sess = s
	c.backoff, c.retryAt, c.lastErr, c.logged = 0, time.Time{}, nil, ""
	c.setUp()
	c.wg.Go(func() { s.watchState() })
	c.mu.Unlock()
	c.logger.Info("opc ua session open", "policy", c.opts.SecurityPolicy, "mode", c.opts.SecurityMode,
		"max_nodes_per_read", s.limits.read, "max_nodes_per_write", s.limits.write, "max_monitored_items_per_call", s.limits.monitor)
	return s, true, nil
}

// current returns the open session, if any. A session that died since
// (gopcua saw its connection drop) is let go here.
func (c *Client) current() (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.sess == nil {
		return nil, nil
	}
	if c.sess.alive() {
		return c.sess, nil
	}
	c.forgetLocked(c.sess, c.sess.cause())
	return nil, nil
}

// failed records a failed connection attempt and schedules the next one.
func (c *Client) failed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backoff = min(max(2*c.backoff, c.opts.BackoffMin), c.opts.BackoffMax)
	wait := time.Duration(float64(c.backoff) * (0.8 + 0.4*rand.Float64()))
	c.retryAt = time.Now().Add(wait)
	c.lastErr = err
	c.setDown(err)
	switch {
	case c.logged == err.Error():
		c.logger.Debug("opc ua connect failed again", "err", err, "retry_in", wait)
	case needsPerson(err):
		// Retrying will not help until a person acts.
		c.logger.Error("opc ua connect refused", "err", err, "retry_in", wait)
	default:
		c.logger.Warn("opc ua connect failed", "err", err, "retry_in", wait)
	}
	c.logged = err.Error()
}

// retryDelay returns how long until the next connection attempt may be
// made, at least BackoffMin after a failure.
func (c *Client) retryDelay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(time.Until(c.retryAt), 0)
}

// drop forgets a session that failed with err and closes it in the
// background. The next call reconnects at once: only failed attempts back
// off.
func (c *Client) drop(s *session, err error) {
	s.kill(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == s {
		c.forgetLocked(s, err)
	}
}

// forgetLocked detaches the current session s, which failed with err, and
// closes it in the background; c.mu must be held.
func (c *Client) forgetLocked(s *session, err error) {
	c.sess = nil
	c.setDown(err)
	c.logger.Warn("opc ua session lost", "err", err)
	if c.closed {
		return
	}
	c.wg.Go(func() { c.closeSession(s) })
}

// closeSession closes a session within closeTimeout.
func (c *Client) closeSession(s *session) {
	// There is no caller context here (Close has none, and the session
	// outlives the call that dropped it); the timeout is the bound.
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	s.close(ctx)
}

// setUp and setDown update the device state; c.mu must be held.
func (c *Client) setUp() {
	if !c.state.Up {
		c.state.Up = true
		c.state.Since = time.Now()
	}
}

func (c *Client) setDown(err error) {
	if c.state.Up {
		c.state.Up = false
		c.state.Since = time.Now()
	}
	c.state.LastError = err.Error()
}

// Interface guards.
var _ control.Driver = (*Client)(nil)
