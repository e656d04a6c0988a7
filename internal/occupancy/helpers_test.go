package occupancy

import (
	"testing"
	"time"
	_ "time/tzdata" // Europe/Copenhagen must resolve on bare machines.

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
)

var cph = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at parses "15:04", "15:04:05" on the reference Thursday (2026-11-26) or
// "2006-01-02 15:04" in Copenhagen.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if v, err := time.ParseInLocation(layout, s, cph); err == nil {
			return v
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if v, err := time.ParseInLocation("2006-01-02 "+layout, "2026-11-26 "+s, cph); err == nil {
			return v
		}
	}
	t.Fatalf("bad time %q", s)
	return time.Time{}
}

func f(v float64) *float64             { return &v }
func d(v time.Duration) *time.Duration { return &v }

// referenceSpec is the mapping of docs/occupancy.md: classroom 12 and 14
// share the wing's water meter; the pitch has card-enabled floodlights.
func referenceSpec() Spec {
	return Spec{Spaces: []SpaceSpec{
		{
			ID: "room12",
			Evidence: []EvidenceSpec{
				{Door: "room12_door"},
				{Point: "wing_b_water", Above: f(0.5)},
				{Point: "wing_b_pulses", Rise: f(5)},
				{Point: "room12_pir"},
				{Point: "room12_co2", Rise: f(150)},
			},
			NoShow: &NoShowSpec{Grace: 20 * time.Minute, Before: d(15 * time.Minute)},
		},
		{
			ID: "room14",
			Evidence: []EvidenceSpec{
				{Door: "room14_door"},
				{Point: "wing_b_water", Above: f(0.5)},
			},
			NoShow: &NoShowSpec{Grace: 20 * time.Minute},
		},
		{
			ID: "pitch",
			LightsByCard: &LightsSpec{
				Doors:   []string{"pitch_gate"},
				Buttons: []string{"pitch_button"},
				Points:  []string{"pitch_floodlight_enable"},
				Warning: &WarningSpec{Before: 5 * time.Minute, Blink: 3 * time.Second},
			},
		},
	}}
}

func newTracker(t testing.TB, spec Spec) *Tracker {
	t.Helper()
	tr, err := NewTracker("valby", spec, cph)
	require.NoError(t, err)
	return tr
}

func win(t testing.TB, booking, org, from, to string) Window {
	t.Helper()
	return Window{Start: at(t, from), End: at(t, to), Booking: booking, Organiser: org}
}

// kinds lists the kinds of events, to compare sequences briefly.
func kinds(es []events.Event) []events.Kind {
	var out []events.Kind
	for _, e := range es {
		out = append(out, e.Kind)
	}
	return out
}

// outcome is the judgement of one booking, "" when not judged.
func outcome(tr *Tracker, space, booking string) Outcome {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if r := tr.records[key{space, booking}]; r != nil {
		return r.Outcome
	}
	return ""
}
