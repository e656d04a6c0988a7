package security

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
)

func TestRound(t *testing.T) {
	spec := Spec{
		Doors: []DoorSpec{
			fullDoor(), // side, space gym
			{ID: "hall", Space: "hall", Area: "wing", Contact: &Input{Point: "hc"}, Deadbolt: &Input{Point: "hb"}},
			{ID: "shed", Space: "yard", Contact: &Input{Point: "sc"}},
			{ID: "store", Space: "yard", Contact: &Input{Point: "stc"}, Deadbolt: &Input{Point: "stb"}},
		},
		Detectors: []DetectorSpec{
			{ID: "pir", Kind: PIR, Point: "p", Area: "wing"},
			{ID: "glass", Kind: GlassBreak, Point: "g", Area: "other"},
		},
		Areas: []AreaSpec{wingArea(), {ID: "other", Armed: &Input{Point: "other_armed"}}},
	}
	h := newHarness(t, spec, at("18:00"))
	require.NoError(t, h.m.SetSpaceWindows("gym", []Interval{iv("18:00", "21:00")}))
	require.NoError(t, h.m.SetAreaWindows("wing", []Interval{iv("18:00", "21:00")}))
	h.set("grant", 0, at("18:00"))
	h.doorInputs(at("18:00"), false, false, true, false) // side open, in its window
	h.set("hc", 0, at("18:00"))
	h.set("hb", 1, at("18:00"))
	h.set("sc", 0, at("18:00")) // shed: closed, lock unmonitored
	h.set("stc", 0, at("18:00"))
	h.set("stb", 1, at("18:00"))
	h.set("p", 0, at("18:00"))
	h.set("g", 0, at("18:00"))
	h.set("armed", 0, at("18:00"))
	h.set("other_armed", 1, at("18:00"))
	h.fail("stb", at("18:10")) // store: deadbolt unreadable
	h.fail("g", at("18:20"))
	h.set("hb", 0, at("18:30")) // hall unlocked; the hall has no windows
	h.set("other_armed", 0, at("18:40"))
	h.advance(at("20:00"))

	points := []PointCheck{
		{Point: "lights", Space: "gym", What: "light", Want: 0, Got: 1, OK: true, Since: at("19:05")},
		{Point: "setpoint", Space: "gym", What: "setpoint", Want: 16, Tolerance: 0.5, Got: 16.3, OK: true},
		{Point: "ahu", Space: "gym", What: "hvac mode", Want: 0, OK: false},
	}
	rep := h.m.Round(at("20:00"), points)
	type row struct {
		subject string
		ok      bool
		got     string
		since   time.Time
		note    string
	}
	var got []row
	for _, c := range rep.Checks {
		got = append(got, row{c.Subject, c.OK, c.Got, c.Since, c.Note})
	}
	require.Equal(t, []row{
		{"side", true, "open, deadbolt not thrown", at("18:00"), "space gym is in a window until 21:00:00; raised: held open"},
		{"hall", false, "closed but unlocked (deadbolt not thrown)", at("18:30"), ""},
		{"shed", true, "closed", time.Time{}, "the lock is not monitored"},
		{"store", false, "in an unknown state (deadbolt stb is unreadable)", at("18:10"), ""},
		{"wing", true, "not armed", time.Time{}, "in a window until 21:00:00"},
		{"other", false, "not armed", at("18:40"), ""},
		{"pir", true, "readable", time.Time{}, ""},
		{"glass", false, "point g is unreadable", at("18:20"), ""},
		{"lights", false, "1", at("19:05"), "light"},
		{"setpoint", true, "16.3", time.Time{}, "setpoint"},
		{"ahu", false, "unreadable", time.Time{}, "hvac mode"},
	}, got)
	require.Len(t, rep.Findings(), 6)
	require.Len(t, rep.Events, 7)
	for _, e := range rep.Events[:6] {
		require.Equal(t, events.RoundFinding, e.Kind)
		require.Equal(t, events.Warning, e.Severity)
		require.Equal(t, at("20:00"), e.Time)
	}
	require.Equal(t, "hall", rep.Events[0].Space)
	require.Equal(t, "round: door hall: closed but unlocked (deadbolt not thrown), want closed and locked, since 18:30:00", rep.Events[0].Message)
	require.Equal(t, "round: point lights: 1, want 0, since 19:05:00 (light)", rep.Events[4].Message)
	require.Equal(t, events.RoundDone, rep.Events[6].Kind)
	require.Equal(t, "round of valby at 20:00:00: 11 checked, 6 findings", rep.Events[6].Message)

	// After the windows: the side door and the wing are findings; the
	// wing within its exit delay first.
	h.advance(at("21:00:10"))
	c := h.m.Round(at("21:00:10"), nil).Checks[4]
	require.True(t, c.OK)
	require.Equal(t, "arming: exit delay until 21:00:30", c.Note)
	h.advance(at("21:10"))
	rep = h.m.Round(at("21:10"), nil)
	require.False(t, rep.Checks[0].OK)
	require.Equal(t, at("18:00"), rep.Checks[0].Since)
	require.False(t, rep.Checks[4].OK)
	require.Equal(t, at("21:00:30"), rep.Checks[4].Since)
	require.Equal(t, "raised: not_armed", rep.Checks[4].Note)
	// A since on another day carries its date.
	h.advance(at("+1 01:00"))
	rep = h.m.Round(at("+1 01:00"), nil)
	require.Contains(t, rep.Events[0].Message, "since Thu 12 Mar 18:00:00")

	require.Equal(t, at("21:00"), h.m.LastWindowEnd(at("08:00")))
	require.True(t, h.m.LastWindowEnd(at("+1 08:00")).IsZero())
}

// TestRoundShowsValuesAsTheCallerFormats: a point check with Format
// shows its values in the point's own words (labels, units).
func TestRoundShowsValuesAsTheCallerFormats(t *testing.T) {
	labels := map[float64]string{1: "economy", 2: "comfort"}
	c := checkPoint(PointCheck{Point: "gym_ahu.mode", Space: "gym", Want: 1, Got: 2, OK: true,
		Format: func(v float64) string { return labels[v] }})
	require.False(t, c.OK)
	require.Equal(t, "economy", c.Want)
	require.Equal(t, "comfort", c.Got)
	c = checkPoint(PointCheck{Point: "gym_ahu.mode", Want: 1, Got: 2, OK: true})
	require.Equal(t, "1", c.Want, "without Format, the number")
}
