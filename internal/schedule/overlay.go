package schedule

import (
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Reason kinds of an Overlay: what the gateway saw in the building that
// changes the compiled plan.
const (
	// ReasonRelease is a release to the vacant value, e.g. a no-show or
	// lights waiting for a card.
	ReasonRelease ReasonKind = "release"
	// ReasonOutput is a point driven by an output schedule rather than
	// a space binding, e.g. an access group's door schedule.
	ReasonOutput ReasonKind = "output"
)

// Release holds a bound point at its vacant value for [From, To), whatever
// the compiled plan says, e.g. a booking found to be a no-show, lights
// waiting for a card, or a warning blink.
type Release struct {
	Point    string
	From, To time.Time
	// Why says it for people, e.g. "no-show of booking leisure:42 at 19:20".
	Why string
}

// OutputWindow sets an unbound writable point to On inside [From, To) and
// Off outside.
type OutputWindow struct {
	From, To time.Time
	Why      string
}

// Output is a point driven by windows instead of a space binding.
type Output struct {
	Point   *site.Point
	On, Off site.Value
	Windows []OutputWindow
}

// PlanSource is what an Overlay refines: a compiled site plan.
type PlanSource interface {
	ValueAt(pointID string, t time.Time) (Change, bool)
	Timeline(pointID string) []Change
	NextChange(pointID string, t time.Time) (time.Time, bool)
}

// Overlay is a compiled plan refined by what happens in the building:
// releases of bound points and output schedules of unbound ones. It is
// immutable; build a new one when the releases change, which costs
// nothing for the points they do not touch.
type Overlay struct {
	base     PlanSource
	site     *site.Site
	from, to time.Time
	vacant   map[string]site.Value
	releases map[string][]Release // by point, sorted by From
	outputs  map[string]*Output
}

// NewOverlay refines base (the plan of s over [from, to)) with releases
// and outputs. Releases of points no space binds and outputs of points a
// space binds are ignored: the config loader prevents both.
func NewOverlay(base PlanSource, s *site.Site, from, to time.Time, releases []Release, outputs []Output) *Overlay {
	o := &Overlay{base: base, site: s, from: from, to: to, vacant: map[string]site.Value{},
		releases: map[string][]Release{}, outputs: map[string]*Output{}}
	for _, sp := range s.Spaces {
		for _, b := range sp.Bindings {
			o.vacant[b.Point.ID] = b.Vacant
		}
	}
	for _, r := range releases {
		if _, ok := o.vacant[r.Point]; ok && r.To.After(r.From) {
			o.releases[r.Point] = append(o.releases[r.Point], r)
		}
	}
	for _, rs := range o.releases {
		slices.SortFunc(rs, func(a, b Release) int { return a.From.Compare(b.From) })
	}
	for i := range outputs {
		out := outputs[i]
		if _, bound := o.vacant[out.Point.ID]; bound {
			continue
		}
		out.Windows = slices.Clone(out.Windows)
		slices.SortFunc(out.Windows, func(a, b OutputWindow) int { return a.From.Compare(b.From) })
		o.outputs[out.Point.ID] = &out
	}
	return o
}

// Base returns the plan the overlay refines.
func (o *Overlay) Base() PlanSource { return o.base }

// ValueAt is the compiled value at t unless a release covers t, or the
// output's value for an output point.
func (o *Overlay) ValueAt(pointID string, t time.Time) (Change, bool) {
	if out := o.outputs[pointID]; out != nil {
		return o.outputAt(out, t)
	}
	ch, ok := o.base.ValueAt(pointID, t)
	if !ok || !ch.Occupied {
		return ch, ok
	}
	r, ok2 := o.releaseAt(pointID, t)
	if !ok2 {
		return ch, true
	}
	at := ch.At
	if r.From.After(at) {
		at = r.From
	}
	reasons := append(slices.Clone(ch.Reasons), Reason{Kind: ReasonRelease, Ref: r.Why})
	return Change{At: at.In(o.site.Location), Site: ch.Site, Point: ch.Point, Spaces: ch.Spaces,
		Value: o.vacant[pointID], Occupied: false, Initial: ch.Initial && !r.From.After(ch.At), Reasons: reasons}, true
}

// releaseAt returns the release in force for a point at t: the one that
// started last.
func (o *Overlay) releaseAt(pointID string, t time.Time) (Release, bool) {
	var found Release
	ok := false
	for _, r := range o.releases[pointID] {
		if r.From.After(t) {
			break
		}
		if t.Before(r.To) {
			found, ok = r, true
		}
	}
	return found, ok
}

func (o *Overlay) outputAt(out *Output, t time.Time) (Change, bool) {
	if t.Before(o.from) || !t.Before(o.to) {
		return Change{}, false
	}
	ch := Change{At: o.from.In(o.site.Location), Site: o.site, Point: out.Point, Value: out.Off, Initial: true}
	for _, w := range out.Windows {
		if w.From.After(t) {
			break
		}
		reason := []Reason{{Kind: ReasonOutput, Ref: w.Why}}
		if t.Before(w.To) {
			at, initial := w.From, false
			if !at.After(o.from) {
				at, initial = o.from, true
			}
			ch = Change{At: at.In(o.site.Location), Site: o.site, Point: out.Point, Value: out.On, Occupied: true, Initial: initial, Reasons: reason}
		} else if w.To.After(ch.At) {
			at, initial := w.To, false
			if !at.After(o.from) {
				at, initial = o.from, true
			}
			ch = Change{At: at.In(o.site.Location), Site: o.site, Point: out.Point, Value: out.Off, Initial: initial, Reasons: reason}
		}
	}
	return ch, true
}

// NextChange returns when a point next changes after t, as the first
// change of its Timeline after t that is not its initial value. Points
// without releases or an output ask the base plan, which builds no
// timeline.
func (o *Overlay) NextChange(pointID string, t time.Time) (time.Time, bool) {
	if o.outputs[pointID] == nil && len(o.releases[pointID]) == 0 {
		return o.base.NextChange(pointID, t)
	}
	for _, ch := range o.Timeline(pointID) {
		if !ch.Initial && ch.At.After(t) {
			return ch.At, true
		}
	}
	return time.Time{}, false
}

// Timeline returns the point's changes with the releases and outputs
// applied: the base changes and every release boundary, keeping only
// those that change the value.
func (o *Overlay) Timeline(pointID string) []Change {
	out := o.outputs[pointID]
	rs := o.releases[pointID]
	if out == nil && len(rs) == 0 {
		return o.base.Timeline(pointID)
	}
	var at []time.Time
	if out == nil {
		for _, ch := range o.base.Timeline(pointID) {
			at = append(at, ch.At)
		}
		for _, r := range rs {
			at = append(at, r.From, r.To)
		}
	} else {
		at = append(at, o.from)
		for _, w := range out.Windows {
			at = append(at, w.From, w.To)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var tl []Change
	for _, t := range at {
		if t.Before(o.from) {
			t = o.from
		}
		if !t.Before(o.to) {
			break
		}
		ch, ok := o.ValueAt(pointID, t)
		if !ok {
			continue
		}
		if n := len(tl); n > 0 {
			last := tl[n-1]
			if last.Occupied == ch.Occupied && last.Value.Equal(ch.Value) {
				continue
			}
			ch.Initial = false
			ch.At = t.In(o.site.Location)
		}
		tl = append(tl, ch)
	}
	return tl
}
