package security

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/site"
)

// PointCheck is a light or HVAC point for the round, with the value it
// should have while the building is vacant and the value it has, both
// supplied by the caller (which owns the points and their plan).
type PointCheck struct {
	Point string
	Space string
	// What the point is, for people: "light", "hvac mode", "setpoint".
	What string
	// Want is the vacant value; Tolerance how far Got may differ.
	Want, Tolerance float64
	// Got is the value read; OK false if the point could not be read.
	Got float64
	OK  bool
	// Since is since when Got has held, zero if not known.
	Since time.Time
	// Format, if set, shows a value for people ("economy", "true",
	// "16 °C"); else the number is shown.
	Format func(float64) string
}

// CheckKind is what a round check looked at.
type CheckKind string

// Check kinds.
const (
	CheckDoor     CheckKind = "door"
	CheckArea     CheckKind = "area"
	CheckDetector CheckKind = "detector"
	CheckPoint    CheckKind = "point"
)

// Check is one thing the round checked and what it found.
type Check struct {
	Kind    CheckKind
	Subject string // door, area, detector or point id
	Space   string
	Points  []string
	Want    string
	Got     string
	// OK: as wanted, or excused (see Note). A check that is not OK is a
	// finding.
	OK bool
	// Since is when the finding began, zero if not known.
	Since time.Time
	Note  string
}

// RoundReport is the result of a virtual patrol round.
type RoundReport struct {
	Site   string
	At     time.Time
	Checks []Check
	// Events are one RoundFinding per finding, then RoundDone, for the
	// caller to publish.
	Events []events.Event
}

// Findings returns the checks that are not OK.
func (r RoundReport) Findings() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Round runs the virtual patrol round at now: every door closed and
// locked, every area armed, every detector readable, every point at its
// vacant value. A door whose space, or an area that, is inside a window
// is excused (OK, with a note), as is an area within its exit delay. The
// round reads the monitor's state; call Advance(now) first so timers due
// by now have fired. It changes nothing.
func (m *Monitor) Round(now time.Time, points []PointCheck) RoundReport {
	r := RoundReport{Site: m.site, At: now}
	for _, d := range m.doors {
		r.Checks = append(r.Checks, m.checkDoor(d, now))
	}
	for _, a := range m.areas {
		r.Checks = append(r.Checks, m.checkArea(a, now))
	}
	for _, d := range m.dets {
		r.Checks = append(r.Checks, checkDetector(d))
	}
	for _, p := range points {
		r.Checks = append(r.Checks, checkPoint(p))
	}
	n := 0
	for _, c := range r.Checks {
		if c.OK {
			continue
		}
		n++
		msg := fmt.Sprintf("round: %s %s: %s", c.Kind, c.Subject, c.Got)
		if c.Want != "" {
			msg += ", want " + c.Want
		}
		if !c.Since.IsZero() {
			msg += ", since " + m.clock(c.Since, now)
		}
		if c.Note != "" {
			msg += " (" + c.Note + ")"
		}
		r.Events = append(r.Events, events.Event{Time: now, Site: m.site, Space: c.Space, Kind: events.RoundFinding,
			Severity: events.Warning, Subject: c.Subject, Points: c.Points, Message: msg})
	}
	r.Events = append(r.Events, events.Event{Time: now, Site: m.site, Kind: events.RoundDone, Severity: events.Info,
		Message: fmt.Sprintf("round of %s at %s: %d checked, %d findings", m.site, m.clock(now, now), len(r.Checks), n)})
	return r
}

func (m *Monitor) checkDoor(d *door, now time.Time) Check {
	c := Check{Kind: CheckDoor, Subject: d.spec.ID, Space: d.spec.Space, Points: append([]string{}, d.inputs...),
		Want: "closed and locked", Got: d.describe()}
	if !d.canBeForced() {
		c.Want = "closed" // the lock is not monitored
	}
	switch {
	case !d.judged || !d.usable():
		c.Since = d.problemSince()
	case d.fault != "":
		c.Got, c.Since = "wire fault: "+d.fault, d.faultSince
	case d.secured():
		c.OK = true
		if !d.canBeForced() {
			c.Note = "the lock is not monitored"
		}
	default:
		c.Since = d.unsecuredSince
		if iv, in := d.win.covering(now); d.win.set && in {
			c.OK = true
			c.Note = fmt.Sprintf("space %s is in a window until %s", d.spec.Space, m.clock(iv.End, now))
		}
	}
	var conds []string
	for _, x := range []struct {
		on   bool
		name string
	}{{d.held, "held open"}, {d.forced, "forced"}, {d.left, "left unlocked"}} {
		if x.on {
			conds = append(conds, x.name)
		}
	}
	if len(conds) > 0 {
		c.Note = joinNote(c.Note, "raised: "+strings.Join(conds, ", "))
	}
	return c
}

// problemSince is when the earliest current input problem began.
func (d *door) problemSince() time.Time {
	var t time.Time
	for _, b := range d.bools() {
		if b.in.present && (b.in.unreadable || b.in.invalid) && (t.IsZero() || b.in.since.Before(t)) {
			t = b.in.since
		}
	}
	return t
}

func (m *Monitor) checkArea(a *area, now time.Time) Check {
	c := Check{Kind: CheckArea, Subject: a.spec.ID, Points: []string{a.armed.point}, Want: "armed"}
	armed, known := a.isArmed()
	switch {
	case !known:
		c.Got, c.Since = a.armed.problem("armed"), a.armed.since
		return c
	case armed:
		c.Got, c.OK = "armed", true
	default:
		c.Got = "not armed"
		c.Since = a.armedSince
	}
	if a.win.set && !armed {
		if iv, in := a.win.covering(now); in {
			c.OK, c.Since = true, time.Time{}
			c.Note = "in a window until " + m.clock(iv.End, now)
		} else if due := a.armAt; !due.IsZero() && now.Before(due) {
			c.OK, c.Since = true, time.Time{}
			c.Note = "arming: exit delay until " + m.clock(due, now)
		} else if !due.IsZero() {
			c.Since = latest(due, a.armedSince)
		}
	}
	switch {
	case a.armFailed:
		c.Note = joinNote(c.Note, "direct arming failed")
	case a.mismatch != NoMismatch:
		c.Note = joinNote(c.Note, "raised: "+string(a.mismatch))
	}
	return c
}

func checkDetector(d *detector) Check {
	st := d.status()
	c := Check{Kind: CheckDetector, Subject: d.spec.ID, Points: append([]string{}, d.points...), Want: "readable", Got: "readable", OK: true}
	if st.Problem != "" {
		c.OK, c.Got = false, st.Problem
		c.Since = d.in.since
		if !d.in.unreadable && !d.in.invalid {
			c.Since = d.inB.since
		}
	}
	if d.leak {
		c.OK = false
		c.Want, c.Got = "no water flow", fmt.Sprintf("water flowing (%s): leak raised", fmtNum(d.in.val))
		c.Since = d.rise
	}
	return c
}

func checkPoint(p PointCheck) Check {
	show := fmtNum
	if p.Format != nil {
		show = p.Format
	}
	c := Check{Kind: CheckPoint, Subject: p.Point, Space: p.Space, Points: []string{p.Point},
		Want: show(p.Want), Since: p.Since}
	if p.What != "" {
		c.Note = p.What
	}
	switch {
	case !p.OK:
		c.Got = "unreadable"
	case math.Abs(p.Got-p.Want) <= p.Tolerance:
		c.Got, c.OK, c.Since = show(p.Got), true, time.Time{}
	default:
		c.Got = show(p.Got)
	}
	return c
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// LastWindowEnd returns the end of the last window (of any space or
// area) that ends on the local date of day, zero if none: the daily round
// is due some time after it.
func (m *Monitor) LastWindowEnd(day time.Time) time.Time {
	d := site.DateOf(day.In(m.loc))
	from := site.Clock(0).On(d, m.loc)
	to := site.Clock(0).On(d.AddDays(1), m.loc)
	var best time.Time
	consider := func(w *windows) {
		for _, iv := range w.w {
			if !iv.End.Before(from) && iv.End.Before(to) && iv.End.After(best) {
				best = iv.End
			}
		}
	}
	for _, w := range m.spaces {
		consider(w)
	}
	for _, a := range m.areas {
		consider(&a.win)
	}
	return best
}
