package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/journal"
)

// DefaultBuffer is the default of Options.Buffer.
const DefaultBuffer = 1024

// Errors that end a subscription, from Subscription.Err.
var (
	// ErrLagged: the subscriber fell more than its buffer behind and was
	// dropped, so that it never holds up publishing. It lost events;
	// it resumes from the journal with Filter.SinceID set to the last id
	// it received, then subscribes again.
	ErrLagged = errors.New("event subscriber fell behind and was dropped; resume from the journal after the last id received")
	// ErrClosed: the bus was closed.
	ErrClosed = errors.New("event bus closed")
)

// Options configure a Bus. The zero value is valid.
type Options struct {
	// Buffer is how many events a subscriber may fall behind before it
	// is dropped with ErrLagged. Default: DefaultBuffer.
	Buffer int
	// KeepPersonal reports whether the card holder of an event of a site
	// may be stored: the site's mapping says so. nil leaves it to the
	// journal (journal.Options.KeepPersonal), which drops every card
	// holder unless told otherwise.
	KeepPersonal func(site string) bool
	// Now is the clock for events without a time. Default: time.Now.
	Now func() time.Time
}

// Bus stores events in the journal and streams them to live
// subscribers. An event reaches subscribers only once it is durable, and
// in the order of the journal's ids, so a subscriber that resumes from the
// journal after the last id it received misses nothing and sees nothing
// twice. Events that other code appends to the journal directly are
// streamed too. A Bus is safe for concurrent use.
type Bus struct {
	j    *journal.Journal
	opts Options

	mu     sync.Mutex
	closed bool
	subs   map[*Subscription]struct{}
	lastID int64 // of the last entry committed, of any kind
}

// NewBus starts a bus on j. Close the bus before the journal.
func NewBus(ctx context.Context, j *journal.Journal, opts Options) (*Bus, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Bus{j: j, opts: opts, subs: map[*Subscription]struct{}{}}
	j.OnCommit(b.committed)
	// After the hook is in place, so that no commit is missed: the hook
	// may already have seen a later id.
	last, err := j.LastID(ctx)
	if err != nil {
		return nil, fmt.Errorf("event bus: %w", err)
	}
	b.mu.Lock()
	b.lastID = max(b.lastID, last)
	b.mu.Unlock()
	return b, nil
}

// ErrInvalid is returned by Publish for an event it refuses: no site, an
// unknown kind or severity, no message, or an id already set.
var ErrInvalid = errors.New("invalid event")

// Publish stores e in the journal and returns it with its id (and its
// time, when it had none), once it is durable; by then the live
// subscribers have it, without its card holder. Concurrent calls share
// the journal's commits (group commit), so producers that publish from
// several goroutines get far more events per second than one that
// publishes in a loop. If ctx is done first Publish returns its error,
// and the event may or may not be stored.
func (b *Bus) Publish(ctx context.Context, e Event) (Event, error) {
	out, err := b.PublishAll(ctx, []Event{e})
	if err != nil {
		return Event{}, err
	}
	return out[0], nil
}

// PublishAll stores the events in order and streams them, like Publish,
// sharing commits: a producer with a burst of events (a door logic that
// saw many inputs change) waits for one commit rather than one per event.
// Invalid events are refused before any is stored.
func (b *Bus) PublishAll(ctx context.Context, es []Event) ([]Event, error) {
	out := make([]Event, len(es))
	entries := make([]journal.Entry, len(es))
	for i, e := range es {
		switch {
		case e.ID != 0:
			return nil, fmt.Errorf("%w: already published as id %d", ErrInvalid, e.ID)
		case e.Site == "":
			return nil, fmt.Errorf("%w: %s event without a site", ErrInvalid, e.Kind)
		case !e.Kind.Valid():
			return nil, fmt.Errorf("%w: unknown kind %q; kinds are %s", ErrInvalid, e.Kind, joinKinds(Kinds))
		case e.Severity.Rank() < 0:
			return nil, fmt.Errorf("%w: %s event with unknown severity %q", ErrInvalid, e.Kind, e.Severity)
		case e.Message == "":
			return nil, fmt.Errorf("%w: %s event without a message", ErrInvalid, e.Kind)
		}
		if e.Time.IsZero() {
			e.Time = b.opts.Now()
		}
		e.Time = time.Unix(0, e.Time.UnixNano()).UTC() // as the journal returns it
		if !b.j.KeepsPersonal() || b.opts.KeepPersonal != nil && !b.opts.KeepPersonal(e.Site) {
			e.CardHolder = ""
		}
		out[i], entries[i] = e, entry(e)
	}
	if len(es) == 0 {
		return out, nil
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("publish %s event: %w", es[0].Kind, ErrClosed)
	}
	ids, err := b.j.AppendAll(ctx, entries)
	if err != nil {
		return nil, fmt.Errorf("publish %s event: %w", es[0].Kind, err)
	}
	for i := range out {
		out[i].ID = ids[i]
	}
	return out, nil
}

// Query returns the stored events that match f; see Query.
func (b *Bus) Query(ctx context.Context, f Filter) ([]Event, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	entries, err := b.j.Query(ctx, f.journal())
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(entries))
	for _, e := range entries {
		if ev, ok := FromEntry(e); ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

// Subscription is a live feed of the events that match a filter.
type Subscription struct {
	// C delivers the events in id order, without card holders. It is
	// closed when the subscription ends: by Cancel, or with a reason
	// that Err returns.
	C <-chan Event
	// AfterID is the id of the last journal entry committed before the
	// subscription began: it delivers events with larger ids, and one
	// that lags resumes from the journal after AfterID or the last id it
	// received, whichever is larger.
	AfterID int64

	b      *Bus
	c      chan Event
	f      Filter
	err    error // guarded by b.mu
	closed bool  // guarded by b.mu
}

// Subscribe starts a live feed of the events, committed from now on, that
// match f (Limit, First and Personal do not apply). To read stored events
// and then live ones without a gap, subscribe first, then Query, then
// skip the live events whose id the query already returned.
func (b *Bus) Subscribe(f Filter) (*Subscription, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	c := make(chan Event, b.opts.Buffer)
	s := &Subscription{C: c, b: b, c: c, f: f}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("subscribe: %w", ErrClosed)
	}
	s.AfterID = b.lastID
	b.subs[s] = struct{}{}
	return s, nil
}

// Cancel ends the subscription and closes C; Err stays nil. It is safe to
// call more than once, and after the subscription ended otherwise.
func (s *Subscription) Cancel() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.end(nil)
}

// Err returns why the subscription ended: ErrLagged or ErrClosed; nil
// while it runs or after Cancel.
func (s *Subscription) Err() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.err
}

// end closes the subscription; b.mu must be held.
func (s *Subscription) end(err error) {
	if s.closed {
		return
	}
	s.closed, s.err = true, err
	delete(s.b.subs, s)
	close(s.c)
}

// Close ends every subscription with ErrClosed and refuses further
// publishing and subscribing. Close the bus before the journal.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.end(ErrClosed)
	}
}

// committed runs on the journal's writer with every committed entry, in
// id order. It never blocks: a subscriber whose buffer is full is
// dropped.
func (b *Bus) committed(je journal.Entry) {
	e, ok := FromEntry(je)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastID = je.ID
	if !ok {
		return
	}
	e.CardHolder = "" // never streamed
	for s := range b.subs {
		if !s.f.Match(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.end(ErrLagged)
		}
	}
}
