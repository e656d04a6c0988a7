package security

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// referenceSpec is the security part of Valby Skole (DOMAIN.md section 5),
// as the mapping YAML in docs/security.md declares it.
func referenceSpec() Spec {
	return Spec{
		Doors: []DoorSpec{
			{
				ID: "gym_entrance", Name: "Gym entrance", Space: "gym", Area: "gym_wing",
				Deadbolt: &Input{Point: "gym_entrance_bolt"},
				Handle:   &Input{Point: "gym_entrance_handle"},
				Contact:  &Input{Point: "gym_entrance_contact", Invert: true},
				Unlock:   &Input{Point: "gym_entrance_unlock"},
				Reader:   &Input{Point: "gym_entrance_grant"},
			},
			{
				ID: "gym_side", Name: "Gym side door", Space: "gym", Area: "gym_wing",
				Deadbolt:          &Input{Point: "gym_side_bolt"},
				Handle:            &Input{Point: "gym_side_handle"},
				Contact:           &Input{Point: "gym_side_contact", Invert: true},
				ContactB:          &Input{Point: "gym_side_contact2"},
				Unlock:            &Input{Point: "gym_side_unlock"},
				Reader:            &Input{Point: "gym_side_grant"},
				HeldOpenAfter:     3 * time.Minute,
				GrantValid:        10 * time.Second,
				LeftUnlockedAfter: 15 * time.Minute,
			},
		},
		Detectors: []DetectorSpec{
			{ID: "gym_motion", Kind: DualTech, Point: "gym_pir", PointB: "gym_mw", Within: 10 * time.Second, Area: "gym_wing"},
			{ID: "gym_panic", Kind: PanicButton, Point: "gym_panic", Area: "gym_wing"},
			{ID: "water_main", Kind: WaterFlow, Point: "water_flow", Above: 0.5, Area: "gym_wing"},
		},
		Areas: []AreaSpec{{
			ID: "gym_wing", Name: "Gym wing", Armed: &Input{Point: "gym_wing_armed"},
			ExitDelay: 30 * time.Second, MismatchAfter: 5 * time.Minute,
			Night: &Night{From: clock("22:00"), To: clock("06:00")},
		}},
	}
}

// TestReferenceDay replays the security part of the reference Thursday:
// the gym wing disarmed at 18:45 for the volleyball club, due to re-arm at
// 21:15:30 after its exit delay with the side door propped open by a bin,
// the patrol round at 21:20, and water flowing at 02:00.
func TestReferenceDay(t *testing.T) {
	h := newHarness(t, referenceSpec(), at("17:00"))
	m := h.m
	window := []Interval{iv("18:45", "21:15")}
	require.NoError(t, m.SetAreaWindows("gym_wing", window))
	require.NoError(t, m.SetSpaceWindows("gym", window))

	// 17:00: everything closed, locked and armed; the first readings set
	// the baseline and raise nothing.
	for _, p := range []string{"gym_entrance", "gym_side"} {
		h.set(p+"_bolt", 1, at("17:00"))
		h.set(p+"_handle", 0, at("17:00"))
		h.set(p+"_contact", 1, at("17:00")) // NC loop: 1 = closed
		h.set(p+"_unlock", 0, at("17:00"))
		h.set(p+"_grant", 0, at("17:00"))
	}
	h.set("gym_side_contact2", 0, at("17:00"))
	for _, p := range []string{"gym_pir", "gym_mw", "gym_panic", "water_flow"} {
		h.set(p, 0, at("17:00"))
	}
	h.set("gym_wing_armed", 1, at("17:00"))
	require.Empty(t, h.take())

	// The panel disarms the wing on the schedule handed to it.
	h.advance(at("18:45:02"))
	h.set("gym_wing_armed", 0, at("18:45:02"))

	// 18:52: a member's card opens the entrance.
	h.set("gym_entrance_grant", 1, at("18:52"))
	h.set("gym_entrance_unlock", 1, at("18:52"))
	h.set("gym_entrance_bolt", 0, at("18:52:01"))
	h.set("gym_entrance_handle", 1, at("18:52:01"))
	h.set("gym_entrance_contact", 0, at("18:52:02"))
	h.set("gym_entrance_handle", 0, at("18:52:03"))
	h.set("gym_entrance_contact", 1, at("18:52:06"))
	h.set("gym_entrance_bolt", 1, at("18:52:07"))
	h.set("gym_entrance_unlock", 0, at("18:52:08"))

	// Volleyball: motion in the disarmed wing is no intrusion.
	h.set("gym_pir", 1, at("19:30"))
	h.set("gym_mw", 1, at("19:30:01"))
	h.set("gym_pir", 0, at("19:30:20"))
	h.set("gym_mw", 0, at("19:30:20"))

	// 20:50: the side door is opened from inside and propped with a bin.
	h.set("gym_side_handle", 1, at("20:49:58"))
	h.set("gym_side_bolt", 0, at("20:49:58"))
	h.set("gym_side_contact", 0, at("20:50"))
	h.set("gym_side_contact2", 1, at("20:50"))
	h.set("gym_side_handle", 0, at("20:50:01"))

	// The window ends at 21:15; the panel cannot arm over the open door.
	h.advance(at("21:20"))
	rep := m.Round(at("21:20"), []PointCheck{
		{Point: "gym_lights", Space: "gym", What: "light", Want: 0, Got: 0, OK: true},
		{Point: "gym_ahu_mode", Space: "gym", What: "hvac mode", Want: 0, Got: 0, OK: true},
	})
	h.events = append(h.events, rep.Events...)

	h.advance(at("21:44"))
	// 21:45: the guard removes the bin and locks the door; the panel
	// arms.
	h.set("gym_side_contact", 1, at("21:45"))
	h.set("gym_side_contact2", 0, at("21:45"))
	h.set("gym_side_bolt", 1, at("21:45:05"))
	h.set("gym_wing_armed", 1, at("21:46:00"))

	// Night: water flows at 02:00 in the armed, empty building.
	h.set("water_flow", 3.2, at("+1 02:00"))
	h.set("water_flow", 0, at("+1 02:40"))
	h.advance(at("+1 06:00"))

	evs := h.takeEvents()
	require.Equal(t, []string{
		"18:45:02 area_disarmed info gym_wing",
		"18:52:00 access_granted info gym_entrance",
		"18:52:02 door_opened info gym_entrance",
		"18:52:06 door_closed info gym_entrance",
		"20:50:00 door_opened info gym_side",
		"20:53:00 door_held_open warning gym_side",
		"21:15:30 area_arm_over_opening warning gym_side",
		"21:20:00 round_finding warning gym_side",
		"21:20:00 round_finding warning gym_wing",
		"21:20:00 round_done info ",
		"21:20:30 area_mismatch warning gym_wing",
		"21:30:00 door_left_unlocked warning gym_side",
		"21:45:00 door_closed info gym_side",
		"21:45:00 door_restored info gym_side",
		"21:45:05 door_restored info gym_side",
		"21:46:00 area_armed info gym_wing",
		"21:46:00 area_mismatch info gym_wing",
		"02:00:00 leak alarm water_main",
		"02:40:00 leak info water_main",
	}, lines(evs))
	require.Empty(t, h.takeCmds(), "under panel control the gateway writes nothing")

	// What people read.
	msgs := map[string]string{}
	for _, e := range evs {
		t.Logf("%s %-8s %-22s %s", e.Time.In(cph).Format("15:04:05"), e.Severity, e.Kind, e.Message)
		require.Equal(t, "valby", e.Site)
		require.NotEmpty(t, e.Message)
		msgs[string(e.Kind)+" "+e.Subject] += e.Message + "\n"
	}
	require.Contains(t, msgs["area_arm_over_opening gym_side"],
		"Gym wing (gym_wing) is due to arm at 21:15:30 over Gym side door (gym_side), which is open, deadbolt not thrown")
	require.Contains(t, msgs["round_finding gym_side"], "round: door gym_side: open, deadbolt not thrown, want closed and locked, since 20:49:58")
	require.Contains(t, msgs["round_finding gym_wing"], "round: area gym_wing: not armed, want armed, since 21:15:30")
	require.Contains(t, msgs["round_done "], "round of valby at 21:20:00: 8 checked, 2 findings")
	require.Contains(t, msgs["door_held_open gym_side"], "Gym side door (gym_side) held open: open since 20:50:00, longer than 3m")
	require.Contains(t, msgs["area_mismatch gym_wing"], "Gym wing (gym_wing) is not armed: it should have armed at 21:15:30")
	require.Contains(t, msgs["area_mismatch gym_wing"], "Gym wing (gym_wing): mismatch cleared (armed); it was not armed after its window since 21:15:30")
	require.Contains(t, msgs["door_left_unlocked gym_side"],
		"Gym side door (gym_side) left unlocked after the window of space gym ended at 21:15:00: open, deadbolt not thrown, not closed and locked since 20:49:58")
	require.Contains(t, msgs["leak water_main"], "leak cleared: water flow water_main stopped (0) in Gym wing (gym_wing)")
	require.Contains(t, msgs["leak water_main"], "leak: water flows (3.2, above 0.5) in Gym wing (gym_wing), armed and with no booking, at 02:00:00")

	// The round report itself.
	f := rep.Findings()
	require.Len(t, f, 2)
	require.Equal(t, CheckDoor, f[0].Kind)
	require.Equal(t, "gym_side", f[0].Subject)
	require.Equal(t, at("20:49:58"), f[0].Since)
	require.Contains(t, f[0].Note, "raised: held open")
	require.Equal(t, CheckArea, f[1].Kind)
	require.Equal(t, at("21:15:30"), f[1].Since)
	require.Len(t, rep.Checks, 8)
}
