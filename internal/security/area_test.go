package security

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
)

// areaHarness starts at 18:00 with the wing armed and a window 18:45-21:15.
func areaHarness(t *testing.T, a AreaSpec, doors ...DoorSpec) *harness {
	h := newHarness(t, Spec{Areas: []AreaSpec{a}, Doors: doors}, at("18:00"))
	require.NoError(t, h.m.SetAreaWindows("wing", []Interval{iv("18:45", "21:15")}))
	h.set("armed", 1, at("18:00"))
	return h
}

func TestAreaPanel(t *testing.T) {
	t.Run("disarmed in the window, armed after", func(t *testing.T) {
		h := areaHarness(t, wingArea())
		h.set("armed", 0, at("18:45:02"))
		h.advance(at("21:15"))
		require.True(t, h.area("wing").InWindow == false)
		h.set("armed", 1, at("21:15:30"))
		h.advance(at("+1 06:00"))
		require.Equal(t, []string{"18:45:02 area_disarmed info wing", "21:15:30 area_armed info wing"}, h.take())
		require.Empty(t, h.takeCmds(), "the panel arms; the gateway writes nothing")
	})
	t.Run("not armed after the window", func(t *testing.T) {
		h := areaHarness(t, wingArea())
		h.set("armed", 0, at("18:45:02"))
		h.advance(at("21:20:29"))
		require.Equal(t, []string{"18:45:02 area_disarmed info wing"}, h.take())
		h.advance(at("21:21"))
		ev := h.takeEvents()
		require.Len(t, ev, 1)
		require.Equal(t, events.AreaMismatch, ev[0].Kind)
		require.Equal(t, events.Warning, ev[0].Severity)
		require.Equal(t, at("21:20:30"), ev[0].Time, "exit delay 30s + mismatch_after 5m")
		require.Contains(t, ev[0].Message, "should have armed at 21:15:30")
		st := h.area("wing")
		require.Equal(t, NotArmed, st.Mismatch)
		require.Equal(t, at("21:15:30"), st.MismatchSince)
		h.advance(at("22:00"))
		require.Empty(t, h.take(), "reported once")
		h.set("armed", 1, at("22:05"))
		require.Equal(t, []string{"22:05:00 area_armed info wing", "22:05:00 area_mismatch info wing"}, h.take())
		require.Equal(t, NoMismatch, h.area("wing").Mismatch)
	})
	t.Run("disarmed outside any window", func(t *testing.T) {
		h := areaHarness(t, wingArea())
		h.set("armed", 0, at("17:59"))
		ev := h.takeEvents()
		require.Len(t, ev, 2)
		require.Equal(t, events.AreaDisarmed, ev[0].Kind)
		require.Equal(t, events.AreaMismatch, ev[1].Kind)
		require.Equal(t, events.Alarm, ev[1].Severity)
		require.Contains(t, ev[1].Message, "disarmed outside any window")
		h.advance(at("18:45"))
		require.Equal(t, []string{"18:45:00 area_mismatch info wing"}, h.take(), "the window makes the state right")
	})
	t.Run("still armed in the window", func(t *testing.T) {
		h := areaHarness(t, wingArea())
		h.advance(at("18:51"))
		require.Equal(t, []string{"18:50:00 area_mismatch warning wing"}, h.take())
		require.Equal(t, StillArmed, h.area("wing").Mismatch)
		h.set("armed", 0, at("18:52"))
		require.Equal(t, []string{"18:52:00 area_disarmed info wing", "18:52:00 area_mismatch info wing"}, h.take())
	})
	t.Run("no windows, no schedule", func(t *testing.T) {
		h := newHarness(t, Spec{Areas: []AreaSpec{wingArea()}}, at("18:00"))
		h.set("armed", 1, at("18:00"))
		h.set("armed", 0, at("19:00"))
		h.advance(at("23:00"))
		require.Equal(t, []string{"19:00:00 area_disarmed info wing"}, h.take())
	})
	t.Run("windows replaced", func(t *testing.T) {
		h := areaHarness(t, wingArea())
		h.set("armed", 0, at("18:45:02"))
		h.advance(at("19:30"))
		// The booking is cancelled: the area should arm now.
		require.NoError(t, h.m.SetAreaWindows("wing", nil))
		require.Equal(t, at("19:30"), h.m.Next())
		h.advance(at("19:40"))
		require.Equal(t, []string{"18:45:02 area_disarmed info wing", "19:35:30 area_mismatch warning wing"}, h.take())
	})
}

func TestArmOverOpening(t *testing.T) {
	side := fullDoor()
	other := DoorSpec{ID: "main", Space: "hall", Area: "wing", Contact: &Input{Point: "mc"}, Deadbolt: &Input{Point: "mb"}}
	h := areaHarness(t, wingArea(), side, other)
	h.set("grant", 0, at("18:00"))
	h.doorInputs(at("18:00"), true, false, false, false)
	h.set("mc", 0, at("18:00"))
	h.set("mb", 1, at("18:00"))
	h.set("armed", 0, at("18:45:02"))
	// The side door is propped open; the main door is locked.
	h.doorInputs(at("20:50"), false, false, true, false)
	h.advance(at("21:15:29"))
	h.take()
	h.advance(at("21:15:30"))
	ev := h.takeEvents()
	require.Len(t, ev, 1)
	e := ev[0]
	require.Equal(t, events.AreaArmOverOpening, e.Kind)
	require.Equal(t, events.Warning, e.Severity)
	require.Equal(t, "side", e.Subject)
	require.Equal(t, "gym", e.Space)
	require.Equal(t, []string{"contact", "contact2", "bolt", "unlock"}, e.Points)
	require.Contains(t, e.Message, "Gym side door (side)")
	require.Contains(t, e.Message, "open, deadbolt not thrown")
	require.Contains(t, e.Message, "Gym wing (wing) is due to arm at 21:15:30")
	h.advance(at("22:00"))
	for _, e := range h.takeEvents() {
		require.NotEqual(t, events.AreaArmOverOpening, e.Kind, "once per arming")
	}

	// A door closed and locked during the exit delay is not reported.
	h = areaHarness(t, wingArea(), side)
	h.set("grant", 0, at("18:00"))
	h.doorInputs(at("18:00"), true, false, false, false)
	h.doorInputs(at("21:00"), false, false, true, false)
	h.doorInputs(at("21:15:10"), true, false, false, false)
	h.advance(at("21:16"))
	for _, e := range h.takeEvents() {
		require.NotEqual(t, events.AreaArmOverOpening, e.Kind)
	}
}

func directArea() AreaSpec {
	a := wingArea()
	a.Control = Direct
	a.Direct = &DirectSpec{Arm: Output{Point: "arm_out"}, Disarm: Output{Point: "disarm_out"}}
	return a
}

func TestAreaDirect(t *testing.T) {
	t.Run("pulses, exit delay, verify", func(t *testing.T) {
		h := areaHarness(t, directArea())
		require.Equal(t, []string{"arm_out", "disarm_out"}, h.m.Outputs())
		h.advance(at("18:45"))
		require.Equal(t, []string{"18:45:00 disarm_out=1"}, h.takeCmds())
		require.Equal(t, at("18:45:02"), h.m.Next(), "the pulse end is a timer")
		h.advance(at("18:45:02"))
		require.Equal(t, []string{"18:45:02 disarm_out=0"}, h.takeCmds())
		h.set("armed", 0, at("18:45:03"))
		h.advance(at("21:15"))
		require.Equal(t, []string{"21:15:00 arm_out=1"}, h.takeCmds())
		h.advance(at("21:15:02"))
		require.Equal(t, []string{"21:15:02 arm_out=0"}, h.takeCmds())
		h.set("armed", 1, at("21:15:30"))
		h.advance(at("+1 06:00"))
		require.Equal(t, []string{"18:45:03 area_disarmed info wing", "21:15:30 area_armed info wing"}, h.take())
		require.Empty(t, h.takeCmds())
	})
	t.Run("arm failed", func(t *testing.T) {
		h := areaHarness(t, directArea())
		h.set("armed", 0, at("18:45:01"))
		h.advance(at("21:20:29"))
		h.take()
		require.Equal(t, []string{"18:45:00 disarm_out=1", "18:45:02 disarm_out=0", "21:15:00 arm_out=1", "21:15:02 arm_out=0"}, h.takeCmds())
		h.advance(at("21:30"))
		ev := h.takeEvents()
		require.Len(t, ev, 1)
		require.Equal(t, events.AreaArmFailed, ev[0].Kind)
		require.Equal(t, events.Alarm, ev[0].Severity)
		require.Equal(t, at("21:20:30"), ev[0].Time)
		require.Equal(t, []string{"arm_out", "armed"}, ev[0].Points)
		require.True(t, h.area("wing").ArmFailed)
		h.set("armed", 1, at("21:40"))
		require.Equal(t, []string{"21:40:00 area_armed info wing", "21:40:00 area_arm_failed info wing"}, h.take())
	})
	t.Run("no pulse when already in the state", func(t *testing.T) {
		h := areaHarness(t, directArea())
		h.set("armed", 0, at("18:44"))
		h.advance(at("18:46"))
		require.Empty(t, h.takeCmds())
	})
	t.Run("commands from a timer fired by a reading wait for Advance", func(t *testing.T) {
		h := areaHarness(t, directArea())
		h.set("armed", 1, at("18:45:01")) // runs the 18:45 window start first
		require.Equal(t, at("18:45:01"), h.m.Next())
		h.step(at("18:45:01"))
		require.Equal(t, []string{"18:45:00 disarm_out=1"}, h.takeCmds())
	})
}

func detSpec(dets ...DetectorSpec) Spec {
	a := wingArea()
	a.Night = &Night{From: clock("22:00"), To: clock("06:00")}
	return Spec{Areas: []AreaSpec{a}, Detectors: dets}
}

func TestDetectors(t *testing.T) {
	pir := DetectorSpec{ID: "pir", Kind: PIR, Point: "p", Area: "wing"}
	dual := DetectorSpec{ID: "dual", Kind: DualTech, Point: "dp", PointB: "dm", Within: 10 * time.Second, Area: "wing"}
	panicB := DetectorSpec{ID: "panic", Kind: PanicButton, Point: "pb", Area: "wing"}
	start := func(t *testing.T, armed bool) *harness {
		h := newHarness(t, detSpec(pir, dual, panicB), at("12:00"))
		for _, p := range []string{"p", "dp", "dm", "pb"} {
			h.set(p, 0, at("12:00"))
		}
		h.set("armed", b2f(armed), at("12:00"))
		return h
	}
	t.Run("intrusion only when armed", func(t *testing.T) {
		h := start(t, false)
		h.set("p", 1, at("12:01"))
		h.set("p", 0, at("12:02"))
		require.Empty(t, h.take())
		h.set("armed", 1, at("12:03"))
		h.set("p", 1, at("12:04"))
		h.set("p", 1, at("12:04:01")) // still tripped: no repeat
		h.set("p", 0, at("12:05"))
		h.set("p", 1, at("12:06"))
		ev := h.takeEvents()
		require.Len(t, ev, 3)
		require.Equal(t, events.AreaArmed, ev[0].Kind)
		for _, e := range ev[1:] {
			require.Equal(t, events.Intrusion, e.Kind)
			require.Equal(t, events.Alarm, e.Severity)
			require.Equal(t, "pir", e.Subject)
			require.Equal(t, []string{"p"}, e.Points)
		}
	})
	t.Run("intrusion unknown armed state", func(t *testing.T) {
		h := start(t, true)
		h.fail("armed", at("12:01"))
		h.set("p", 1, at("12:02"))
		require.Empty(t, h.take())
	})
	t.Run("dual tech within", func(t *testing.T) {
		h := start(t, true)
		h.set("dp", 1, at("12:01"))
		h.set("dp", 0, at("12:01:02"))
		require.Empty(t, h.take(), "PIR alone")
		h.set("dm", 1, at("12:01:09"))
		require.Equal(t, []string{"12:01:09 intrusion alarm dual"}, h.take())
	})
	t.Run("dual tech outside", func(t *testing.T) {
		h := start(t, true)
		h.set("dp", 1, at("12:01"))
		h.set("dp", 0, at("12:01:02"))
		h.set("dm", 1, at("12:01:11"))
		require.Empty(t, h.take())
		h.set("dp", 1, at("12:01:15")) // microwave still active
		require.Equal(t, []string{"12:01:15 intrusion alarm dual"}, h.take())
	})
	t.Run("panic always critical", func(t *testing.T) {
		for _, armed := range []bool{false, true} {
			h := start(t, armed)
			h.set("pb", 1, at("12:01"))
			ev := h.takeEvents()
			require.Len(t, ev, 1)
			require.Equal(t, events.Panic, ev[0].Kind)
			require.Equal(t, events.Critical, ev[0].Severity)
		}
	})
	t.Run("a reading that is not a number", func(t *testing.T) {
		h := start(t, true)
		h.set("p", math.Inf(1), at("12:01"))
		require.Empty(t, h.take())
		require.Contains(t, h.m.Detectors()[0].Problem, "point p reads +Inf")
		h.set("p", 1, at("12:02"))
		require.Equal(t, []string{"12:02:00 intrusion alarm pir"}, h.take())
		require.Empty(t, h.m.Detectors()[0].Problem)
	})
}

func TestInvertedDetector(t *testing.T) {
	// A normally closed PIR loop reads 1 at rest.
	nc := DetectorSpec{ID: "nc", Kind: PIR, Point: "p", Invert: true, Area: "wing"}
	h := newHarness(t, detSpec(nc), at("12:00"))
	h.set("armed", 1, at("12:00"))
	h.set("p", 1, at("12:00"))
	h.set("p", 0, at("12:01"))
	require.Equal(t, []string{"12:01:00 intrusion alarm nc"}, h.take())
	_, err := NewMonitor("valby", detSpec(DetectorSpec{ID: "w", Kind: WaterFlow, Point: "f", Invert: true, Area: "wing"}), cph)
	require.ErrorContains(t, err, `detector "w": invert is not for water_flow`)
}

func TestLeak(t *testing.T) {
	water := DetectorSpec{ID: "water", Kind: WaterFlow, Point: "flow", Above: 0.5, Area: "wing"}
	start := func(t *testing.T, armed bool) *harness {
		h := newHarness(t, detSpec(water), at("18:00"))
		require.NoError(t, h.m.SetAreaWindows("wing", []Interval{iv("18:45", "21:15")}))
		h.set("flow", 0, at("18:00"))
		h.set("armed", b2f(armed), at("18:00"))
		h.take()
		return h
	}
	t.Run("night, armed, empty", func(t *testing.T) {
		h := start(t, true)
		h.set("armed", 0, at("18:45"))
		h.set("armed", 1, at("21:15:30"))
		h.take()
		h.set("flow", 0.4, at("+1 01:00")) // below the threshold
		h.set("flow", 3.2, at("+1 02:00"))
		ev := h.takeEvents()
		require.Len(t, ev, 1)
		require.Equal(t, events.Leak, ev[0].Kind)
		require.Equal(t, events.Alarm, ev[0].Severity)
		require.Equal(t, []string{"flow", "armed"}, ev[0].Points)
		h.set("flow", 2.0, at("+1 02:01"))
		require.Empty(t, h.take(), "once per leak")
		h.set("flow", 0, at("+1 02:30"))
		require.Equal(t, []string{"02:30:00 leak info water"}, h.take())
	})
	t.Run("not when disarmed", func(t *testing.T) {
		h := start(t, false)
		h.advance(at("21:30"))
		h.take()
		h.set("flow", 3, at("23:00"))
		require.Empty(t, h.take())
	})
	t.Run("not in the window", func(t *testing.T) {
		// Armed though booked (a mismatch), with water flowing: people.
		h := start(t, true)
		h.set("flow", 3, at("19:00"))
		for _, e := range h.takeEvents() {
			require.NotEqual(t, events.Leak, e.Kind)
		}
	})
	t.Run("flowing since the evening, raised at night", func(t *testing.T) {
		h := start(t, true)
		h.set("armed", 0, at("18:45"))
		h.set("armed", 1, at("21:15:30"))
		h.set("flow", 3, at("21:30"))
		h.take()
		h.advance(at("21:59"))
		require.Empty(t, h.take(), "not yet night")
		h.advance(at("23:00"))
		require.Equal(t, []string{"22:00:00 leak alarm water"}, h.take())
	})
}

func TestNightAcrossDST(t *testing.T) {
	a := &area{spec: AreaSpec{Night: &Night{From: clock("22:00"), To: clock("06:00")}}, loc: cph}
	// Copenhagen springs forward on 2026-03-29 at 02:00.
	before := time.Date(2026, 3, 28, 23, 0, 0, 0, cph)
	require.True(t, a.night(before))
	require.Equal(t, time.Date(2026, 3, 29, 22, 0, 0, 0, cph), a.nextNight(before))
	require.True(t, a.night(time.Date(2026, 3, 29, 3, 30, 0, 0, cph)))
	require.False(t, a.night(time.Date(2026, 3, 29, 6, 0, 0, 0, cph)))
	day := &area{spec: AreaSpec{Night: &Night{From: clock("01:00"), To: clock("05:00")}}, loc: cph}
	require.False(t, day.night(time.Date(2026, 3, 29, 0, 59, 0, 0, cph)))
	require.True(t, day.night(time.Date(2026, 3, 29, 1, 0, 0, 0, cph)))
	require.True(t, (&area{loc: cph}).night(before), "without a night, always")
}

// TestWeekDirect drives a direct-control area for a week the way the
// integrator does: Advance at Next, write the commands, and a panel that
// arms its exit delay after an arm pulse and disarms at once.
func TestWeekDirect(t *testing.T) {
	h := newHarness(t, Spec{Areas: []AreaSpec{directArea()}}, at("12:00"))
	var ws []Interval
	for d := range 7 {
		s := day.AddDays(d)
		ws = append(ws, Interval{clock("18:45").On(s, cph), clock("21:15").On(s, cph)})
	}
	require.NoError(t, h.m.SetAreaWindows("wing", ws))
	h.set("armed", 1, at("12:00"))
	type pending struct {
		at time.Time
		v  float64
	}
	var panel []pending
	end := at("12:00").AddDate(0, 0, 8)
	steps := 0
	for {
		steps++
		require.Less(t, steps, 1000)
		next := h.m.Next()
		for _, p := range panel {
			if next.IsZero() || p.at.Before(next) {
				next = p.at
			}
		}
		if next.IsZero() || next.After(end) {
			break
		}
		keep := panel[:0]
		for _, p := range panel {
			if p.at.Equal(next) {
				h.set("armed", p.v, p.at)
			} else {
				keep = append(keep, p)
			}
		}
		panel = keep
		h.step(next)
		for _, c := range h.cmds {
			switch {
			case c.Point == "arm_out" && c.Value == 1:
				panel = append(panel, pending{c.At.Add(30 * time.Second), 1})
			case c.Point == "disarm_out" && c.Value == 1:
				panel = append(panel, pending{c.At.Add(time.Second), 0})
			}
		}
		h.cmds = nil
	}
	var want []string
	for range 7 {
		want = append(want, "18:45:01 area_disarmed info wing", "21:15:30 area_armed info wing")
	}
	require.Equal(t, want, h.take(), "no mismatch, no failure all week")
}
