package security

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/site"
)

var cph = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		panic(err)
	}
	return loc
}()

// day is the reference Thursday.
var day = site.Date{Year: 2026, Month: time.March, Day: 12}

// at returns a local time on the reference day; "+1 02:00" is the next day.
func at(s string) time.Time {
	d := day
	if rest, ok := strings.CutPrefix(s, "+1 "); ok {
		d, s = d.AddDays(1), rest
	}
	layout := "15:04"
	if len(s) == 8 {
		layout = "15:04:05"
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		panic(err)
	}
	return time.Date(d.Year, d.Month, d.Day, t.Hour(), t.Minute(), t.Second(), 0, cph)
}

func iv(from, to string) Interval { return Interval{at(from), at(to)} }

func clock(s string) site.Clock {
	c, err := site.ParseClock(s)
	if err != nil {
		panic(err)
	}
	return c
}

// harness drives a monitor and keeps every event and command in order.
type harness struct {
	t      *testing.T
	m      *Monitor
	events []events.Event
	cmds   []Command
}

func newHarness(t *testing.T, spec Spec, start time.Time) *harness {
	t.Helper()
	m, err := NewMonitor("valby", spec, cph)
	require.NoError(t, err)
	h := &harness{t: t, m: m}
	h.advance(start)
	return h
}

// set observes one reading.
func (h *harness) set(point string, v float64, when time.Time) {
	h.events = append(h.events, h.m.Observe(point, v, true, when)...)
}

// fail observes an unreadable point.
func (h *harness) fail(point string, when time.Time) {
	h.events = append(h.events, h.m.Observe(point, 0, false, when)...)
}

// advance moves to now, calling Advance at every Next on the way as a
// caller would.
func (h *harness) advance(now time.Time) {
	for i := 0; ; i++ {
		require.Less(h.t, i, 10000, "timers do not make progress")
		n := h.m.Next()
		if n.IsZero() || n.After(now) {
			break
		}
		h.step(n)
	}
	h.step(now)
}

func (h *harness) step(now time.Time) {
	evs, cmds := h.m.Advance(now)
	h.events = append(h.events, evs...)
	h.cmds = append(h.cmds, cmds...)
}

// take returns the events so far as "15:04:05 kind severity subject" and
// forgets them.
func (h *harness) take() []string {
	out := lines(h.events)
	h.events = nil
	return out
}

func lines(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Time.In(cph).Format("15:04:05"), e.Kind, e.Severity, e.Subject))
	}
	return out
}

// takeEvents returns the events so far and forgets them.
func (h *harness) takeEvents() []events.Event {
	out := h.events
	h.events = nil
	return out
}

func (h *harness) takeCmds() []string {
	var out []string
	for _, c := range h.cmds {
		out = append(out, fmt.Sprintf("%s %s=%g", c.At.In(cph).Format("15:04:05"), c.Point, c.Value))
	}
	h.cmds = nil
	return out
}

func (h *harness) door(id string) DoorStatus {
	for _, d := range h.m.Doors() {
		if d.ID == id {
			return d
		}
	}
	h.t.Fatalf("no door %s", id)
	return DoorStatus{}
}

func (h *harness) area(id string) AreaStatus {
	for _, a := range h.m.Areas() {
		if a.ID == id {
			return a
		}
	}
	h.t.Fatalf("no area %s", id)
	return AreaStatus{}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fullDoor is a door with every input; its contact is an NC loop (reads 1
// when closed) and it has a second loop that reads 1 when open.
func fullDoor() DoorSpec {
	return DoorSpec{
		ID: "side", Name: "Gym side door", Space: "gym", Area: "wing",
		Deadbolt: &Input{Point: "bolt"},
		Handle:   &Input{Point: "handle"},
		Contact:  &Input{Point: "contact", Invert: true},
		ContactB: &Input{Point: "contact2"},
		Unlock:   &Input{Point: "unlock"},
		Reader:   &Input{Point: "grant"},
	}
}

func wingArea() AreaSpec {
	return AreaSpec{ID: "wing", Name: "Gym wing", Armed: &Input{Point: "armed"}, ExitDelay: 30 * time.Second}
}

// doorInputs sets a fullDoor's inputs; open drives both loops.
func (h *harness) doorInputs(when time.Time, bolt, handle, open, unlock bool) {
	h.set("bolt", b2f(bolt), when)
	h.set("handle", b2f(handle), when)
	h.set("contact", b2f(!open), when)
	h.set("contact2", b2f(open), when)
	h.set("unlock", b2f(unlock), when)
}
