package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nextByTimeline is what NextChange must answer: the first change of the
// timeline after t that is not the initial value.
func nextByTimeline(p PlanSource, pointID string, t time.Time) (time.Time, bool) {
	for _, ch := range p.Timeline(pointID) {
		if !ch.Initial && ch.At.After(t) {
			return ch.At, true
		}
	}
	return time.Time{}, false
}

// requireNextChanges checks NextChange against the timeline at every
// change of the point, a nanosecond either side of it, and before and
// after the range.
func requireNextChanges(t *testing.T, p PlanSource, pointID string, from, to time.Time) int {
	t.Helper()
	probes := []time.Time{from.Add(-time.Hour), from, from.Add(time.Nanosecond), to.Add(-time.Nanosecond), to, to.Add(time.Hour)}
	for _, ch := range p.Timeline(pointID) {
		probes = append(probes, ch.At.Add(-time.Nanosecond), ch.At, ch.At.Add(time.Nanosecond), ch.At.Add(37*time.Minute))
	}
	for _, at := range probes {
		want, wantOK := nextByTimeline(p, pointID, at)
		got, ok := p.NextChange(pointID, at)
		require.Equal(t, wantOK, ok, "%s after %s", pointID, at)
		require.True(t, want.Equal(got), "%s after %s: got %s, want %s", pointID, at, got, want)
	}
	return len(probes)
}

func TestNextChangeFollowsTimeline(t *testing.T) {
	p, from, to := generatedPlan(t)
	probes := 0
	eachPoint(p, func(c *Compiler, id string) { probes += requireNextChanges(t, c, id, from, to) })
	require.Greater(t, probes, 1000, "the data set has changes to probe")
	_, ok := p.Compilers()[0].NextChange("no-such-point", from)
	require.False(t, ok)
}

// generatedPlan is the plan of a generated data set of two sites over
// the test range.
func generatedPlan(t *testing.T) (p *Plan, from, to time.Time) {
	t.Helper()
	ds, bookings := generate(t, 2, 7)
	from, to = testRange(t)
	p = NewPlan(ds.Sites, from, to)
	p.SetBookings(bookings)
	return p, from, to
}

// eachPoint calls f for every point of every site of p.
func eachPoint(p *Plan, f func(c *Compiler, id string)) {
	for _, c := range p.Compilers() {
		for _, id := range sortedPointIDs(c.Site()) {
			f(c, id)
		}
	}
}

func TestOverlayNextChange(t *testing.T) {
	s, c := overlaid(t)
	from, to := at(t, "2026-11-26 16:00"), at(t, "2026-11-27 00:00")
	o := NewOverlay(c, s, from, to, []Release{
		{Point: "room-12.mode", From: at(t, "2026-11-26 19:20"), To: at(t, "2026-11-26 21:00"), Why: "no-show"},
		{Point: "pitch.floodlight", From: at(t, "2026-11-26 18:00"), To: at(t, "2026-11-26 18:03"), Why: "waiting for a card"},
		{Point: "pitch.floodlight", From: at(t, "2026-11-26 19:55"), To: at(t, "2026-11-26 19:56"), Why: "warning"},
	}, nil)
	for _, id := range sortedPointIDs(s) {
		requireNextChanges(t, o, id, from, to)
	}
	// The release moves room 12's switch to economy from 21:00 (the end
	// of the booking's lag) to 19:20.
	next, ok := o.NextChange("room-12.mode", at(t, "2026-11-26 19:00"))
	require.True(t, ok)
	require.Equal(t, at(t, "2026-11-26 19:20"), next)
	// The card wait moves the floodlight's switch on from 18:00 to 18:03.
	next, ok = o.NextChange("pitch.floodlight", at(t, "2026-11-26 17:00"))
	require.True(t, ok)
	require.Equal(t, at(t, "2026-11-26 18:03"), next)
}

// TestValueSpanHolds checks ValueSpan on the generated data set at every
// change of every point, a nanosecond either side of it and between
// changes: it gives what ValueAt gives, the value and its reasons hold
// up to the instant it returns, and that instant is never past the
// point's next change.
func TestValueSpanHolds(t *testing.T) {
	p, from, to := generatedPlan(t)
	probes := 0
	eachPoint(p, func(c *Compiler, id string) {
		ats := []time.Time{from.Add(-time.Hour), from, to.Add(-time.Nanosecond), to}
		for _, ch := range c.Timeline(id) {
			ats = append(ats, ch.At.Add(-time.Nanosecond), ch.At, ch.At.Add(time.Nanosecond), ch.At.Add(37*time.Minute))
		}
		for _, at := range ats {
			want, wantOK := c.ValueAt(id, at)
			got, until, ok := c.ValueSpan(id, at)
			require.Equal(t, wantOK, ok, "%s at %s", id, at)
			if !ok {
				continue
			}
			probes++
			require.Equal(t, want, got, "%s at %s", id, at)
			require.True(t, until.After(at), "%s at %s: holds until %s", id, at, until)
			require.False(t, until.After(to), "%s at %s: holds past the range", id, at)
			last, lastOK := c.ValueAt(id, until.Add(-time.Nanosecond))
			require.True(t, lastOK)
			require.Equal(t, got.Value, last.Value, "%s at %s: value at %s", id, at, until)
			require.Equal(t, got.Occupied, last.Occupied, "%s at %s: occupancy at %s", id, at, until)
			require.Equal(t, got.Reasons, last.Reasons, "%s at %s: reasons at %s", id, at, until)
			if next, ok := c.NextChange(id, at); ok {
				require.False(t, until.After(next), "%s at %s: holds until %s, past its next change at %s", id, at, until, next)
			}
		}
	})
	require.Greater(t, probes, 1000, "the data set has values to probe")
}
