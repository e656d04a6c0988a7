// Package serial reads and writes BMS points on alarm panels and access
// controllers that speak a line-based ASCII protocol over RS-232 or
// RS-485: commands built from templates, replies matched against Ack and
// Nak patterns, and received lines mapped onto point values by regular
// expressions with named groups.
package serial

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Errors of the serial client.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("serial client is closed")
	// ErrPortDown is returned at once for a command while the port cannot
	// be opened or has failed and waits to be reopened; the error also
	// wraps the port's error.
	ErrPortDown = errors.New("serial port is down")
	// ErrNoReply is returned for a command that got neither Ack nor Nak
	// within ReplyTimeout, after every retry.
	ErrNoReply = errors.New("no reply")
	// ErrRefused is wrapped by RefusedError: the panel answered Nak.
	ErrRefused = errors.New("command refused")
	// ErrNotConfirmed is returned for a write with ReadBack event when no
	// event line set the point to the written value within its
	// ConfirmTimeout; the command itself was acknowledged.
	ErrNotConfirmed = errors.New("no event line confirmed the write")
	// ErrNoValue is the error of a Reading for a point no event line has
	// set since the client started.
	ErrNoValue = errors.New("no event line has set the point yet")
	// ErrUnknownPoint is returned for a point not in Options.Points.
	ErrUnknownPoint = errors.New("point is not on this serial connection")
)

// RefusedError is a command the panel refused with a Nak reply.
type RefusedError struct {
	// Command is the line sent.
	Command string
	// Reply is the Nak line received.
	Reply string
	// Reason is the Nak's "reason" group, or the whole reply.
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("command %q refused: %s", e.Command, e.Reason)
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Stats counts what the client received and sent since New.
type Stats struct {
	// Lines received.
	Lines uint64
	// Unmatched lines: no event pattern matched them and they were not
	// the reply awaited.
	Unmatched uint64
	// Overlong lines discarded for exceeding MaxLine.
	Overlong uint64
	// UnknownPoint counts assignments of matched lines that named a point
	// not in Options.Points.
	UnknownPoint uint64
	// BadValue counts assignments whose text was not a number or not a
	// key of the Assign's Map.
	BadValue uint64
	// Commands sent, repeats and polls included.
	Commands uint64
	// Repeats of commands that got no reply in time.
	Repeats uint64
	// NoReply counts commands that failed with ErrNoReply.
	NoReply uint64
	// Refused counts Nak replies.
	Refused uint64
	// Opens counts successful opens of the port.
	Opens uint64
	// WatchDropped counts readings dropped because a Watch consumer fell
	// more than maxWatchQueue readings behind.
	WatchDropped uint64
}

// maxWatchQueue bounds the readings queued for one Watch call.
const maxWatchQueue = 4096

// Client talks to one panel on one serial port. It is safe for
// concurrent use. One goroutine, started by the first Read, Write or
// Watch and stopped by Close, owns the port: it keeps it open, reopening
// it with backoff, reads every line the panel sends, and sends commands
// one at a time.
type Client struct {
	s   *settings
	log *slog.Logger

	// reqs hands commands to the loop; the loop always receives.
	reqs chan *exchange
	stop chan struct{}
	// dead is closed when the loop has returned (or at Close when it
	// never started).
	dead chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	started  bool
	closed   bool
	values   map[string]*value
	watchers map[*watcher]struct{}
	// changed is closed and replaced whenever a value changes.
	changed chan struct{}
	opened  bool // the port has been opened once
	up      bool
	since   time.Time
	lastErr error
	// portErr is why the port is down, nil while it is open.
	portErr error
	stats   Stats
}

// value is what the event lines said about a point.
type value struct {
	v     float64
	at    time.Time
	known bool
	pulse bool // set by a pulse: an event, which does not age
	// down is why the value is stale: the port failed after it was set.
	down error
	// agedSent: Watch was told the value aged past StaleAfter.
	agedSent bool
}

// watcher is one Watch call's queue.
type watcher struct {
	ids   map[string]bool
	queue []control.Reading
	wake  chan struct{}
}

// New validates the options and builds a Client. It does not open the
// port: the first Read, Write or Watch does, and the port is reopened as
// needed. A nil logger discards the log.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	s, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		s:        s,
		log:      logger.With("conn", s.name),
		reqs:     make(chan *exchange),
		stop:     make(chan struct{}),
		dead:     make(chan struct{}),
		values:   map[string]*value{},
		watchers: map[*watcher]struct{}{},
		changed:  make(chan struct{}),
	}, nil
}

// start starts the loop once; it reports false after Close.
func (c *Client) start() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if !c.started {
		c.started = true
		c.wg.Add(1)
		go c.run()
	}
	return true
}

// Close stops the loop and closes the port; commands waiting fail with
// ErrClosed and Watch calls return ErrClosed. It waits up to about 100 ms
// for the port's reader. It is safe on a nil Client (after a failed New)
// and more than once.
func (c *Client) Close() error {
	if c == nil || c.s == nil {
		return nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	close(c.stop)
	if started {
		c.wg.Wait() // the loop closes dead
	} else {
		close(c.dead)
	}
	return nil
}

// Read returns the last value event lines (or an acknowledged write, see
// ReadBack) gave each point, with the time it was set. Err is ErrNoValue
// before any, wraps control.ErrStale (Value still set) when the value
// aged past StaleAfter or the port failed since, and ErrUnknownPoint for
// points not in Options.Points. Read does not send anything: use Poll for
// a status command.
func (c *Client) Read(_ context.Context, points []*site.Point) []control.Reading {
	c.start()
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := make([]control.Reading, len(points))
	for i, p := range points {
		out[i] = c.readingLocked(p.ID, now)
	}
	return out
}

func (c *Client) readingLocked(id string, now time.Time) control.Reading {
	r := control.Reading{Point: id, Time: now}
	fail := func(err error) control.Reading {
		r.Err = fmt.Errorf("read %s on %s: %w", id, c.s.name, err)
		return r
	}
	if _, ok := c.s.points[id]; !ok {
		return fail(ErrUnknownPoint)
	}
	if c.closed {
		return fail(ErrClosed)
	}
	v := c.values[id]
	if v == nil || !v.known {
		if c.portErr != nil {
			return fail(fmt.Errorf("%w: %w", ErrPortDown, c.portErr))
		}
		return fail(ErrNoValue)
	}
	r.Value, r.Time = v.v, v.at
	switch {
	case v.down != nil:
		return fail(fmt.Errorf("%w: the port failed after it was set: %w", control.ErrStale, v.down))
	case c.aged(v, now):
		return fail(fmt.Errorf("%w: no event line for %s", control.ErrStale, now.Sub(v.at).Round(time.Millisecond)))
	}
	return r
}

// aged reports whether a value is older than StaleAfter.
func (c *Client) aged(v *value, now time.Time) bool {
	return c.s.StaleAfter > 0 && !v.pulse && now.Sub(v.at) > c.s.StaleAfter
}

// Write sends the command of each write, in order, and waits for its Ack
// or Nak; it returns one error per write. It refuses, before anything is
// sent, points that are not writable or have no command
// (control.ErrNotWritable), values outside the point's limits or without
// a command (control.ErrOutOfRange), and points not in Options.Points
// (ErrUnknownPoint). A Nak gives a *RefusedError (ErrRefused); no reply
// after the retries gives ErrNoReply; a port that is down gives
// ErrPortDown at once. With ReadBack event the write then waits for the
// confirming event line (ErrNotConfirmed).
func (c *Client) Write(ctx context.Context, ws []control.Write) []error {
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = c.write(ctx, w)
	}
	return errs
}

func (c *Client) write(ctx context.Context, w control.Write) error {
	p := w.Point
	fail := func(err error) error {
		return fmt.Errorf("write %v to %s on %s: %w", w.Value, p.ID, c.s.name, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := control.CheckWrite(w); err != nil {
		return fail(err)
	}
	ps := c.s.points[p.ID]
	if ps == nil {
		return fail(ErrUnknownPoint)
	}
	line, err := ps.render(w.Value)
	if err != nil {
		return fail(err)
	}
	x := &exchange{point: p.ID, line: line, ack: ps.ack, nak: ps.nak, abandon: ctx.Done(), done: make(chan error, 1)}
	if ps.readBack == ReadBackAck {
		x.set, x.value = true, w.Value
	}
	if err := c.do(ctx, x); err != nil {
		return fail(err)
	}
	c.log.Info("serial command acknowledged", "point", p.ID, "value", w.Value, "command", line)
	if ps.readBack == ReadBackEvent {
		if err := c.confirm(ctx, p.ID, w.Value, ps.confirm); err != nil {
			return fail(fmt.Errorf("command %q acknowledged, but %w", line, err))
		}
	}
	return nil
}

// render builds the command line for a value.
func (ps *pointSpec) render(v float64) (string, error) {
	if !ps.writable() {
		return "", fmt.Errorf("the mapping gives the point no command: %w", control.ErrNotWritable)
	}
	field := func(f string) string {
		if f == "value" {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ps.vars[f]
	}
	if t, ok := ps.commands[v]; ok {
		return t.render(field), nil
	}
	if ps.command != nil {
		return ps.command.render(field), nil
	}
	return "", fmt.Errorf("the mapping gives no command for %v: %w", v, control.ErrOutOfRange)
}

// do hands a command to the loop and waits for its outcome.
func (c *Client) do(ctx context.Context, x *exchange) error {
	if !c.start() {
		return ErrClosed
	}
	select {
	case c.reqs <- x:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.dead:
		return ErrClosed
	}
	select {
	case err := <-x.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.dead:
		select {
		case err := <-x.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// confirm waits until the point holds want.
func (c *Client) confirm(ctx context.Context, id string, want float64, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		v := c.values[id]
		ok := v != nil && v.known && v.down == nil && v.v == want
		changed := c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-t.C:
			return fmt.Errorf("%w within %s", ErrNotConfirmed, timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.dead:
			return ErrClosed
		}
	}
}

// Watch sends the current reading of each point on out (as Read gives
// it), then a reading whenever a point changes: every event line that
// changes a value, every pulse, a stale reading when the port fails or a
// value ages past StaleAfter. It keeps the port open, reopening it with
// backoff. A consumer more than 4096 readings behind loses the oldest
// (counted in Stats). It returns nil when ctx is done (ErrClosed after
// Close) and never closes out.
func (c *Client) Watch(ctx context.Context, points []*site.Point, out chan<- control.Reading) error {
	if !c.start() {
		return ErrClosed
	}
	w := &watcher{ids: map[string]bool{}, wake: make(chan struct{}, 1)}
	var initial []control.Reading
	c.mu.Lock()
	now := time.Now()
	for _, p := range points {
		if !w.ids[p.ID] {
			w.ids[p.ID] = true
			initial = append(initial, c.readingLocked(p.ID, now))
		}
	}
	c.watchers[w] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.watchers, w)
		c.mu.Unlock()
	}()
	send := func(rs []control.Reading) error {
		for _, r := range rs {
			select {
			case out <- r:
			case <-ctx.Done():
				return ctx.Err()
			case <-c.dead:
				return ErrClosed
			}
		}
		return nil
	}
	for {
		if err := send(initial); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.dead:
			return ErrClosed
		case <-w.wake:
		}
		c.mu.Lock()
		initial, w.queue = w.queue, nil
		c.mu.Unlock()
	}
}

// notifyLocked queues a reading for the watchers of its point.
func (c *Client) notifyLocked(r control.Reading) {
	for w := range c.watchers {
		if !w.ids[r.Point] {
			continue
		}
		if len(w.queue) >= maxWatchQueue {
			w.queue = w.queue[1:]
			c.stats.WatchDropped++
		}
		w.queue = append(w.queue, r)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// set gives a point a value from an event line (or an acknowledged
// write) and tells the watchers if it changed.
func (c *Client) set(id string, v float64, now time.Time, pulse bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(id, v, now, pulse)
}

func (c *Client) setLocked(id string, v float64, now time.Time, pulse bool) {
	val := c.values[id]
	if val == nil {
		val = &value{}
		c.values[id] = val
	}
	changed := !val.known || val.v != v || val.down != nil || val.agedSent
	val.v, val.at, val.known, val.down, val.agedSent = v, now, true, nil, false
	if pulse {
		val.pulse = true
	}
	if changed {
		close(c.changed)
		c.changed = make(chan struct{})
	}
	if changed || pulse {
		c.notifyLocked(control.Reading{Point: id, Value: v, Time: now})
	}
}

// States reports the panel: up while the port is open and the panel
// answers commands (a command without reply after all retries marks it
// down until the next line arrives), with the last error.
func (c *Client) States() []control.DeviceState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := control.DeviceState{Device: c.s.name, Up: c.up, Since: c.since}
	switch {
	case c.lastErr != nil:
		st.LastError = c.lastErr.Error()
	case !c.opened:
		st.LastError = "port not opened yet"
	}
	return []control.DeviceState{st}
}

// Stats returns the counters since New.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Interface guards.
var _ control.Driver = (*Client)(nil)
