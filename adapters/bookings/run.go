package bookings

import (
	"context"
	"time"
)

// WindowFunc returns the window [from, to) to poll for at time now.
type WindowFunc func(now time.Time) (from, to time.Time)

// Around returns a WindowFunc from now-back to now+ahead.
func Around(back, ahead time.Duration) WindowFunc {
	return func(now time.Time) (time.Time, time.Time) {
		return now.Add(-back), now.Add(ahead)
	}
}

// Run polls the feed every Interval until ctx is done, and sends a
// Snapshot on out whenever the bookings or the status (other than its
// times) changed, and always first. When a persisted feed was restored,
// its snapshot is sent before the first fetch, which may take up to
// Timeout. After a failed poll the next one follows after RetryMin,
// doubling with each consecutive failure up to RetryMax.
//
// Run returns nil once ctx is done; a failing feed is reported in the
// snapshots, never by returning. It never closes out, and a send blocks
// until out is read or ctx is done.
func (s *Source) Run(ctx context.Context, window WindowFunc, out chan<- Snapshot) error {
	var sent *Snapshot
	send := func(snap Snapshot) bool {
		snap.Changed = sent == nil || !sameBookings(sent.Bookings, snap.Bookings)
		select {
		case out <- snap:
			sent = &snap
			return true
		case <-ctx.Done():
			return false
		}
	}

	s.mu.Lock()
	restored := s.good != nil
	s.mu.Unlock()
	if restored {
		from, to := window(s.opts.Now())
		if !send(s.Cached(from, to)) {
			return nil
		}
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		from, to := window(s.opts.Now())
		snap, err := s.Poll(ctx, from, to)
		if ctx.Err() != nil {
			return nil
		}
		if sent == nil || len(snap.Vanished) > 0 ||
			!sameBookings(sent.Bookings, snap.Bookings) || !snap.Status.sameState(sent.Status) {
			if !send(snap) {
				return nil
			}
		}
		delay := s.opts.Interval
		if err != nil {
			delay = s.backoff(snap.Status.ConsecutiveFailures)
		}
		timer.Reset(delay)
	}
}

// backoff is the wait after the given number of consecutive failures.
func (s *Source) backoff(failures int) time.Duration {
	d := s.opts.RetryMin
	for i := 1; i < failures && d < s.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.opts.RetryMax)
}
