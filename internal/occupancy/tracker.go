package occupancy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

// Window is one booking of a space, as the integrator hands it over
// (bookings only: base schedules are not bookings and have no organiser
// to hold to account).
type Window struct {
	// Start and End bound the booking: [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Booking is the booking's "source:id"; it identifies the window
	// across updates, so a moved booking keeps its id.
	Booking string `json:"booking"`
	// Organiser is the pseudonymous association id.
	Organiser string `json:"organiser,omitempty"`
}

// Outcome is what became of a booking in a space with no-show detection.
type Outcome string

// Outcomes.
const (
	// OutcomeShown: evidence within the grace time (or before the start).
	OutcomeShown Outcome = "shown"
	// OutcomeNoShow: no evidence by the deadline, none since.
	OutcomeNoShow Outcome = "no_show"
	// OutcomeLate: a no-show at the deadline, then evidence before the
	// end brought the space back.
	OutcomeLate Outcome = "late"
	// OutcomeUnjudged: no evidence, but the tracker was not watching the
	// whole evidence range (the gateway started or was down), so it does
	// not call it a no-show.
	OutcomeUnjudged Outcome = "unjudged"
)

// Retention is how long judged bookings are kept for Report and NoShows,
// counted from their end. Older figures are in the journal's no_show
// events.
const Retention = 92 * 24 * time.Hour

// MaxGap is the longest time between a Snapshot and the first Advance
// after its Restore for which the tracker still counts itself as having
// watched without a break. After a longer gap, bookings whose evidence
// range began before the restart are judged only if evidence turns up.
const MaxGap = 10 * time.Minute

// record is the judgement of one booking.
type record struct {
	Space     string    `json:"space"`
	Booking   string    `json:"booking"`
	Organiser string    `json:"organiser,omitempty"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Deadline  time.Time `json:"deadline"`
	Outcome   Outcome   `json:"outcome"`
	// Evidence is the first evidence (shown) or the evidence that ended
	// a no-show (late); nil otherwise.
	Evidence *Evidence `json:"evidence,omitempty"`
}

type key struct{ space, booking string }

// Tracker follows the evidence and booking windows of one site's spaces.
// It does no I/O and reads no clock: every method that depends on time is
// given it. The times it returns are in the site's zone (the loc given
// to NewTracker), also after a Restore. It is safe for concurrent use.
type Tracker struct {
	mu     sync.Mutex
	site   string
	loc    *time.Location
	spaces []*space
	byID   map[string]*space
	// byPoint and byDoor list the spaces that read each input, in spec
	// order.
	byPoint map[string][]*space
	byDoor  map[string][]*space
	inputs  []string
	doors   []string

	samples map[string][]sample
	grants  map[string][]time.Time
	records map[key]*record
	// enabled marks bookings whose lights were announced on; warned holds
	// the end each booking's warning was announced for.
	enabled map[key]bool
	warned  map[key]time.Time

	// clock is the latest Advance; coverFrom is since when the tracker
	// has been watching without a break (zero: not yet).
	clock     time.Time
	coverFrom time.Time
	// restoredAt is the snapshot's time until the first Advance after a
	// Restore checks the gap.
	restoredAt time.Time
	rev        uint64
}

// NewTracker checks spec and builds a tracker for a site; times in
// messages are shown in loc. The error names every bad space.
func NewTracker(siteID string, spec Spec, loc *time.Location) (*Tracker, error) {
	var errs []error
	if siteID == "" {
		errs = append(errs, errors.New("site id is empty"))
	}
	if loc == nil {
		errs = append(errs, errors.New("no time zone given"))
	}
	spaces, err := compile(spec)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("occupancy of site %q: %w", siteID, err)
	}
	t := &Tracker{
		site:    siteID,
		loc:     loc,
		spaces:  spaces,
		byID:    map[string]*space{},
		byPoint: map[string][]*space{},
		byDoor:  map[string][]*space{},
		samples: map[string][]sample{},
		grants:  map[string][]time.Time{},
		records: map[key]*record{},
		enabled: map[key]bool{},
		warned:  map[key]time.Time{},
	}
	addTo := func(m map[string][]*space, id string, sp *space) {
		if !slices.Contains(m[id], sp) {
			m[id] = append(m[id], sp)
		}
	}
	for _, sp := range spaces {
		t.byID[sp.id] = sp
		for _, s := range sp.sources {
			if s.kind == KindCard {
				addTo(t.byDoor, s.door, sp)
			} else {
				addTo(t.byPoint, s.point, sp)
			}
		}
		if l := sp.lights; l != nil {
			for _, d := range l.doors {
				addTo(t.byDoor, d, sp)
			}
			for _, p := range l.buttons {
				addTo(t.byPoint, p, sp)
			}
		}
	}
	for p := range t.byPoint {
		t.inputs = append(t.inputs, p)
	}
	for d := range t.byDoor {
		t.doors = append(t.doors, d)
	}
	slices.Sort(t.inputs)
	slices.Sort(t.doors)
	return t, nil
}

// Inputs returns the point ids the tracker reads (evidence and buttons),
// sorted. The slice is shared; do not modify it.
func (t *Tracker) Inputs() []string { return t.inputs }

// Doors returns the door ids whose grants the tracker uses, sorted. The
// slice is shared; do not modify it.
func (t *Tracker) Doors() []string { return t.doors }

// Revision increases whenever Adjustments may have changed, so a caller
// can skip rebuilding its plan when it has not.
func (t *Tracker) Revision() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rev
}

// SetWindows replaces the booking windows of a space; call it whenever
// the bookings change. A booking judged before keeps its judgement unless
// it moved: then it is judged again at its new deadline (a no-show event
// already sent stays in the journal). A booking that disappears after its
// deadline (cancelled late, or trimmed from a feed) keeps its judgement.
func (t *Tracker) SetWindows(spaceID string, ws []Window) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	sp := t.byID[spaceID]
	if sp == nil {
		return fmt.Errorf("set windows: unknown space %q", spaceID)
	}
	seen := map[string]bool{}
	var errs []error
	for i, w := range ws {
		switch {
		case w.Booking == "":
			errs = append(errs, fmt.Errorf("window %d has no booking id", i))
		case seen[w.Booking]:
			errs = append(errs, fmt.Errorf("booking %q given twice", w.Booking))
		case !validTime(w.Start) || !validTime(w.End):
			errs = append(errs, fmt.Errorf("booking %q has no valid start or end", w.Booking))
		case !w.End.After(w.Start):
			errs = append(errs, fmt.Errorf("booking %q ends (%s) before it starts (%s)", w.Booking, w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339)))
		}
		seen[w.Booking] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set windows of space %q: %w", spaceID, err)
	}
	sorted := make([]Window, len(ws))
	for i, w := range ws {
		w.Start, w.End = w.Start.In(t.loc), w.End.In(t.loc)
		sorted[i] = w
	}
	slices.SortFunc(sorted, func(a, b Window) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Booking, b.Booking))
	})
	byBooking := make(map[string]Window, len(sorted))
	for _, w := range sorted {
		byBooking[w.Booking] = w
	}
	for _, old := range sp.windows {
		w, ok := byBooking[old.Booking]
		k := key{sp.id, old.Booking}
		if !ok {
			// Gone: a judgement stays, lights announcements go.
			delete(t.enabled, k)
			delete(t.warned, k)
			continue
		}
		if !w.Start.Equal(old.Start) || !w.End.Equal(old.End) {
			delete(t.records, k)
		}
		if !w.Start.Equal(old.Start) {
			// Lit bookings whose end moved stay announced; the warning
			// is keyed by the end it was for.
			delete(t.enabled, k)
		}
	}
	for _, w := range sorted {
		if r := t.records[key{sp.id, w.Booking}]; r != nil {
			if !r.Start.Equal(w.Start) || !r.End.Equal(w.End) {
				// A window restored or set again with other times.
				delete(t.records, key{sp.id, w.Booking})
			} else {
				r.Organiser = w.Organiser
			}
		}
	}
	sp.windows = sorted
	t.rev++
	return nil
}

// Observe takes a reading of a point. ok false means the value is not
// valid (bad quality, device unreachable); it is no evidence, and it
// ends a condition that held. Readings of other points are ignored. It
// returns the events the reading causes: in_use when it is evidence for a
// booking that was a no-show, lights_enabled when it is a button press
// inside a booking.
func (t *Tracker) Observe(point string, value float64, ok bool, at time.Time) []events.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	spaces := t.byPoint[point]
	if len(spaces) == 0 || !validTime(at) {
		return nil
	}
	at = at.In(t.loc)
	if !finite(value) {
		ok = false
	}
	if !ok {
		value = 0
	}
	before := len(t.samples[point])
	t.samples[point] = addSample(t.samples[point], sample{At: at, V: value, OK: ok})
	if len(t.samples[point]) == before {
		return nil
	}
	return t.changed(spaces, point, at)
}

// Grant takes an access grant at a door (a card accepted at its reader).
// It returns the events it causes, as Observe does.
func (t *Tracker) Grant(door string, at time.Time) []events.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	spaces := t.byDoor[door]
	if len(spaces) == 0 || !validTime(at) {
		return nil
	}
	at = at.In(t.loc)
	t.grants[door] = addTime(t.grants[door], at)
	return t.changed(spaces, door, at)
}

// Consume feeds an event from the door logic: an access_granted event of
// this site is a Grant at the door in its Subject; other events are
// ignored.
func (t *Tracker) Consume(e events.Event) []events.Event {
	if e.Kind != events.AccessGranted || (e.Site != "" && e.Site != t.site) {
		return nil
	}
	return t.Grant(e.Subject, e.Time)
}

// changed re-examines the spaces an input (a point or door id) feeds
// after something new from it at at.
func (t *Tracker) changed(spaces []*space, input string, at time.Time) []events.Event {
	now := later(at, t.clock)
	var out []events.Event
	for _, sp := range spaces {
		for _, w := range sp.windows {
			if r := t.records[key{sp.id, w.Booking}]; r != nil && r.Outcome == OutcomeNoShow {
				out = append(out, t.recheck(sp, w, r)...)
			}
		}
		if l := sp.lights; l != nil && (slices.Contains(l.doors, input) || slices.Contains(l.buttons, input)) {
			t.rev++
			out = append(out, t.lightsEvents(sp, now)...)
		}
	}
	return out
}

// Advance moves the tracker's clock to now and returns what became due:
// no_show at each deadline without evidence (its Time is the deadline,
// even when Advance comes later), lights_enabled at a booking's start
// after an early card, lights_warning at the warning time. Call it at
// Next() and after SetWindows; calls with an earlier time than before
// change nothing.
func (t *Tracker) Advance(now time.Time) []events.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.clock) || !validTime(now) {
		now = t.clock
	}
	if now.IsZero() {
		return nil
	}
	now = now.In(t.loc)
	if !t.restoredAt.IsZero() {
		if now.Sub(t.restoredAt) > MaxGap {
			t.coverFrom = now
		}
		t.restoredAt = time.Time{}
	}
	if t.coverFrom.IsZero() {
		t.coverFrom = now
	}
	t.clock = now
	var out []events.Event
	for _, sp := range t.spaces {
		if sp.noShow {
			for _, w := range sp.windows {
				k := key{sp.id, w.Booking}
				if t.records[k] == nil && !sp.deadline(w).After(now) {
					out = append(out, t.judge(sp, w)...)
				}
			}
		}
		if sp.lights != nil {
			out = append(out, t.lightsEvents(sp, now)...)
		}
	}
	t.prune()
	slices.SortStableFunc(out, func(a, b events.Event) int { return a.Time.Compare(b.Time) })
	return out
}

// Next returns the earliest time at which Advance has something to do
// (possibly already past, when windows were just set), or the zero time
// when nothing is pending.
func (t *Tracker) Next() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var next time.Time
	consider := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for _, sp := range t.spaces {
		if sp.noShow {
			for _, w := range sp.windows {
				if t.records[key{sp.id, w.Booking}] == nil {
					consider(sp.deadline(w))
				}
			}
		}
		if sp.lights != nil {
			for _, g := range t.gates(sp) {
				k := key{sp.id, g.w.Booking}
				if !g.on.IsZero() && !t.enabled[k] {
					consider(g.on)
				}
				if g.blink && !t.warned[k].Equal(g.w.End) {
					consider(g.warnAt)
				}
			}
		}
	}
	return next
}

// deadline is when a booking without evidence becomes a no-show: grace
// after its start, but no later than its end.
func (sp *space) deadline(w Window) time.Time {
	d := w.Start.Add(sp.grace)
	if d.After(w.End) {
		return w.End
	}
	return d
}

// judge decides a booking whose deadline has passed.
func (t *Tracker) judge(sp *space, w Window) []events.Event {
	a, d := w.Start.Add(-sp.before), sp.deadline(w)
	r := &record{Space: sp.id, Booking: w.Booking, Organiser: w.Organiser, Start: w.Start, End: w.End, Deadline: d}
	t.records[key{sp.id, w.Booking}] = r
	if first, _, ok := t.evidence(sp, a, d); ok {
		r.Outcome, r.Evidence = OutcomeShown, &first
		return nil
	}
	if t.coverFrom.After(a) || a.Before(t.clock.Add(-History)) {
		r.Outcome = OutcomeUnjudged
		return nil
	}
	r.Outcome = OutcomeNoShow
	t.rev++
	var pts []string
	for _, s := range sp.sources {
		if s.kind != KindCard {
			pts = append(pts, s.point)
		}
	}
	out := []events.Event{t.event(sp, w, events.NoShow, d, "", pts,
		fmt.Sprintf("no-show in %s: no evidence from %s between %s and %s (booking %s-%s); released until the end",
			sp.id, t.sourceList(sp), t.clockOf(a), t.clockOf(d), t.clockOf(w.Start), t.clockOf(w.End)))}
	// Evidence may already be known from after the deadline (windows set
	// late, readings delayed).
	return append(out, t.recheck(sp, w, r)...)
}

// recheck looks for evidence that ends a no-show: any in the booking's
// evidence range up to its end.
func (t *Tracker) recheck(sp *space, w Window, r *record) []events.Event {
	first, _, ok := t.evidence(sp, w.Start.Add(-sp.before), w.End)
	if !ok {
		return nil
	}
	r.Evidence = &first
	r.Outcome = OutcomeLate
	if first.Time.Before(r.Deadline) {
		// A delayed reading from before the deadline: it was no no-show.
		r.Outcome = OutcomeShown
	}
	t.rev++
	var pts []string
	if first.Kind != KindCard {
		pts = []string{first.Source}
	}
	return []events.Event{t.event(sp, w, events.InUse, first.Time, first.Source, pts,
		fmt.Sprintf("%s in use after the no-show: %s at %s; back to occupied", sp.id, describe(first), t.clockOf(first.Time)))}
}

func (t *Tracker) event(sp *space, w Window, kind events.Kind, at time.Time, subject string, points []string, msg string) events.Event {
	return events.Event{
		Time:      at,
		Site:      t.site,
		Space:     sp.id,
		Kind:      kind,
		Severity:  events.Info,
		Subject:   subject,
		Points:    points,
		Booking:   w.Booking,
		Organiser: w.Organiser,
		Message:   msg,
	}
}

// clockOf shows a time as local wall clock, with the date when it is not
// the clock's day.
func (t *Tracker) clockOf(at time.Time) string {
	l := at.In(t.loc)
	if !t.clock.IsZero() {
		c := t.clock.In(t.loc)
		if l.Year() == c.Year() && l.YearDay() == c.YearDay() {
			return l.Format("15:04")
		}
	}
	return l.Format("2006-01-02 15:04")
}

func (t *Tracker) sourceList(sp *space) string {
	parts := make([]string, len(sp.sources))
	for i, s := range sp.sources {
		switch s.kind {
		case KindCard:
			parts[i] = s.door + " (card)"
		case KindOn:
			parts[i] = s.point + " (on)"
		case KindAbove:
			parts[i] = fmt.Sprintf("%s (above %g)", s.point, s.threshold)
		case KindRise:
			parts[i] = fmt.Sprintf("%s (rise %g)", s.point, s.threshold)
		}
	}
	return strings.Join(parts, ", ")
}

func describe(e Evidence) string {
	switch e.Kind {
	case KindCard:
		return "card at " + e.Source
	case KindOn:
		return e.Source + " on"
	case KindAbove:
		return e.Source + " above its threshold"
	}
	return e.Source + " risen"
}

// prune forgets what no longer matters: history older than History,
// windows that ended before it, judgements older than Retention.
func (t *Tracker) prune() {
	cut := t.clock.Add(-History)
	for p, ss := range t.samples {
		t.samples[p] = pruneSamples(ss, cut)
	}
	for d, ts := range t.grants {
		if ts = pruneTimes(ts, cut); len(ts) == 0 {
			delete(t.grants, d)
		} else {
			t.grants[d] = ts
		}
	}
	for _, sp := range t.spaces {
		n := len(sp.windows)
		sp.windows = slices.DeleteFunc(sp.windows, func(w Window) bool {
			if w.End.Before(cut) {
				delete(t.enabled, key{sp.id, w.Booking})
				delete(t.warned, key{sp.id, w.Booking})
				return true
			}
			return false
		})
		if len(sp.windows) != n {
			t.rev++
		}
	}
	old := t.clock.Add(-Retention)
	for k, r := range t.records {
		if r.End.Before(old) {
			delete(t.records, k)
		}
	}
}

// validTime rejects the zero time and years JSON cannot hold, so that a
// bad timestamp from a device is ignored rather than poisoning a Snapshot.
func validTime(t time.Time) bool {
	return !t.IsZero() && t.Year() >= 1 && t.Year() <= 9999
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
