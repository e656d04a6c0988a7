package security

import (
	"container/heap"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

// Command is a point write the monitor asks for (direct control of an
// area): write Value to Point at At. Advance returns a command once it is
// due, so the caller writes each command as it gets it; a pulse comes as
// two commands, value 1 and, Pulse later, value 0.
type Command struct {
	Point  string
	Value  float64
	At     time.Time
	Reason string
}

// Monitor judges one site's doors, detectors and alarm areas. It holds no
// clock of its own: every reading carries its time, and Advance moves the
// monitor's time forward so timers (held open, settle, arm times,
// mismatch graces, pulse ends) fire. Times that go backwards are taken as
// the latest time already seen. A Monitor is not safe for concurrent use.
//
// Use: NewMonitor; SetAreaWindows and SetSpaceWindows whenever the
// bookings change; Advance once at start; then Observe every reading of
// Inputs, and call Advance again at Next. Publish the events both return
// and write the commands Advance returns.
type Monitor struct {
	site string
	loc  *time.Location
	spec Spec

	doors  []*door
	dets   []*detector
	areas  []*area
	areaID map[string]*area
	spaces map[string]*windows // per space, shared by its doors
	bind   map[string][]binding

	started bool
	now     time.Time
	timers  timerHeap
	out     []events.Event
	cmds    []Command
}

// binding routes a point's readings to one object.
type binding struct {
	door  *door
	det   *detector
	area  *area
	field int // door field; for detectors 1 means point_b
}

// NewMonitor validates spec and builds the monitor of site siteID; loc is
// the site's time zone (for night periods and messages). Every problem of
// spec is reported, each naming the door, detector or area.
func NewMonitor(siteID string, spec Spec, loc *time.Location) (*Monitor, error) {
	if loc == nil {
		return nil, errors.New("security: a time zone is required")
	}
	s, err := validate(spec)
	if err != nil {
		return nil, fmt.Errorf("security spec of site %s: %w", siteID, err)
	}
	m := &Monitor{
		site: siteID, loc: loc, spec: s,
		areaID: map[string]*area{}, spaces: map[string]*windows{}, bind: map[string][]binding{},
	}
	for _, as := range s.Areas {
		a := &area{spec: as, loc: loc, armed: newBoolIn(as.Armed)}
		a.tm = timer{obj: a, idx: -1, ord: len(m.areas)}
		m.areas = append(m.areas, a)
		m.areaID[as.ID] = a
		m.bind[as.Armed.Point] = append(m.bind[as.Armed.Point], binding{area: a})
	}
	for _, ds := range s.Doors {
		d := newDoor(ds)
		d.tm = timer{obj: d, idx: -1, ord: len(s.Areas) + len(m.doors)}
		if m.spaces[ds.Space] == nil {
			m.spaces[ds.Space] = &windows{}
		}
		d.win = m.spaces[ds.Space]
		if a := m.areaID[ds.Area]; a != nil {
			a.doors = append(a.doors, d)
		}
		m.doors = append(m.doors, d)
		for f, in := range []*Input{ds.Deadbolt, ds.Handle, ds.Contact, ds.ContactB, ds.Unlock, ds.Reader} {
			if in != nil {
				m.bind[in.Point] = append(m.bind[in.Point], binding{door: d, field: f})
			}
		}
	}
	for _, ds := range s.Detectors {
		d := newDetector(ds)
		d.area = m.areaID[ds.Area]
		if ds.Kind == WaterFlow {
			d.area.water = append(d.area.water, d)
		}
		m.dets = append(m.dets, d)
		m.bind[ds.Point] = append(m.bind[ds.Point], binding{det: d})
		if ds.Kind == DualTech {
			m.bind[ds.PointB] = append(m.bind[ds.PointB], binding{det: d, field: 1})
		}
	}
	return m, nil
}

// Spec returns the validated spec with defaults applied.
func (m *Monitor) Spec() Spec { return m.spec }

// Inputs returns every point the monitor reads, sorted.
func (m *Monitor) Inputs() []string { return slices.Sorted(maps.Keys(m.bind)) }

// Outputs returns every point the monitor may write (direct control),
// sorted.
func (m *Monitor) Outputs() []string {
	var out []string
	for _, a := range m.areas {
		if a.spec.Direct != nil {
			out = append(out, a.spec.Direct.Arm.Point, a.spec.Direct.Disarm.Point)
		}
	}
	slices.Sort(out)
	return out
}

// Spaces returns the spaces the doors serve, sorted: the spaces
// SetSpaceWindows accepts.
func (m *Monitor) Spaces() []string { return slices.Sorted(maps.Keys(m.spaces)) }

// SetAreaWindows replaces the windows in which area should be disarmed
// (bookings already widened by disarm_before and rearm_after). Outside
// them the area should be armed, its exit delay after a window ends. The
// change takes effect at the monitor's current time: if it moves that
// time in or out of a window, the transition happens at the next Advance.
// Until an area has windows its armed state is not compared with any
// schedule.
func (m *Monitor) SetAreaWindows(area string, ws []Interval) error {
	a := m.areaID[area]
	if a == nil {
		return fmt.Errorf("set windows of area %q: %w", area, ErrUnknownArea)
	}
	w, err := newWindows(ws)
	if err != nil {
		return fmt.Errorf("set windows of area %q: %w", area, err)
	}
	a.win = w
	if m.started {
		m.due(&a.tm, m.now)
	}
	return nil
}

// SetSpaceWindows replaces the windows of a space (its booked or
// scheduled periods): outside them its doors must be closed and locked,
// LeftUnlockedAfter after the last window ended. Until a space has
// windows its doors are never reported left unlocked.
func (m *Monitor) SetSpaceWindows(space string, ws []Interval) error {
	p := m.spaces[space]
	if p == nil {
		return fmt.Errorf("set windows of space %q: %w", space, ErrUnknownSpace)
	}
	w, err := newWindows(ws)
	if err != nil {
		return fmt.Errorf("set windows of space %q: %w", space, err)
	}
	*p = w
	if m.started {
		for _, d := range m.doors {
			if d.win == p {
				m.due(&d.tm, m.now)
			}
		}
	}
	return nil
}

// Observe applies one reading: value is the point's engineering value, ok
// false if the point could not be read. Timers due at or before at fire
// first, so events come out in time order; commands they produce wait for
// the next Advance (Next then returns at). A point the monitor does not
// read is ignored.
func (m *Monitor) Observe(point string, value float64, ok bool, at time.Time) []events.Event {
	bs := m.bind[point]
	if len(bs) == 0 {
		return nil
	}
	at = m.advance(at)
	for _, b := range bs {
		switch {
		case b.door != nil:
			b.door.observe(m, b.field, value, ok, at)
			m.schedule(&b.door.tm, at)
		case b.det != nil:
			b.det.observe(m, b.field == 1, value, ok, at)
			m.schedule(&b.det.area.tm, at)
		case b.area != nil:
			b.area.observeArmed(m, value, ok, at)
			m.schedule(&b.area.tm, at)
		}
	}
	return m.takeEvents()
}

// Advance moves the monitor's time to now, fires every timer due, and
// returns the events and the commands due.
func (m *Monitor) Advance(now time.Time) ([]events.Event, []Command) {
	m.advance(now)
	cmds := m.cmds
	m.cmds = nil
	return m.takeEvents(), cmds
}

// Next returns when Advance must be called next; zero: no timer is set.
func (m *Monitor) Next() time.Time {
	if len(m.cmds) > 0 {
		return m.now
	}
	if len(m.timers) == 0 {
		return time.Time{}
	}
	return m.timers[0].at
}

// Now returns the monitor's time: the latest time it has seen.
func (m *Monitor) Now() time.Time { return m.now }

// advance starts the monitor on its first call, runs the timers due by t,
// and returns the time to apply a reading at.
func (m *Monitor) advance(t time.Time) time.Time {
	if !m.started {
		m.started, m.now = true, t
		for _, a := range m.areas {
			a.eval(m, t)
			m.schedule(&a.tm, t)
		}
		for _, d := range m.doors {
			m.schedule(&d.tm, t)
		}
	}
	if t.Before(m.now) {
		t = m.now
	}
	for len(m.timers) > 0 && !m.timers[0].at.After(t) {
		tm := m.timers[0]
		at := tm.at
		if at.After(m.now) {
			m.now = at
		}
		tm.obj.eval(m, at)
		m.schedule(tm, at)
	}
	m.now = t
	return t
}

func (m *Monitor) takeEvents() []events.Event {
	out := m.out
	m.out = nil
	return out
}

func (m *Monitor) emit(at time.Time, kind events.Kind, sev events.Severity, space, subject string, points []string, format string, args ...any) {
	m.out = append(m.out, events.Event{
		Time: at, Site: m.site, Space: space, Kind: kind, Severity: sev, Subject: subject,
		Points: slices.Clone(points), Message: fmt.Sprintf(format, args...),
	})
}

// clock formats t for a message about something at ref: the time of day
// if both fall on the same local day, else with the date.
func (m *Monitor) clock(t, ref time.Time) string {
	lt, lr := t.In(m.loc), ref.In(m.loc)
	if lt.YearDay() == lr.YearDay() && lt.Year() == lr.Year() {
		return lt.Format("15:04:05")
	}
	return lt.Format("Mon 2 Jan 15:04:05")
}

// Doors returns the state of every door, in spec order.
func (m *Monitor) Doors() []DoorStatus {
	out := make([]DoorStatus, len(m.doors))
	for i, d := range m.doors {
		out[i] = d.status()
	}
	return out
}

// Areas returns the state of every area, in spec order.
func (m *Monitor) Areas() []AreaStatus {
	out := make([]AreaStatus, len(m.areas))
	for i, a := range m.areas {
		out[i] = a.status()
	}
	return out
}

// Detectors returns the state of every detector, in spec order.
func (m *Monitor) Detectors() []DetectorStatus {
	out := make([]DetectorStatus, len(m.dets))
	for i, d := range m.dets {
		out[i] = d.status()
	}
	return out
}

// timed is a door or an area: something with timers.
type timed interface {
	eval(m *Monitor, at time.Time)
	next(at time.Time) time.Time
}

type timer struct {
	at  time.Time
	idx int // position in the heap, -1 when not queued
	ord int // creation order: timers due at the same time fire in it
	obj timed
}

// schedule queues tm at its object's next deadline after at. Deadlines
// are strictly after at, so the timer loop always makes progress.
func (m *Monitor) schedule(tm *timer, at time.Time) {
	m.set(tm, tm.obj.next(at))
}

// due queues tm at t unless it is queued earlier.
func (m *Monitor) due(tm *timer, t time.Time) {
	if tm.idx >= 0 && !tm.at.After(t) {
		return
	}
	m.set(tm, t)
}

func (m *Monitor) set(tm *timer, t time.Time) {
	switch {
	case t.IsZero() && tm.idx >= 0:
		heap.Remove(&m.timers, tm.idx)
	case t.IsZero():
	case tm.idx >= 0:
		tm.at = t
		heap.Fix(&m.timers, tm.idx)
	default:
		tm.at = t
		heap.Push(&m.timers, tm)
	}
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	return h[i].ord < h[j].ord
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	tm := x.(*timer)
	tm.idx = len(*h)
	*h = append(*h, tm)
}
func (h *timerHeap) Pop() any {
	old := *h
	tm := old[len(old)-1]
	old[len(old)-1] = nil
	tm.idx = -1
	*h = old[:len(old)-1]
	return tm
}
