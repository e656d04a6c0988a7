// Package schedule compiles bookings, base schedules and occupancy
// profiles into occupancy windows per space and a timeline of values per
// BMS point.
//
// A Compiler holds one site over a fixed time range; a Plan holds several
// sites fed by the same booking feeds. SetBookings compiles from a full
// booking set. Apply takes the change of a feed and rebuilds only the
// spaces whose resources it touched, their parents and the points bound
// to them, and within each only the windows near the change in time, so
// that moving one booking in a season of 72 schools costs microseconds.
// The output (Windows, Timeline, Changes, ValueAt) does not depend on the
// order of the input: everything is sorted.
package schedule

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/calendar"
	"github.com/bmsgw/bmsgw/internal/site"
)

// BookingKey identifies a booking across polls of its feed.
type BookingKey = booking.Key

// KeyOf returns the key of b.
func KeyOf(b booking.Booking) BookingKey { return BookingKey{Source: b.Source, ID: b.ID} }

// Compiler compiles the occupancy windows and point timelines of one site
// over the range [from, to). Its read methods (Windows, Timeline, Changes,
// ValueAt, Stats) may run concurrently with each other, but SetBookings
// and Apply must not run concurrently with anything: a control engine
// that reads while a feed poller applies changes holds a lock.
type Compiler struct {
	site     *site.Site
	loc      *time.Location
	from, to time.Time
	// fromNs and toNs are from and to; lo and hi are the range padded by
	// the longest lead, lag, merge gap and minimum window of the site, so
	// that a window just outside the range still has its effect inside.
	fromNs, toNs int64
	lo, hi       int64

	// spaces is in build order: children before their parents, then in
	// site order.
	spaces     []*spaceState
	spaceByID  map[string]*spaceState
	byResource map[string][]*spaceState
	// points is sorted by id.
	points    []*pointState
	pointByID map[string]*pointState

	entries map[BookingKey]*entry

	// initial builds the windows of a compiler that has had no
	// SetBookings yet (schedules only) on its first read or Apply. A
	// SetBookings right after NewCompiler, the common case, thus builds
	// once instead of twice; sync.Once keeps concurrent first reads safe.
	initial sync.Once

	// Scratch space reused between builds.
	runs []run
	m    merger
}

// entry is one active booking held by the compiler. Only what the build
// needs is kept, not the whole booking.
type entry struct {
	resource   string
	start, end int64
	// reason is the booking's reason; windows made of this booking alone
	// share it instead of allocating their own.
	reason [1]Reason
}

type spaceState struct {
	space    *site.Space
	order    int // index in site.Spaces
	depth    int // 0 for a space without parent
	parent   *spaceState
	children []*spaceState
	// asChild is the reason this space gives its parent's windows.
	asChild  []Reason
	schedule []span
	// bookings are the spans of the space's bookings, sorted by start
	// unless unsorted is set; each shares the reasons of its entry.
	bookings []span
	unsorted bool
	windows  []span
	// widened holds the windows widened for the bindings of the space's
	// points: points with the same lead, lag and gap (a room's mode and
	// setpoint) share one. They are updated with the windows.
	widened []*widened
	points  []*pointState
	// dirtyLo and dirtyHi bound the inputs that changed since the last
	// build; dirty is set when there are any.
	dirtyLo, dirtyHi int64
	dirty            bool
}

// markDirty records that the inputs of st changed within [lo, hi].
func (st *spaceState) markDirty(lo, hi int64) {
	if !st.dirty {
		st.dirtyLo, st.dirtyHi, st.dirty = lo, hi, true
		return
	}
	st.dirtyLo, st.dirtyHi = min(st.dirtyLo, lo), max(st.dirtyHi, hi)
}

type widened struct {
	lead, lag, gap int64
	windows        []span
}

type pointState struct {
	point  *site.Point
	binds  []bind
	spaces []*site.Space
	// occupied and vacant are the values of the first binding in site
	// order; the validator guarantees all bindings of a point agree.
	occupied, vacant site.Value
	windows          []span
	dirty            bool
}

type bind struct {
	space     *spaceState
	lead, lag int64
	gap       int64
}

// NewCompiler prepares a compiler for site s over [from, to): it resolves
// the space hierarchy and the point bindings and expands the base
// schedules. It holds no bookings until SetBookings; read before that, it
// shows the base schedules alone.
func NewCompiler(s *site.Site, from, to time.Time) *Compiler {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	c := &Compiler{
		site:       s,
		loc:        loc,
		from:       from.In(loc),
		to:         to.In(loc),
		fromNs:     from.UnixNano(),
		toNs:       to.UnixNano(),
		spaceByID:  make(map[string]*spaceState, len(s.Spaces)),
		byResource: make(map[string][]*spaceState),
		pointByID:  make(map[string]*pointState),
		entries:    make(map[BookingKey]*entry),
	}
	c.initSpaces()
	c.initPoints()
	c.initSchedules()
	return c
}

// ensureBuilt builds the windows if nothing has built them yet.
func (c *Compiler) ensureBuilt() { c.initial.Do(c.rebuildAll) }

func (c *Compiler) initSpaces() {
	byPtr := make(map[*site.Space]*spaceState, len(c.site.Spaces))
	for i, sp := range c.site.Spaces {
		st := &spaceState{space: sp, order: i, asChild: []Reason{{Kind: ReasonChild, Ref: sp.ID}}}
		byPtr[sp] = st
		c.spaceByID[sp.ID] = st
		c.spaces = append(c.spaces, st)
	}
	// The parent link is authoritative; Children is its mirror. Spaces
	// outside the site are ignored.
	for _, st := range c.spaces {
		if p := byPtr[st.space.Parent]; p != nil && p != st {
			st.parent = p
			p.children = append(p.children, st)
		}
	}
	for _, st := range c.spaces {
		// The validator rejects cycles; the bound only keeps a bad model
		// from hanging the compiler.
		for p := st.parent; p != nil && st.depth <= len(c.spaces); p = p.parent {
			st.depth++
		}
	}
	slices.SortStableFunc(c.spaces, func(a, b *spaceState) int {
		if a.depth != b.depth {
			return cmp.Compare(b.depth, a.depth)
		}
		return cmp.Compare(a.order, b.order)
	})
	for _, st := range c.spaces {
		for _, r := range st.space.Resources {
			if l := c.byResource[r]; len(l) == 0 || l[len(l)-1] != st {
				c.byResource[r] = append(l, st)
			}
		}
	}
}

func (c *Compiler) initPoints() {
	inOrder := slices.Clone(c.spaces)
	slices.SortFunc(inOrder, func(a, b *spaceState) int { return cmp.Compare(a.order, b.order) })
	var pad time.Duration
	for _, st := range inOrder {
		prof := st.space.Profile
		pad = max(pad, prof.Lead+prof.Lag+prof.MergeGap+prof.MinWindow)
		for _, b := range st.space.Bindings {
			// Only written points have a timeline; the validator makes
			// every binding writable, so this only skips a bad model.
			if b.Point == nil || !b.Point.Writable() {
				continue
			}
			pad = max(pad, b.Lead+b.Lag+prof.MergeGap+prof.MinWindow)
			ps := c.pointByID[b.Point.ID]
			if ps == nil {
				ps = &pointState{point: b.Point, occupied: b.Occupied, vacant: b.Vacant}
				c.pointByID[b.Point.ID] = ps
				c.points = append(c.points, ps)
			}
			ps.binds = append(ps.binds, bind{space: st, lead: int64(b.Lead), lag: int64(b.Lag), gap: int64(prof.MergeGap)})
			if len(ps.spaces) == 0 || ps.spaces[len(ps.spaces)-1] != st.space {
				ps.spaces = append(ps.spaces, st.space)
				st.points = append(st.points, ps)
			}
		}
	}
	slices.SortFunc(c.points, func(a, b *pointState) int { return cmp.Compare(a.point.ID, b.point.ID) })
	// A day more than the longest effect keeps windows whose lead or lag
	// reaches into the range, whatever the offsets of the zone.
	pad += 24 * time.Hour
	c.lo = c.from.Add(-pad).UnixNano()
	c.hi = c.to.Add(pad).UnixNano()
}

func (c *Compiler) initSchedules() {
	lo, hi := time.Unix(0, c.lo), time.Unix(0, c.hi)
	cache := make(map[*site.Schedule][]span)
	reasons := make(map[Reason][]Reason)
	reasonOf := func(r Reason) []Reason {
		if l, ok := reasons[r]; ok {
			return l
		}
		l := []Reason{r}
		reasons[r] = l
		return l
	}
	expand := func(s *site.Schedule) []span {
		if s == nil {
			return nil
		}
		if l, ok := cache[s]; ok {
			return l
		}
		var l []span
		for _, p := range calendar.Expand(s, c.loc, lo, hi) {
			r := Reason{Kind: ReasonSchedule, Ref: p.Schedule}
			if p.Calendar != "" {
				r = Reason{Kind: ReasonException, Ref: p.Calendar, Day: p.Day}
			}
			l = append(l, span{start: p.Start.UnixNano(), end: p.End.UnixNano(), reasons: reasonOf(r)})
		}
		cache[s] = l
		return l
	}
	for _, st := range c.spaces {
		switch scheds := st.space.Schedules; len(scheds) {
		case 0:
		case 1:
			// Spaces on one schedule share its periods.
			st.schedule = expand(scheds[0])
		default:
			for _, s := range scheds {
				st.schedule = append(st.schedule, expand(s)...)
			}
			sortSpans(st.schedule)
		}
	}
}

// SetBookings replaces all bookings of the compiler with all and compiles
// every space and point. Bookings of resources outside the site, inactive
// bookings, bookings that end before they start and bookings far outside
// the range are ignored. When two bookings share a key, the later wins.
func (c *Compiler) SetBookings(all []booking.Booking) {
	c.initial.Do(func() {})
	c.resetBookings(0)
	for i := range all {
		c.upsert(&all[i])
	}
	c.rebuildAll()
}

// Apply changes some bookings and recompiles only what they touch: the
// spaces of the old and new resources of each booking, their parents and
// the points bound to any of them. Removals are applied before upserts;
// removing an unknown key does nothing.
func (c *Compiler) Apply(upserts []booking.Booking, removals []BookingKey) {
	c.ensureBuilt()
	for _, k := range removals {
		c.remove(k)
	}
	for i := range upserts {
		c.upsert(&upserts[i])
	}
	c.rebuildDirty()
}

// has reports whether the compiler holds an active booking with key k.
func (c *Compiler) has(k BookingKey) bool {
	_, ok := c.entries[k]
	return ok
}

// resetBookings drops all bookings; n is how many are about to come.
func (c *Compiler) resetBookings(n int) {
	if n > len(c.entries) {
		c.entries = make(map[BookingKey]*entry, n)
	} else {
		clear(c.entries)
	}
	for _, st := range c.spaces {
		clear(st.bookings)
		st.bookings = st.bookings[:0]
	}
}

// reserve sizes the booking lists of the spaces for the bookings
// all[i] for i in idx, so a full compile does not grow them step by step.
func (c *Compiler) reserve(all []booking.Booking, idx []int32) {
	count := make(map[*spaceState]int, len(c.spaces))
	for _, i := range idx {
		for _, st := range c.byResource[all[i].Resource] {
			count[st]++
		}
	}
	for _, st := range c.spaces {
		if n := count[st]; n > cap(st.bookings) {
			st.bookings = make([]span, 0, n)
		}
	}
}

// relevant reports whether b can occupy a space of this compiler.
func (c *Compiler) relevant(b *booking.Booking) bool {
	if !b.Status.Active() || !b.End.After(b.Start) {
		return false
	}
	if len(c.byResource[b.Resource]) == 0 {
		return false
	}
	return b.End.UnixNano() > c.lo && b.Start.UnixNano() < c.hi
}

func (c *Compiler) upsert(b *booking.Booking) {
	k := KeyOf(*b)
	relevant := c.relevant(b)
	if old, ok := c.entries[k]; ok && relevant && old.resource == b.Resource &&
		old.start == b.Start.UnixNano() && old.end == b.End.UnixNano() && old.reason[0].Organiser == b.Organiser {
		// A feed poll repeats most bookings unchanged: rebuild nothing.
		return
	}
	c.remove(k)
	if !relevant {
		return
	}
	e := &entry{resource: b.Resource, start: b.Start.UnixNano(), end: b.End.UnixNano()}
	// The Ref is b.String(), joined without fmt: a season has 600k of
	// them.
	e.reason[0] = Reason{Kind: ReasonBooking, Ref: b.Source + ":" + b.ID, Organiser: b.Organiser}
	c.entries[k] = e
	for _, st := range c.byResource[b.Resource] {
		// Appended unsorted: a full compile sorts each space once, an
		// Apply sorts a nearly sorted list.
		st.bookings = append(st.bookings, span{start: e.start, end: e.end, reasons: e.reason[:]})
		st.unsorted = true
		st.markDirty(e.start, e.end)
	}
}

func (c *Compiler) remove(k BookingKey) {
	e, ok := c.entries[k]
	if !ok {
		return
	}
	delete(c.entries, k)
	for _, st := range c.byResource[e.resource] {
		// The span of e is the one that shares its reasons.
		if i := slices.IndexFunc(st.bookings, func(s span) bool { return &s.reasons[0] == &e.reason[0] }); i >= 0 {
			st.bookings = slices.Delete(st.bookings, i, i+1)
			st.markDirty(e.start, e.end)
		}
	}
}

// Unbounded ends of a dirty range: a full build.
const (
	minTime = math.MinInt64
	maxTime = math.MaxInt64
)

func (c *Compiler) rebuildAll() {
	for _, st := range c.spaces {
		st.markDirty(minTime, maxTime)
	}
	c.rebuildDirty()
}

// rebuildDirty builds the dirty spaces, children first, passing the range
// of windows that changed in a child on to its parent, and then the
// points bound to a space whose windows changed.
func (c *Compiler) rebuildDirty() {
	var points []*pointState
	for _, st := range c.spaces {
		if !st.dirty {
			continue
		}
		lo, hi := c.buildSpace(st)
		if lo > hi {
			continue
		}
		if st.parent != nil {
			st.parent.markDirty(lo, hi)
		}
		for _, ps := range st.points {
			if !ps.dirty {
				ps.dirty = true
				points = append(points, ps)
			}
		}
	}
	for _, ps := range points {
		c.buildPoint(ps)
		ps.dirty = false
	}
}

// buildSpace updates the windows of a space from its base schedules, its
// bookings and its children's windows, for a change of these inputs
// within the dirty range, and the widened windows of its points with
// them. It returns the range of windows that changed, empty (lo > hi)
// when none did.
func (c *Compiler) buildSpace(st *spaceState) (lo, hi int64) {
	a, b := st.dirtyLo, st.dirtyHi
	st.dirty = false
	if st.unsorted {
		sortSpans(st.bookings)
		st.unsorted = false
	}
	runs := append(c.runs[:0], run{spans: st.schedule}, run{spans: st.bookings})
	for _, ch := range st.children {
		runs = append(runs, run{spans: ch.windows, as: ch.asChild})
	}
	c.runs = runs
	prof := st.space.Profile
	st.windows, lo, hi = c.m.splice(st.windows, runs, a, b, int64(prof.MergeGap), int64(prof.MinWindow))
	if lo > hi {
		return lo, hi
	}
	for _, w := range st.widened {
		runs = append(c.runs[:0], run{spans: st.windows, lead: w.lead, lag: w.lag})
		w.windows, _, _ = c.m.splice(w.windows, runs, subSat(lo, w.lead), addSat(hi, w.lag), w.gap, 0)
	}
	return lo, hi
}

// buildPoint computes the windows of a point: each binding widens its
// space's windows by its lead and lag (absolute durations: pre-heating is
// physics, not wall-clock) and merges them with the space's merge gap;
// the point is occupied when any of its bindings is.
func (c *Compiler) buildPoint(ps *pointState) {
	if len(ps.binds) == 1 {
		ps.windows = c.widen(ps.binds[0])
		return
	}
	runs := make([]run, len(ps.binds))
	for i, b := range ps.binds {
		runs[i] = run{spans: c.widen(b)}
	}
	ps.windows, _, _ = c.m.splice(nil, runs, minTime, maxTime, 0, 0)
}

// widen returns the windows of b's space widened by b's lead and lag and
// merged with b's gap, shared with the other bindings of the space with
// the same lead, lag and gap.
func (c *Compiler) widen(b bind) []span {
	st := b.space
	if b.lead == 0 && b.lag == 0 && b.gap == int64(st.space.Profile.MergeGap) {
		// The space's windows are already merged with this gap.
		return st.windows
	}
	for _, w := range st.widened {
		if w.lead == b.lead && w.lag == b.lag && w.gap == b.gap {
			return w.windows
		}
	}
	w := &widened{lead: b.lead, lag: b.lag, gap: b.gap}
	runs := []run{{spans: st.windows, lead: b.lead, lag: b.lag}}
	w.windows, _, _ = c.m.splice(nil, runs, minTime, maxTime, b.gap, 0)
	st.widened = append(st.widened, w)
	return w.windows
}

// subSat and addSat keep the unbounded ends of a range unbounded.
func subSat(t, d int64) int64 {
	if t == minTime || t == maxTime {
		return t
	}
	return t - d
}

func addSat(t, d int64) int64 {
	if t == minTime || t == maxTime {
		return t
	}
	return t + d
}
