// Package bookings reads booking feeds (iCalendar, CSV, JSON; from a file
// or over HTTP) into normalised bookings, and keeps serving the last good
// feed when a feed fails.
//
// A Source polls one feed. A poll that fails (network error, timeout, HTTP
// error status, unparsable or suspiciously empty feed) is not applied: the
// last good feed goes on being served and the failure shows in the Status.
// The last good feed is persisted, so a restarted gateway serves it before
// its first successful fetch. A booking that disappears from the feed is
// kept until it has been missing from MissingPolls consecutive good polls;
// then it counts as cancelled.
package bookings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
)

// Errors for feeds that parse but are not plausible; a poll that fails
// with them wraps them.
var (
	// ErrEmptyFeed means the feed had no bookings in the window.
	ErrEmptyFeed = errors.New("feed has no bookings in the window")
	// ErrShrunk means the feed had far fewer bookings than the last good one.
	ErrShrunk = errors.New("feed shrank suspiciously")
)

// Status reports the health of a source. The times are from Options.Now.
type Status struct {
	// LastAttempt is when the last poll started.
	LastAttempt time.Time `json:"last_attempt"`
	// LastSuccess is when the last good poll (including 304 Not Modified)
	// started; zero if there never was one.
	LastSuccess time.Time `json:"last_success"`
	// LastFailure is when the last failed poll started.
	LastFailure time.Time `json:"last_failure"`
	// LastError is the error of the last failed poll; it stays after
	// recovery, so ConsecutiveFailures tells whether it is current.
	LastError string `json:"last_error,omitempty"`
	// ConsecutiveFailures counts failed polls since the last good one.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// FromCache is set when the bookings come from the last good feed
	// rather than from the latest poll.
	FromCache bool `json:"from_cache"`
	// FetchedAt is when the feed in use was downloaded (not when a 304
	// confirmed it); zero if there is none.
	FetchedAt time.Time `json:"fetched_at"`
	// Bookings is how many bookings are served.
	Bookings int `json:"bookings"`
	// Missing counts bookings kept although absent from recent good polls.
	Missing int `json:"missing"`
	// Disappeared counts bookings served as cancelled because they were
	// absent from MissingPolls consecutive good polls.
	Disappeared int `json:"disappeared"`
	// Warnings describe entries of the feed in use that were skipped.
	Warnings []string `json:"warnings,omitempty"`
}

// Healthy reports whether the last poll was good.
func (s Status) Healthy() bool {
	return s.ConsecutiveFailures == 0 && !s.LastSuccess.IsZero()
}

// sameState reports whether two statuses differ only in their times.
func (s Status) sameState(o Status) bool {
	return s.LastError == o.LastError && s.ConsecutiveFailures == o.ConsecutiveFailures &&
		s.FromCache == o.FromCache && s.Bookings == o.Bookings && s.Missing == o.Missing &&
		s.Disappeared == o.Disappeared && slices.Equal(s.Warnings, o.Warnings)
}

// Snapshot is the bookings a source serves after a poll.
type Snapshot struct {
	// Source is the source id.
	Source string `json:"source"`
	// Bookings overlap the poll's window, sorted like booking.SortBookings.
	Bookings []booking.Booking `json:"bookings"`
	// Status is the source's status after the poll.
	Status Status `json:"status"`
	// Changed is set when Bookings differ from the previous snapshot
	// (of Poll, or of Run for snapshots Run sends).
	Changed bool `json:"changed"`
	// Vanished holds the bookings this poll started to serve as cancelled
	// because they had been missing from MissingPolls good polls.
	Vanished []booking.Booking `json:"vanished,omitempty"`
}

// goodFeed is the last good feed. It is never modified, only replaced.
type goodFeed struct {
	body         []byte
	etag         string
	lastModified string
	fetchedAt    time.Time
	count        int // bookings in the window of the last good poll
}

// Source polls one booking feed. It is safe for concurrent use; polls are
// serialised.
type Source struct {
	opts      Options
	log       *slog.Logger
	client    *http.Client
	target    string // file path or URL without secrets, for messages
	decode    decodeFunc
	statePath string
	feed      string

	pollMu sync.Mutex // serialises Poll, the only writer of the fields below

	mu sync.Mutex // guards the fields below; they are replaced, never modified
	// good is the last good feed; nil before the first.
	good *goodFeed
	// present holds the bookings of the last good poll; nil when unknown
	// (after a restart), then good.body is decoded again.
	present []booking.Booking
	// missing holds bookings absent from the latest good polls, by id.
	missing map[string]missingEntry
	status  Status
	last    []booking.Booking // bookings of the latest snapshot of Poll
	accept  bool
}

// New validates opts and builds a Source. When a state directory is set it
// is created if needed, and the feed persisted there is loaded, so the
// source serves it at once. logger may be nil.
func New(opts Options, logger *slog.Logger) (*Source, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		opts:    o,
		log:     logger.With("source", o.ID),
		target:  o.Path,
		feed:    feedFingerprint(o),
		missing: map[string]missingEntry{},
	}
	if o.URL != "" {
		s.client = newClient(o.Client, o.Headers)
		s.target = redactURL(o.URL)
	}
	switch o.Format {
	case FormatICal:
		s.decode = s.decodeICal
	case FormatCSV:
		s.decode = s.decodeCSV
	case FormatJSON:
		s.decode = s.decodeJSON
	}
	if o.StateDir != "" {
		if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("booking source %q: state dir: %w", o.ID, err)
		}
		s.statePath = filepath.Join(o.StateDir, o.ID+".json")
		s.restore()
	}
	return s, nil
}

// restore loads the persisted feed. A state file that cannot be used is
// logged and ignored: the next good poll replaces it.
func (s *Source) restore() {
	p, err := loadState(s.statePath)
	switch {
	case err != nil:
		s.log.Warn("ignoring unreadable booking state", "path", s.statePath, "error", err)
		return
	case p == nil:
		return
	case p.Version != stateVersion || p.Source != s.opts.ID || p.Feed != s.feed:
		s.log.Warn("ignoring booking state of another feed or version", "path", s.statePath)
		return
	}
	s.good = &goodFeed{
		body: p.Body, etag: p.ETag, lastModified: p.LastModified,
		fetchedAt: p.FetchedAt, count: p.GoodCount,
	}
	for _, m := range p.Missing {
		s.missing[m.Booking.ID] = m
	}
	s.status.LastSuccess = p.LastSuccess
	s.status.FetchedAt = p.FetchedAt
	s.status.FromCache = true
	s.log.Info("restored last good booking feed", "fetched_at", p.FetchedAt, "missing", len(p.Missing))
}

// ID returns the source id.
func (s *Source) ID() string { return s.opts.ID }

// Status returns the current status.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// AcceptNext makes the next poll skip the empty and shrink checks, for an
// operator who confirmed that a feed really did shrink.
func (s *Source) AcceptNext() {
	s.mu.Lock()
	s.accept = true
	s.mu.Unlock()
}

// Cached returns the bookings of the last good feed for the window
// [from, to) without fetching; the last good feed is decoded again, so
// recurring events are expanded for this window.
func (s *Source) Cached(from, to time.Time) Snapshot {
	s.mu.Lock()
	good, missing, status := s.good, s.missing, s.status
	s.mu.Unlock()
	view := s.cachedView(good, missing, from, to)
	status.Bookings = len(view)
	return Snapshot{Source: s.opts.ID, Bookings: view, Status: status}
}

// Poll fetches the feed once and returns the bookings in [from, to).
//
// A non-nil error means this poll failed; the returned Snapshot then holds
// the last good bookings and a Status reporting the failure. A poll cut
// short because ctx ended is not counted as a failure of the feed.
func (s *Source) Poll(ctx context.Context, from, to time.Time) (Snapshot, error) {
	if !from.Before(to) {
		return Snapshot{}, fmt.Errorf("poll %s: window [%s, %s) is empty", s.opts.ID, from, to)
	}
	s.pollMu.Lock()
	defer s.pollMu.Unlock()

	now := s.opts.Now()
	s.mu.Lock()
	good, accept := s.good, s.accept
	s.mu.Unlock()

	var v validators
	if good != nil {
		v = validators{etag: good.etag, lastModified: good.lastModified}
	}
	f, err := s.fetch(ctx, v)
	var dec decoded
	if err == nil {
		body := f.body
		if f.notModified {
			body = good.body
		}
		dec, err = s.decode(body, from, to)
		if err == nil && !f.notModified && !accept {
			err = s.plausible(len(dec.bookings), good)
		}
	}
	if err != nil && ctx.Err() != nil {
		snap := s.Cached(from, to)
		return snap, fmt.Errorf("poll %s: %w", s.opts.ID, ctx.Err())
	}
	if err != nil {
		return s.failed(now, from, to, err)
	}
	return s.succeeded(now, from, to, f, dec)
}

// plausible rejects feeds that parse but look like a broken export.
func (s *Source) plausible(n int, good *goodFeed) error {
	if n == 0 && !s.opts.AllowEmpty {
		return ErrEmptyFeed
	}
	if good != nil && s.opts.EmptyFraction > 0 && good.count >= ShrinkCheckMinimum &&
		float64(n) < s.opts.EmptyFraction*float64(good.count) {
		return fmt.Errorf("%w: %d bookings, the last good feed had %d", ErrShrunk, n, good.count)
	}
	return nil
}

func (s *Source) failed(now, from, to time.Time, err error) (Snapshot, error) {
	s.mu.Lock()
	good, missing := s.good, s.missing
	s.mu.Unlock()
	view := s.cachedView(good, missing, from, to)

	s.mu.Lock()
	st := s.status
	st.LastAttempt = now
	st.LastFailure = now
	st.LastError = err.Error()
	st.ConsecutiveFailures++
	st.FromCache = true
	st.Bookings = len(view)
	s.status = st
	snap := s.snapshotLocked(view, nil)
	s.mu.Unlock()

	s.log.Warn("booking feed poll failed; serving last good bookings",
		"error", err, "failures", st.ConsecutiveFailures, "bookings", len(view), "fetched_at", st.FetchedAt)
	return snap, fmt.Errorf("poll %s: %w", s.opts.ID, err)
}

func (s *Source) succeeded(now, from, to time.Time, f fetched, dec decoded) (Snapshot, error) {
	s.mu.Lock()
	good, prev, missing, prevStatus := s.good, s.present, s.missing, s.status
	s.mu.Unlock()
	if prev == nil && good != nil {
		// First poll after a restart: what the persisted feed held is what
		// can have disappeared since.
		if d, err := s.decode(good.body, from, to); err == nil {
			prev = d.bookings
		}
	}

	// Every booking served last time that is absent now and still within
	// the window is missing; one that ended before from simply ended.
	present := make(map[string]bool, len(dec.bookings))
	for _, b := range dec.bookings {
		present[b.ID] = true
	}
	candidates := slices.Clone(prev)
	for _, m := range missing {
		candidates = append(candidates, m.Booking)
	}
	nextMissing := map[string]missingEntry{}
	var vanished []booking.Booking
	for _, b := range candidates {
		if present[b.ID] || !overlaps(b, from, to) {
			continue
		}
		polls := 1
		if m, ok := missing[b.ID]; ok {
			polls, b = m.Polls+1, m.Booking
		}
		nextMissing[b.ID] = missingEntry{Booking: b, Polls: polls}
		if polls == s.opts.MissingPolls {
			b.Status = booking.Cancelled
			vanished = append(vanished, b)
		}
	}
	booking.SortBookings(vanished)

	next := &goodFeed{count: len(dec.bookings)}
	if f.notModified {
		next.body, next.etag, next.lastModified, next.fetchedAt = good.body, good.etag, good.lastModified, good.fetchedAt
	} else {
		next.body, next.etag, next.lastModified, next.fetchedAt = f.body, f.etag, f.lastModified, now
	}
	view := append(slices.Clone(dec.bookings), s.missingView(nextMissing, from, to)...)
	booking.SortBookings(view)

	st := prevStatus
	st.LastAttempt = now
	st.LastSuccess = now
	st.ConsecutiveFailures = 0
	st.FromCache = false
	st.FetchedAt = next.fetchedAt
	st.Bookings = len(view)
	st.Missing, st.Disappeared = 0, 0
	for _, m := range nextMissing {
		if m.Polls >= s.opts.MissingPolls {
			st.Disappeared++
		} else {
			st.Missing++
		}
	}
	st.Warnings = dec.warnings

	s.mu.Lock()
	s.good, s.present, s.missing, s.status, s.accept = next, dec.bookings, nextMissing, st, false
	snap := s.snapshotLocked(view, vanished)
	s.mu.Unlock()

	s.persist(next, nextMissing, now)
	s.logSuccess(prevStatus, st, f.notModified, vanished)
	return snap, nil
}

// snapshotLocked builds the snapshot of a poll and remembers its bookings
// for Changed.
func (s *Source) snapshotLocked(view, vanished []booking.Booking) Snapshot {
	snap := Snapshot{
		Source:   s.opts.ID,
		Bookings: slices.Clone(view), // the caller may modify its copy
		Status:   s.status,
		Changed:  !sameBookings(s.last, view),
		Vanished: vanished,
	}
	s.last = view
	return snap
}

// cachedView is what the source serves without a good poll: the last good
// feed decoded for the window, plus the bookings kept while missing.
func (s *Source) cachedView(good *goodFeed, missing map[string]missingEntry, from, to time.Time) []booking.Booking {
	var view []booking.Booking
	if good != nil {
		// The body decoded before; it can only fail now if the window
		// makes expansion fail, and then there is nothing better to serve.
		if d, err := s.decode(good.body, from, to); err == nil {
			view = d.bookings
		}
	}
	view = append(view, s.missingView(missing, from, to)...)
	booking.SortBookings(view)
	return view
}

// missingView returns the missing bookings within the window as served:
// unchanged until they have been missing MissingPolls times, then
// cancelled.
func (s *Source) missingView(missing map[string]missingEntry, from, to time.Time) []booking.Booking {
	var out []booking.Booking
	for _, id := range slices.Sorted(maps.Keys(missing)) {
		m := missing[id]
		if !overlaps(m.Booking, from, to) {
			continue
		}
		b := m.Booking
		if m.Polls >= s.opts.MissingPolls {
			b.Status = booking.Cancelled
		}
		out = append(out, b)
	}
	return out
}

// persist saves the state after a good poll. A failure is logged: the
// source goes on working from memory, but a restart would lose the feed.
func (s *Source) persist(good *goodFeed, missing map[string]missingEntry, now time.Time) {
	if s.statePath == "" {
		return
	}
	p := &persisted{
		Version: stateVersion, Source: s.opts.ID, Feed: s.feed,
		Body: good.body, ETag: good.etag, LastModified: good.lastModified,
		FetchedAt: good.fetchedAt, LastSuccess: now, GoodCount: good.count,
	}
	for _, id := range slices.Sorted(maps.Keys(missing)) {
		p.Missing = append(p.Missing, missing[id])
	}
	if err := saveState(s.statePath, p); err != nil {
		s.log.Error("cannot persist booking feed; a restart would lose it", "error", err)
	}
}

func (s *Source) logSuccess(prev, st Status, notModified bool, vanished []booking.Booking) {
	if prev.ConsecutiveFailures > 0 {
		s.log.Info("booking feed recovered", "failures", prev.ConsecutiveFailures, "last_error", prev.LastError)
	}
	for _, b := range vanished {
		s.log.Info("booking missing from feed; counted as cancelled",
			"booking", b.ID, "resource", b.Resource, "start", b.Start, "polls", s.opts.MissingPolls)
	}
	if len(st.Warnings) > 0 && !slices.Equal(prev.Warnings, st.Warnings) {
		s.log.Warn("booking feed has bad entries; skipped them", "problems", st.Warnings)
	}
	s.log.Debug("booking feed polled", "not_modified", notModified, "bookings", st.Bookings, "missing", st.Missing)
}

// sameBookings compares two sorted lists of bookings.
func sameBookings(a, b []booking.Booking) bool {
	return slices.EqualFunc(a, b, booking.Booking.Same)
}
