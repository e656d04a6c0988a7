package security

import (
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Mismatch is how an area's armed state differs from its schedule.
type Mismatch string

// Mismatches.
const (
	NoMismatch Mismatch = ""
	// NotArmed: the area did not arm within mismatch_after of when it
	// should have (window end plus exit delay). Warning.
	NotArmed Mismatch = "not_armed"
	// DisarmedOutsideWindow: the area was disarmed outside every window.
	// Alarm: someone disarmed it with nobody booked.
	DisarmedOutsideWindow Mismatch = "disarmed_outside_window"
	// StillArmed: the area is still armed mismatch_after into a window;
	// the booked users will set it off. Warning.
	StillArmed Mismatch = "still_armed"
)

var mismatchWords = map[Mismatch]string{
	NotArmed:              "not armed after its window",
	DisarmedOutsideWindow: "disarmed outside any window",
	StillArmed:            "still armed in its window",
}

type area struct {
	spec  AreaSpec
	loc   *time.Location
	tm    timer
	armed boolIn
	doors []*door
	water []*detector
	win   windows

	// tracking starts when the area has windows and the monitor a time.
	tracking   bool
	trackSince time.Time
	inWindow   bool
	winStart   time.Time // start of the current window
	lastEnd    time.Time // end of the last window
	armAt      time.Time // lastEnd + exit delay: when the area should be armed
	armChecked bool      // the doors were checked at armAt

	armedSince time.Time // when the read-back value last changed

	mismatch      Mismatch
	mismatchSince time.Time
	armFailed     bool
	failedSince   time.Time // when the area should have armed, for a failed arm
	armCommanded  time.Time // direct control: when the arm pulse was sent
	pulses        []Command // pulse ends still to be sent
	// restored: the mismatch and arm failure come from a snapshot, to be
	// squared with the windows when tracking starts.
	restored bool
}

func (a *area) timer() *timer { return &a.tm }

func (a *area) label() string { return label(a.spec.Name, a.spec.ID) }

func (a *area) isArmed() (armed, known bool) { return a.armed.val, a.armed.usable() }

// observeArmed applies a reading of the armed state read back.
func (a *area) observeArmed(m *Monitor, v float64, ok bool, at time.Time) {
	first := !a.armed.have
	changed := a.armed.set(v, ok, at)
	if a.armed.have && (first || changed) {
		a.armedSince = at
	}
	if changed {
		pts := []string{a.armed.point}
		if a.armed.val {
			m.emit(at, events.AreaArmed, events.Info, "", a.spec.ID, pts, "%s armed", a.label())
		} else {
			m.emit(at, events.AreaDisarmed, events.Info, "", a.spec.ID, pts, "%s disarmed", a.label())
		}
		if !a.armed.val && a.tracking && !a.inWindow {
			a.raiseMismatch(m, at, at, DisarmedOutsideWindow, events.Alarm,
				"%s was disarmed outside any window", a.label())
		}
	}
	a.eval(m, at)
}

// eval brings the area up to time at: window transitions, the arm-time
// door check, pulse ends due, conformance of the armed state and leaks.
func (a *area) eval(m *Monitor, at time.Time) {
	if a.win.set {
		if !a.tracking {
			a.startTracking(m, at)
		} else if in := a.win.covered(at); in != a.inWindow {
			if in {
				a.enter(m, at)
			} else {
				a.leave(m, at)
			}
		}
		if !a.armChecked && !a.inWindow && !at.Before(a.armAt) {
			a.armCheck(m, at)
		}
	}
	keep := a.pulses[:0]
	for _, c := range a.pulses {
		if c.At.After(at) {
			keep = append(keep, c)
		} else {
			m.cmds = append(m.cmds, c)
		}
	}
	a.pulses = keep

	if armed, known := a.isArmed(); known && a.tracking {
		if a.inWindow {
			if !armed && a.mismatch == StillArmed {
				a.clearMismatch(m, at, "disarmed")
			}
			if armed && a.mismatch == NoMismatch && !at.Before(latest(a.winStart, a.trackSince).Add(a.spec.MismatchAfter)) {
				a.raiseMismatch(m, at, latest(a.winStart, a.trackSince), StillArmed, events.Warning,
					"%s is still armed although its window started at %s", a.label(), m.clock(a.winStart, at))
			}
		} else {
			if armed {
				a.clearMismatch(m, at, "armed")
				a.clearArmFailed(m, at, "armed")
			} else if a.mismatch == NoMismatch && !a.armFailed && !at.Before(a.notArmedAt()) {
				if a.spec.Control == Direct && !a.armCommanded.IsZero() {
					a.armFailed, a.failedSince = true, a.armAt
					m.emit(at, events.AreaArmFailed, events.Alarm, "", a.spec.ID,
						[]string{a.spec.Direct.Arm.Point, a.armed.point},
						"%s did not arm: arm output %s was pulsed at %s and the area still reads disarmed after the exit delay of %s and %s more",
						a.label(), a.spec.Direct.Arm.Point, m.clock(a.armCommanded, at), fmtDur(a.spec.ExitDelay), fmtDur(a.spec.MismatchAfter))
				} else {
					due := latest(a.armAt, a.trackSince)
					a.raiseMismatch(m, at, due, NotArmed, events.Warning,
						"%s is not armed: it should have armed at %s", a.label(), m.clock(due, at))
				}
			}
		}
	}
	for _, w := range a.water {
		a.leakCheck(m, w, at)
	}
}

// notArmedAt is when an area that is not armed outside its windows
// becomes a mismatch.
func (a *area) notArmedAt() time.Time {
	return latest(a.armAt, a.trackSince).Add(a.spec.MismatchAfter)
}

func (a *area) startTracking(m *Monitor, at time.Time) {
	a.tracking, a.trackSince = true, at
	iv, in := a.win.covering(at)
	a.inWindow, a.winStart = in, iv.Start
	a.lastEnd = a.win.prevEnd(at)
	a.armAt, a.armChecked = time.Time{}, true
	if !in && !a.lastEnd.IsZero() {
		a.armAt = a.lastEnd.Add(a.spec.ExitDelay)
		a.armChecked = !a.armAt.After(at)
	}
	if a.restored {
		// What was raised before a restart stays raised while it holds;
		// a window that started or ended meanwhile clears what it would
		// have cleared.
		a.restored = false
		if in {
			if a.mismatch == NotArmed || a.mismatch == DisarmedOutsideWindow {
				a.clearMismatch(m, at, "a window started")
			}
			a.clearArmFailed(m, at, "a window started")
			a.armCommanded = time.Time{}
		} else if a.mismatch == StillArmed {
			a.clearMismatch(m, at, "the window ended")
		}
		if !a.armCommanded.IsZero() && a.armCommanded.Before(a.lastEnd) {
			a.armCommanded = time.Time{} // a pulse for an earlier window
		}
	}
}

// enter starts a window: the schedule now says disarmed.
func (a *area) enter(m *Monitor, at time.Time) {
	a.inWindow, a.winStart, a.armChecked = true, at, true
	a.armCommanded = time.Time{}
	if a.mismatch == NotArmed || a.mismatch == DisarmedOutsideWindow {
		a.clearMismatch(m, at, "a window started")
	}
	a.clearArmFailed(m, at, "a window started")
	if a.spec.Control == Direct {
		if armed, known := a.isArmed(); !known || armed {
			a.pulse(m, a.spec.Direct.Disarm.Point, at, "disarm "+a.spec.ID+": window starts")
		}
	}
}

// leave ends a window: the area should arm after its exit delay.
func (a *area) leave(m *Monitor, at time.Time) {
	a.inWindow, a.lastEnd = false, at
	a.armAt, a.armChecked = at.Add(a.spec.ExitDelay), false
	if a.mismatch == StillArmed {
		a.clearMismatch(m, at, "the window ended")
	}
	if a.spec.Control == Direct {
		if armed, known := a.isArmed(); !known || !armed {
			a.pulse(m, a.spec.Direct.Arm.Point, at, "arm "+a.spec.ID+": window ended")
			a.armCommanded = at
		}
	}
}

func (a *area) pulse(m *Monitor, point string, at time.Time, reason string) {
	m.cmds = append(m.cmds, Command{Point: point, Value: 1, At: at, Reason: reason})
	a.pulses = append(a.pulses, Command{Point: point, Value: 0, At: at.Add(a.spec.Direct.Pulse), Reason: reason + " (pulse end)"})
}

// armCheck runs when the area is due to arm: every door of the area that
// is not closed and locked is named in its own event.
func (a *area) armCheck(m *Monitor, at time.Time) {
	a.armChecked = true
	for _, d := range a.doors {
		if d.secured() {
			continue
		}
		m.emit(at, events.AreaArmOverOpening, events.Warning, d.spec.Space, d.spec.ID, d.boltContact,
			"%s is due to arm at %s over %s, which is %s", a.label(), m.clock(a.armAt, at), d.label(), d.describe())
	}
}

// raiseMismatch raises k unless a mismatch is raised already; since is
// when the difference began.
func (a *area) raiseMismatch(m *Monitor, at, since time.Time, k Mismatch, sev events.Severity, format string, args ...any) {
	if a.mismatch != NoMismatch {
		return
	}
	a.mismatch, a.mismatchSince = k, since
	m.emit(at, events.AreaMismatch, sev, "", a.spec.ID, []string{a.armed.point}, format, args...)
}

// clearArmFailed ends a raised arm failure with an info event saying why.
func (a *area) clearArmFailed(m *Monitor, at time.Time, why string) {
	if !a.armFailed {
		return
	}
	a.armFailed = false
	m.emit(at, events.AreaArmFailed, events.Info, "", a.spec.ID, []string{a.armed.point},
		"%s: arm failure cleared: %s", a.label(), why)
}

// clearMismatch ends a raised mismatch with an info event of the same
// kind, saying why.
func (a *area) clearMismatch(m *Monitor, at time.Time, why string) {
	if a.mismatch == NoMismatch {
		return
	}
	k, since := a.mismatch, a.mismatchSince
	a.mismatch, a.mismatchSince = NoMismatch, time.Time{}
	m.emit(at, events.AreaMismatch, events.Info, "", a.spec.ID, []string{a.armed.point},
		"%s: mismatch cleared (%s); it was %s since %s", a.label(), why, mismatchWords[k], m.clock(since, at))
}

// night reports whether t falls in the area's night; without a night
// declared it always does.
func (a *area) night(t time.Time) bool {
	n := a.spec.Night
	if n == nil {
		return true
	}
	lt := t.In(a.loc)
	c := site.Clock(lt.Hour()*60 + lt.Minute())
	from, to := n.From%1440, n.To%1440
	if from < to {
		return c >= from && c < to
	}
	return c >= from || c < to
}

// nextNight returns the next start of the night after t.
func (a *area) nextNight(t time.Time) time.Time {
	if a.spec.Night == nil {
		return time.Time{}
	}
	d := site.DateOf(t.In(a.loc))
	for i := range 3 {
		if s := (a.spec.Night.From % 1440).On(d.AddDays(i), a.loc); s.After(t) {
			return s
		}
	}
	return time.Time{}
}

// leakCheck raises a leak while water flows in an armed area, at night,
// outside its windows (an empty building), and clears it when the flow
// stops.
func (a *area) leakCheck(m *Monitor, w *detector, at time.Time) {
	if !w.in.usable() {
		return
	}
	if w.leak && !w.active {
		w.leak = false
		m.emit(at, events.Leak, events.Info, "", w.spec.ID, []string{w.spec.Point},
			"leak cleared: water flow %s stopped (%s) in %s", w.spec.ID, fmtNum(w.in.val), a.label())
		return
	}
	armed, known := a.isArmed()
	if w.leak || !w.active || !known || !armed || (a.win.set && a.win.covered(at)) || !a.night(at) {
		return
	}
	w.leak = true
	m.emit(at, events.Leak, events.Alarm, "", w.spec.ID, []string{w.spec.Point, a.armed.point},
		"leak: water flows (%s, above %s) in %s, armed and with no booking, at %s",
		fmtNum(w.in.val), fmtNum(w.spec.Above), a.label(), m.clock(at, at))
}

// next returns when the area must be evaluated again after at.
func (a *area) next(at time.Time) time.Time {
	c := make([]time.Time, 0, 6+len(a.pulses))
	if a.win.set {
		c = append(c, a.win.nextBoundary(at))
	}
	if !a.armChecked {
		c = append(c, a.armAt)
	}
	for _, p := range a.pulses {
		c = append(c, p.At)
	}
	if armed, known := a.isArmed(); known && a.tracking && a.mismatch == NoMismatch {
		switch {
		case a.inWindow && armed:
			c = append(c, latest(a.winStart, a.trackSince).Add(a.spec.MismatchAfter))
		case !a.inWindow && !armed && !a.armFailed:
			c = append(c, a.notArmedAt())
		}
	}
	for _, w := range a.water {
		if w.active && !w.leak {
			c = append(c, a.nextNight(at))
		}
	}
	return earliest(at, c...)
}

// AreaStatus is an area's state for status pages and the round.
type AreaStatus struct {
	ID, Name string
	Control  Control
	// Armed is the armed state read back; ArmedKnown is false while the
	// point is unreadable or not yet read.
	Armed, ArmedKnown bool
	// Since is when the read-back value last changed.
	Since time.Time
	// Scheduled: windows have been set. InWindow: a window covers now.
	Scheduled, InWindow bool
	// ArmAt is when the area is (or was last) due to arm.
	ArmAt    time.Time
	Mismatch Mismatch
	// MismatchSince is when the difference began.
	MismatchSince time.Time
	ArmFailed     bool
	// FailedSince is when an area that failed to arm should have armed.
	FailedSince time.Time
	// Problem says why Armed is unknown.
	Problem string
}

func (a *area) status() AreaStatus {
	armed, known := a.isArmed()
	return AreaStatus{
		ID: a.spec.ID, Name: a.spec.Name, Control: a.spec.Control,
		Armed: armed, ArmedKnown: known, Since: a.armedSince,
		Scheduled: a.win.set, InWindow: a.tracking && a.inWindow, ArmAt: a.armAt,
		Mismatch: a.mismatch, MismatchSince: a.mismatchSince, ArmFailed: a.armFailed, FailedSince: a.failedSince,
		Problem: a.armed.problem("armed"),
	}
}
