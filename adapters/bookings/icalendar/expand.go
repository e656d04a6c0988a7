package icalendar

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/teambition/rrule-go"
)

// series is everything one UID contributes: its master (nil when a feed
// holds only overrides), the overrides, and instances cancelled by
// METHOD:CANCEL objects that no override stands for.
type series struct {
	uid string
	// rank orders series by UID (then stream order), so sorting compares
	// integers instead of strings.
	rank      int32
	master    *event
	overrides []*event
	cancelled []dateTime
}

// maxSeriesSteps bounds the instances one series may generate up to the end
// of a window. FREQ=MINUTELY from 1990 would otherwise take minutes; no
// booking repeats that often.
const maxSeriesSteps = 1 << 20

// noRID marks a record of a non-recurring event.
const noRID = math.MinInt64

// occSource is what the occurrences of one event (or one THISANDFUTURE
// range of it) share.
type occSource struct {
	id     int32 // 1 + index in expander.srcs, 0 until first emitted
	ev     *event
	status string
	loc    *time.Location // zone of Start and End
	ridLoc *time.Location
	allDay bool
}

// rec is an occurrence before it becomes an Occurrence: small and free of
// pointers, so sorting 660k of them moves little memory and the garbage
// collector need not scan them.
type rec struct {
	start, end, rid int64
	src             int32 // index in expander.srcs
	rank            int32
}

type expander struct {
	c        *Calendar
	floating *time.Location
	// window bounds in whole seconds: occurrences start before toC, end
	// after fromF, and zero-length ones start at or after fromC.
	fromF, fromC, toC int64
	// recs fills fixed-size chunks: a single slice grown by append
	// would copy a 660k-occurrence season several times over.
	chunks    [][]rec
	srcs      []*occSource
	resolvers map[*time.Location]*wallResolver
	rank      int32 // of the series being expanded
}

const recChunk = 1 << 14

// all gathers the chunks into one slice of the exact size.
func (x *expander) all() []rec {
	n := 0
	for _, c := range x.chunks {
		n += len(c)
	}
	recs := make([]rec, 0, n)
	for _, c := range x.chunks {
		recs = append(recs, c...)
	}
	return recs
}

// Expand returns every occurrence overlapping [from, to) (an occurrence
// overlaps if Start < to && End > from; a zero-length event overlaps if
// from <= Start < to), sorted by Start, then UID, then RecurrenceID.
// Cancelled occurrences are returned with Status "CANCELLED" (callers
// filter). floating is the zone for floating times and all-day dates.
//
// The error is non-nil only for arguments that make the whole call
// meaningless; an event that cannot be expanded is skipped and reported in
// Warnings.
func (c *Calendar) Expand(from, to time.Time, floating *time.Location) ([]Occurrence, error) {
	if floating == nil {
		return nil, errors.New("expand calendar: floating zone is nil")
	}
	if to.Before(from) {
		return nil, fmt.Errorf("expand calendar: window end %s is before its start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	x := &expander{
		c:         c,
		floating:  floating,
		fromF:     from.Unix(),
		fromC:     ceilSeconds(from),
		toC:       ceilSeconds(to),
		resolvers: map[*time.Location]*wallResolver{},
	}
	for _, s := range c.series {
		x.rank = s.rank
		x.series(s)
	}
	recs := x.all()
	x.chunks = nil
	slices.SortFunc(recs, func(a, b rec) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		// Series are ranked by UID; events without one by stream order.
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(a.rid, b.rid); c != 0 {
			return c
		}
		return cmp.Compare(x.srcs[a.src].ev.order, x.srcs[b.src].ev.order)
	})
	out := make([]Occurrence, len(recs))
	for i, r := range recs {
		o := &out[i]
		src := x.srcs[r.src]
		ev := src.ev
		o.UID = ev.uid
		if r.rid != noRID {
			o.RecurrenceID = time.Unix(r.rid, 0).In(src.ridLoc)
		}
		o.Sequence = ev.seq
		o.Summary = ev.summary
		o.Location = ev.location
		o.Start = time.Unix(r.start, 0).In(src.loc)
		o.End = time.Unix(r.end, 0).In(src.loc)
		o.AllDay = src.allDay
		o.Status = src.status
		o.Organizer = ev.organizer
		o.Props = ev.props
	}
	return out, nil
}

func ceilSeconds(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

func (x *expander) resolver(loc *time.Location) *wallResolver {
	r := x.resolvers[loc]
	if r == nil {
		r = newWallResolver(loc)
		x.resolvers[loc] = r
	}
	return r
}

// instant converts a value with the expander's floating zone.
func (x *expander) instant(d dateTime) int64 {
	if d.kind == kindUTC {
		return d.wall
	}
	return x.resolver(d.zone(x.floating)).instant(d.wall)
}

// wallIn is the wall clock of an instant in loc.
func wallIn(loc *time.Location, u int64) int64 {
	if loc == time.UTC {
		return u
	}
	_, off := time.Unix(u, 0).In(loc).Zone()
	return u + int64(off)
}

func (x *expander) emit(start, end, rid int64, src *occSource) {
	if end < start {
		end = start
	}
	if end == start {
		if start < x.fromC || start >= x.toC {
			return
		}
	} else if start >= x.toC || end <= x.fromF {
		return
	}
	last := len(x.chunks) - 1
	if last < 0 || len(x.chunks[last]) == cap(x.chunks[last]) {
		x.chunks = append(x.chunks, make([]rec, 0, recChunk))
		last++
	}
	if src.id == 0 {
		x.srcs = append(x.srcs, src)
		src.id = int32(len(x.srcs))
	}
	x.chunks[last] = append(x.chunks[last], rec{start: start, end: end, rid: rid, src: src.id - 1, rank: x.rank})
}

// endRule computes an instance's end from its start: the wall clock moves
// by wallAdd (nominal days, or the wall-clock length of a floating event),
// then exact seconds are added.
type endRule struct {
	wallAdd int64
	exact   int64
}

func (r endRule) end(res *wallResolver, wall, instant int64) int64 {
	if r.wallAdd != 0 {
		instant = res.instant(wall + r.wallAdd)
	}
	return instant + r.exact
}

// endRuleOf follows RFC 5545: DTEND gives the exact duration (3.8.5.3, the
// same for every instance), DURATION a nominal one whose days follow the
// wall clock (3.3.6), and without either a date lasts one day and a
// date-time no time at all (3.6.1).
func (x *expander) endRuleOf(e *event) (endRule, error) {
	switch {
	case e.start.isDate():
		days := int64(1)
		if e.hasEnd {
			days = wallDay(e.end.wall) - wallDay(e.start.wall)
		} else if e.hasDur {
			// A DATE DTSTART takes a DURATION in days or weeks
			// (RFC 5545 3.8.2.5); a time part has no meaning there.
			days = e.dur.days
		}
		return endRule{wallAdd: days * secondsPerDay}, nil
	case e.hasEnd && e.start.kind == kindFloating && e.end.kind == kindFloating:
		return endRule{wallAdd: e.end.wall - e.start.wall}, nil
	case e.hasEnd:
		d := x.instant(e.end) - x.instant(e.start)
		if d < 0 {
			return endRule{}, errors.New("DTEND: before DTSTART")
		}
		return endRule{exact: d}, nil
	case e.hasDur:
		return endRule{wallAdd: e.dur.days * secondsPerDay, exact: e.dur.secs}, nil
	}
	return endRule{}, nil
}

func (x *expander) skip(e *event, err error) {
	x.c.warn(Problem{UID: e.uid, Line: e.line, Message: err.Error() + "; event skipped"})
}

// matchKey is how an override or cancellation finds its instance: by day
// when the series or the RECURRENCE-ID is all-day, else by instant.
func (x *expander) matchKey(d dateTime, allDay bool) ridKey {
	if d.isDate() || allDay {
		return ridKey{3, wallDay(d.wall)}
	}
	return ridKey{1, x.instant(d)}
}

// single emits an override (or an event of a series whose master is
// missing) as it stands.
func (x *expander) single(e *event) {
	rule, err := x.endRuleOf(e)
	if err != nil {
		x.skip(e, err)
		return
	}
	loc := e.start.zone(x.floating)
	res := x.resolver(loc)
	start := x.instant(e.start)
	end := rule.end(res, e.start.wall, start)
	src := &occSource{ev: e, status: e.status, loc: loc, ridLoc: e.rid.zone(x.floating), allDay: e.start.isDate()}
	rid := int64(noRID)
	if e.hasRID {
		rid = x.instant(e.rid)
	}
	x.emit(start, end, rid, src)
}

// rangeOverride is a RANGE=THISANDFUTURE override as it applies to later
// instances: shifted by the wall-clock difference between its DTSTART and
// its RECURRENCE-ID, lasting as long as it does (RFC 5545 3.8.4.4).
type rangeOverride struct {
	key       ridKey // instant, or day for all-day series and DATE values
	shift     int64  // wall clock seconds
	rule      endRule
	src       *occSource
	cancelled *occSource
}

func (x *expander) series(s *series) {
	for _, o := range s.overrides {
		x.single(o)
	}
	m := s.master
	if m == nil {
		return
	}
	rule, err := x.endRuleOf(m)
	if err != nil {
		x.skip(m, err)
		return
	}
	allDay := m.start.isDate()
	loc := m.start.zone(x.floating)
	res := x.resolver(loc)
	src := &occSource{ev: m, status: m.status, loc: loc, ridLoc: loc, allDay: allDay}
	var cancelledSrc *occSource
	cancelledOf := func(src *occSource) *occSource {
		c := *src
		c.id = 0
		c.status = statusCancelled
		return &c
	}

	// Overrides replace their instance; cancellations mark it.
	var exact, cancelled []ridKey
	var ranges []rangeOverride
	minShift := int64(0)
	for _, o := range s.overrides {
		k := x.matchKey(o.rid, allDay)
		exact = append(exact, k)
		if !o.thisAndFuture {
			continue
		}
		oRule, err := x.endRuleOf(o)
		if err != nil {
			continue // single() reported it
		}
		ridU, startU := x.instant(o.rid), x.instant(o.start)
		shift := wallIn(loc, startU) - wallIn(loc, ridU)
		if allDay {
			shift = (wallDay(o.start.wall) - wallDay(o.rid.wall)) * secondsPerDay
		}
		osrc := &occSource{ev: o, status: o.status, loc: loc, ridLoc: loc, allDay: allDay}
		ranges = append(ranges, rangeOverride{key: k, shift: shift, rule: oRule, src: osrc, cancelled: cancelledOf(osrc)})
		minShift = min(minShift, shift)
	}
	for _, d := range s.cancelled {
		cancelled = append(cancelled, x.matchKey(d, allDay))
	}
	sortKeys(exact)
	sortKeys(cancelled)
	sort.SliceStable(ranges, func(i, j int) bool { return ranges[i].key.v < ranges[j].key.v })

	recurring := m.recurring()
	it := x.instances(m, res, allDay)
	// Past this instant no instance, however shifted, reaches the window.
	// Two days cover any DST or zone change between wall clock and instant.
	limit := x.toC - minShift + 2*secondsPerDay
	ex := newExclusions(m, x, allDay)
	for steps := 0; ; steps++ {
		if steps == maxSeriesSteps {
			x.c.warn(Problem{UID: m.uid, Line: m.line, Message: fmt.Sprintf("more than %d instances before the window ends; the rest are left out", maxSeriesSteps)})
			return
		}
		inst, ok := it.next(limit)
		if !ok {
			return
		}
		if ex.excluded(inst.wall, inst.instant) {
			continue
		}
		day := ridKey{3, wallDay(inst.wall)}
		at := ridKey{1, inst.instant}
		key := at
		if allDay {
			key = day
		}
		if hasKey(exact, key) || (!allDay && hasKey(exact, day)) {
			continue
		}
		isCancelled := hasKey(cancelled, key) || (!allDay && hasKey(cancelled, day))
		rid := int64(noRID)
		if recurring {
			rid = inst.instant
		}
		// The THISANDFUTURE override with the latest RECURRENCE-ID before
		// this instance reshapes it.
		var rng *rangeOverride
		for i := range ranges {
			switch rk := ranges[i].key; {
			case rk.class == 1 && !allDay && rk.v < inst.instant,
				rk.class == 3 && rk.v < day.v:
				rng = &ranges[i]
			}
		}
		switch {
		case rng != nil:
			wall := inst.wall + rng.shift
			start := res.instant(wall)
			use := rng.src
			if isCancelled {
				use = rng.cancelled
			}
			x.emit(start, rng.rule.end(res, wall, start), rid, use)
		default:
			end := rule.end(res, inst.wall, inst.instant)
			if inst.period != nil {
				end = x.periodEnd(inst.period, res, inst.wall, inst.instant)
			}
			use := src
			if isCancelled {
				if cancelledSrc == nil {
					cancelledSrc = cancelledOf(src)
				}
				use = cancelledSrc
			}
			x.emit(inst.instant, end, rid, use)
		}
	}
}

func sortKeys(keys []ridKey) {
	slices.SortFunc(keys, func(a, b ridKey) int {
		if a.class != b.class {
			return cmp.Compare(a.class, b.class)
		}
		return cmp.Compare(a.v, b.v)
	})
}

func hasKey(keys []ridKey, k ridKey) bool {
	if len(keys) == 0 {
		return false
	}
	_, found := slices.BinarySearchFunc(keys, k, func(a, b ridKey) int {
		if a.class != b.class {
			return cmp.Compare(a.class, b.class)
		}
		return cmp.Compare(a.v, b.v)
	})
	return found
}

// periodEnd is the end of an RDATE;VALUE=PERIOD instance (RFC 5545 3.3.9).
func (x *expander) periodEnd(p *period, res *wallResolver, wall, instant int64) int64 {
	if p.hasEnd {
		return x.instant(p.end)
	}
	return endRule{wallAdd: p.dur.days * secondsPerDay, exact: p.dur.secs}.end(res, wall, instant)
}

// exclusions holds a series' EXDATEs: instants for a timed series, days
// for an all-day one. RFC 5545 3.8.5.3 excludes the instances whose start
// equals an EXDATE; a DATE on a timed series therefore only matches an
// instance at midnight (Parse warns about it), as the reference
// implementation reads it too.
type exclusions struct {
	instants []int64
	days     []int64
}

func newExclusions(m *event, x *expander, allDay bool) exclusions {
	var ex exclusions
	res := x.resolver(m.start.zone(x.floating))
	for _, d := range m.exdates {
		switch {
		case allDay:
			ex.days = append(ex.days, wallDay(d.wall))
		case d.isDate():
			ex.instants = append(ex.instants, res.instant(d.wall))
		default:
			ex.instants = append(ex.instants, x.instant(d))
		}
	}
	slices.Sort(ex.instants)
	slices.Sort(ex.days)
	return ex
}

func (ex exclusions) excluded(wall, instant int64) bool {
	if len(ex.instants) > 0 {
		if _, ok := slices.BinarySearch(ex.instants, instant); ok {
			return true
		}
	}
	if len(ex.days) > 0 {
		if _, ok := slices.BinarySearch(ex.days, wallDay(wall)); ok {
			return true
		}
	}
	return false
}

// instance is one member of a recurrence set before overrides.
type instance struct {
	wall, instant int64
	period        *period // set for RDATE;VALUE=PERIOD instances
}

// instanceIter merges DTSTART, every RRULE and the RDATEs into one
// ascending, duplicate-free sequence (RFC 5545 3.8.5.3: the recurrence set
// is a set). Several RRULEs are allowed (RFC 2445, deprecated but written
// by some clients), which rrule-go's Set cannot hold, so the merge is ours.
type instanceIter struct {
	rules  []*ruleIter
	first  instance
	rdates []instance
	// pending DTSTART, then the next RDATE index
	startDone bool
	rdateAt   int
	last      int64
	started   bool
}

type ruleIter struct {
	next     rrule.Next
	res      *wallResolver
	until    dateTime
	hasUntil bool
	head     instance
	ok       bool
	done     bool
}

func (r *ruleIter) peek(limit int64) (instance, bool) {
	if r.ok {
		return r.head, true
	}
	if r.done {
		return instance{}, false
	}
	t, ok := r.next()
	if !ok {
		r.done = true
		return instance{}, false
	}
	wall := t.Unix()
	inst := instance{wall: wall, instant: r.res.instant(wall)}
	if (r.hasUntil && untilExceeded(r.until, wall, inst.instant)) || inst.instant > limit {
		r.done = true
		return instance{}, false
	}
	r.head, r.ok = inst, true
	return inst, true
}

func (x *expander) instances(m *event, res *wallResolver, allDay bool) *instanceIter {
	it := &instanceIter{first: instance{wall: m.start.wall, instant: res.instant(m.start.wall)}}
	for i := range m.rules {
		r := &m.rules[i]
		ri := &ruleIter{next: r.iterator(), res: res, until: r.until, hasUntil: r.hasUntil}
		if allDay && r.hasUntil && !r.until.isDate() {
			// An all-day series ends on UNTIL's date: the time of day
			// only says when that day ends somewhere else.
			ri.until = dateTime{wall: wallDay(r.until.wall) * secondsPerDay, kind: kindDate}
		}
		it.rules = append(it.rules, ri)
	}
	loc := res.loc
	for i := range m.rdates {
		p := &m.rdates[i]
		var inst instance
		switch {
		case allDay:
			// An all-day series recurs on days; a timed RDATE names one.
			day := wallDay(p.start.wall)
			inst.wall = day * secondsPerDay
			inst.instant = res.instant(inst.wall)
		case p.start.kind == kindDate:
			inst.wall = p.start.wall
			inst.instant = res.instant(inst.wall)
		default:
			inst.instant = x.instant(p.start)
			inst.wall = wallIn(loc, inst.instant)
		}
		if p.hasEnd || p.dur != (duration{}) {
			inst.period = p
		}
		it.rdates = append(it.rdates, inst)
	}
	sort.SliceStable(it.rdates, func(i, j int) bool { return it.rdates[i].instant < it.rdates[j].instant })
	return it
}

// next returns the next instance at or before limit.
func (it *instanceIter) next(limit int64) (instance, bool) {
	for {
		best, found, from := instance{}, false, -1
		if !it.startDone {
			best, found, from = it.first, true, -2
		}
		for i, r := range it.rules {
			if h, ok := r.peek(limit); ok && (!found || h.instant < best.instant) {
				best, found, from = h, true, i
			}
		}
		if it.rdateAt < len(it.rdates) {
			if h := it.rdates[it.rdateAt]; !found || h.instant <= best.instant {
				// An RDATE wins a tie: a PERIOD carries its own end.
				best, found, from = h, true, -1
			}
		}
		if !found || best.instant > limit {
			return instance{}, false
		}
		switch {
		case from == -2:
			it.startDone = true
		case from == -1:
			it.rdateAt++
		default:
			it.rules[from].ok = false
		}
		if it.started && best.instant == it.last {
			continue // the same instant from another source
		}
		it.started, it.last = true, best.instant
		return best, true
	}
}
