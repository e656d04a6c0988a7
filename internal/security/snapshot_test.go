package security

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// restarted snapshots h's monitor at a restart and returns a new monitor
// of the same spec restored from it and started at start, as the
// gateway does after a restart or a reload.
func restarted(t *testing.T, h *harness, d DoorSpec, start string) *harness {
	t.Helper()
	data, err := h.m.Snapshot()
	require.NoError(t, err)
	m, err := NewMonitor("valby", doorSpec(d), cph)
	require.NoError(t, err)
	require.NoError(t, m.Restore(data))
	n := &harness{t: t, m: m}
	n.advance(at(start))
	return n
}

func TestSnapshotKeepsHeldOpen(t *testing.T) {
	d := fullDoor()
	d.HeldOpenAfter = 3 * time.Minute
	h := locked(t, d)
	h.doorInputs(at("20:50"), false, false, true, false)
	h.advance(at("21:00"))
	require.Equal(t, []string{"20:50:00 door_opened info side", "20:53:00 door_held_open warning side"}, h.take())

	// Without the snapshot a restart takes the door as opened at the
	// restart and reports it held open again three minutes later.
	fresh, err := NewMonitor("valby", doorSpec(d), cph)
	require.NoError(t, err)
	f := &harness{t: t, m: fresh}
	f.advance(at("21:05"))
	f.set("grant", 0, at("21:05"))
	f.doorInputs(at("21:05"), false, false, true, false)
	f.advance(at("21:10"))
	require.Equal(t, []string{"21:08:00 door_held_open warning side"}, f.take())

	// With it, the door is still the one held open since 20:50.
	n := restarted(t, h, d, "21:05")
	n.set("grant", 0, at("21:05"))
	n.doorInputs(at("21:05"), false, false, true, false)
	n.advance(at("21:10"))
	require.Empty(t, n.take(), "nothing is reported again")
	st := n.door("side")
	require.True(t, st.HeldOpen)
	require.Equal(t, DoorOpen, st.State)
	require.True(t, at("20:50").Equal(st.Since), "open since %s", st.Since)
	n.doorInputs(at("21:12"), true, false, false, false)
	require.Equal(t, []string{"21:12:00 door_closed info side", "21:12:00 door_restored info side"}, n.take())
}

func TestSnapshotKeepsForced(t *testing.T) {
	h := locked(t, fullDoor())
	h.set("contact", 0, at("23:10"))
	h.set("contact2", 1, at("23:10"))
	h.advance(at("23:10:30"))
	require.Equal(t, []string{"23:10:00 door_opened info side", "23:10:02 door_forced alarm side"}, h.take())

	n := restarted(t, h, fullDoor(), "23:15")
	n.set("grant", 0, at("23:15"))
	n.doorInputs(at("23:15"), true, false, true, false)
	n.advance(at("23:20"))
	require.True(t, n.door("side").Forced, "a forced door stays raised across the restart, and is not raised twice")
	// Open since 23:10 by the snapshot: held open from 23:15, once.
	require.Equal(t, []string{"23:15:00 door_held_open warning side"}, n.take())
	n.doorInputs(at("23:21"), true, false, false, false)
	evs := n.takeEvents()
	require.Equal(t, []string{"23:21:00 door_closed info side", "23:21:00 door_restored info side", "23:21:00 door_restored info side"}, lines(evs))
	require.Contains(t, evs[1].Message, "no longer held open")
	require.Contains(t, evs[2].Message, "closed and locked again after being forced")
}

func TestSnapshotDoorChangedWhileDown(t *testing.T) {
	h := locked(t, fullDoor())
	h.advance(at("18:00"))
	n := restarted(t, h, fullDoor(), "19:00")
	// Found open at the restart: an opening nobody watched is reported,
	// and not judged as forced (no grant was seen, but the monitor did
	// not watch for one).
	n.set("grant", 0, at("19:00"))
	n.doorInputs(at("19:00"), false, false, true, false)
	n.advance(at("19:01"))
	require.Equal(t, []string{"19:00:00 door_opened info side"}, n.take())
	require.False(t, n.door("side").Forced)
	// The next opening is watched again.
	n.doorInputs(at("19:05"), true, false, false, false)
	n.doorInputs(at("19:10"), true, false, true, false)
	n.advance(at("19:11"))
	require.Equal(t, []string{
		"19:02:00 door_held_open warning side", // open since it was found at 19:00
		"19:05:00 door_closed info side", "19:05:00 door_restored info side",
		"19:10:00 door_opened info side", "19:10:02 door_forced alarm side",
	}, n.take())
}

func TestRestoreRefuses(t *testing.T) {
	h := locked(t, fullDoor())
	data, err := h.m.Snapshot()
	require.NoError(t, err)
	fresh := func() *Monitor {
		m, err := NewMonitor("valby", doorSpec(fullDoor()), cph)
		require.NoError(t, err)
		return m
	}
	var s map[string]any
	require.NoError(t, json.Unmarshal(data, &s))
	edit := func(f func(map[string]any)) []byte {
		var c map[string]any
		require.NoError(t, json.Unmarshal(data, &c))
		f(c)
		out, err := json.Marshal(c)
		require.NoError(t, err)
		return out
	}
	m := fresh()
	require.ErrorContains(t, m.Restore(edit(func(c map[string]any) { c["site"] = "other" })), `the snapshot is of site "other"`)
	require.ErrorContains(t, m.Restore(edit(func(c map[string]any) { c["version"] = 9 })), "snapshot version 9, want 1")
	require.ErrorContains(t, m.Restore(edit(func(c map[string]any) {
		c["doors"].(map[string]any)["side"].(map[string]any)["state"] = "ajar"
	})), `door "side" has unknown state "ajar"`)
	require.ErrorContains(t, m.Restore([]byte("{")), "restore security")
	require.Equal(t, DoorUnknown, m.Doors()[0].State, "a refused snapshot changes nothing")
	require.ErrorContains(t, h.m.Restore(data), "already started")

	// The snapshot holds judged doors only, and is stable.
	again, err := h.m.Snapshot()
	require.NoError(t, err)
	require.Equal(t, data, again)
	empty, err := fresh().Snapshot()
	require.NoError(t, err)
	require.NotContains(t, string(empty), "side")
}

// restartedWith snapshots h's monitor and returns a new monitor of spec
// restored from it, with the windows set as the gateway sets them after
// a restart, started at start.
func restartedWith(t *testing.T, h *harness, spec Spec, windows map[string][]Interval, start string) *harness {
	t.Helper()
	data, err := h.m.Snapshot()
	require.NoError(t, err)
	m, err := NewMonitor("valby", spec, cph)
	require.NoError(t, err)
	require.NoError(t, m.Restore(data))
	for id, ws := range windows {
		require.NoError(t, m.SetAreaWindows(id, ws))
	}
	n := &harness{t: t, m: m}
	n.advance(at(start))
	return n
}

func TestSnapshotKeepsAreaMismatch(t *testing.T) {
	spec := Spec{Areas: []AreaSpec{wingArea()}}
	wins := map[string][]Interval{"wing": {iv("18:45", "21:15")}}
	notArmed := func(t *testing.T) *harness {
		h := areaHarness(t, wingArea())
		h.set("armed", 0, at("18:45:02"))
		h.advance(at("21:30"))
		require.Equal(t, []string{"18:45:02 area_disarmed info wing", "21:20:30 area_mismatch warning wing"}, h.take())
		return h
	}
	t.Run("still not armed after the restart", func(t *testing.T) {
		n := restartedWith(t, notArmed(t), spec, wins, "21:40")
		n.set("armed", 0, at("21:40"))
		n.advance(at("22:30"))
		require.Empty(t, n.take(), "not raised again")
		require.Equal(t, NotArmed, n.area("wing").Mismatch)
		require.True(t, at("21:15:30").Equal(n.area("wing").MismatchSince))
		n.set("armed", 1, at("22:35"))
		evs := n.takeEvents()
		require.Equal(t, []string{"22:35:00 area_armed info wing", "22:35:00 area_mismatch info wing"}, lines(evs))
		require.Contains(t, evs[1].Message, "since 21:15:30")
	})
	t.Run("a window started meanwhile", func(t *testing.T) {
		later := map[string][]Interval{"wing": {iv("18:45", "21:15"), iv("22:00", "23:00")}}
		n := restartedWith(t, notArmed(t), spec, later, "22:10")
		evs := n.takeEvents()
		require.Equal(t, []string{"22:10:00 area_mismatch info wing"}, lines(evs))
		require.Contains(t, evs[0].Message, "a window started")
	})
}

func TestSnapshotKeepsLeak(t *testing.T) {
	water := DetectorSpec{ID: "water", Kind: WaterFlow, Point: "flow", Above: 0.5, Area: "wing"}
	h := newHarness(t, detSpec(water), at("18:00"))
	require.NoError(t, h.m.SetAreaWindows("wing", []Interval{iv("18:45", "21:15")}))
	h.set("flow", 0, at("18:00"))
	h.set("armed", 1, at("18:00"))
	h.set("armed", 0, at("18:45"))
	h.set("armed", 1, at("21:15:30"))
	h.set("flow", 3.2, at("+1 02:00"))
	require.Contains(t, h.take(), "02:00:00 leak alarm water")

	n := restartedWith(t, h, detSpec(water), map[string][]Interval{"wing": {iv("18:45", "21:15")}}, "+1 02:10")
	n.set("armed", 1, at("+1 02:10"))
	n.set("flow", 3.0, at("+1 02:10"))
	n.advance(at("+1 02:30"))
	require.Empty(t, n.take(), "the leak is not raised twice")
	n.set("flow", 0, at("+1 02:40"))
	require.Equal(t, []string{"02:40:00 leak info water"}, n.take())
}
