package occupancy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

// gate is what card-enabled lights do in one booking window.
type gate struct {
	w Window
	// on is when the lights come on (zero: not enabled); by is the door
	// or button that enabled them, "" when they carry on from a booking
	// that ends as this one starts.
	on time.Time
	by string
	// blink: the warning blink at warnAt happens (the lights are on by
	// then, and no following booking keeps them on past the end).
	blink  bool
	warnAt time.Time
}

// gates works out the lights of every booking window of a space. A grant
// in [start-early, end) enables a window from the later of the grant and
// the start. A window that starts while an enabled one is still on
// (back-to-back bookings) is enabled from its start, so the lights do not
// go dark between two bookings, and the earlier one does not blink.
func (t *Tracker) gates(sp *space) []gate {
	l := sp.lights
	gs := make([]gate, len(sp.windows))
	for i, w := range sp.windows {
		g := gate{w: w, warnAt: w.End.Add(-l.warnBefore)}
		if at, by, ok := t.press(l, w.Start.Add(-l.early), w.End); ok {
			g.on, g.by = later(at, w.Start), by
		}
		for j := range i {
			p := gs[j]
			if !p.on.IsZero() && !p.on.After(w.Start) && !p.w.End.Before(w.Start) && (g.on.IsZero() || g.on.After(w.Start)) {
				g.on, g.by = w.Start, ""
			}
		}
		gs[i] = g
	}
	if l.warnBefore == 0 {
		return gs
	}
	for i := range gs {
		g := &gs[i]
		if g.on.IsZero() || g.on.After(g.warnAt) {
			continue
		}
		g.blink = true
		for j, n := range gs {
			if j != i && !n.on.IsZero() && !n.on.After(g.w.End) && !n.w.Start.After(g.w.End) && n.w.End.After(g.w.End) {
				g.blink = false
				break
			}
		}
	}
	return gs
}

// lightsEvents announces, once each, the lights of a space coming on and
// their warning blink, when due by now; what is due only after a booking
// has ended is marked done without an event.
func (t *Tracker) lightsEvents(sp *space, now time.Time) []events.Event {
	var out []events.Event
	for _, g := range t.gates(sp) {
		k := key{sp.id, g.w.Booking}
		if !g.on.IsZero() && !g.on.After(now) && !t.enabled[k] {
			t.enabled[k] = true
			if now.Before(g.w.End) && g.by != "" {
				var pts []string
				if slices.Contains(sp.lights.buttons, g.by) {
					pts = []string{g.by}
				}
				out = append(out, t.event(sp, g.w, events.LightsEnabled, g.on, g.by, pts,
					fmt.Sprintf("%s enabled by %s at %s until %s", strings.Join(sp.lights.points, ", "), g.by, t.clockOf(g.on), t.clockOf(g.w.End))))
			}
		}
		if g.blink && !g.warnAt.After(now) && !t.warned[k].Equal(g.w.End) {
			t.warned[k] = g.w.End
			if now.Before(g.w.End) {
				out = append(out, t.event(sp, g.w, events.LightsWarning, g.warnAt, "", nil,
					fmt.Sprintf("%s blink for %v: off at %s", strings.Join(sp.lights.points, ", "), sp.lights.blink, t.clockOf(g.w.End))))
			}
		}
	}
	return out
}

// Cause says why an adjustment holds a point at its vacant value.
type Cause string

// Causes of adjustments.
const (
	// CauseNoShow: the booking is a no-show; every binding of the space
	// is released from the deadline to the booking's end.
	CauseNoShow Cause = "no_show"
	// CauseLightsWait: gated lights wait for a card from the booking's
	// start (to its end while no card came).
	CauseLightsWait Cause = "lights_wait"
	// CauseLightsBlink: the warning blink before the end.
	CauseLightsBlink Cause = "lights_blink"
	// CauseLightsOutside: gated lights are never on outside a booking,
	// whatever lead, lag or base schedule the plan has.
	CauseLightsOutside Cause = "lights_outside"
)

// Adjustment holds points of a space at their vacant value over [From,
// To), at booking priority (an operator override still wins). A zero From
// means since ever, a zero To until further notice; Covers handles both.
type Adjustment struct {
	Space string
	// Point is the gated point id, or "" for every binding of the space.
	Point    string
	From, To time.Time
	// Vacant is always true: every adjustment releases (the tracker never
	// forces a point occupied). It is there so a consumer can say so.
	Vacant bool
	Cause  Cause
	// Booking is the booking concerned, "" for CauseLightsOutside.
	Booking string
	// Reason says it for people and for the journal.
	Reason string
}

// Covers reports whether the adjustment holds at t.
func (a Adjustment) Covers(t time.Time) bool {
	return !t.Before(a.From) && (a.To.IsZero() || t.Before(a.To))
}

// Applies reports whether the adjustment holds point (a binding of its
// space) at t.
func (a Adjustment) Applies(point string, t time.Time) bool {
	return (a.Point == "" || a.Point == point) && a.Covers(t)
}

// Adjustments returns the current plan adjustments, sorted by space,
// point, start and end: no-show releases [deadline, end); gated lights
// [start, card) (to the end while no card), the blink [end-before,
// end-before+blink), and everything outside the bookings.
func (t *Tracker) Adjustments() []Adjustment {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Adjustment
	for _, r := range t.records {
		// A judgement restored for a space that no longer has no_show
		// releases nothing.
		if sp := t.byID[r.Space]; r.Outcome != OutcomeNoShow || sp == nil || !sp.noShow || !r.Deadline.Before(r.End) {
			continue
		}
		out = append(out, Adjustment{Space: r.Space, From: r.Deadline, To: r.End, Vacant: true, Cause: CauseNoShow, Booking: r.Booking,
			Reason: fmt.Sprintf("no-show of booking %s%s", r.Booking, org(r.Organiser))})
	}
	for _, sp := range t.spaces {
		l := sp.lights
		if l == nil {
			continue
		}
		for _, g := range t.gates(sp) {
			add := func(from, to time.Time, c Cause, reason string) {
				for _, p := range l.points {
					out = append(out, Adjustment{Space: sp.id, Point: p, From: from, To: to, Vacant: true, Cause: c, Booking: g.w.Booking, Reason: reason})
				}
			}
			switch {
			case g.on.IsZero():
				add(g.w.Start, g.w.End, CauseLightsWait, fmt.Sprintf("lights of booking %s wait for a card", g.w.Booking))
			case g.on.After(g.w.Start):
				add(g.w.Start, g.on, CauseLightsWait, fmt.Sprintf("lights of booking %s waited for a card until %s", g.w.Booking, t.clockOf(g.on)))
			}
			if g.blink {
				add(g.warnAt, g.warnAt.Add(l.blink), CauseLightsBlink, fmt.Sprintf("warning blink before the end of booking %s", g.w.Booking))
			}
		}
		// The gaps between bookings, merged where they touch or overlap.
		var from time.Time
		for i := 0; i < len(sp.windows); {
			start, end := sp.windows[i].Start, sp.windows[i].End
			for i++; i < len(sp.windows) && !sp.windows[i].Start.After(end); i++ {
				end = later(end, sp.windows[i].End)
			}
			for _, p := range l.points {
				out = append(out, Adjustment{Space: sp.id, Point: p, From: from, To: start, Vacant: true, Cause: CauseLightsOutside, Reason: "lights only inside a booking"})
			}
			from = end
		}
		for _, p := range l.points {
			out = append(out, Adjustment{Space: sp.id, Point: p, From: from, Vacant: true, Cause: CauseLightsOutside, Reason: "lights only inside a booking"})
		}
	}
	slices.SortFunc(out, func(a, b Adjustment) int {
		return cmp.Or(cmp.Compare(a.Space, b.Space), cmp.Compare(a.Point, b.Point), a.From.Compare(b.From), cmpEnd(a.To, b.To), cmp.Compare(a.Cause, b.Cause))
	})
	return out
}

// cmpEnd orders ends with the open end (zero) last.
func cmpEnd(a, b time.Time) int {
	switch {
	case a.IsZero() && b.IsZero():
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}

func org(o string) string {
	if o == "" {
		return ""
	}
	return " (org " + o + ")"
}
