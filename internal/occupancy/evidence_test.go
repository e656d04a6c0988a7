package occupancy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
)

// op is one input: a reading (point) or a grant (door).
type op struct {
	point string
	door  string
	v     float64
	bad   bool // ok false
	at    string
}

func read(point string, v float64, when string) op { return op{point: point, v: v, at: when} }
func grant(door, when string) op                   { return op{door: door, at: when} }

func apply(t *testing.T, tr *Tracker, ops []op) []events.Event {
	t.Helper()
	var out []events.Event
	for _, o := range ops {
		if o.door != "" {
			out = append(out, tr.Grant(o.door, at(t, o.at))...)
		} else {
			out = append(out, tr.Observe(o.point, o.v, !o.bad, at(t, o.at))...)
		}
	}
	return out
}

// TestEvidenceKinds judges the chess club's booking (19:00-21:00, grace
// 20 min, evidence from 18:45) with one evidence source at a time.
func TestEvidenceKinds(t *testing.T) {
	water := EvidenceSpec{Point: "water", Above: f(0.5)}
	pulses := EvidenceSpec{Point: "pulses", Rise: f(5)}
	co2 := EvidenceSpec{Point: "co2", Rise: f(150)}
	pir := EvidenceSpec{Point: "pir"}
	door := EvidenceSpec{Door: "door"}
	cases := []struct {
		name     string
		src      EvidenceSpec
		ops      []op
		shown    bool
		evidence string // time of the first evidence when shown
	}{
		{"flow above threshold", water, []op{read("water", 0, "18:00"), read("water", 0.8, "19:05"), read("water", 0, "19:06")}, true, "19:05"},
		{"flow at threshold is not above", water, []op{read("water", 0, "18:00"), read("water", 0.5, "19:05")}, false, ""},
		{"flow since before the range counts from its start", water, []op{read("water", 0.8, "18:00")}, true, "18:45"},
		{"flow that stopped before the range", water, []op{read("water", 0.8, "18:00"), read("water", 0, "18:30")}, false, ""},
		{"flow early inside the range", water, []op{read("water", 0, "18:00"), read("water", 1.2, "18:50"), read("water", 0, "18:52")}, true, "18:50"},
		{"flow reading of bad quality", water, []op{read("water", 0, "18:00"), {point: "water", v: 3, bad: true, at: "19:05"}}, false, ""},
		{"flow ended by a bad reading", water, []op{read("water", 0.8, "18:00"), {point: "water", bad: true, at: "18:30"}}, false, ""},
		{"counter rise", pulses, []op{read("pulses", 100, "18:40"), read("pulses", 103, "19:00"), read("pulses", 105, "19:10")}, true, "19:10"},
		{"counter rise too small", pulses, []op{read("pulses", 100, "18:40"), read("pulses", 104, "19:10")}, false, ""},
		{"counter rise before the range is the baseline", pulses, []op{read("pulses", 100, "18:30"), read("pulses", 110, "18:44"), read("pulses", 112, "19:10")}, false, ""},
		{"counter reset then rise", pulses, []op{read("pulses", 100, "18:40"), read("pulses", 2, "18:50"), read("pulses", 7, "19:05")}, true, "19:05"},
		{"counter without reading before the range", pulses, []op{read("pulses", 100, "18:50"), read("pulses", 105, "19:15")}, true, "19:15"},
		{"co2 rise", co2, []op{read("co2", 450, "18:30"), read("co2", 520, "19:05"), read("co2", 610, "19:15")}, true, "19:15"},
		{"co2 rise too small", co2, []op{read("co2", 450, "18:30"), read("co2", 560, "19:10")}, false, ""},
		{"co2 airing out is no rise", co2, []op{read("co2", 900, "18:30"), read("co2", 600, "19:00"), read("co2", 700, "19:15")}, false, ""},
		{"co2 rise over the low after airing", co2, []op{read("co2", 900, "18:30"), read("co2", 500, "19:00"), read("co2", 650, "19:15")}, true, "19:15"},
		{"pir motion", pir, []op{read("pir", 0, "18:00"), read("pir", 1, "19:05"), read("pir", 0, "19:05:30")}, true, "19:05"},
		{"pir motion before the range", pir, []op{read("pir", 1, "18:40"), read("pir", 0, "18:41")}, false, ""},
		{"pir still on from before the range", pir, []op{read("pir", 1, "18:40")}, true, "18:45"},
		{"pir bad quality", pir, []op{read("pir", 0, "18:00"), {point: "pir", v: 1, bad: true, at: "19:05"}}, false, ""},
		{"card at the door", door, []op{grant("door", "19:10")}, true, "19:10"},
		{"card early inside the range", door, []op{grant("door", "18:45")}, true, "18:45"},
		{"card before the range", door, []op{grant("door", "18:44")}, false, ""},
		{"card at another door", door, []op{grant("door2", "19:10")}, false, ""},
		{"evidence just before the deadline", door, []op{grant("door", "19:19:59")}, true, "19:19:59"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTracker(t, Spec{Spaces: []SpaceSpec{{ID: "room", Evidence: []EvidenceSpec{c.src}, NoShow: &NoShowSpec{Grace: 20 * time.Minute}}}})
			require.Empty(t, tr.Advance(at(t, "18:00")))
			require.NoError(t, tr.SetWindows("room", []Window{win(t, "leisure:chess", "chess", "19:00", "21:00")}))
			require.Empty(t, apply(t, tr, c.ops), "no event before a no-show")
			evs := tr.Advance(at(t, "19:20"))
			if c.shown {
				require.Empty(t, evs)
				require.Equal(t, OutcomeShown, outcome(tr, "room", "leisure:chess"))
				js := tr.Judgements(at(t, "00:00"), at(t, "23:59"))
				require.Len(t, js, 1)
				require.Equal(t, at(t, c.evidence), js[0].Evidence.Time)
				require.Equal(t, c.src.Kind(), js[0].Evidence.Kind)
				return
			}
			require.Equal(t, []events.Kind{events.NoShow}, kinds(evs))
			require.Equal(t, OutcomeNoShow, outcome(tr, "room", "leisure:chess"))
		})
	}
}

// TestEvidenceAtDeadlineIsLate: evidence stamped exactly at the deadline
// does not prevent the no-show, whichever comes first, but brings the
// space back at once.
func TestEvidenceAtDeadlineIsLate(t *testing.T) {
	for _, grantFirst := range []bool{true, false} {
		tr := newTracker(t, Spec{Spaces: []SpaceSpec{{ID: "room", Evidence: []EvidenceSpec{{Door: "door"}}, NoShow: &NoShowSpec{Grace: 20 * time.Minute}}}})
		tr.Advance(at(t, "18:00"))
		require.NoError(t, tr.SetWindows("room", []Window{win(t, "b", "chess", "19:00", "21:00")}))
		var evs []events.Event
		if grantFirst {
			evs = append(evs, tr.Grant("door", at(t, "19:20"))...)
			evs = append(evs, tr.Advance(at(t, "19:20"))...)
		} else {
			evs = append(evs, tr.Advance(at(t, "19:20"))...)
			evs = append(evs, tr.Grant("door", at(t, "19:20"))...)
		}
		require.Equal(t, []events.Kind{events.NoShow, events.InUse}, kinds(evs), "grant first %v", grantFirst)
		require.Equal(t, OutcomeLate, outcome(tr, "room", "b"))
	}
}

// TestSharedMeter: the wing's water meter is evidence for rooms 12 and 14.
func TestSharedMeter(t *testing.T) {
	tr := newTracker(t, referenceSpec())
	tr.Advance(at(t, "18:00"))
	require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess", "chess", "19:00", "21:00")}))
	require.NoError(t, tr.SetWindows("room14", []Window{win(t, "leisure:choir", "choir", "19:00", "20:00")}))
	require.Empty(t, tr.Observe("wing_b_water", 0, true, at(t, "18:00")))
	require.Empty(t, tr.Observe("wing_b_water", 1.5, true, at(t, "19:04")))
	require.Empty(t, tr.Observe("wing_b_water", 0, true, at(t, "19:05")))
	require.Empty(t, tr.Advance(at(t, "19:20")))
	require.Equal(t, OutcomeShown, outcome(tr, "room12", "leisure:chess"))
	require.Equal(t, OutcomeShown, outcome(tr, "room14", "leisure:choir"))

	// After a no-show in both, one flow brings both back.
	require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess2", "chess", "20:00", "21:00")}))
	require.NoError(t, tr.SetWindows("room14", []Window{win(t, "leisure:choir2", "choir", "20:00", "21:00")}))
	require.Equal(t, []events.Kind{events.NoShow, events.NoShow}, kinds(tr.Advance(at(t, "20:20"))))
	evs := tr.Observe("wing_b_water", 0.9, true, at(t, "20:30"))
	require.Equal(t, []events.Kind{events.InUse, events.InUse}, kinds(evs))
	require.Equal(t, "room12", evs[0].Space)
	require.Equal(t, "room14", evs[1].Space)
	require.Equal(t, "wing_b_water", evs[0].Subject)
	require.Equal(t, []string{"wing_b_water"}, evs[0].Points)
}

// TestButtonPress: a button enables lights on its rising edge only; a
// button already on when first read, or held on, does not.
func TestButtonPress(t *testing.T) {
	spec := Spec{Spaces: []SpaceSpec{{ID: "hall", LightsByCard: &LightsSpec{Buttons: []string{"btn"}, Points: []string{"hall_lights"}}}}}
	t.Run("press", func(t *testing.T) {
		tr := newTracker(t, spec)
		tr.Advance(at(t, "17:00"))
		require.NoError(t, tr.SetWindows("hall", []Window{win(t, "b", "club", "18:00", "20:00")}))
		require.Empty(t, tr.Observe("btn", 0, true, at(t, "17:00")))
		evs := tr.Observe("btn", 1, true, at(t, "18:10"))
		require.Equal(t, []events.Kind{events.LightsEnabled}, kinds(evs))
		require.Equal(t, "btn", evs[0].Subject)
		require.Equal(t, []string{"btn"}, evs[0].Points)
		require.Empty(t, tr.Observe("btn", 0, true, at(t, "18:10:01")))
		require.Empty(t, tr.Observe("btn", 1, true, at(t, "18:30")), "announced once")
	})
	t.Run("stuck on", func(t *testing.T) {
		tr := newTracker(t, spec)
		tr.Advance(at(t, "17:00"))
		require.NoError(t, tr.SetWindows("hall", []Window{win(t, "b", "club", "18:00", "20:00")}))
		require.Empty(t, tr.Observe("btn", 1, true, at(t, "17:00")))
		require.Empty(t, tr.Observe("btn", 1, true, at(t, "18:10")))
		require.Empty(t, tr.Advance(at(t, "18:30")))
		require.False(t, tr.State()[0].LightsOn)
	})
}
