package energy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// figures are the numbers of a report line a test works out by hand.
type figures struct {
	Hours, Lending                    float64
	Baseline, Comfort, Saved          float64
	LightBaseline, Lit, LightSaved    float64
	HeatingKWh, LightingKWh, TotalKWh float64
}

func figuresOf(r energy.SpaceWeek) figures {
	return figures{r.Hours, r.LendingHours, r.BaselineHours, r.ComfortHours, r.SavedHours,
		r.LightingBaselineHours, r.LightingHours, r.LightingSavedHours, r.HeatingKWhSaved, r.LightingKWhSaved, r.KWhSaved}
}

// TestWeekReportReferenceWeek checks the week of the reference Thursday
// (ISO week 48 of 2026, Monday 23 to Sunday 29 November, CET all week, no
// holidays) at Valby Skole against figures worked out by hand.
//
// The lending period: Mon-Fri 17:00-22:00 (5 × 5 h) and Sat-Sun
// 08:00-22:00 (2 × 14 h): 53 h.
//
// Gym (profile hall: lead 1 h, lag 15 min, merge gap 45 min; the lights'
// own lead and lag 15 min; school_day Mon-Fri 07:30-15:30):
//   - bookings: Valby Volley Thu 19:00-21:00, Valby Badminton Sun
//     19:00-21:00 (its season runs to 29 November);
//   - heating under the gateway: Mon-Fri 06:30-15:45 (5 × 9.25 h =
//     46.25 h), Thu 18:00-21:15 (3.25 h), Sun 18:00-21:15 (3.25 h) =
//     52.75 h;
//   - the old practice: the school day as above (46.25 h), which does not
//     touch the lending period, joined with it: 46.25 + 53 = 99.25 h;
//   - saved 99.25 - 52.75 = 46.5 h, × 30 kW = 1395 kWh;
//   - lights: Mon-Fri 07:15-15:45 (5 × 8.5 = 42.5 h), Thu and Sun
//     18:45-21:15 (2 × 2.5 h) = 47.5 h; old practice 42.5 + 53 = 95.5 h;
//     saved 48 h × 8 kW = 384 kWh; 1779 kWh in all.
//
// Classroom 12 (profile classroom: lead 30 min, no lag, merge gap 30
// min; the lights have no lead):
//   - bookings: the school's own timetable Tue 17:00-19:00 and the chess
//     club Thu 19:00-21:00;
//   - heating: Mon-Fri 07:00-15:30 (5 × 8.5 = 42.5 h), Tue 16:30-19:00
//     (2.5 h: the pre-heat from 16:30 lies before the lending period and
//     counts against the savings), Thu 18:30-21:00 (2.5 h) = 47.5 h;
//   - old practice 42.5 + 53 = 95.5 h; saved 48 h × 4 kW = 192 kWh;
//   - lights: Mon-Fri 07:30-15:30 (40 h), Tue 17-19 and Thu 19-21 (4 h)
//     = 44 h; old practice 40 + 53 = 93 h; saved 49 h × 0.6 kW = 29.4 kWh.
func TestWeekReportReferenceWeek(t *testing.T) {
	from, to := at(2026, 11, 23, 0, 0), at(2026, 11, 30, 0, 0)
	ref := loadSeason(t, from, to)
	spec := referenceSpec(ref.site)
	rows, err := energy.WeekReport(spec, ref.compile(from, to), from, to)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Equal(t, "valby-skole", r.Site)
		require.Equal(t, [2]int{2026, 48}, [2]int{r.Year, r.Week})
		require.True(t, r.From.Equal(from) && r.To.Equal(to), "%s: %s to %s", r.Space, r.From, r.To)
	}
	require.Equal(t, "gym", rows[0].Space)
	require.Equal(t, "Gymnastiksal", rows[0].Name)
	require.Equal(t, figures{168, 53, 99.25, 52.75, 46.5, 95.5, 47.5, 48, 1395, 384, 1779}, figuresOf(rows[0]))
	require.Equal(t, "room12", rows[1].Space)
	require.Equal(t, figures{168, 53, 95.5, 47.5, 48, 93, 44, 49, 192, 29.4, 221.4}, figuresOf(rows[1]))

	tot := energy.Total(rows)
	require.Equal(t, energy.Totals{
		LendingHours: 106, BaselineHours: 194.75, ComfortHours: 100.25, SavedHours: 94.5,
		LightingBaselineHours: 188.5, LightingHours: 91.5, LightingSavedHours: 97,
		HeatingKWhSaved: 1587, LightingKWhSaved: 413.4, KWhSaved: 2000.4,
	}, tot)
}

// TestWeekReportCountsNoShowReleases: the chess club did not come on
// Thursday; the site monitor released classroom 12 from the deadline
// 19:20 to the booking's end 21:00. Through the overlay the room's heating
// that day is 18:30-19:20 instead of 18:30-21:00 (1 h 40 min less: 45 h
// 50 min in the week, saved 49 h 40 min, 198.667 kWh) and its lights
// 19:00-19:20 (42 h 20 min in the week, saved 50 h 40 min, 30.4 kWh). The
// gym is not touched.
func TestWeekReportCountsNoShowReleases(t *testing.T) {
	from, to := at(2026, 11, 23, 0, 0), at(2026, 11, 30, 0, 0)
	ref := loadSeason(t, from, to)
	base := ref.compile(from, to)
	ov := schedule.NewOverlay(base, ref.site, from, to, releaseSpace(ref.site, "room12", at(2026, 11, 26, 19, 20), at(2026, 11, 26, 21, 0)), nil)
	rows, err := energy.WeekReport(referenceSpec(ref.site), ov, from, to)
	require.NoError(t, err)
	require.Equal(t, figures{168, 53, 99.25, 52.75, 46.5, 95.5, 47.5, 48, 1395, 384, 1779}, figuresOf(rows[0]))
	require.Equal(t, figures{168, 53, 95.5, 45.8333, 49.6667, 93, 42.3333, 50.6667, 198.667, 30.4, 229.067}, figuresOf(rows[1]))
}

// TestWeekReportDST covers the week of the autumn change (Monday 19 to
// Sunday 25 October 2026; clocks go back from 03:00 CEST to 02:00 CET on
// Sunday): it has 169 hours. Classroom 14 holds the youth club's LAN
// night from Saturday 22:00 CEST to Sunday 06:00 CET, which is 9 real
// hours, 9.5 with the classroom's 30 min pre-heat (21:30 CEST = 19:30
// UTC to 06:00 CET = 05:00 UTC); a wall-clock count would say 8.5.
// With the school days Mon-Fri 07:00-15:30 (42.5 h) the room is heated
// 52 h; the old practice is 42.5 + 53 = 95.5 h; saved 43.5 h × 4 kW =
// 174 kWh. A lending period of every day round the clock is the whole
// week, 169 h; in the spring week of 22 to 28 March 2027 it is 167 h.
func TestWeekReportDST(t *testing.T) {
	from, to := at(2026, 10, 19, 0, 0), at(2026, 10, 26, 0, 0)
	require.Equal(t, 169*time.Hour, to.Sub(from))
	ref := loadSeason(t, from, to)
	spec := &energy.Spec{Site: ref.site, Lending: lending(ref.site), Spaces: []energy.SpaceSpec{
		{Space: "room14", HeatingKW: 4, Heating: []string{"room14.mode", "room14.heat_setpoint"}},
	}}
	plan := ref.compile(from, to)
	rows, err := energy.WeekReport(spec, plan, from, to)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, [2]int{2026, 43}, [2]int{rows[0].Year, rows[0].Week})
	require.Equal(t, figures{169, 53, 95.5, 52, 43.5, 0, 0, 0, 174, 0, 174}, figuresOf(rows[0]))

	always := &site.Schedule{ID: "always", Weekly: []site.WeeklyPeriod{{Days: days(0, 1, 2, 3, 4, 5, 6), From: 0, To: 24 * 60}}}
	spec.Lending = always
	rows, err = energy.WeekReport(spec, plan, from, to)
	require.NoError(t, err)
	require.Equal(t, 169.0, rows[0].LendingHours)
	require.Equal(t, 169.0, rows[0].BaselineHours)

	from, to = at(2027, 3, 22, 0, 0), at(2027, 3, 29, 0, 0)
	rows, err = energy.WeekReport(spec, schedule.NewCompiler(ref.site, from, to), from, to)
	require.NoError(t, err)
	require.Equal(t, 167.0, rows[0].Hours)
	require.Equal(t, 167.0, rows[0].LendingHours)
}

// TestWeekReportPartialWeeksAndHolidays: a range from Wednesday 23
// December 2026 to Monday 28 December 2026 noon gives the counted part of
// ISO week 52 (Wednesday to Sunday) and half a day of week 53. The
// lending period is closed on Christmas (24-26 December, public
// holidays): Wednesday 17-22 and Sunday 08-22 remain, 19 h, and Monday 28
// has no lending before noon.
func TestWeekReportPartialWeeksAndHolidays(t *testing.T) {
	from, to := at(2026, 12, 23, 0, 0), at(2026, 12, 28, 12, 0)
	ref := loadSeason(t, from, to)
	spec := &energy.Spec{Site: ref.site, Lending: lending(ref.site), Spaces: []energy.SpaceSpec{
		{Space: "room14", Heating: []string{"room14.mode"}},
	}}
	rows, err := energy.WeekReport(spec, ref.compile(from, to), from, to)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, [2]int{2026, 52}, [2]int{rows[0].Year, rows[0].Week})
	require.True(t, rows[0].From.Equal(from) && rows[0].To.Equal(at(2026, 12, 28, 0, 0)))
	require.Equal(t, 120.0, rows[0].Hours)
	require.Equal(t, 19.0, rows[0].LendingHours)
	// School holidays: no school day, no booking; nothing heated.
	require.Equal(t, 0.0, rows[0].ComfortHours)
	require.Equal(t, 19.0, rows[0].SavedHours)
	require.Equal(t, [2]int{2026, 53}, [2]int{rows[1].Year, rows[1].Week})
	require.Equal(t, 12.0, rows[1].Hours)
	require.Equal(t, 0.0, rows[1].LendingHours)
}

func TestWeekReportRefusesBadInput(t *testing.T) {
	from, to := at(2026, 11, 23, 0, 0), at(2026, 11, 30, 0, 0)
	ref := loadSeason(t, from, to)
	plan := ref.compile(from, to)

	_, err := energy.WeekReport(referenceSpec(ref.site), plan, to, from)
	require.True(t, errors.Is(err, energy.ErrRange), "%v", err)
	_, err = energy.WeekReport(referenceSpec(ref.site), plan, from, from.AddDate(2, 0, 0))
	require.True(t, errors.Is(err, energy.ErrRange), "%v", err)
	_, err = energy.WeekReport(referenceSpec(ref.site), plan, time.Time{}, time.Time{}.Add(24*time.Hour))
	require.True(t, errors.Is(err, energy.ErrRange), "%v", err)
	_, err = energy.WeekReport(referenceSpec(ref.site), plan, from, to.Add(time.Hour))
	require.ErrorContains(t, err, "does not cover the report's range")
	_, err = energy.WeekReport(referenceSpec(ref.site), nil, from, to)
	require.ErrorContains(t, err, "no plan")
	_, err = energy.WeekReport(nil, plan, from, to)
	require.ErrorContains(t, err, "no site")

	bad := &energy.Spec{Site: ref.site, Spaces: []energy.SpaceSpec{
		{Space: "gym", HeatingKW: -1, Heating: []string{"gym_ahu.mode"}},
		{Space: "gym", Heating: []string{"gym_ahu.mode"}},
		{Space: "attic", Heating: []string{"x"}},
		{Space: "room12", LightingKW: 1, Heating: []string{"room12.mode", "nope", "gym_ahu.mode", "room12.co2"}},
		{Space: "room14"},
		{Space: "pitch", Heating: []string{"pitch_floodlight_enable"}, Lighting: []string{"pitch_floodlight_enable"}},
	}}
	err = bad.Validate()
	for _, want := range []string{
		"no lending period",
		`space "gym": heating_kw -1 is not a power`,
		`space "gym" is listed twice`,
		`space "attic" is not a space of the site`,
		`space "room12" declares lighting_kw but lists no lighting points`,
		`space "room12": "nope" is not a point of the site`,
		`space "room12": point "gym_ahu.mode" is not bound to the space or a space containing it`,
		`space "room12": point "room12.co2" is not bound`,
		`space "room14" lists no heating and no lighting points`,
		`space "pitch": point "pitch_floodlight_enable" is listed as both heating and lighting`,
	} {
		require.ErrorContains(t, err, want)
	}
	_, err = energy.WeekReport(bad, plan, from, to)
	require.Error(t, err)

	// A point of a wing serves the rooms within it.
	wing := &energy.Spec{Site: ref.site, Lending: lending(ref.site), Spaces: []energy.SpaceSpec{
		{Space: "room12", Heating: []string{"wing_b_ahu.mode"}},
	}}
	require.NoError(t, wing.Validate())
}
