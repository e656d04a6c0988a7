package occupancy

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
)

func TestNewTrackerErrors(t *testing.T) {
	ok := func() SpaceSpec {
		return SpaceSpec{ID: "room12", Evidence: []EvidenceSpec{{Door: "d"}}, NoShow: &NoShowSpec{Grace: 20 * time.Minute}}
	}
	lightsOK := func() *LightsSpec {
		return &LightsSpec{Doors: []string{"gate"}, Points: []string{"flood"}, Warning: &WarningSpec{Before: 5 * time.Minute, Blink: 3 * time.Second}}
	}
	cases := []struct {
		name string
		edit func(s *SpaceSpec)
		want string
	}{
		{"empty id", func(s *SpaceSpec) { s.ID = "" }, "spaces[0]: id is empty"},
		{"nothing declared", func(s *SpaceSpec) { s.Evidence, s.NoShow = nil, nil }, `space "room12": declares no evidence`},
		{"neither door nor point", func(s *SpaceSpec) { s.Evidence = []EvidenceSpec{{}} }, `space "room12": evidence[0]: give door or point`},
		{"door and point", func(s *SpaceSpec) { s.Evidence = []EvidenceSpec{{Door: "d", Point: "p"}} }, "not both"},
		{"door with above", func(s *SpaceSpec) { s.Evidence = []EvidenceSpec{{Door: "d", Above: f(1)}} }, `door "d" takes no above or rise`},
		{"above and rise", func(s *SpaceSpec) { s.Evidence = []EvidenceSpec{{Point: "p", Above: f(1), Rise: f(2)}} }, "above or rise, not both"},
		{"rise zero", func(s *SpaceSpec) { s.Evidence = []EvidenceSpec{{Point: "p", Rise: f(0)}} }, "rise of point \"p\" must be a positive number"},
		{"above NaN", func(s *SpaceSpec) { s.Evidence = []EvidenceSpec{{Point: "p", Above: f(nan())}} }, "is not a number"},
		{"duplicate source", func(s *SpaceSpec) { s.Evidence = append(s.Evidence, EvidenceSpec{Door: "d"}) }, `card "d" listed twice`},
		{"no grace", func(s *SpaceSpec) { s.NoShow.Grace = 0 }, "grace must be positive"},
		{"negative before", func(s *SpaceSpec) { s.NoShow.Before = d(-time.Minute) }, "before must not be negative"},
		{"no-show without evidence", func(s *SpaceSpec) { s.Evidence = nil }, "no_show needs at least one evidence source"},
		{"lights without doors or buttons", func(s *SpaceSpec) { s.LightsByCard = lightsOK(); s.LightsByCard.Doors = nil }, "give doors or buttons"},
		{"lights without points", func(s *SpaceSpec) { s.LightsByCard = lightsOK(); s.LightsByCard.Points = nil }, "points lists no gated point"},
		{"lights duplicate point", func(s *SpaceSpec) {
			s.LightsByCard = lightsOK()
			s.LightsByCard.Points = []string{"flood", "flood"}
		}, `points lists "flood" twice`},
		{"blink not shorter", func(s *SpaceSpec) { s.LightsByCard = lightsOK(); s.LightsByCard.Warning.Blink = 5 * time.Minute }, "must be shorter than before"},
		{"warning zero", func(s *SpaceSpec) { s.LightsByCard = lightsOK(); s.LightsByCard.Warning.Before = 0 }, "must be positive"},
		{"negative early", func(s *SpaceSpec) { s.LightsByCard = lightsOK(); s.LightsByCard.Early = d(-time.Second) }, "early must not be negative"},
		{"gated point is evidence", func(s *SpaceSpec) {
			s.LightsByCard = lightsOK()
			s.Evidence = append(s.Evidence, EvidenceSpec{Point: "flood"})
		}, "would enable themselves"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok()
			c.edit(&s)
			_, err := NewTracker("valby", Spec{Spaces: []SpaceSpec{s}}, cph)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			require.Contains(t, err.Error(), `site "valby"`)
		})
	}
	t.Run("all errors at once", func(t *testing.T) {
		a, b := ok(), ok()
		a.NoShow.Grace = 0
		b.ID = "room14"
		b.Evidence = []EvidenceSpec{{}}
		_, err := NewTracker("valby", Spec{Spaces: []SpaceSpec{a, b, ok()}}, cph)
		require.Error(t, err)
		for _, want := range []string{`space "room12": no_show: grace`, `space "room14": evidence[0]`, `space "room12": declared twice`} {
			require.Contains(t, err.Error(), want)
		}
	})
	t.Run("no site, no zone", func(t *testing.T) {
		_, err := NewTracker("", Spec{Spaces: []SpaceSpec{ok()}}, nil)
		require.ErrorContains(t, err, "site id is empty")
		require.ErrorContains(t, err, "no time zone given")
	})
	t.Run("reference spec", func(t *testing.T) {
		tr := newTracker(t, referenceSpec())
		require.Equal(t, []string{"pitch_button", "room12_co2", "room12_pir", "wing_b_pulses", "wing_b_water"}, tr.Inputs())
		require.Equal(t, []string{"pitch_gate", "room12_door", "room14_door"}, tr.Doors())
	})
}

func nan() float64 {
	z := 0.0
	return z / z
}

func TestSetWindowsErrors(t *testing.T) {
	tr := newTracker(t, referenceSpec())
	require.ErrorContains(t, tr.SetWindows("gym", nil), `unknown space "gym"`)
	err := tr.SetWindows("room12", []Window{
		{Booking: "", Start: at(t, "19:00"), End: at(t, "20:00")},
		{Booking: "a", Start: at(t, "19:00"), End: at(t, "19:00")},
		{Booking: "b", End: at(t, "19:00")},
		{Booking: "c", Start: at(t, "19:00"), End: at(t, "20:00")},
		{Booking: "c", Start: at(t, "19:00"), End: at(t, "20:00")},
	})
	for _, want := range []string{"window 0 has no booking id", `booking "a" ends`, `booking "b" has no valid start`, `booking "c" given twice`} {
		require.ErrorContains(t, err, want)
	}
	require.Empty(t, tr.State()[0].Booking, "nothing set on error")
	// Garbage input is ignored, not a crash.
	require.Empty(t, tr.Observe("room12_pir", 1, true, time.Time{}))
	require.Empty(t, tr.Observe("unknown", 1, true, at(t, "19:00")))
	require.Empty(t, tr.Grant("unknown", at(t, "19:00")))
	require.Empty(t, tr.Observe("room12_pir", 1, true, time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)))
	_, err = tr.Snapshot()
	require.NoError(t, err)
}

// chess sets up the chess club's booking of room 12 on the reference
// Thursday, watched from 18:00.
func chess(t *testing.T) *Tracker {
	t.Helper()
	tr := newTracker(t, referenceSpec())
	require.Empty(t, tr.Advance(at(t, "18:00")))
	require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess", "19:00", "21:00")}))
	return tr
}

func noShowAdjustments(tr *Tracker) []Adjustment {
	var out []Adjustment
	for _, a := range tr.Adjustments() {
		if a.Cause == CauseNoShow {
			out = append(out, a)
		}
	}
	return out
}

// TestNoShowAtGrace: nothing before the deadline, one no_show at it, and
// never again.
func TestNoShowAtGrace(t *testing.T) {
	tr := chess(t)
	require.Equal(t, at(t, "19:20"), tr.Next())
	require.Empty(t, tr.Advance(at(t, "19:19:59")))
	require.Empty(t, noShowAdjustments(tr))
	evs := tr.Advance(at(t, "19:20"))
	require.Equal(t, []events.Kind{events.NoShow}, kinds(evs))
	require.True(t, tr.Next().IsZero())
	require.Empty(t, tr.Advance(at(t, "19:21")))
	require.Empty(t, tr.Advance(at(t, "21:30")))
	require.Len(t, noShowAdjustments(tr), 1)
}

// TestNoShowJudgedLate: Advance coming after the deadline still stamps the
// no-show with the deadline.
func TestNoShowJudgedLate(t *testing.T) {
	tr := chess(t)
	evs := tr.Advance(at(t, "19:23:10"))
	require.Equal(t, []events.Kind{events.NoShow}, kinds(evs))
	require.Equal(t, at(t, "19:20"), evs[0].Time)
}

// TestLateEvidence: evidence after the no-show sends in_use and lifts the
// release; the report counts it as late.
func TestLateEvidence(t *testing.T) {
	tr := chess(t)
	require.Len(t, tr.Advance(at(t, "19:20")), 1)
	require.True(t, tr.State()[0].NoShow)
	require.False(t, tr.State()[0].InUse)
	rev := tr.Revision()
	evs := tr.Grant("room12_door", at(t, "19:41"))
	require.Len(t, evs, 1)
	e := evs[0]
	require.Equal(t, events.InUse, e.Kind)
	require.Equal(t, at(t, "19:41"), e.Time)
	require.Equal(t, "room12", e.Space)
	require.Equal(t, "room12_door", e.Subject)
	require.Empty(t, e.Points)
	require.Equal(t, "leisure:chess-0412", e.Booking)
	require.Equal(t, "org-chess", e.Organiser)
	require.Greater(t, tr.Revision(), rev)
	require.Empty(t, noShowAdjustments(tr))
	require.Equal(t, OutcomeLate, outcome(tr, "room12", "leisure:chess-0412"))
	tr.Advance(at(t, "19:45"))
	st := tr.State()[0]
	require.True(t, st.InUse)
	require.False(t, st.NoShow)
	require.Equal(t, &Evidence{Time: at(t, "19:41"), Kind: KindCard, Source: "room12_door"}, st.LastEvidence)
	require.Empty(t, tr.Grant("room12_door", at(t, "19:50")), "in_use once")
	require.Equal(t, []ReportRow{{Organiser: "org-chess", Bookings: 1, Late: 1}}, tr.Report(at(t, "00:00"), at(t, "23:59")))
}

// TestDelayedReading: a reading stamped before the deadline that arrives
// after the no-show shows the no-show was wrong.
func TestDelayedReading(t *testing.T) {
	tr := chess(t)
	require.Empty(t, tr.Observe("room12_pir", 0, true, at(t, "18:00")))
	require.Len(t, tr.Advance(at(t, "19:20")), 1)
	evs := tr.Observe("room12_pir", 1, true, at(t, "19:10"))
	require.Equal(t, []events.Kind{events.InUse}, kinds(evs))
	require.Equal(t, []string{"room12_pir"}, evs[0].Points)
	require.Equal(t, OutcomeShown, outcome(tr, "room12", "leisure:chess-0412"))
	require.Empty(t, noShowAdjustments(tr))
	require.Equal(t, []ReportRow{{Organiser: "org-chess", Bookings: 1}}, tr.Report(at(t, "00:00"), at(t, "23:59")))
}

// TestMovedBooking: deadlines follow a moved or cancelled booking.
func TestMovedBooking(t *testing.T) {
	t.Run("moved before the deadline", func(t *testing.T) {
		tr := chess(t)
		require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess", "19:30", "21:00")}))
		require.Equal(t, at(t, "19:50"), tr.Next())
		require.Empty(t, tr.Advance(at(t, "19:20")))
		evs := tr.Advance(at(t, "19:50"))
		require.Equal(t, []events.Kind{events.NoShow}, kinds(evs))
		require.Equal(t, at(t, "19:50"), evs[0].Time)
	})
	t.Run("moved after the no-show", func(t *testing.T) {
		tr := chess(t)
		require.Len(t, tr.Advance(at(t, "19:20")), 1)
		require.Len(t, noShowAdjustments(tr), 1)
		require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess", "20:00", "21:00")}))
		require.Empty(t, noShowAdjustments(tr), "the release went with the old times")
		require.Empty(t, tr.Report(at(t, "00:00"), at(t, "23:59")), "not judged at its new times yet")
		require.Equal(t, at(t, "20:20"), tr.Next())
		require.Empty(t, tr.Advance(at(t, "20:19")))
		require.Equal(t, []events.Kind{events.NoShow}, kinds(tr.Advance(at(t, "20:20"))))
		adj := noShowAdjustments(tr)
		require.Len(t, adj, 1)
		require.Equal(t, at(t, "20:20"), adj[0].From)
		require.Equal(t, at(t, "21:00"), adj[0].To)
	})
	t.Run("end moved after the no-show", func(t *testing.T) {
		tr := chess(t)
		require.Len(t, tr.Advance(at(t, "19:20")), 1)
		require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess", "19:00", "22:00")}))
		evs := tr.Advance(at(t, "19:21"))
		require.Equal(t, []events.Kind{events.NoShow}, kinds(evs), "judged again at its new times")
		require.Equal(t, at(t, "22:00"), noShowAdjustments(tr)[0].To)
	})
	t.Run("cancelled before the deadline", func(t *testing.T) {
		tr := chess(t)
		require.NoError(t, tr.SetWindows("room12", nil))
		require.True(t, tr.Next().IsZero())
		require.Empty(t, tr.Advance(at(t, "19:20")))
		require.Empty(t, tr.Report(at(t, "00:00"), at(t, "23:59")))
	})
	t.Run("cancelled after the no-show", func(t *testing.T) {
		tr := chess(t)
		require.Len(t, tr.Advance(at(t, "19:20")), 1)
		require.NoError(t, tr.SetWindows("room12", nil))
		require.Equal(t, []ReportRow{{Organiser: "org-chess", Bookings: 1, NoShows: 1, Rate: 1}}, tr.Report(at(t, "00:00"), at(t, "23:59")))
	})
	t.Run("organiser corrected", func(t *testing.T) {
		tr := chess(t)
		require.Len(t, tr.Advance(at(t, "19:20")), 1)
		require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess2", "19:00", "21:00")}))
		require.Empty(t, tr.Advance(at(t, "19:21")))
		require.Equal(t, "org-chess2", tr.Report(at(t, "00:00"), at(t, "23:59"))[0].Organiser)
	})
}

// TestCoverage: a tracker that was not watching the whole evidence range
// does not call a booking a no-show, but evidence still counts.
func TestCoverage(t *testing.T) {
	t.Run("started during the range", func(t *testing.T) {
		tr := newTracker(t, referenceSpec())
		require.NoError(t, tr.SetWindows("room12", []Window{win(t, "b1", "chess", "19:00", "21:00")}))
		require.NoError(t, tr.SetWindows("room14", []Window{win(t, "b2", "choir", "19:00", "21:00")}))
		require.Empty(t, tr.Grant("room14_door", at(t, "19:05")))
		require.Empty(t, tr.Advance(at(t, "19:10")))
		require.Empty(t, tr.Advance(at(t, "19:20")))
		require.Equal(t, OutcomeUnjudged, outcome(tr, "room12", "b1"))
		require.Equal(t, OutcomeShown, outcome(tr, "room14", "b2"))
		require.Empty(t, noShowAdjustments(tr))
		require.Equal(t, []ReportRow{{Organiser: "chess", Unjudged: 1}, {Organiser: "choir", Bookings: 1}}, tr.Report(at(t, "00:00"), at(t, "23:59")))
	})
	t.Run("booking set long after it ended", func(t *testing.T) {
		tr := newTracker(t, referenceSpec())
		tr.Advance(at(t, "2026-11-20 08:00"))
		require.NoError(t, tr.SetWindows("room12", []Window{win(t, "old", "chess", "2026-11-20 09:00", "2026-11-20 10:00")}))
		require.Empty(t, tr.Advance(at(t, "2026-11-26 12:00")))
		require.Equal(t, OutcomeUnjudged, outcome(tr, "room12", "old"), "its range is beyond the history")
	})
}

// TestReferenceDay is DOMAIN.md section 5: the chess club does not come
// to classroom 12; the football club lights the pitch with a card.
func TestReferenceDay(t *testing.T) {
	tr := newTracker(t, referenceSpec())
	require.Empty(t, tr.Advance(at(t, "17:00")))
	require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess", "19:00", "21:00")}))
	require.NoError(t, tr.SetWindows("pitch", []Window{win(t, "leisure:football-0412", "org-valby-bk", "18:00", "20:00")}))
	// The wing's inputs are read all evening and show nobody.
	require.Empty(t, tr.Observe("wing_b_water", 0, true, at(t, "17:00")))
	require.Empty(t, tr.Observe("wing_b_pulses", 48211, true, at(t, "17:00")))
	require.Empty(t, tr.Observe("room12_pir", 0, true, at(t, "17:00")))
	require.Empty(t, tr.Observe("room12_co2", 430, true, at(t, "17:00")))
	require.Empty(t, tr.Observe("room12_co2", 425, true, at(t, "19:10")))
	require.Empty(t, tr.Observe("pitch_button", 0, true, at(t, "17:00")))

	flood := func(from, to string, c Cause, booking, reason string) Adjustment {
		a := Adjustment{Space: "pitch", Point: "pitch_floodlight_enable", Vacant: true, Cause: c, Booking: booking, Reason: reason}
		if from != "" {
			a.From = at(t, from)
		}
		if to != "" {
			a.To = at(t, to)
		}
		return a
	}
	outside := func(from, to string) Adjustment {
		return flood(from, to, CauseLightsOutside, "", "lights only inside a booking")
	}
	football := "leisure:football-0412"

	// Before the card: the floodlights are held off all through the
	// booking and outside it.
	beforeCard := []Adjustment{
		outside("", "18:00"),
		flood("18:00", "20:00", CauseLightsWait, football, "lights of booking leisure:football-0412 wait for a card"),
		outside("20:00", ""),
	}
	require.Equal(t, beforeCard, tr.Adjustments())
	require.Equal(t, at(t, "19:20"), tr.Next())
	require.Empty(t, tr.Advance(at(t, "18:00")))
	require.Empty(t, tr.Advance(at(t, "18:02")))
	require.Equal(t, beforeCard, tr.Adjustments(), "no adjustment lifts before the card")
	require.False(t, tr.State()[2].LightsOn)

	// 18:03: a member's card at the pitch gate.
	evs := tr.Grant("pitch_gate", at(t, "18:03"))
	require.Equal(t, []events.Event{{
		Time: at(t, "18:03"), Site: "valby", Space: "pitch", Kind: events.LightsEnabled, Severity: events.Info,
		Subject: "pitch_gate", Booking: football, Organiser: "org-valby-bk",
		Message: "pitch_floodlight_enable enabled by pitch_gate at 18:03 until 20:00",
	}}, evs)
	afterCard := []Adjustment{
		outside("", "18:00"),
		flood("18:00", "18:03", CauseLightsWait, football, "lights of booking leisure:football-0412 waited for a card until 18:03"),
		flood("19:55", "19:55:03", CauseLightsBlink, football, "warning blink before the end of booking leisure:football-0412"),
		outside("20:00", ""),
	}
	require.Equal(t, afterCard, tr.Adjustments())
	require.Empty(t, tr.Grant("pitch_gate", at(t, "18:20")), "enabled once")
	tr.Advance(at(t, "18:30"))
	require.True(t, tr.State()[2].LightsOn)

	// 19:20: the chess club's no-show.
	require.Equal(t, at(t, "19:20"), tr.Next())
	require.Empty(t, tr.Advance(at(t, "19:19:59")))
	evs = tr.Advance(at(t, "19:20"))
	require.Equal(t, []events.Event{{
		Time: at(t, "19:20"), Site: "valby", Space: "room12", Kind: events.NoShow, Severity: events.Info,
		Points:  []string{"wing_b_water", "wing_b_pulses", "room12_pir", "room12_co2"},
		Booking: "leisure:chess-0412", Organiser: "org-chess",
		Message: "no-show in room12: no evidence from room12_door (card), wing_b_water (above 0.5), wing_b_pulses (rise 5), room12_pir (on), room12_co2 (rise 150) between 18:45 and 19:20 (booking 19:00-21:00); released until the end",
	}}, evs)
	release := Adjustment{Space: "room12", From: at(t, "19:20"), To: at(t, "21:00"), Vacant: true, Cause: CauseNoShow,
		Booking: "leisure:chess-0412", Reason: "no-show of booking leisure:chess-0412 (org org-chess)"}
	require.Equal(t, append(afterCard, release), tr.Adjustments())
	st := tr.State()[0]
	require.Equal(t, SpaceState{Space: "room12", Booking: "leisure:chess-0412", Organiser: "org-chess", Start: at(t, "19:00"), End: at(t, "21:00"), NoShow: true}, st)

	// 19:55: the warning blink, 3 s.
	require.Equal(t, at(t, "19:55"), tr.Next())
	require.Empty(t, tr.Advance(at(t, "19:54:59")))
	evs = tr.Advance(at(t, "19:55"))
	require.Equal(t, []events.Event{{
		Time: at(t, "19:55"), Site: "valby", Space: "pitch", Kind: events.LightsWarning, Severity: events.Info,
		Booking: football, Organiser: "org-valby-bk",
		Message: "pitch_floodlight_enable blink for 3s: off at 20:00",
	}}, evs)
	require.False(t, tr.State()[2].LightsOn, "blinking")
	tr.Advance(at(t, "19:55:03"))
	require.True(t, tr.State()[2].LightsOn, "back on until the end")
	require.True(t, tr.Next().IsZero())

	// 20:00: off; a card after the booking enables nothing.
	require.Empty(t, tr.Advance(at(t, "20:00")))
	require.False(t, tr.State()[2].LightsOn)
	require.Empty(t, tr.Grant("pitch_gate", at(t, "20:30")))
	require.Empty(t, tr.Observe("pitch_button", 1, true, at(t, "20:31")))
	require.Equal(t, append(afterCard, release), tr.Adjustments())

	// The booking office's report.
	require.Equal(t, []ReportRow{{Organiser: "org-chess", Bookings: 1, NoShows: 1, Rate: 1}}, tr.Report(at(t, "00:00"), at(t, "23:59")))
	js := tr.Judgements(at(t, "00:00"), at(t, "23:59"))
	require.Equal(t, []Judgement{{Space: "room12", Booking: "leisure:chess-0412", Organiser: "org-chess",
		Start: at(t, "19:00"), End: at(t, "21:00"), Deadline: at(t, "19:20"), Outcome: OutcomeNoShow}}, js)
}

// pitch sets up the football club's booking with the reference lights.
func pitch(t *testing.T, ws ...Window) *Tracker {
	t.Helper()
	tr := newTracker(t, referenceSpec())
	tr.Advance(at(t, "17:00"))
	require.Empty(t, tr.Observe("pitch_button", 0, true, at(t, "17:00")))
	require.NoError(t, tr.SetWindows("pitch", ws))
	return tr
}

func lightsOn(tr *Tracker, when time.Time) bool {
	for _, a := range tr.Adjustments() {
		if a.Space == "pitch" && a.Applies("pitch_floodlight_enable", when) {
			return false
		}
	}
	return true
}

// TestNeverLightOutsideBooking: whatever cards come, the floodlights are
// never on outside a booking.
func TestNeverLightOutsideBooking(t *testing.T) {
	t.Run("cards outside any booking", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		var evs []events.Event
		for _, c := range []string{"12:00", "17:49:59", "20:00", "23:00"} {
			evs = append(evs, tr.Grant("pitch_gate", at(t, c))...)
			evs = append(evs, tr.Advance(at(t, c))...)
		}
		require.Empty(t, evs)
		for m := at(t, "12:00"); m.Before(at(t, "23:59")); m = m.Add(time.Minute) {
			require.False(t, lightsOn(tr, m), "%s", m)
		}
	})
	t.Run("early card lights at the start", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		require.Empty(t, tr.Grant("pitch_gate", at(t, "17:50")), "nothing switches on before the start")
		require.Equal(t, at(t, "18:00"), tr.Next())
		require.False(t, lightsOn(tr, at(t, "17:59:59")))
		require.True(t, lightsOn(tr, at(t, "18:00")))
		require.False(t, lightsOn(tr, at(t, "20:00")))
		evs := tr.Advance(at(t, "18:00"))
		require.Equal(t, []events.Kind{events.LightsEnabled}, kinds(evs))
		require.Equal(t, at(t, "18:00"), evs[0].Time)
	})
	t.Run("no card no light", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		require.Empty(t, tr.Advance(at(t, "21:00")))
		for m := at(t, "17:00"); m.Before(at(t, "21:00")); m = m.Add(time.Minute) {
			require.False(t, lightsOn(tr, m))
		}
	})
	t.Run("no bookings at all", func(t *testing.T) {
		tr := pitch(t)
		require.Empty(t, tr.Grant("pitch_gate", at(t, "18:00")))
		require.False(t, lightsOn(tr, at(t, "18:00")))
		require.False(t, lightsOn(tr, time.Time{}))
		require.False(t, lightsOn(tr, at(t, "2030-01-01 12:00")))
	})
	t.Run("back-to-back bookings stay lit without blinking between", func(t *testing.T) {
		tr := pitch(t, win(t, "u10", "club", "17:00", "18:00"), win(t, "u12", "club2", "18:00", "19:00"), win(t, "late", "club3", "20:00", "21:00"))
		require.Equal(t, []events.Kind{events.LightsEnabled}, kinds(tr.Grant("pitch_gate", at(t, "17:05"))))
		require.Empty(t, tr.Advance(at(t, "17:55")), "no blink at the end of the first")
		require.Empty(t, tr.Advance(at(t, "18:00")), "the second carries on, no new announcement")
		require.Equal(t, []events.Kind{events.LightsWarning}, kinds(tr.Advance(at(t, "18:55"))))
		for _, c := range []struct {
			at string
			on bool
		}{{"16:59", false}, {"17:04", false}, {"17:05", true}, {"17:55", true}, {"18:00", true}, {"18:55:01", false}, {"18:55:03", true}, {"19:00", false}, {"20:30", false}} {
			require.Equal(t, c.on, lightsOn(tr, at(t, c.at)), c.at)
		}
		// The evening booking after a gap needs its own card.
		require.Equal(t, []events.Kind{events.LightsEnabled}, kinds(tr.Grant("pitch_gate", at(t, "20:05"))))
		for _, c := range []struct {
			at string
			on bool
		}{{"19:30", false}, {"20:04", false}, {"20:05", true}, {"20:55:01", false}, {"20:59", true}, {"21:00", false}} {
			require.Equal(t, c.on, lightsOn(tr, at(t, c.at)), c.at)
		}
	})
	t.Run("button inside the booking", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		evs := tr.Observe("pitch_button", 1, true, at(t, "18:30"))
		require.Equal(t, []events.Kind{events.LightsEnabled}, kinds(evs))
		require.True(t, lightsOn(tr, at(t, "18:30")))
		require.False(t, lightsOn(tr, at(t, "18:29:59")))
	})
	t.Run("card after the warning time", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		require.Len(t, tr.Grant("pitch_gate", at(t, "19:57")), 1)
		require.Empty(t, tr.Advance(at(t, "19:58")))
		require.True(t, lightsOn(tr, at(t, "19:59")))
		require.False(t, lightsOn(tr, at(t, "20:00")))
	})
	t.Run("booking extended while lit", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		require.Len(t, tr.Grant("pitch_gate", at(t, "18:03")), 1)
		require.Len(t, tr.Advance(at(t, "19:55")), 1)
		require.NoError(t, tr.SetWindows("pitch", []Window{win(t, "fb", "club", "18:00", "21:00")}))
		require.Empty(t, tr.Advance(at(t, "19:56")), "not announced again")
		require.True(t, lightsOn(tr, at(t, "19:55:01")), "the old blink is gone")
		require.True(t, lightsOn(tr, at(t, "20:30")))
		require.Equal(t, at(t, "20:55"), tr.Next())
		require.Equal(t, []events.Kind{events.LightsWarning}, kinds(tr.Advance(at(t, "20:55"))))
		require.False(t, lightsOn(tr, at(t, "21:00")))
	})
	t.Run("booking moved before the card", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		require.Empty(t, tr.Grant("pitch_gate", at(t, "17:30")))
		require.NoError(t, tr.SetWindows("pitch", []Window{win(t, "fb", "club", "17:30", "19:30")}))
		require.Equal(t, []events.Kind{events.LightsEnabled}, kinds(tr.Advance(at(t, "17:31"))))
		require.True(t, lightsOn(tr, at(t, "17:30")))
		require.False(t, lightsOn(tr, at(t, "19:30")))
	})
	t.Run("restart after the end announces nothing", func(t *testing.T) {
		tr := pitch(t, win(t, "fb", "club", "18:00", "20:00"))
		require.Empty(t, tr.Grant("pitch_gate", at(t, "17:55")))
		require.Empty(t, tr.Advance(at(t, "20:10")))
	})
}

// TestRestart: Snapshot and Restore carry the no-show, the card and the
// history across a restart.
func TestRestart(t *testing.T) {
	restart := func(t *testing.T, tr *Tracker) *Tracker {
		t.Helper()
		blob, err := tr.Snapshot()
		require.NoError(t, err)
		again, err := tr.Snapshot()
		require.NoError(t, err)
		require.Equal(t, blob, again, "deterministic")
		fresh := newTracker(t, referenceSpec())
		require.NoError(t, fresh.Restore(blob))
		return fresh
	}
	t.Run("after the no-show", func(t *testing.T) {
		tr := newTracker(t, referenceSpec())
		tr.Advance(at(t, "17:00"))
		require.NoError(t, tr.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess", "19:00", "21:00")}))
		require.NoError(t, tr.SetWindows("pitch", []Window{win(t, "leisure:football-0412", "org-valby-bk", "18:00", "20:00")}))
		require.Len(t, tr.Grant("pitch_gate", at(t, "18:03")), 1)
		require.Len(t, tr.Advance(at(t, "19:20")), 1)
		tr.Advance(at(t, "19:24"))
		want := tr.Adjustments()
		wantState := tr.State()

		tr2 := restart(t, tr)
		require.Equal(t, want, tr2.Adjustments(), "before the windows are set again")
		require.NoError(t, tr2.SetWindows("room12", []Window{win(t, "leisure:chess-0412", "org-chess", "19:00", "21:00")}))
		require.NoError(t, tr2.SetWindows("pitch", []Window{win(t, "leisure:football-0412", "org-valby-bk", "18:00", "20:00")}))
		require.Empty(t, tr2.Advance(at(t, "19:25")), "the no-show and the lights are not announced again")
		require.Equal(t, want, tr2.Adjustments())
		require.Equal(t, wantState, tr2.State())
		require.Equal(t, []ReportRow{{Organiser: "org-chess", Bookings: 1, NoShows: 1, Rate: 1}}, tr2.Report(at(t, "00:00"), at(t, "23:59")))
		require.Equal(t, []events.Kind{events.LightsWarning}, kinds(tr2.Advance(at(t, "19:55"))))
		require.Equal(t, []events.Kind{events.InUse}, kinds(tr2.Grant("room12_door", at(t, "20:00"))))
	})
	t.Run("no_show dropped from the mapping", func(t *testing.T) {
		tr := chess(t)
		require.Len(t, tr.Advance(at(t, "19:20")), 1)
		blob, err := tr.Snapshot()
		require.NoError(t, err)
		spec := referenceSpec()
		spec.Spaces[0].NoShow = nil
		tr2 := newTracker(t, spec)
		require.NoError(t, tr2.Restore(blob))
		require.Empty(t, noShowAdjustments(tr2), "no release without no_show")
		require.Len(t, tr2.Report(at(t, "00:00"), at(t, "23:59")), 1, "the judgement stays in the report")
	})
	t.Run("evidence before the restart counts", func(t *testing.T) {
		tr := chess(t)
		require.Empty(t, tr.Observe("wing_b_water", 0, true, at(t, "18:00")))
		require.Empty(t, tr.Observe("wing_b_water", 2, true, at(t, "18:55")))
		require.Empty(t, tr.Observe("wing_b_water", 0, true, at(t, "18:56")))
		tr.Advance(at(t, "19:00"))
		tr2 := restart(t, tr)
		require.Empty(t, tr2.Advance(at(t, "19:04")))
		require.Empty(t, tr2.Advance(at(t, "19:20")))
		require.Equal(t, OutcomeShown, outcome(tr2, "room12", "leisure:chess-0412"))
	})
	t.Run("a short gap is still watched", func(t *testing.T) {
		tr := chess(t)
		tr.Advance(at(t, "19:10"))
		tr2 := restart(t, tr)
		require.Len(t, tr2.Advance(at(t, "19:20")), 1)
		require.Equal(t, OutcomeNoShow, outcome(tr2, "room12", "leisure:chess-0412"))
	})
	t.Run("a long gap is not", func(t *testing.T) {
		tr := chess(t)
		tr.Advance(at(t, "18:50"))
		tr2 := restart(t, tr)
		require.Empty(t, tr2.Advance(at(t, "19:05")))
		require.Empty(t, tr2.Advance(at(t, "19:20")))
		require.Equal(t, OutcomeUnjudged, outcome(tr2, "room12", "leisure:chess-0412"))
	})
	t.Run("bad snapshots", func(t *testing.T) {
		tr := chess(t)
		before, err := tr.Snapshot()
		require.NoError(t, err)
		other := newTracker(t, referenceSpec())
		other.site = "other"
		otherBlob, err := other.Snapshot()
		require.NoError(t, err)
		for blob, want := range map[string]string{
			"":                "unexpected end of JSON input",
			"{":               "unexpected end",
			`{"version":2}`:   "snapshot version 2, want 1",
			string(otherBlob): `the snapshot is of site "other"`,
			`{"version":1,"site":"valby","records":[{"space":"room12","booking":"b","start":"2026-11-26T19:00:00Z","end":"2026-11-26T18:00:00Z","outcome":"no_show"}]}`: "ends before it starts",
			`{"version":1,"site":"valby","records":[{"space":"room12","booking":"b","start":"2026-11-26T19:00:00Z","end":"2026-11-26T20:00:00Z","outcome":"maybe"}]}`:   `unknown outcome "maybe"`,
			`{"version":1,"site":"valby","windows":{"room12":[{"booking":""}]}}`:                                                                                        "not a valid window",
		} {
			err := tr.Restore([]byte(blob))
			require.ErrorContains(t, err, want, blob)
			require.ErrorContains(t, err, `site "valby"`)
			after, err := tr.Snapshot()
			require.NoError(t, err)
			require.Equal(t, before, after, "unchanged after a bad restore")
		}
	})
}

// TestReport: the booking office's figures per organiser over a week.
func TestReport(t *testing.T) {
	tr := newTracker(t, referenceSpec())
	tr.Advance(at(t, "2026-11-23 08:00"))
	var r12, r14 []Window
	for day := 23; day <= 27; day++ {
		date := "2026-11-" + string(rune('0'+day/10)) + string(rune('0'+day%10)) + " "
		r12 = append(r12, win(t, "chess-"+date[:10], "org-chess", date+"19:00", date+"21:00"))
		r14 = append(r14, win(t, "choir-"+date[:10], "org-choir", date+"17:00", date+"18:00"))
	}
	require.NoError(t, tr.SetWindows("room12", r12))
	require.NoError(t, tr.SetWindows("room14", r14))
	var evs []events.Event
	step := func(when string) { evs = append(evs, tr.Advance(at(t, when))...) }
	// The choir comes every day; the chess club on Monday and Wednesday,
	// late on Thursday, not on Tuesday and Friday.
	for _, day := range []string{"23", "24", "25", "26", "27"} {
		date := "2026-11-" + day + " "
		step(date + "16:00")
		evs = append(evs, tr.Grant("room14_door", at(t, date+"16:58"))...)
		switch day {
		case "23", "25":
			evs = append(evs, tr.Grant("room12_door", at(t, date+"19:02"))...)
		case "26":
			step(date + "19:30")
			evs = append(evs, tr.Grant("room12_door", at(t, date+"19:40"))...)
		}
		step(date + "23:00")
	}
	var nNoShow, nInUse int
	for _, e := range evs {
		switch e.Kind {
		case events.NoShow:
			nNoShow++
			require.Equal(t, "org-chess", e.Organiser)
		case events.InUse:
			nInUse++
		}
	}
	require.Equal(t, 3, nNoShow)
	require.Equal(t, 1, nInUse)
	week := tr.Report(at(t, "2026-11-23 00:00"), at(t, "2026-11-30 00:00"))
	require.Equal(t, []ReportRow{
		{Organiser: "org-chess", Bookings: 5, NoShows: 2, Late: 1, Rate: 0.4},
		{Organiser: "org-choir", Bookings: 5},
	}, week)
	// A range is by booking start.
	require.Equal(t, []ReportRow{{Organiser: "org-chess", Bookings: 1, NoShows: 1, Rate: 1}}, tr.Report(at(t, "2026-11-24 18:00"), at(t, "2026-11-25 00:00")))
	// Bookings not yet at their deadline are not counted.
	require.NoError(t, tr.SetWindows("room12", append(r12, win(t, "future", "org-chess", "2026-11-28 19:00", "2026-11-28 21:00"))))
	require.Equal(t, week, tr.Report(at(t, "2026-11-23 00:00"), at(t, "2026-11-30 00:00")))
	js := tr.Judgements(at(t, "2026-11-26 00:00"), at(t, "2026-11-27 00:00"))
	require.Len(t, js, 2)
	require.Equal(t, OutcomeShown, js[0].Outcome)
	require.Equal(t, OutcomeLate, js[1].Outcome)
	require.Equal(t, &Evidence{Time: at(t, "19:40"), Kind: KindCard, Source: "room12_door"}, js[1].Evidence)
}

// TestConsume: access_granted events of the site feed Grant.
func TestConsume(t *testing.T) {
	tr := chess(t)
	require.Empty(t, tr.Consume(events.Event{Kind: events.AccessGranted, Site: "other", Subject: "room12_door", Time: at(t, "19:05")}))
	require.Empty(t, tr.Consume(events.Event{Kind: events.DoorOpened, Site: "valby", Subject: "room12_door", Time: at(t, "19:05")}))
	require.Len(t, tr.Advance(at(t, "19:20")), 1)
	evs := tr.Consume(events.Event{Kind: events.AccessGranted, Site: "valby", Subject: "room12_door", Time: at(t, "19:30")})
	require.Equal(t, []events.Kind{events.InUse}, kinds(evs))
}

// TestStateWithoutBooking: evidence in an unbooked space shows it in use.
func TestStateWithoutBooking(t *testing.T) {
	tr := newTracker(t, referenceSpec())
	tr.Advance(at(t, "10:00"))
	require.Empty(t, tr.Observe("room12_pir", 1, true, at(t, "10:00")))
	tr.Advance(at(t, "10:05"))
	st := tr.State()[0]
	require.True(t, st.InUse)
	require.Empty(t, st.Booking)
	require.Equal(t, KindOn, st.LastEvidence.Kind)
	require.Empty(t, tr.Observe("room12_pir", 0, true, at(t, "10:06")))
	tr.Advance(at(t, "10:30"))
	require.False(t, tr.State()[0].InUse)
}

// TestConcurrentUse exercises the lock under -race.
func TestConcurrentUse(t *testing.T) {
	tr := chess(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for m := range 60 {
				when := at(t, "19:00").Add(time.Duration(m) * time.Minute)
				switch i {
				case 0:
					tr.Advance(when)
				case 1:
					tr.Observe("room12_co2", float64(400+m), true, when)
				case 2:
					tr.Adjustments()
					tr.State()
				case 3:
					_, _ = tr.Snapshot()
					tr.Next()
				}
			}
		})
	}
	wg.Wait()
	require.NotEmpty(t, tr.Report(at(t, "00:00"), at(t, "23:59")))
}
