package opcua

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// watchItem is one watched point and what the watcher knows of it.
type watchItem struct {
	p      *site.Point
	id     *ua.NodeID // nil if the node id does not parse
	handle uint32     // the monitored item's client handle: its index

	monitored bool          // has a monitored item in the current subscription
	heard     bool          // the current subscription has reported it
	failed    bool          // the last delivery was an error
	stale     bool          // ErrStale was delivered since the last value
	logged    ua.StatusCode // the bad status last logged, so each is logged once
	delivered bool          // a value was delivered
	value     float64       // the last value delivered
	time      time.Time     // its source timestamp

	confirmed time.Time // when the server last confirmed the value
	refreshed time.Time // when it was last read to confirm it
}

// watcher runs one Watch call: a single loop that owns all its state.
type watcher struct {
	c     *Client
	out   chan<- control.Reading
	items []*watchItem
	start time.Time

	sess  *session
	sub   *opcua.Subscription
	notes chan *opcua.PublishNotificationData
	// silent counts the monitored items the subscription has not reported
	// yet; they must all send their first value by firstBy.
	silent  int
	firstBy time.Time
}

// Watch delivers readings of the points on out whenever the server
// reports a change, until ctx is done; it then returns nil (ErrClosed if
// the client was closed). It never closes out.
//
// The points are monitored items of one subscription, created in batches
// of the server's MaxMonitoredItemsPerCall. A point whose node id is
// invalid on the server gets a Reading with the node's status as Err
// (logged once) and the others carry on; it is tried again after each
// reconnection. When the session is lost, Watch reconnects with backoff
// and creates the subscription again.
//
// Every Reading carries the value's source timestamp. OPC UA reports only
// changes, so the server is asked again (one batched Read) for the points
// it has been quiet about for half of StaleAfter; a point whose value has
// not been confirmed for StaleAfter, because the server hangs or the
// connection is down, is delivered again with Err wrapping ErrStale, and
// once more with its value when it is confirmed again.
func (c *Client) Watch(ctx context.Context, points []*site.Point, out chan<- control.Reading) error {
	w := &watcher{c: c, out: out, start: time.Now()}
	for i, p := range points {
		it := &watchItem{p: p, handle: uint32(i), confirmed: w.start}
		w.items = append(w.items, it)
		var err error
		if it.id, err = nodeID(p); err != nil {
			c.logger.Warn("opc ua point not watched", "point", p.ID, "err", err)
			it.failed = true
			if !w.send(ctx, control.Reading{Point: p.ID, Time: w.start, Err: err}) {
				return nil
			}
		}
	}

	tick := time.NewTicker(w.tickInterval())
	defer tick.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	defer w.unsubscribe(ctx)

	for {
		var dead <-chan struct{}
		if w.sess != nil {
			dead = w.sess.dead
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
			if err := w.connect(ctx); err != nil {
				if errors.Is(err, ErrClosed) {
					return ErrClosed
				}
				if ctx.Err() != nil {
					return nil
				}
				retry.Reset(max(c.retryDelay(), c.opts.BackoffMin))
			}
		case <-dead:
			w.lost(w.sess.cause())
			retry.Reset(0)
		case n := <-w.notes:
			if err := w.handle(ctx, n); err != nil {
				c.drop(w.sess, fmt.Errorf("subscription: %w", err))
				w.lost(err)
				retry.Reset(0)
			}
		case now := <-tick.C:
			w.checkStale(ctx, now)
			if err := w.checkFirst(now); err != nil {
				c.drop(w.sess, err)
				w.lost(err)
				retry.Reset(0)
				continue
			}
			if err := w.refresh(ctx, now); err != nil && ctx.Err() == nil {
				c.drop(w.sess, err)
				w.lost(err)
				retry.Reset(0)
			}
		}
	}
}

// tickInterval is how often staleness is checked: a quarter of
// StaleAfter, between 10ms and 5s.
func (w *watcher) tickInterval() time.Duration {
	return min(max(w.c.opts.StaleAfter/4, 10*time.Millisecond), 5*time.Second)
}

// send delivers a reading unless ctx ends first.
func (w *watcher) send(ctx context.Context, r control.Reading) bool {
	select {
	case w.out <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

// connect gets a session and subscribes the points.
func (w *watcher) connect(ctx context.Context) error {
	s, _, err := w.c.session(ctx)
	if err != nil {
		return err
	}
	if err := w.subscribe(ctx, s); err != nil {
		if ctx.Err() != nil {
			return err
		}
		if connectionError(err) {
			w.c.drop(s, err)
		} else {
			w.c.failed(fmt.Errorf("subscribe: %w", err))
		}
		return err
	}
	return nil
}

// subscribe creates the subscription and its monitored items on s.
func (w *watcher) subscribe(ctx context.Context, s *session) error {
	o := w.c.opts
	// The server sends a keep-alive at half the request timeout, so
	// gopcua's publish requests (which time out after RequestTimeout) are
	// always answered in time; an unanswered one would lose the data of
	// its late answer.
	keepAlive := max(1, uint32(o.RequestTimeout/2/o.PublishingInterval))
	lifetime := max(3*keepAlive, uint32(time.Minute/o.PublishingInterval))
	notes := make(chan *opcua.PublishNotificationData, 64)
	sub, err := s.cl.Subscribe(ctx, &opcua.SubscriptionParameters{
		Interval:          o.PublishingInterval,
		MaxKeepAliveCount: keepAlive,
		LifetimeCount:     lifetime,
	}, notes)
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	if err := w.monitor(ctx, s, sub); err != nil {
		// Do not leave a half-made subscription on the server.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		sub.Cancel(cctx)
		return err
	}
	w.sess, w.sub, w.notes = s, sub, notes
	w.silent = 0
	for _, it := range w.items {
		it.heard = false
		if it.monitored {
			w.silent++
		}
	}
	w.firstBy = time.Now().Add(max(o.RequestTimeout, 2*(o.SamplingInterval+o.PublishingInterval)))
	return nil
}

// errNoFirstValues is why a subscription that never reported is rebuilt.
var errNoFirstValues = errors.New("subscription sent no first values")

// checkFirst fails a subscription whose monitored items have not all sent
// their first value in time. A server sends each item's value right after
// creating it; when none comes, gopcua's publish loop is stuck: it starts
// paused and is resumed by Subscribe, and when the resume reaches it
// before the initial pause does, it stays paused for good.
func (w *watcher) checkFirst(now time.Time) error {
	if w.sub == nil || w.silent == 0 || now.Before(w.firstBy) {
		return nil
	}
	w.c.logger.Warn("opc ua subscription silent; rebuilding the session", "silent_points", w.silent)
	w.silent = 0
	return errNoFirstValues
}

// monitor creates the monitored items of the points, in batches of the
// server's MaxMonitoredItemsPerCall, and reports the refused ones.
func (w *watcher) monitor(ctx context.Context, s *session, sub *opcua.Subscription) error {
	o := w.c.opts

	var valid []*watchItem
	for _, it := range w.items {
		it.monitored = false
		if it.id != nil {
			valid = append(valid, it)
		}
	}
	var ok, bad int
	for chunk := range slices.Chunk(valid, s.limits.monitor) {
		reqs := make([]*ua.MonitoredItemCreateRequest, len(chunk))
		for i, it := range chunk {
			reqs[i] = opcua.NewMonitoredItemCreateRequestWithDefaults(it.id, ua.AttributeIDValue, it.handle)
			reqs[i].RequestedParameters.SamplingInterval = float64(o.SamplingInterval) / float64(time.Millisecond)
			reqs[i].RequestedParameters.QueueSize = 1
		}
		res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, reqs...)
		if err != nil {
			return fmt.Errorf("create monitored items: %w", err)
		}
		if len(res.Results) != len(chunk) {
			return fmt.Errorf("create monitored items: server answered %d results for %d items", len(res.Results), len(chunk))
		}
		for i, r := range res.Results {
			it := chunk[i]
			if good(r.StatusCode) {
				it.monitored = true
				ok++
				continue
			}
			bad++
			if !w.deliverError(ctx, it, &StatusError{NodeID: it.id.String(), Code: r.StatusCode}, time.Now()) {
				return ctx.Err()
			}
		}
	}
	w.c.logger.Info("opc ua subscription created", "points", ok, "invalid", bad, "publishing_interval", o.PublishingInterval)
	return nil
}

// unsubscribe deletes the subscription when Watch ends, if the session
// is still open (it is shared with Read and Write).
func (w *watcher) unsubscribe(ctx context.Context) {
	if w.sub == nil || w.sess == nil || !w.sess.alive() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if err := w.sub.Cancel(ctx); err != nil && connectionError(err) {
		w.c.drop(w.sess, err)
	}
}

// lost forgets the subscription of a session that died.
func (w *watcher) lost(err error) {
	if w.sess != nil {
		w.c.logger.Debug("opc ua subscription lost", "err", err)
	}
	w.sess, w.sub, w.notes, w.silent = nil, nil, nil, 0
	for _, it := range w.items {
		it.monitored = false
	}
}

// handle processes one publish notification.
func (w *watcher) handle(ctx context.Context, n *opcua.PublishNotificationData) error {
	if n.Error != nil {
		return n.Error
	}
	now := time.Now()
	switch v := n.Value.(type) {
	case *ua.DataChangeNotification:
		for _, mi := range v.MonitoredItems {
			if mi == nil || int(mi.ClientHandle) >= len(w.items) {
				continue
			}
			it := w.items[mi.ClientHandle]
			if it.monitored && !it.heard {
				it.heard = true
				w.silent--
			}
			if !w.deliver(ctx, it, mi.Value, now, true) {
				return nil
			}
		}
	case *ua.StatusChangeNotification:
		if !good(v.Status) {
			return fmt.Errorf("subscription status %w", v.Status)
		}
	}
	return nil
}

// deliver sends the reading of a DataValue. always is false for values
// read to confirm a point: those are only sent when they differ from the
// last delivery (a missed change) or after a stale or failed one.
func (w *watcher) deliver(ctx context.Context, it *watchItem, dv *ua.DataValue, now time.Time, always bool) bool {
	r := reading(it.p, it.id, dv, now)
	if r.Err != nil {
		var se *StatusError
		if !always && it.failed && errors.As(r.Err, &se) && se.Code == it.logged {
			return true // the same error as last time
		}
		return w.deliverError(ctx, it, r.Err, now)
	}
	it.confirmed = now
	if !always && it.delivered && !it.stale && !it.failed && r.Value == it.value {
		return true
	}
	it.delivered, it.value, it.time = true, r.Value, r.Time
	it.stale, it.failed, it.logged = false, false, 0
	return w.send(ctx, r)
}

// deliverError sends a point's error, logging each bad status once.
func (w *watcher) deliverError(ctx context.Context, it *watchItem, err error, now time.Time) bool {
	var se *StatusError
	if errors.As(err, &se) {
		if it.logged != se.Code {
			it.logged = se.Code
			w.c.logger.Warn("opc ua point unusable", "point", it.p.ID, "node", se.NodeID, "status", se.Code.Error())
		}
	}
	it.failed = true
	return w.send(ctx, control.Reading{Point: it.p.ID, Time: now, Err: err})
}

// checkStale delivers ErrStale for points not confirmed for StaleAfter.
func (w *watcher) checkStale(ctx context.Context, now time.Time) {
	limit := w.c.opts.StaleAfter
	for _, it := range w.items {
		if it.failed || it.stale || now.Sub(it.confirmed) < limit {
			continue
		}
		it.stale = true
		r := control.Reading{Point: it.p.ID, Value: it.value, Time: it.time}
		if it.delivered {
			r.Err = fmt.Errorf("%w: %s not confirmed by %s for %s", ErrStale, it.p.ID, w.c.opts.Name, now.Sub(it.confirmed).Round(time.Millisecond))
		} else {
			r.Time = now
			r.Err = fmt.Errorf("%w: no value for %s from %s for %s", ErrStale, it.p.ID, w.c.opts.Name, now.Sub(it.confirmed).Round(time.Millisecond))
		}
		if !w.send(ctx, r) {
			return
		}
	}
}

// refresh reads, in one batched Read, the monitored points the server
// has not confirmed for half of StaleAfter. It returns an error if the
// session failed.
func (w *watcher) refresh(ctx context.Context, now time.Time) error {
	if w.sess == nil || !w.sess.alive() {
		return nil
	}
	half := w.c.opts.StaleAfter / 2
	var due []*watchItem
	var nodes []*nodeRef
	for _, it := range w.items {
		if it.monitored && now.Sub(it.confirmed) >= half && now.Sub(it.refreshed) >= half {
			it.refreshed = now
			due = append(due, it)
			nodes = append(nodes, &nodeRef{p: it.p, id: it.id})
		}
	}
	if len(due) == 0 {
		return nil
	}
	// A hung server must not hold the loop past the point where the
	// values turn stale.
	rctx, cancel := context.WithTimeout(ctx, min(w.c.opts.RequestTimeout, max(half, 100*time.Millisecond)))
	defer cancel()
	results, err := w.sess.read(rctx, nodes)
	if err != nil {
		if ctx.Err() != nil || !connectionError(err) {
			return nil
		}
		return fmt.Errorf("confirm values: %w", err)
	}
	now = time.Now()
	for i, it := range due {
		if !w.deliver(ctx, it, results[i].dv, now, false) {
			return nil
		}
	}
	return nil
}
