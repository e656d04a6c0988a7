package security

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func doorSpec(d DoorSpec) Spec {
	return Spec{Doors: []DoorSpec{d}, Areas: []AreaSpec{wingArea()}}
}

// TestTruthTable sets every combination of the four inputs and checks the
// derived state; the first five rows are DOMAIN.md's table.
func TestTruthTable(t *testing.T) {
	rows := []struct {
		name                       string
		bolt, handle, open, unlock bool
		want                       DoorState
		secured                    bool
	}{
		{"closed and locked", true, false, false, false, DoorLocked, true},
		{"door open", false, false, true, false, DoorOpen, false},
		{"unlocked with a key", false, false, false, false, DoorUnlockedKey, false},
		{"outside handle, access granted", false, true, false, true, DoorUnlockedGrant, false},
		{"inside handle, exit", false, true, false, false, DoorUnlockedExit, false},
		// The remaining combinations.
		{"open, handle pressed", false, true, true, false, DoorOpen, false},
		{"open, unlock on", false, false, true, true, DoorOpen, false},
		{"open, handle and unlock", false, true, true, true, DoorOpen, false},
		{"held unlocked by the system", false, false, false, true, DoorUnlockedSystem, false},
		{"locked, handle tried", true, true, false, false, DoorLocked, true},
		{"locked, unlock on, bolt not yet retracted", true, false, false, true, DoorLocked, true},
		{"locked, handle and unlock", true, true, false, true, DoorLocked, true},
		{"open with the bolt thrown", true, false, true, false, DoorOpen, false},
		{"open with the bolt thrown, handle", true, true, true, false, DoorOpen, false},
		{"open with the bolt thrown, unlock", true, false, true, true, DoorOpen, false},
		{"open with the bolt thrown, handle, unlock", true, true, true, true, DoorOpen, false},
	}
	seen := map[[4]bool]bool{}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			h := newHarness(t, doorSpec(fullDoor()), at("12:00"))
			h.set("grant", 0, at("12:00"))
			h.doorInputs(at("12:00"), r.bolt, r.handle, r.open, r.unlock)
			st := h.door("side")
			require.Equal(t, r.want, st.State)
			require.Equal(t, r.secured, st.Secured)
			require.Empty(t, h.take(), "the first readings only set the baseline")
			h.advance(at("12:00:01"))
			require.Empty(t, h.take())
			// A door first seen open with its deadbolt thrown is an
			// impossible combination once Settle has passed.
			h.advance(at("12:00:02"))
			if r.open && r.bolt {
				require.Equal(t, []string{"12:00:02 door_wire_fault alarm side"}, h.take())
				require.Contains(t, h.door("side").Fault, "deadbolt bolt reads thrown")
			} else {
				require.Empty(t, h.take())
			}
		})
		seen[[4]bool{r.bolt, r.handle, r.open, r.unlock}] = true
	}
	require.Len(t, seen, 16, "every combination is covered once")
}

// TestDoorWithoutDeadbolt covers the states of doors with fewer inputs.
func TestDoorWithoutDeadbolt(t *testing.T) {
	strike := DoorSpec{ID: "d", Space: "gym", Contact: &Input{Point: "c"}, Handle: &Input{Point: "h"}, Unlock: &Input{Point: "u"}}
	for _, r := range []struct {
		handle, open, unlock bool
		want                 DoorState
		secured              bool
	}{
		{false, false, false, DoorClosed, true},
		{false, true, false, DoorOpen, false},
		{true, false, false, DoorUnlockedExit, false},
		{false, false, true, DoorUnlockedSystem, false},
		{true, false, true, DoorUnlockedGrant, false},
	} {
		h := newHarness(t, Spec{Doors: []DoorSpec{strike}}, at("12:00"))
		h.set("c", b2f(r.open), at("12:00"))
		h.set("h", b2f(r.handle), at("12:00"))
		h.set("u", b2f(r.unlock), at("12:00"))
		st := h.door("d")
		require.Equal(t, r.want, st.State, "%+v", r)
		require.Equal(t, r.secured, st.Secured, "%+v", r)
	}
	// A contact-only door is closed or open.
	h := newHarness(t, Spec{Doors: []DoorSpec{{ID: "d", Space: "gym", Contact: &Input{Point: "c"}}}}, at("12:00"))
	h.set("c", 0, at("12:00"))
	require.Equal(t, DoorClosed, h.door("d").State)
	h.set("c", 1, at("12:01"))
	require.Equal(t, DoorOpen, h.door("d").State)
	h.advance(at("12:10"))
	require.Equal(t, []string{"12:01:00 door_opened info d", "12:03:00 door_held_open warning d"}, h.take(),
		"a contact-only door is never forced")
}

func TestInvertedInputs(t *testing.T) {
	inv := DoorSpec{ID: "d", Space: "gym",
		Deadbolt: &Input{Point: "b", Invert: true}, Handle: &Input{Point: "h", Invert: true},
		Contact: &Input{Point: "c", Invert: true}, Unlock: &Input{Point: "u", Invert: true}}
	h := newHarness(t, Spec{Doors: []DoorSpec{inv}}, at("12:00"))
	// Every point reads the opposite: bolt 0 = thrown, contact 1 = closed.
	h.set("b", 0, at("12:00"))
	h.set("h", 1, at("12:00"))
	h.set("c", 1, at("12:00"))
	h.set("u", 1, at("12:00"))
	require.Equal(t, DoorLocked, h.door("d").State)
	h.set("b", 1, at("12:00:01"))
	require.Equal(t, DoorUnlockedKey, h.door("d").State)
	h.set("c", 0, at("12:00:02"))
	require.Equal(t, DoorOpen, h.door("d").State)
	require.Equal(t, []string{"12:00:02 door_opened info d"}, h.take())
	// A value other than 0 is true, as the mapping documents: 2 is
	// closed for this inverted contact.
	h.set("c", 2, at("12:00:03"))
	require.Equal(t, DoorUnlockedKey, h.door("d").State)
	require.Equal(t, []string{"12:00:03 door_closed info d"}, h.take())
}

// locked returns a harness with fullDoor closed and locked at 12:00.
func locked(t *testing.T, d DoorSpec) *harness {
	h := newHarness(t, doorSpec(d), at("12:00"))
	h.set("grant", 0, at("12:00"))
	h.doorInputs(at("12:00"), true, false, false, false)
	require.Equal(t, DoorLocked, h.door("side").State)
	return h
}

func TestDoorSequences(t *testing.T) {
	t.Run("access grant", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("grant", 1, at("16:29:49"))
		h.set("unlock", 1, at("16:29:49"))
		h.set("bolt", 0, at("16:29:50"))
		h.set("handle", 1, at("16:29:50"))
		require.Equal(t, DoorUnlockedGrant, h.door("side").State)
		h.set("contact", 0, at("16:29:51"))
		h.set("contact2", 1, at("16:29:51"))
		h.set("handle", 0, at("16:29:52"))
		h.set("unlock", 0, at("16:29:54"))
		h.set("contact", 1, at("16:29:56"))
		h.set("contact2", 0, at("16:29:56"))
		h.set("bolt", 1, at("16:29:57"))
		h.advance(at("17:00"))
		require.Equal(t, []string{
			"16:29:49 access_granted info side",
			"16:29:51 door_opened info side",
			"16:29:56 door_closed info side",
		}, h.take())
		require.Equal(t, DoorLocked, h.door("side").State)
	})
	t.Run("key", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("bolt", 0, at("13:00"))
		require.Equal(t, DoorUnlockedKey, h.door("side").State)
		h.doorInputs(at("13:00:05"), false, false, true, false)
		h.advance(at("13:01"))
		require.Equal(t, []string{"13:00:05 door_opened info side"}, h.take())
	})
	t.Run("inside handle, bolt read after the contact", func(t *testing.T) {
		h := locked(t, fullDoor())
		// One poll delivers the contact before the deadbolt.
		h.set("handle", 1, at("13:00"))
		h.set("contact", 0, at("13:00"))
		h.set("contact2", 1, at("13:00"))
		h.set("bolt", 0, at("13:00:01"))
		h.advance(at("13:01"))
		require.Equal(t, []string{"13:00:00 door_opened info side"}, h.take())
	})
	t.Run("forced", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("contact", 0, at("23:10"))
		h.set("contact2", 1, at("23:10"))
		h.advance(at("23:11"))
		h.set("contact", 1, at("23:11:30"))
		h.set("contact2", 0, at("23:11:30"))
		h.advance(at("23:30"))
		require.Equal(t, []string{
			"23:10:00 door_opened info side",
			"23:10:02 door_forced alarm side",
			"23:11:30 door_closed info side",
			"23:11:30 door_restored info side",
		}, h.take())
	})
	t.Run("grant read after the opening", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("contact", 0, at("13:00"))
		h.set("contact2", 1, at("13:00"))
		h.set("grant", 1, at("13:00:01"))
		h.set("bolt", 0, at("13:00:01"))
		h.advance(at("13:01"))
		require.Equal(t, []string{"13:00:00 door_opened info side", "13:00:01 access_granted info side"}, h.take())
	})
	t.Run("grant too old", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("grant", 1, at("13:00"))
		h.set("contact", 0, at("13:00:11"))
		h.set("contact2", 1, at("13:00:11"))
		h.advance(at("13:00:13"))
		require.Equal(t, []string{
			"13:00:00 access_granted info side",
			"13:00:11 door_opened info side",
			// The grant was valid for 10s: the bolt stayed thrown and
			// the opening came 11s after the grant.
			"13:00:13 door_forced alarm side",
		}, h.take())
	})
	t.Run("authorised opening, bolt switch stuck", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("grant", 1, at("13:00"))
		h.set("contact", 0, at("13:00:02"))
		h.set("contact2", 1, at("13:00:02"))
		h.advance(at("13:00:10"))
		require.Equal(t, []string{
			"13:00:00 access_granted info side",
			"13:00:02 door_opened info side",
			"13:00:04 door_wire_fault alarm side",
		}, h.take())
	})
	strike := DoorSpec{ID: "side", Space: "gym", Contact: &Input{Point: "contact"}, Handle: &Input{Point: "handle"},
		Unlock: &Input{Point: "unlock"}, Reader: &Input{Point: "grant"}, GrantValid: 5 * time.Second}
	strikeHarness := func(t *testing.T) *harness {
		h := newHarness(t, Spec{Doors: []DoorSpec{strike}}, at("12:00"))
		for _, p := range []string{"contact", "handle", "unlock", "grant"} {
			h.set(p, 0, at("12:00"))
		}
		return h
	}
	t.Run("strike door exit", func(t *testing.T) {
		h := strikeHarness(t)
		h.set("handle", 1, at("13:00"))
		h.set("handle", 0, at("13:00:01"))
		h.set("contact", 1, at("13:00:03"))
		h.advance(at("13:01"))
		require.Equal(t, []string{"13:00:03 door_opened info side"}, h.take())
	})
	t.Run("strike door unlock pulse", func(t *testing.T) {
		h := strikeHarness(t)
		h.set("unlock", 1, at("13:00"))
		h.set("unlock", 0, at("13:00:03"))
		h.set("contact", 1, at("13:00:07"))
		h.advance(at("13:01"))
		require.Equal(t, []string{"13:00:07 door_opened info side"}, h.take(), "unlock was on 4s before: within grant_valid")
	})
	t.Run("strike door forced", func(t *testing.T) {
		h := strikeHarness(t)
		h.set("unlock", 1, at("13:00"))
		h.set("unlock", 0, at("13:00:01"))
		h.set("contact", 1, at("13:00:07"))
		h.advance(at("13:01"))
		h.set("contact", 0, at("13:02"))
		require.Equal(t, []string{
			"13:00:07 door_opened info side",
			"13:00:09 door_forced alarm side",
			"13:02:00 door_closed info side",
			"13:02:00 door_restored info side",
		}, h.take())
	})
}

func TestHeldOpen(t *testing.T) {
	d := fullDoor()
	d.HeldOpenAfter = 3 * time.Minute
	h := locked(t, d)
	h.doorInputs(at("20:50"), false, false, true, false)
	h.advance(at("20:52:59"))
	require.Equal(t, []string{"20:50:00 door_opened info side"}, h.take())
	h.advance(at("20:53"))
	require.Equal(t, []string{"20:53:00 door_held_open warning side"}, h.take())
	for _, s := range []string{"20:54", "21:00", "21:30"} {
		h.advance(at(s))
	}
	require.Empty(t, h.take(), "held open is reported once")
	require.True(t, h.door("side").HeldOpen)
	h.doorInputs(at("21:40"), false, false, false, false)
	require.Equal(t, []string{"21:40:00 door_closed info side", "21:40:00 door_restored info side"}, h.take())
	require.False(t, h.door("side").HeldOpen)
	// A late Advance reports the condition at the time it arose.
	h.doorInputs(at("22:00"), false, false, true, false)
	h.step(at("22:10"))
	ev := h.takeEvents()
	require.Len(t, ev, 2)
	require.Equal(t, at("22:03"), ev[1].Time)
	require.Contains(t, ev[1].Message, "open since 22:00:00")
}

func TestLeftUnlocked(t *testing.T) {
	start := func(t *testing.T) *harness {
		h := locked(t, fullDoor())
		require.NoError(t, h.m.SetSpaceWindows("gym", []Interval{iv("18:45", "21:15")}))
		return h
	}
	t.Run("after the last window", func(t *testing.T) {
		h := start(t)
		h.set("bolt", 0, at("18:50"))
		h.advance(at("21:29:59"))
		require.Empty(t, h.take(), "unlocked inside the window is fine")
		h.advance(at("21:31"))
		evs := h.takeEvents()
		require.Len(t, evs, 1)
		require.Equal(t, at("21:30"), evs[0].Time)
		require.Equal(t, "door_left_unlocked", string(evs[0].Kind))
		require.Contains(t, evs[0].Message, "since 18:50:00")
		require.Contains(t, evs[0].Message, "ended at 21:15:00")
		h.advance(at("23:00"))
		require.Empty(t, h.take())
		h.set("bolt", 1, at("23:05"))
		require.Equal(t, []string{"23:05:00 door_restored info side"}, h.take())
	})
	t.Run("unlocked at night", func(t *testing.T) {
		h := start(t)
		h.set("bolt", 0, at("23:00"))
		h.advance(at("23:14"))
		require.Empty(t, h.take(), "a caretaker has the grace too")
		h.advance(at("23:30"))
		require.Equal(t, []string{"23:15:00 door_left_unlocked warning side"}, h.take())
	})
	t.Run("locked again in time", func(t *testing.T) {
		h := start(t)
		h.set("bolt", 0, at("21:00"))
		h.set("bolt", 1, at("21:20"))
		h.advance(at("23:00"))
		require.Empty(t, h.take())
	})
	t.Run("a window starts", func(t *testing.T) {
		h := start(t)
		require.NoError(t, h.m.SetSpaceWindows("gym", []Interval{iv("18:45", "21:15"), iv("22:00", "23:00")}))
		h.set("bolt", 0, at("21:00"))
		h.advance(at("23:30"))
		require.Equal(t, []string{
			"21:30:00 door_left_unlocked warning side",
			"22:00:00 door_restored info side",
			"23:15:00 door_left_unlocked warning side",
		}, h.take())
	})
	t.Run("bookings change", func(t *testing.T) {
		h := start(t)
		h.set("bolt", 0, at("21:00"))
		h.advance(at("21:20"))
		// The booking is extended to 22:00 before the grace runs out.
		require.NoError(t, h.m.SetSpaceWindows("gym", []Interval{iv("18:45", "22:00")}))
		h.advance(at("22:14"))
		require.Empty(t, h.take())
		h.advance(at("22:16"))
		require.Equal(t, []string{"22:15:00 door_left_unlocked warning side"}, h.take())
	})
}

func TestWireFaults(t *testing.T) {
	t.Run("double loop disagreement", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("contact", 0, at("13:00")) // first loop reads open
		h.advance(at("13:00:01"))
		require.Equal(t, DoorLocked, h.door("side").State, "the door keeps its state while the loops settle")
		h.advance(at("13:00:05"))
		require.Equal(t, []string{"13:00:02 door_wire_fault alarm side"}, h.take())
		st := h.door("side")
		require.Contains(t, st.Fault, "contact loops disagree")
		h.set("contact", 1, at("13:01"))
		require.Equal(t, []string{"13:01:00 door_restored info side"}, h.take())
		require.Empty(t, h.door("side").Fault)
	})
	t.Run("loops agree within settle", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("bolt", 0, at("13:00"))
		h.set("contact", 0, at("13:00:01"))
		h.set("contact2", 1, at("13:00:02"))
		h.advance(at("13:01"))
		require.Equal(t, []string{"13:00:02 door_opened info side"}, h.take())
	})
	t.Run("reading not a number", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("handle", math.NaN(), at("13:00"))
		require.Equal(t, []string{"13:00:00 door_wire_fault alarm side"}, h.take())
		require.Equal(t, DoorUnknown, h.door("side").State)
		require.Contains(t, h.door("side").Fault, "handle handle reads NaN")
		h.set("handle", 0, at("13:05"))
		require.Equal(t, []string{"13:05:00 door_restored info side"}, h.take())
		require.Equal(t, DoorLocked, h.door("side").State)
	})
	t.Run("deadbolt thrown while open", func(t *testing.T) {
		h := locked(t, fullDoor())
		h.set("bolt", 0, at("13:00"))
		h.doorInputs(at("13:00:01"), false, false, true, false)
		h.set("bolt", 1, at("13:00:10"))
		h.advance(at("13:00:20"))
		require.Equal(t, []string{"13:00:01 door_opened info side", "13:00:12 door_wire_fault alarm side"}, h.take())
		h.doorInputs(at("13:01"), true, false, false, false)
		require.Equal(t, []string{"13:01:00 door_closed info side", "13:01:00 door_restored info side"}, h.take())
	})
}

func TestUnreadableInputs(t *testing.T) {
	d := fullDoor()
	h := locked(t, d)
	h.fail("contact", at("13:00"))
	st := h.door("side")
	require.Equal(t, DoorUnknown, st.State)
	require.Contains(t, st.Problem, "contact contact is unreadable")
	// The door opens while its contact cannot be read: nothing is judged.
	h.set("bolt", 0, at("13:00:30"))
	h.set("contact2", 1, at("13:01"))
	h.advance(at("13:10"))
	require.Empty(t, h.take())
	// Readable again: the opening is reported when seen, and held open
	// counts from then.
	h.set("contact", 0, at("13:10"))
	h.advance(at("13:12"))
	require.Equal(t, []string{"13:10:00 door_opened info side", "13:12:00 door_held_open warning side"}, h.take())
}

func TestAccessGrants(t *testing.T) {
	h := locked(t, fullDoor())
	ev := func() []string { return h.take() }
	h.set("grant", 1, at("13:00"))    // counter up
	h.set("grant", 1, at("13:00:05")) // unchanged: no grant
	h.set("grant", 4, at("13:01"))    // three missed: one event
	h.set("grant", 0, at("13:02"))    // counter reset, or a pulse ending
	h.set("grant", 1, at("13:03"))    // pulse
	h.fail("grant", at("13:04"))
	h.set("grant", 2, at("13:05")) // a rise across an unreadable gap
	require.Equal(t, []string{
		"13:00:00 access_granted info side",
		"13:01:00 access_granted info side",
		"13:03:00 access_granted info side",
		"13:05:00 access_granted info side",
	}, ev())
	e := h.m.Observe("grant", 3, true, at("13:06"))
	require.Len(t, e, 1)
	require.Equal(t, "gym", e[0].Space)
	require.Equal(t, []string{"grant"}, e[0].Points)
	require.Equal(t, "valby", e[0].Site)
}
