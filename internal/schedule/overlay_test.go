package schedule

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
)

// overlaid compiles the reference site for Thursday 2026-11-26 with the
// chess club in room 12 and the football club on the pitch.
func overlaid(t *testing.T) (*site.Site, *Compiler) {
	s := valby()
	c := NewCompiler(s, at(t, "2026-11-26 16:00"), at(t, "2026-11-27 00:00"))
	c.SetBookings([]booking.Booking{
		book(t, "valby-room-12", "chess", "chess-club", "2026-11-26 19:00", "2026-11-26 21:00"),
		book(t, "valby-pitch", "fb", "valby-bk", "2026-11-26 18:00", "2026-11-26 20:00"),
	})
	return s, c
}

func TestOverlayReleasesBoundPoints(t *testing.T) {
	s, c := overlaid(t)
	o := NewOverlay(c, s, at(t, "2026-11-26 16:00"), at(t, "2026-11-27 00:00"), []Release{
		// No-show at 19:20 releases room 12 to the end of its window.
		{Point: "room-12.mode", From: at(t, "2026-11-26 19:20"), To: at(t, "2026-11-26 21:00"), Why: "no-show of leisure:chess"},
		// Floodlights wait for a card until 18:03, blink at 19:55.
		{Point: "pitch.floodlight", From: at(t, "2026-11-26 18:00"), To: at(t, "2026-11-26 18:03"), Why: "waiting for a card"},
		{Point: "pitch.floodlight", From: at(t, "2026-11-26 19:55"), To: at(t, "2026-11-26 19:56"), Why: "warning"},
		// A release of an unbound point is ignored.
		{Point: "nope", From: at(t, "2026-11-26 18:00"), To: at(t, "2026-11-26 19:00")},
	}, nil)
	booked := "booking leisure:chess (org chess-club)"
	requireOverlay(t, s, o, "room-12.mode", []change{
		{"2026-11-26 16:00", economy, nil},
		{"2026-11-26 18:30", comfort, []string{booked}},
		{"2026-11-26 19:20", economy, []string{booked, "release no-show of leisure:chess"}},
	})
	fb := "booking leisure:fb (org valby-bk)"
	requireOverlay(t, s, o, "pitch.floodlight", []change{
		{"2026-11-26 16:00", off, nil},
		{"2026-11-26 18:03", on, []string{fb}},
		{"2026-11-26 19:55", off, []string{fb, "release warning"}},
		{"2026-11-26 19:56", on, []string{fb}},
		{"2026-11-26 20:00", off, []string{fb}},
	})
	ch, ok := o.ValueAt("room-12.mode", at(t, "2026-11-26 20:00"))
	require.True(t, ok)
	require.Equal(t, economy, ch.Value)
	require.Equal(t, at(t, "2026-11-26 19:20"), ch.At)
	ch, _ = o.ValueAt("pitch.floodlight", at(t, "2026-11-26 18:01"))
	require.False(t, ch.Occupied)
	// Points without releases are the compiler's own.
	require.Equal(t, c.Timeline("gym.lights"), o.Timeline("gym.lights"))
}

func TestOverlayOutputs(t *testing.T) {
	s, c := overlaid(t)
	door := &site.Point{ID: "gym_entrance_g1041", Type: site.TypeBool, Access: site.AccessWrite}
	o := NewOverlay(c, s, at(t, "2026-11-26 16:00"), at(t, "2026-11-27 00:00"), nil, []Output{{
		Point: door, On: on, Off: off,
		Windows: []OutputWindow{
			{From: at(t, "2026-11-26 18:45"), To: at(t, "2026-11-26 21:15"), Why: "grant G1041"},
			{From: at(t, "2026-11-26 10:00"), To: at(t, "2026-11-26 16:30"), Why: "grant early"},
		},
	}})
	var got []string
	for _, ch := range o.Timeline(door.ID) {
		got = append(got, ch.At.Format("15:04")+" "+door.Format(ch.Value))
	}
	require.Equal(t, []string{"16:00 true", "16:30 false", "18:45 true", "21:15 false"}, got)
	ch, ok := o.ValueAt(door.ID, at(t, "2026-11-26 17:00"))
	require.True(t, ok)
	require.Equal(t, off, ch.Value)
	require.Equal(t, at(t, "2026-11-26 16:30"), ch.At)
	_, ok = o.ValueAt(door.ID, at(t, "2026-11-27 01:00"))
	require.False(t, ok, "outside the range")
}

// requireOverlay is requireTimeline for an overlay.
func requireOverlay(t *testing.T, s *site.Site, o *Overlay, pointID string, want []change) {
	t.Helper()
	var gotS, wantS []string
	for i, ch := range o.Timeline(pointID) {
		require.Equal(t, i == 0, ch.Initial, "only the first change is initial")
		gotS = append(gotS, ch.At.Format("2006-01-02 15:04 -0700")+" "+ch.Point.Format(ch.Value)+" "+strings.Join(reasonStrings(ch.Reasons), "; "))
	}
	for _, w := range want {
		wantS = append(wantS, at(t, w.at).Format("2006-01-02 15:04 -0700")+" "+s.Points[pointID].Format(w.value)+" "+strings.Join(w.reasons, "; "))
	}
	require.Equal(t, wantS, gotS)
}
