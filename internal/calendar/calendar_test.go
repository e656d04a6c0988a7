package calendar

import (
	"testing"
	"time"
	_ "time/tzdata" // Europe/Copenhagen must resolve on bare machines.

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/site"
)

func copenhagen(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)
	return loc
}

func date(t *testing.T, s string) site.Date {
	t.Helper()
	d, err := site.ParseDate(s)
	require.NoError(t, err)
	return d
}

func clock(t *testing.T, s string) site.Clock {
	t.Helper()
	c, err := site.ParseClock(s)
	require.NoError(t, err)
	return c
}

// local parses "2006-01-02 15:04 -0700" so expected instants are explicit
// about which side of a DST change they are on.
func local(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04 -0700", s)
	require.NoError(t, err)
	return v.In(loc)
}

func TestAt(t *testing.T) {
	loc := copenhagen(t)
	tests := []struct {
		name  string
		date  string
		clock string
		want  string
	}{
		{"winter", "2026-11-26", "19:00", "2026-11-26 19:00 +0100"},
		{"summer", "2026-08-13", "08:00", "2026-08-13 08:00 +0200"},
		{"before spring gap", "2026-03-29", "01:59", "2026-03-29 01:59 +0100"},
		{"in spring gap moves forward", "2026-03-29", "02:30", "2026-03-29 03:30 +0200"},
		{"gap start moves forward", "2026-03-29", "02:00", "2026-03-29 03:00 +0200"},
		{"after spring gap", "2026-03-29", "03:00", "2026-03-29 03:00 +0200"},
		{"evening of spring day", "2026-03-29", "19:00", "2026-03-29 19:00 +0200"},
		{"before repeated hour", "2026-10-25", "01:30", "2026-10-25 01:30 +0200"},
		{"repeated hour takes first", "2026-10-25", "02:30", "2026-10-25 02:30 +0200"},
		{"repeated hour start takes first", "2026-10-25", "02:00", "2026-10-25 02:00 +0200"},
		{"after repeated hour", "2026-10-25", "03:00", "2026-10-25 03:00 +0100"},
		{"evening of fall-back day", "2026-10-25", "19:00", "2026-10-25 19:00 +0100"},
		{"24:00 is next midnight", "2026-10-24", "24:00", "2026-10-25 00:00 +0200"},
		{"midnight", "2026-10-25", "00:00", "2026-10-25 00:00 +0200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := At(date(t, tt.date), clock(t, tt.clock), loc)
			want := local(t, loc, tt.want)
			require.True(t, want.Equal(got), "want %s, got %s", want, got)
		})
	}
}

func TestAtUTC(t *testing.T) {
	got := At(site.Date{Year: 2026, Month: time.March, Day: 29}, 150, time.UTC)
	require.Equal(t, time.Date(2026, 3, 29, 2, 30, 0, 0, time.UTC), got)
}

// schoolSchedule is a Monday-to-Friday 08:00-15:00 school day with
// public holidays, school holidays and a one-off short day.
func schoolSchedule(t *testing.T) *site.Schedule {
	weekdays := [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}
	holidays := &site.Calendar{ID: "public_holidays", Days: []site.ExceptionDay{
		{From: date(t, "2026-12-24"), To: date(t, "2026-12-24"), Name: "Juleaftensdag"},
		{From: date(t, "2026-12-25"), To: date(t, "2026-12-26"), Name: "Jul"},
	}}
	events := &site.Calendar{ID: "events", Days: []site.ExceptionDay{
		// Shadowed by public_holidays, which comes first.
		{From: date(t, "2026-12-24"), To: date(t, "2026-12-24"), Name: "Juleafslutning", Hours: []site.Period{{From: clock(t, "08:00"), To: clock(t, "11:00")}}},
		{From: date(t, "2026-12-18"), To: date(t, "2026-12-18"), Name: "Juleafslutning", Hours: []site.Period{
			{From: clock(t, "17:00"), To: clock(t, "20:00")},
			{From: clock(t, "08:00"), To: clock(t, "12:00")},
		}},
		// An exception day with hours on a Saturday runs the schedule.
		{From: date(t, "2026-12-19"), To: date(t, "2026-12-19"), Name: "Åbent hus", Hours: []site.Period{{From: clock(t, "10:00"), To: clock(t, "14:00")}}},
	}}
	return &site.Schedule{
		ID: "school_day",
		Weekly: []site.WeeklyPeriod{
			{Days: weekdays, From: clock(t, "08:00"), To: clock(t, "15:00")},
			{Days: [7]bool{time.Sunday: true}, From: clock(t, "18:00"), To: clock(t, "24:00")},
		},
		Exceptions: []*site.Calendar{holidays, events},
	}
}

func TestDayOf(t *testing.T) {
	s := schoolSchedule(t)
	tests := []struct {
		name     string
		date     string
		hours    []string
		calendar string
		day      string
	}{
		{"weekday", "2026-12-17", []string{"08:00-15:00"}, "", ""},
		{"saturday", "2026-12-12", nil, "", ""},
		{"sunday evening", "2026-12-13", []string{"18:00-24:00"}, "", ""},
		{"holiday closes", "2026-12-24", nil, "public_holidays", "Juleaftensdag"},
		{"range holiday", "2026-12-26", nil, "public_holidays", "Jul"},
		{"hours replace weekly, sorted", "2026-12-18", []string{"08:00-12:00", "17:00-20:00"}, "events", "Juleafslutning"},
		{"hours on a weekend", "2026-12-19", []string{"10:00-14:00"}, "events", "Åbent hus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DayOf(s, date(t, tt.date))
			var hours []string
			for _, h := range got.Hours {
				hours = append(hours, h.From.String()+"-"+h.To.String())
			}
			require.Equal(t, tt.hours, hours)
			require.Equal(t, tt.calendar, got.Calendar)
			require.Equal(t, tt.day, got.Name)
			require.Equal(t, tt.calendar != "", got.Exception())
		})
	}
}

func TestExpand(t *testing.T) {
	loc := copenhagen(t)
	s := schoolSchedule(t)
	type period struct{ start, end, calendar, day string }
	tests := []struct {
		name     string
		from, to string
		want     []period
	}{
		{
			name: "holiday week",
			from: "2026-12-17 00:00 +0100", to: "2026-12-25 00:00 +0100",
			want: []period{
				{"2026-12-17 08:00 +0100", "2026-12-17 15:00 +0100", "", ""},
				{"2026-12-18 08:00 +0100", "2026-12-18 12:00 +0100", "events", "Juleafslutning"},
				{"2026-12-18 17:00 +0100", "2026-12-18 20:00 +0100", "events", "Juleafslutning"},
				{"2026-12-19 10:00 +0100", "2026-12-19 14:00 +0100", "events", "Åbent hus"},
				{"2026-12-20 18:00 +0100", "2026-12-21 00:00 +0100", "", ""},
				{"2026-12-21 08:00 +0100", "2026-12-21 15:00 +0100", "", ""},
				{"2026-12-22 08:00 +0100", "2026-12-22 15:00 +0100", "", ""},
				{"2026-12-23 08:00 +0100", "2026-12-23 15:00 +0100", "", ""},
			},
		},
		{
			name: "overlapping periods are kept whole",
			from: "2026-12-17 10:00 +0100", to: "2026-12-18 09:00 +0100",
			want: []period{
				{"2026-12-17 08:00 +0100", "2026-12-17 15:00 +0100", "", ""},
				{"2026-12-18 08:00 +0100", "2026-12-18 12:00 +0100", "events", "Juleafslutning"},
			},
		},
		{
			name: "end is exclusive, start of range touching an end excludes it",
			from: "2026-12-17 15:00 +0100", to: "2026-12-18 08:00 +0100",
			want: nil,
		},
		{
			name: "spring forward: Sunday evening is 6 hours in CEST",
			from: "2026-03-28 00:00 +0100", to: "2026-03-31 00:00 +0200",
			want: []period{
				{"2026-03-29 18:00 +0200", "2026-03-30 00:00 +0200", "", ""},
				{"2026-03-30 08:00 +0200", "2026-03-30 15:00 +0200", "", ""},
			},
		},
		{
			name: "fall back: Sunday evening in CET",
			from: "2026-10-24 00:00 +0200", to: "2026-10-27 00:00 +0100",
			want: []period{
				{"2026-10-25 18:00 +0100", "2026-10-26 00:00 +0100", "", ""},
				{"2026-10-26 08:00 +0100", "2026-10-26 15:00 +0100", "", ""},
			},
		},
		{
			name: "empty range",
			from: "2026-12-17 00:00 +0100", to: "2026-12-17 00:00 +0100",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Expand(s, loc, local(t, loc, tt.from), local(t, loc, tt.to))
			var want []Period
			for _, p := range tt.want {
				want = append(want, Period{Start: local(t, loc, p.start), End: local(t, loc, p.end), Schedule: "school_day", Calendar: p.calendar, Day: p.day})
			}
			require.Len(t, got, len(want))
			for i := range want {
				require.True(t, want[i].Start.Equal(got[i].Start), "period %d start: want %s, got %s", i, want[i].Start, got[i].Start)
				require.True(t, want[i].End.Equal(got[i].End), "period %d end: want %s, got %s", i, want[i].End, got[i].End)
				require.Equal(t, want[i].Schedule, got[i].Schedule)
				require.Equal(t, want[i].Calendar, got[i].Calendar)
				require.Equal(t, want[i].Day, got[i].Day)
				require.Equal(t, loc, got[i].Start.Location())
			}
		})
	}
}

// TestExpandDSTHours checks periods in the spring gap and the repeated
// hour of autumn: a night-time period keeps its wall-clock bounds.
func TestExpandDSTHours(t *testing.T) {
	loc := copenhagen(t)
	night := &site.Schedule{ID: "night", Weekly: []site.WeeklyPeriod{
		{Days: [7]bool{time.Sunday: true}, From: clock(t, "01:30"), To: clock(t, "03:30")},
		{Days: [7]bool{time.Sunday: true}, From: clock(t, "02:15"), To: clock(t, "02:45")},
	}}
	tests := []struct {
		name  string
		day   string
		want  [][2]string
		hours []time.Duration
	}{
		{
			name: "spring forward",
			day:  "2026-03-29",
			want: [][2]string{
				{"2026-03-29 01:30 +0100", "2026-03-29 03:30 +0200"},
				// Both ends fall in the gap and move forward by it.
				{"2026-03-29 03:15 +0200", "2026-03-29 03:45 +0200"},
			},
			hours: []time.Duration{time.Hour, 30 * time.Minute},
		},
		{
			name: "fall back",
			day:  "2026-10-25",
			want: [][2]string{
				{"2026-10-25 01:30 +0200", "2026-10-25 03:30 +0100"},
				// First occurrence of the repeated hour.
				{"2026-10-25 02:15 +0200", "2026-10-25 02:45 +0200"},
			},
			hours: []time.Duration{3 * time.Hour, 30 * time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := date(t, tt.day)
			from := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
			got := Expand(night, loc, from, from.Add(24*time.Hour))
			require.Len(t, got, len(tt.want))
			for i, w := range tt.want {
				require.True(t, local(t, loc, w[0]).Equal(got[i].Start), "start %d: %s", i, got[i].Start)
				require.True(t, local(t, loc, w[1]).Equal(got[i].End), "end %d: %s", i, got[i].End)
				require.Equal(t, tt.hours[i], got[i].End.Sub(got[i].Start))
			}
		})
	}
}
