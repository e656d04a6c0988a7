package schedule

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Window is a period in which a space is occupied.
type Window struct {
	// Start and End bound the window, [Start, End), in the site's location.
	Start, End time.Time
	// Reasons are what occupies the space: bookings, schedules, exception
	// days and child spaces, sorted by kind and reference, without
	// duplicates. The slice is shared; do not modify it.
	Reasons []Reason
}

// Change is a value a point takes from an instant on.
type Change struct {
	// At is when the value takes effect, in the site's location.
	At time.Time
	// Site is the site of the point.
	Site *site.Site
	// Point is the point written.
	Point *site.Point
	// Spaces are the spaces whose bindings drive the point, in site
	// order. The slice is shared; do not modify it.
	Spaces []*site.Space
	// Value is the value to write.
	Value site.Value
	// Occupied reports whether Value is the occupied value of the
	// bindings rather than the vacant one.
	Occupied bool
	// Initial marks the value in force at the start of the range rather
	// than a transition.
	Initial bool
	// Reasons are the causes of the point's window: for a switch to
	// occupied, the window that starts; for a switch to vacant, the
	// window that just ended; none for an initial vacant value. The slice
	// is shared; do not modify it.
	Reasons []Reason
}

// String describes the change for people, e.g.
// "2026-11-26 18:00 CET valby gym.ahu.mode = comfort (booking leisure:abc (org valby-volley))".
func (ch Change) String() string {
	var b strings.Builder
	b.WriteString(ch.At.Format("2006-01-02 15:04 MST"))
	if ch.Site != nil {
		b.WriteString(" " + ch.Site.ID)
	}
	b.WriteString(" " + ch.Point.ID + " = " + ch.Point.Format(ch.Value))
	if ch.Initial {
		b.WriteString(" initially")
	}
	if !ch.Occupied {
		b.WriteString(" vacant")
	}
	if len(ch.Reasons) > 0 {
		b.WriteString(" (")
		for i, r := range ch.Reasons {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(r.String())
		}
		b.WriteString(")")
	}
	return b.String()
}

// Site returns the site the compiler compiles.
func (c *Compiler) Site() *site.Site { return c.site }

// Range returns the time range of the compiler, [from, to).
func (c *Compiler) Range() (from, to time.Time) { return c.from, c.to }

// Windows returns the occupancy windows of a space that overlap the range,
// sorted by start, or nil for an unknown space. Windows are not clipped
// to the range.
func (c *Compiler) Windows(spaceID string) []Window {
	c.ensureBuilt()
	st := c.spaceByID[spaceID]
	if st == nil {
		return nil
	}
	var out []Window
	for _, w := range st.windows {
		if w.end > c.fromNs && w.start < c.toNs {
			out = append(out, Window{Start: c.instant(w.start), End: c.instant(w.end), Reasons: w.reasons})
		}
	}
	return out
}

// Timeline returns the changes of a point in the range: its value at the
// start of the range (marked Initial) and then one change per transition
// between occupied and vacant, in time order. It returns nil for a point
// no space binds.
func (c *Compiler) Timeline(pointID string) []Change {
	c.ensureBuilt()
	ps := c.pointByID[pointID]
	if ps == nil {
		return nil
	}
	return c.timeline(ps, nil)
}

// Changes returns the changes of every point in the range, sorted by time,
// then site, then point id.
func (c *Compiler) Changes() []Change {
	c.ensureBuilt()
	var out []Change
	for _, ps := range c.points {
		out = c.timeline(ps, out)
	}
	SortChanges(out)
	return out
}

// ValueAt returns the change in force for a point at instant t: the last
// change at or before t. It reports false for a point no space binds or
// an instant outside the range. A control engine that converges on the
// value in force (level-triggered) calls this rather than replaying
// changes.
func (c *Compiler) ValueAt(pointID string, t time.Time) (Change, bool) {
	ch, _, ok := c.valueSpan(pointID, t)
	return ch, ok
}

// ValueSpan is ValueAt that also returns until when the change holds:
// the point has the same value, for the same reasons, at every instant
// from t up to (not including) the instant returned, which is at most
// the end of the range. A control engine that works out values ahead of
// using them checks them against it.
func (c *Compiler) ValueSpan(pointID string, t time.Time) (Change, time.Time, bool) {
	ch, until, ok := c.valueSpan(pointID, t)
	if !ok {
		return Change{}, time.Time{}, false
	}
	return ch, c.instant(until), true
}

// valueSpan is ValueSpan with the end of the span in Unix nanoseconds.
func (c *Compiler) valueSpan(pointID string, t time.Time) (Change, int64, bool) {
	c.ensureBuilt()
	ps := c.pointByID[pointID]
	ns := t.UnixNano()
	if ps == nil || ns < c.fromNs || ns >= c.toNs {
		return Change{}, 0, false
	}
	ws := ps.windows
	// The last window starting at or before t.
	i := sort.Search(len(ws), func(i int) bool { return ws[i].start > ns }) - 1
	// The next window starts a change, and so may the range's end.
	until := c.toNs
	if i+1 < len(ws) {
		until = min(until, ws[i+1].start)
	}
	if i < 0 {
		return c.change(ps, c.fromNs, false, true, nil), until, true
	}
	w := ws[i]
	if ns < w.end {
		return c.change(ps, max(w.start, c.fromNs), true, w.start <= c.fromNs, w.reasons), min(until, w.end), true
	}
	if w.end <= c.fromNs {
		return c.change(ps, c.fromNs, false, true, nil), until, true
	}
	return c.change(ps, w.end, false, false, w.reasons), until, true
}

// NextChange returns when a point next changes after instant t: the At
// of the first change of its Timeline after t that is not its initial
// value. It reports false for a point no space binds and when the point
// does not change again within the range. It builds no timeline, so a
// control engine can keep one next transition per point instead of
// every point's whole timeline.
func (c *Compiler) NextChange(pointID string, t time.Time) (time.Time, bool) {
	c.ensureBuilt()
	ps := c.pointByID[pointID]
	if ps == nil {
		return time.Time{}, false
	}
	// The changes at the start of the range are initial values.
	ns := max(t.UnixNano(), c.fromNs)
	ws := ps.windows
	// The first window that ends after ns: it either starts after ns or
	// is in force at ns and ends next.
	i := sort.Search(len(ws), func(i int) bool { return ws[i].end > ns })
	if i == len(ws) {
		return time.Time{}, false
	}
	next := ws[i].end
	if ws[i].start > ns {
		next = ws[i].start
	}
	if next >= c.toNs {
		return time.Time{}, false
	}
	return c.instant(next), true
}

// SortChanges sorts changes by time, then site id, then point id: the
// order of Changes, for callers that join the changes of several sites.
func SortChanges(cs []Change) {
	slices.SortFunc(cs, func(a, b Change) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if c := cmp.Compare(siteID(a.Site), siteID(b.Site)); c != 0 {
			return c
		}
		return cmp.Compare(a.Point.ID, b.Point.ID)
	})
}

func siteID(s *site.Site) string {
	if s == nil {
		return ""
	}
	return s.ID
}

// Stats counts what a compiler holds.
type Stats struct {
	Spaces   int
	Points   int
	Bookings int
	// Windows counts the space windows that overlap the range.
	Windows int
	// Changes counts the point changes in the range, initial ones
	// included.
	Changes int
}

// Add returns the sum of two counts.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Spaces:   s.Spaces + o.Spaces,
		Points:   s.Points + o.Points,
		Bookings: s.Bookings + o.Bookings,
		Windows:  s.Windows + o.Windows,
		Changes:  s.Changes + o.Changes,
	}
}

// Stats counts the spaces, points, bookings, windows and changes of the
// compiler without building the changes.
func (c *Compiler) Stats() Stats {
	c.ensureBuilt()
	s := Stats{Spaces: len(c.spaces), Points: len(c.points), Bookings: len(c.entries)}
	for _, st := range c.spaces {
		for _, w := range st.windows {
			if w.end > c.fromNs && w.start < c.toNs {
				s.Windows++
			}
		}
	}
	for _, ps := range c.points {
		s.Changes++
		for _, w := range ps.windows {
			if w.start > c.fromNs && w.start < c.toNs {
				s.Changes++
			}
			if w.end > c.fromNs && w.end < c.toNs {
				s.Changes++
			}
		}
	}
	return s
}

// timeline appends the changes of ps in the range to out.
func (c *Compiler) timeline(ps *pointState, out []Change) []Change {
	ws := ps.windows
	// The first window that ends after the start of the range.
	i := sort.Search(len(ws), func(i int) bool { return ws[i].end > c.fromNs })
	if i < len(ws) && ws[i].start <= c.fromNs {
		out = append(out, c.change(ps, c.fromNs, true, true, ws[i].reasons))
	} else {
		out = append(out, c.change(ps, c.fromNs, false, true, nil))
	}
	for ; i < len(ws) && ws[i].start < c.toNs; i++ {
		w := ws[i]
		if w.start > c.fromNs {
			out = append(out, c.change(ps, w.start, true, false, w.reasons))
		}
		if w.end < c.toNs {
			out = append(out, c.change(ps, w.end, false, false, w.reasons))
		}
	}
	return out
}

func (c *Compiler) change(ps *pointState, at int64, occupied, initial bool, reasons []Reason) Change {
	v := ps.vacant
	if occupied {
		v = ps.occupied
	}
	return Change{
		At:       c.instant(at),
		Site:     c.site,
		Point:    ps.point,
		Spaces:   ps.spaces,
		Value:    v,
		Occupied: occupied,
		Initial:  initial,
		Reasons:  reasons,
	}
}

func (c *Compiler) instant(ns int64) time.Time { return time.Unix(0, ns).In(c.loc) }
