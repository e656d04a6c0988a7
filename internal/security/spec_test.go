package security

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSpecErrors(t *testing.T) {
	ok := func() Spec {
		return Spec{
			Doors:     []DoorSpec{fullDoor()},
			Detectors: []DetectorSpec{{ID: "pir", Kind: PIR, Point: "p", Area: "wing"}},
			Areas:     []AreaSpec{wingArea()},
		}
	}
	_, err := NewMonitor("valby", ok(), cph)
	require.NoError(t, err)

	for _, c := range []struct {
		name  string
		edit  func(*Spec)
		wants []string
	}{
		{"unknown area of a door", func(s *Spec) { s.Doors[0].Area = "nowhere" }, []string{`door "side": unknown area "nowhere"`}},
		{"detector without area", func(s *Spec) { s.Detectors[0].Area = "" }, []string{`detector "pir": area is required`}},
		{"detector in an unknown area", func(s *Spec) { s.Detectors[0].Area = "x" }, []string{`detector "pir": unknown area "x"`}},
		{"dual tech without point_b", func(s *Spec) { s.Detectors[0].Kind = DualTech }, []string{`detector "pir": dual_tech needs point_b`}},
		{"point_b on a pir", func(s *Spec) { s.Detectors[0].PointB = "q" }, []string{`detector "pir": point_b is only for dual_tech`}},
		{"within on a pir", func(s *Spec) { s.Detectors[0].Within = time.Second }, []string{`within is only for dual_tech`}},
		{"above on a pir", func(s *Spec) { s.Detectors[0].Above = 1 }, []string{`above is only for water_flow`}},
		{"unknown kind", func(s *Spec) { s.Detectors[0].Kind = "laser" }, []string{`detector "pir": kind "laser" is not one of contact, pir,`}},
		{"door without contact", func(s *Spec) { s.Doors[0].Contact = nil }, []string{`door "side": contact is required`, `contact_b needs contact`}},
		{"door without space", func(s *Spec) { s.Doors[0].Space = "" }, []string{`door "side": space is required`}},
		{"inverted reader", func(s *Spec) { s.Doors[0].Reader.Invert = true }, []string{`door "side": reader is a counter or pulse and cannot be inverted`}},
		{"negative duration", func(s *Spec) { s.Doors[0].HeldOpenAfter = -time.Second }, []string{`door "side": held_open_after -1s is negative`}},
		{"duplicate id", func(s *Spec) { s.Detectors[0].ID = "side" }, []string{`detector "side": id already used by a door`}},
		{"empty id", func(s *Spec) { s.Areas[0].ID = "" }, []string{`area without an id`}},
		{"area without armed", func(s *Spec) { s.Areas[0].Armed = nil }, []string{`area "wing": armed (the armed state read back from the panel) is required`}},
		{"direct without outputs", func(s *Spec) { s.Areas[0].Control = Direct }, []string{`area "wing": control direct needs direct.arm and direct.disarm`}},
		{"outputs with panel", func(s *Spec) { s.Areas[0].Direct = &DirectSpec{Arm: Output{"a"}, Disarm: Output{"b"}} }, []string{`only allowed with control: direct`}},
		{"bad control", func(s *Spec) { s.Areas[0].Control = "auto" }, []string{`area "wing": control "auto" is not panel or direct`}},
		{"night without length", func(s *Spec) { s.Areas[0].Night = &Night{From: clock("22:00"), To: clock("22:00")} }, []string{`night from 22:00 and to 22:00 must differ`}},
		{"one point in two roles of a door", func(s *Spec) { s.Doors[0].Handle.Point = "bolt" }, []string{`point "bolt" is used as door "side" deadbolt and as door "side" handle`}},
		{"a pir on a door contact", func(s *Spec) { s.Detectors[0].Point = "contact" }, []string{`point "contact" is used as door "side" contact and as detector "pir" point`}},
		{"an output read back as armed", func(s *Spec) {
			s.Areas[0].Control = Direct
			s.Areas[0].Direct = &DirectSpec{Arm: Output{"armed"}, Disarm: Output{"d"}}
		}, []string{`point "armed" is used as area "wing" armed and as area "wing" direct.arm`}},
		{"empty point", func(s *Spec) { s.Doors[0].Handle.Point = "" }, []string{`door "side" handle: point id is empty`}},
		{"several problems at once", func(s *Spec) {
			s.Doors[0].Area = "x"
			s.Detectors[0].Area = ""
		}, []string{`door "side": unknown area "x"`, `detector "pir": area is required`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := ok()
			// Deep enough a copy for the edits above.
			d := fullDoor()
			s.Doors[0] = d
			c.edit(&s)
			_, err := NewMonitor("valby", s, cph)
			require.Error(t, err)
			for _, w := range c.wants {
				require.Contains(t, err.Error(), w)
			}
			require.True(t, strings.HasPrefix(err.Error(), "security spec of site valby: "), err.Error())
		})
	}

	// Allowed sharing: a double door's reader and unlock output, and a
	// door contact that is also a contact detector.
	s := ok()
	d2 := fullDoor()
	d2.ID, d2.Deadbolt, d2.Handle, d2.Contact, d2.ContactB = "side2", nil, nil, &Input{Point: "c2"}, nil
	s.Doors = append(s.Doors, d2)
	s.Detectors = append(s.Detectors, DetectorSpec{ID: "dc", Kind: Contact, Point: "contact", Area: "wing"})
	m, err := NewMonitor("valby", s, cph)
	require.NoError(t, err)
	require.Equal(t, []string{"armed", "bolt", "c2", "contact", "contact2", "grant", "handle", "p", "unlock"}, m.Inputs())
	require.Equal(t, DefaultHeldOpenAfter, m.Spec().Doors[0].HeldOpenAfter)
	require.Equal(t, Panel, m.Spec().Areas[0].Control)

	_, err = NewMonitor("valby", ok(), nil)
	require.Error(t, err)
}

func TestSetWindowsErrors(t *testing.T) {
	m, err := NewMonitor("valby", Spec{Doors: []DoorSpec{fullDoor()}, Areas: []AreaSpec{wingArea()}}, cph)
	require.NoError(t, err)
	require.ErrorIs(t, m.SetAreaWindows("nope", nil), ErrUnknownArea)
	require.ErrorIs(t, m.SetSpaceWindows("nope", nil), ErrUnknownSpace)
	err = m.SetAreaWindows("wing", []Interval{iv("19:00", "18:00")})
	require.ErrorIs(t, err, ErrBadInterval)
	require.True(t, errors.Is(m.SetSpaceWindows("gym", []Interval{iv("19:00", "19:00")}), ErrBadInterval))
	require.Equal(t, []string{"gym"}, m.Spaces())
}

func TestWindows(t *testing.T) {
	w, err := newWindows([]Interval{iv("20:00", "21:00"), iv("18:00", "19:00"), iv("18:30", "19:30"), iv("19:30", "19:45")})
	require.NoError(t, err)
	require.Equal(t, []Interval{iv("18:00", "19:45"), iv("20:00", "21:00")}, w.w, "sorted, overlapping and touching merged")
	require.True(t, w.covered(at("18:00")))
	require.False(t, w.covered(at("19:45")), "half-open")
	require.Equal(t, at("19:45"), w.prevEnd(at("19:50")))
	require.Equal(t, at("20:00"), w.nextStart(at("19:50")))
	require.Equal(t, at("19:45"), w.nextBoundary(at("19:00")))
	// Left unlocked: grace 15m after the later of since and the window end.
	g := 15 * time.Minute
	require.Equal(t, at("17:15"), w.firstOutside(at("17:00"), at("17:00"), g))
	require.Equal(t, at("21:15"), w.firstOutside(at("17:50"), at("17:50"), g), "18:05 is in a window, 20:00 starts one")
	require.Equal(t, at("21:15"), w.firstOutside(at("19:00"), at("18:10"), g))
	require.Equal(t, at("19:50"), w.firstOutside(at("19:00"), at("18:10"), 5*time.Minute))
	require.True(t, w.firstOutside(at("22:00"), at("21:00"), g).IsZero(), "already holds")
	require.Equal(t, at("22:30"), w.firstOutside(at("22:00"), at("22:15"), g))
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3 * time.Minute: "3m", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 10 * time.Second: "10s",
		30*time.Second + time.Minute: "1m30s", 0: "0s",
	} {
		require.Equal(t, want, fmtDur(d))
	}
}
