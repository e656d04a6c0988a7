package sitegen

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Copenhagen must resolve on bare machines.

	ical "github.com/emersion/go-ical"
	"github.com/stretchr/testify/require"
	"github.com/teambition/rrule-go"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
)

func TestGenerateDefaultScale(t *testing.T) {
	ds, err := Generate(Config{})
	require.NoError(t, err)
	require.Len(t, ds.Sites, 72)
	require.Equal(t, "Valby Skole", ds.Sites[0].Name)
	require.Equal(t, "skole-01", ds.Sites[0].ID)

	bookable, resources := 0, map[string]bool{}
	for _, s := range ds.Sites {
		require.Equal(t, ds.Location, s.Location)
		require.Contains(t, s.Schedules, "school_day")
		names := map[string]bool{}
		for _, sp := range s.Spaces {
			require.False(t, names[sp.ID], "space %s/%s twice", s.ID, sp.ID)
			names[sp.ID] = true
			for _, r := range sp.Resources {
				require.False(t, resources[r], "resource %s in two spaces", r)
				resources[r] = true
			}
			if len(sp.Resources) > 0 {
				bookable++
				require.NotEmpty(t, sp.Bindings, "space %s/%s has no points", s.ID, sp.ID)
			}
			if sp.Parent != nil {
				require.Contains(t, sp.Parent.Children, sp)
			}
			for _, b := range sp.Bindings {
				require.Same(t, b.Point, s.Points[b.Point.ID])
				require.True(t, b.Point.Writable())
			}
		}
	}
	require.InDelta(t, 2880, bookable, 150, "about 40 bookable spaces per school")
	require.InDelta(t, 17500, len(ds.Series), 1000, "about 17.5k weekly series")
	for _, sr := range ds.Series {
		require.True(t, resources[sr.Resource], "series %s books unknown resource %s", sr.UID, sr.Resource)
		require.Equal(t, sr.First.Weekday(), sr.Until.Weekday())
		require.False(t, sr.Until.Before(sr.First))
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(Config{Schools: 3, Seed: 7})
	require.NoError(t, err)
	b, err := Generate(Config{Schools: 3, Seed: 7})
	require.NoError(t, err)
	require.Equal(t, a.Feed(), b.Feed())
	require.Equal(t, a.Bookings(), b.Bookings())
	c, err := Generate(Config{Schools: 3, Seed: 8})
	require.NoError(t, err)
	require.NotEqual(t, a.Feed(), c.Feed())
}

func TestGenerateErrors(t *testing.T) {
	_, err := Generate(Config{Schools: -1})
	require.ErrorContains(t, err, "-1 schools")
	_, err = Generate(Config{SeasonStart: site.Date{Year: 2027, Month: 1, Day: 1}, SeasonEnd: site.Date{Year: 2026, Month: 1, Day: 1}})
	require.ErrorContains(t, err, "season ends 2026-01-01 before it starts 2027-01-01")
}

func TestEaster(t *testing.T) {
	tests := map[int]string{2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05", 2027: "2027-03-28", 2038: "2038-04-25"}
	for y, want := range tests {
		require.Equal(t, want, easter(y).String(), "Easter %d", y)
	}
}

func TestCalendars(t *testing.T) {
	days := func(c *site.Calendar) map[string]string {
		m := map[string]string{}
		for _, d := range c.Days {
			m[d.Name] = d.From.String() + ".." + d.To.String()
		}
		return m
	}
	pub := days(publicHolidays(2026, 2027))
	require.Equal(t, "2027-05-06..2027-05-06", pub["Kristi himmelfartsdag"])
	require.Equal(t, "2027-05-17..2027-05-17", pub["2. pinsedag"])
	require.Equal(t, "2027-06-05..2027-06-05", pub["Grundlovsdag"])
	school := days(schoolHolidays(2026))
	require.Equal(t, map[string]string{
		"Efterårsferie":                  "2026-10-10..2026-10-18",
		"Juleferie":                      "2026-12-19..2027-01-03",
		"Vinterferie":                    "2027-02-13..2027-02-21",
		"Påskeferie":                     "2027-03-20..2027-03-29",
		"Fredag efter Kristi himmelfart": "2027-05-07..2027-05-07",
	}, school)
}

func TestOccurrences(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)
	d := func(s string) site.Date {
		v, err := site.ParseDate(s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name   string
		series Series
		want   []string // start..end status id
	}{
		{
			name: "sundays over the spring change",
			series: Series{UID: "u1", Resource: "r", Status: booking.Confirmed, Start: 19 * 60, Duration: 2 * time.Hour,
				First: d("2026-03-22"), Until: d("2026-04-05"), ExDates: []site.Date{d("2026-04-05")}},
			want: []string{
				"2026-03-22 19:00 +0100..2026-03-22 21:00 +0100 confirmed u1/20260322T180000Z",
				"2026-03-29 19:00 +0200..2026-03-29 21:00 +0200 confirmed u1/20260329T170000Z",
			},
		},
		{
			name: "over the autumn change, with a moved and a cancelled evening",
			series: Series{UID: "u2", Resource: "r", Status: booking.Tentative, Start: 22 * 60, Duration: 6 * time.Hour,
				First: d("2026-10-18"), Until: d("2026-11-01"), Overrides: []Override{
					{Date: d("2026-10-25"), Start: 22*60 + 30, Duration: 6 * time.Hour},
					{Date: d("2026-11-01"), Start: 22 * 60, Duration: 6 * time.Hour, Cancelled: true},
				}},
			want: []string{
				"2026-10-18 22:00 +0200..2026-10-19 04:00 +0200 tentative u2/20261018T200000Z",
				"2026-10-25 22:30 +0100..2026-10-26 04:30 +0100 tentative u2/20261025T210000Z",
				"2026-11-01 22:00 +0100..2026-11-02 04:00 +0100 cancelled u2/20261101T210000Z",
			},
		},
		{
			name: "across the night of the spring change the duration is exact",
			series: Series{UID: "u3", Resource: "r", Status: booking.Confirmed, Start: 23 * 60, Duration: 4 * time.Hour,
				First: d("2026-03-28"), Until: d("2026-03-28")},
			want: []string{"2026-03-28 23:00 +0100..2026-03-29 04:00 +0200 confirmed u3/20260328T220000Z"},
		},
		{
			name: "a start in the spring gap moves forward",
			series: Series{UID: "u4", Resource: "r", Status: booking.Confirmed, Start: 2*60 + 30, Duration: time.Hour,
				First: d("2026-03-29"), Until: d("2026-03-29")},
			want: []string{"2026-03-29 03:30 +0200..2026-03-29 04:30 +0200 confirmed u4/20260329T013000Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, b := range tt.series.Occurrences("src", loc) {
				require.Equal(t, "src", b.Source)
				require.Equal(t, "r", b.Resource)
				got = append(got, b.Start.Format("2006-01-02 15:04 -0700")+".."+b.End.Format("2006-01-02 15:04 -0700")+" "+string(b.Status)+" "+b.ID)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFeedFormat(t *testing.T) {
	ds, err := Generate(Config{Schools: 2})
	require.NoError(t, err)
	feed := ds.Feed()
	require.True(t, bytes.HasSuffix(feed, []byte("END:VCALENDAR\r\n")))
	for i, line := range strings.Split(strings.TrimSuffix(string(feed), "\r\n"), "\r\n") {
		require.LessOrEqual(t, len(line), 75, "line %d is longer than 75 octets: %q", i+1, line)
		require.NotContains(t, line, "\n", "line %d has a bare LF", i+1)
	}
	cal, err := ical.NewDecoder(bytes.NewReader(feed)).Decode()
	require.NoError(t, err)
	overrides := 0
	for _, sr := range ds.Series {
		overrides += len(sr.Overrides)
	}
	require.Len(t, cal.Events(), len(ds.Series)+overrides)
	require.Len(t, cal.Children, len(ds.Series)+overrides+1, "the events and one VTIMEZONE")
	require.Equal(t, ical.CompTimezone, cal.Children[0].Name)
}

// TestFeedMatchesBookings expands the feed independently, with rrule-go,
// and compares the occurrences with Bookings: the feed and the expanded
// bookings describe the same thing.
func TestFeedMatchesBookings(t *testing.T) {
	ds, err := Generate(Config{Schools: 2, Seed: 3})
	require.NoError(t, err)
	cal, err := ical.NewDecoder(bytes.NewReader(ds.Feed())).Decode()
	require.NoError(t, err)
	loc := ds.Location

	type occ struct {
		start, end time.Time
		status     booking.Status
		resource   string
		organiser  string
	}
	got := map[string]occ{}
	statusOf := func(e ical.Event) booking.Status {
		st, err := e.Props.Text(ical.PropStatus)
		require.NoError(t, err)
		return booking.Status(strings.ToLower(st))
	}
	text := func(e ical.Event, name string) string {
		v, err := e.Props.Text(name)
		require.NoError(t, err)
		return v
	}
	var overrides []ical.Event
	for _, e := range cal.Events() {
		if e.Props.Get(ical.PropRecurrenceID) != nil {
			overrides = append(overrides, e)
			continue
		}
		uid := text(e, ical.PropUID)
		start, err := e.DateTimeStart(loc)
		require.NoError(t, err)
		end, err := e.DateTimeEnd(loc)
		require.NoError(t, err)
		opt, err := rrule.StrToROption(e.Props.Get(ical.PropRecurrenceRule).Value)
		require.NoError(t, err)
		opt.Dtstart = start
		rule, err := rrule.NewRRule(*opt)
		require.NoError(t, err)
		var ex []time.Time
		if p := e.Props.Get(ical.PropExceptionDates); p != nil {
			require.Equal(t, "Europe/Copenhagen", p.Params.Get(ical.PropTimezoneID))
			for _, v := range strings.Split(p.Value, ",") {
				x, err := time.ParseInLocation("20060102T150405", v, loc)
				require.NoError(t, err)
				ex = append(ex, x)
			}
		}
		for _, s := range rule.All() {
			if slices.ContainsFunc(ex, s.Equal) {
				continue
			}
			got[booking.OccurrenceID(uid, s)] = occ{s, s.Add(end.Sub(start)), statusOf(e), text(e, ical.PropLocation), text(e, "X-ASSOCIATION-ID")}
		}
	}
	for _, e := range overrides {
		rid, err := e.Props.Get(ical.PropRecurrenceID).DateTime(loc)
		require.NoError(t, err)
		id := booking.OccurrenceID(text(e, ical.PropUID), rid)
		require.Contains(t, got, id)
		start, err := e.DateTimeStart(loc)
		require.NoError(t, err)
		end, err := e.DateTimeEnd(loc)
		require.NoError(t, err)
		got[id] = occ{start, end, statusOf(e), text(e, ical.PropLocation), text(e, "X-ASSOCIATION-ID")}
	}

	bookings := ds.Bookings()
	require.Len(t, got, len(bookings))
	for _, b := range bookings {
		o, ok := got[b.ID]
		require.True(t, ok, "booking %s is not in the feed", b.ID)
		require.True(t, o.start.Equal(b.Start), "%s starts %s in the feed, %s expanded", b.ID, o.start, b.Start)
		require.True(t, o.end.Equal(b.End), "%s ends %s in the feed, %s expanded", b.ID, o.end, b.End)
		require.Equal(t, o.status, b.Status, b.ID)
		require.Equal(t, o.resource, b.Resource, b.ID)
		require.Equal(t, o.organiser, b.Organiser, b.ID)
		require.Equal(t, ds.Source, b.Source)
	}
}
