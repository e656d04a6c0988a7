package energy_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/energy"
)

// TestSeasonWeeksAndDaysAgree runs both reports over the whole season
// (10 August 2026 to 28 June 2027, both DST changes, every holiday) and
// checks that they add up: the weeks' lengths are the range, and the
// weekly comfort and lighting hours are the sum of the daily ones.
func TestSeasonWeeksAndDaysAgree(t *testing.T) {
	from, to := at(2026, 8, 10, 0, 0), at(2027, 6, 28, 0, 0)
	ref := loadSeason(t, from, to)
	spec := referenceSpec(ref.site)
	plan := ref.compile(from, to)
	weeks, err := energy.WeekReport(spec, plan, from, to)
	require.NoError(t, err)
	require.Len(t, weeks, 46*2)
	days, err := energy.DailyOpenData(spec, plan, ref.bookings, nil, nil, from, to)
	require.NoError(t, err)
	require.Len(t, days, 322*2)

	// The chart's bars: one per week, each the sum of its two spaces.
	bars := energy.ByWeek(weeks)
	require.Len(t, bars, 46)
	for i, b := range bars {
		require.Equal(t, energy.Total(weeks[2*i:2*i+2]), b.Totals)
		require.Equal(t, weeks[2*i].Week, b.Week)
	}

	sum := func(f func(i int) float64, n int) float64 {
		var s float64
		for i := range n {
			s += f(i)
		}
		return s
	}
	for _, space := range []string{"gym", "room12"} {
		var wk []energy.SpaceWeek
		for _, w := range weeks {
			if w.Space == space {
				wk = append(wk, w)
			}
		}
		var dy []energy.SpaceDay
		for _, d := range days {
			if d.Space == space {
				dy = append(dy, d)
			}
		}
		require.Equal(t, to.Sub(from).Hours(), sum(func(i int) float64 { return wk[i].Hours }, len(wk)), space)
		require.Equal(t, to.Sub(from).Hours(), sum(func(i int) float64 { return dy[i].Hours }, len(dy)), space)
		near := func(a, b float64, what string) {
			require.LessOrEqual(t, math.Abs(a-b), 0.01, "%s %s: weeks %v, days %v", space, what, a, b)
		}
		near(sum(func(i int) float64 { return wk[i].ComfortHours }, len(wk)), sum(func(i int) float64 { return dy[i].ComfortHours }, len(dy)), "comfort")
		near(sum(func(i int) float64 { return wk[i].LightingHours }, len(wk)), sum(func(i int) float64 { return dy[i].LightingHours }, len(dy)), "lighting")
		// The gateway saves in every week of the season: it never heats
		// more than the school day and the whole lending period.
		for _, w := range wk {
			require.GreaterOrEqual(t, w.SavedHours, 0.0, "%s week %d", space, w.Week)
			require.LessOrEqual(t, w.ComfortHours, w.BaselineHours)
		}
	}
}
