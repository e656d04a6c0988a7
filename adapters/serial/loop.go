package serial

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// exchange is one command waiting for its reply.
type exchange struct {
	// point is the point written, "" for the poll.
	point    string
	line     string
	ack, nak *regexp.Regexp
	// set: an Ack sets the point to value (ReadBack ack).
	set   bool
	value float64
	poll  bool
	// abandon is closed when the caller no longer waits; a command not
	// yet sent is then dropped. Nil for the poll.
	abandon <-chan struct{}
	// done receives the outcome once; buffered. Nil for the poll.
	done     chan error
	attempts int
}

var errAbandoned = errors.New("command abandoned")

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// run is the loop: it opens the port, runs a session on it until the
// port fails or Close, and reopens it with backoff.
func (c *Client) run() {
	defer c.wg.Done()
	defer close(c.dead)
	backoff := c.s.BackoffMin
	sp := newSplitter(c.s.Terminator, c.s.MaxLine)
	for {
		if isClosed(c.stop) {
			return
		}
		p, err := openPort(c.s)
		if err == nil {
			c.portUp()
			sp.reset()
			var heard bool
			heard, err = c.session(p, sp)
			if cerr := p.close(); cerr != nil && err != nil {
				c.log.Debug("close serial port", "error", cerr)
			}
			if err == nil {
				return // stopped
			}
			if heard {
				backoff = c.s.BackoffMin
			}
		}
		c.portDown(err, backoff)
		if !c.pause(backoff, err) {
			return
		}
		backoff = min(2*backoff, c.s.BackoffMax)
	}
}

// pause waits before the port is reopened, failing the commands that
// arrive meanwhile. It returns false on Close.
func (c *Client) pause(d time.Duration, cause error) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return false
		case <-t.C:
			return true
		case x := <-c.reqs:
			c.finish(x, fmt.Errorf("command %q not sent: %w: %w", x.line, ErrPortDown, cause))
		}
	}
}

// finish reports the outcome of a command to its caller (the poll's to
// the log).
func (c *Client) finish(x *exchange, err error) {
	if x.poll {
		if err != nil && !errors.Is(err, ErrClosed) {
			c.log.Warn("serial status poll failed", "error", err)
		}
		return
	}
	x.done <- err
}

// session serves an open port until reading or writing it fails (the
// error is returned) or Close (nil). heard reports whether any line was
// received.
func (c *Client) session(p *port, sp *splitter) (heard bool, err error) {
	chunks := make(chan []byte)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Go(func() { readErr <- p.read(quit, chunks) })
	defer func() {
		close(quit)
		rwg.Wait()
	}()

	var (
		cur     *exchange
		queue   []*exchange
		lastIO  time.Time
		waiting bool // for the RS-485 inter-frame silence
		pulses  = map[string]time.Time{}
	)
	replyT := stoppedTimer()
	defer replyT.Stop()
	sendT := stoppedTimer()
	defer sendT.Stop()
	pulseT := stoppedTimer()
	defer pulseT.Stop()
	var pollC, ageC <-chan time.Time
	if c.s.poll != nil {
		t := time.NewTicker(c.s.poll.interval)
		defer t.Stop()
		pollC = t.C
		queue = append(queue, c.pollExchange())
	}
	if c.s.StaleAfter > 0 {
		t := time.NewTicker(max(c.s.StaleAfter/4, 10*time.Millisecond))
		defer t.Stop()
		ageC = t.C
	}
	failAll := func(err error) {
		if cur != nil {
			c.finish(cur, fmt.Errorf("command %q: %w", cur.line, err))
		}
		for _, x := range queue {
			c.finish(x, fmt.Errorf("command %q not sent: %w", x.line, err))
		}
	}
	armPulses := func() {
		pulseT.Stop()
		var next time.Time
		for _, at := range pulses {
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		if !next.IsZero() {
			pulseT.Reset(max(time.Until(next), 0))
		}
	}

	for {
		// Send the next command when the line is free.
		for cur == nil && !waiting && len(queue) > 0 {
			x := queue[0]
			if x.abandon != nil && isClosed(x.abandon) {
				queue = queue[1:]
				c.finish(x, errAbandoned)
				continue
			}
			if c.s.RS485 {
				if d := time.Until(lastIO.Add(c.s.InterFrameDelay)); d > 0 {
					waiting = true
					sendT.Reset(d)
					break
				}
			}
			queue = queue[1:]
			if err := p.write([]byte(x.line + c.s.Terminator)); err != nil {
				queue = slices.Insert(queue, 0, x)
				failAll(err)
				return heard, err
			}
			lastIO = time.Now()
			x.attempts++
			c.count(func(s *Stats) { s.Commands++ })
			c.log.Debug("serial command sent", "command", x.line, "attempt", x.attempts)
			cur = x
			replyT.Reset(c.s.ReplyTimeout)
		}

		select {
		case <-c.stop:
			failAll(ErrClosed)
			return heard, nil
		case err := <-readErr:
			failAll(err)
			return heard, err
		case x := <-c.reqs:
			queue = append(queue, x)
		case <-sendT.C:
			waiting = false
		case <-pollC:
			pending := cur != nil && cur.poll
			for _, x := range queue {
				pending = pending || x.poll
			}
			if !pending {
				queue = append(queue, c.pollExchange())
			}
		case <-ageC:
			c.sweepAged(time.Now())
		case <-pulseT.C:
			now := time.Now()
			for id, at := range pulses {
				if !at.After(now) {
					delete(pulses, id)
					c.set(id, 0, now, false)
				}
			}
			armPulses()
		case <-replyT.C:
			x := cur
			if x == nil {
				continue
			}
			cur = nil
			if x.attempts <= c.s.Retries {
				c.count(func(s *Stats) { s.Repeats++ })
				c.log.Debug("no reply to serial command, sending it again", "command", x.line, "attempt", x.attempts)
				queue = slices.Insert(queue, 0, x)
				continue
			}
			err := fmt.Errorf("command %q: %w within %s (%d attempts)", x.line, ErrNoReply, c.s.ReplyTimeout, x.attempts)
			c.noReply(err)
			c.finish(x, err)
		case chunk := <-chunks:
			now := time.Now()
			lastIO = now
			lines, overlong := sp.feed(chunk)
			if overlong > 0 {
				c.count(func(s *Stats) { s.Overlong += uint64(overlong) })
				c.log.Warn("serial line longer than max_line discarded", "max_line", c.s.MaxLine, "lines", overlong)
			}
			for _, line := range lines {
				heard = true
				consumed := false
				if x := cur; x != nil {
					if done, err := c.reply(x, line, now); done {
						cur = nil
						replyT.Stop()
						consumed = true
						c.finish(x, err)
					}
				}
				if !c.events(line, now, pulses) && !consumed {
					c.count(func(s *Stats) { s.Unmatched++ })
					c.log.Debug("serial line matches no event pattern", "line", line)
				}
			}
			armPulses()
		}
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (c *Client) pollExchange() *exchange {
	return &exchange{line: c.s.poll.command, ack: c.s.poll.ack, nak: c.s.poll.nak, poll: true}
}

// reply checks whether a line answers the command: done is set for an
// Ack (err nil) or a Nak (a *RefusedError).
func (c *Client) reply(x *exchange, line string, now time.Time) (done bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := x.nak.FindStringSubmatch(line); m != nil {
		reason := line
		if i := x.nak.SubexpIndex("reason"); i > 0 && m[i] != "" {
			reason = m[i]
		}
		c.stats.Refused++
		return true, &RefusedError{Command: x.line, Reply: line, Reason: reason}
	}
	if x.ack.MatchString(line) {
		if x.set {
			c.setLocked(x.point, x.value, now, false)
		}
		return true, nil
	}
	return false, nil
}

// events applies the first event pattern matching the line and reports
// whether one did. Pulses are scheduled in pulses.
func (c *Client) events(line string, now time.Time, pulses map[string]time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Lines++
	if !c.up && c.portErr == nil {
		// The panel talks again after a command went unanswered.
		c.up, c.since = true, now
		c.log.Info("serial panel answering again")
	}
	for _, ev := range c.s.events {
		m := ev.re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		group := func(name string) string { return m[ev.re.SubexpIndex(name)] }
		for _, a := range ev.set {
			id := a.point.render(group)
			if _, ok := c.s.points[id]; !ok {
				c.stats.UnknownPoint++
				c.log.Debug("serial event names a point not on the connection", "line", line, "point", id)
				continue
			}
			v, err := a.eval(group)
			if err != nil {
				c.stats.BadValue++
				c.log.Debug("serial event value not understood", "line", line, "point", id, "error", err)
				continue
			}
			c.setLocked(id, v, now, a.pulse > 0)
			if a.pulse > 0 {
				pulses[id] = now.Add(a.pulse)
			} else {
				delete(pulses, id)
			}
		}
		return true
	}
	return false
}

// eval computes the value an assignment gives.
func (a assign) eval(group func(string) string) (float64, error) {
	if a.value.fixed() {
		return a.literal, nil
	}
	text := a.value.render(group)
	if a.m != nil {
		v, ok := a.m[text]
		if !ok {
			return 0, fmt.Errorf("%q is not in the map", text)
		}
		return v, nil
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", text)
	}
	return v, nil
}

// sweepAged tells the watchers of values that aged past StaleAfter.
func (c *Client) sweepAged(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, v := range c.values {
		if v.known && v.down == nil && !v.agedSent && c.aged(v, now) {
			v.agedSent = true
			c.notifyLocked(c.readingLocked(id, now))
		}
	}
}

func (c *Client) count(f func(*Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.stats)
}

// portUp records an opened port. Pulse points rest at 0 until their
// first pulse.
func (c *Client) portUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.opened {
		c.log.Info("serial port reopened", "device", c.s.Device)
	} else {
		c.log.Info("serial port open", "device", c.s.Device)
	}
	c.opened = true
	c.stats.Opens++
	c.up, c.since, c.portErr = true, now, nil
	for _, id := range c.s.pulsePoints {
		if v := c.values[id]; v == nil || !v.known || v.down != nil {
			c.setLocked(id, 0, now, false)
			c.values[id].pulse = true
		}
	}
}

// portDown records a port that failed or cannot be opened, and makes
// every value stale.
func (c *Client) portDown(err error, retryIn time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.up || c.since.IsZero() {
		c.since = now
	}
	if c.up || c.portErr == nil {
		c.log.Warn("serial port down", "error", err, "retry_in", retryIn)
	} else {
		c.log.Debug("serial port still down", "error", err, "retry_in", retryIn)
	}
	c.up, c.lastErr, c.portErr = false, err, err
	for id, v := range c.values {
		if v.known && v.down == nil {
			v.down = err
			c.notifyLocked(c.readingLocked(id, now))
		}
	}
}

// noReply records a command the panel did not answer.
func (c *Client) noReply(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.NoReply++
	c.lastErr = err
	if c.up {
		c.up, c.since = false, time.Now()
		c.log.Warn("serial panel not answering", "error", err)
	}
}
