package icalendar

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the zones below must resolve on machines without tzdata

	"github.com/stretchr/testify/require"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func parseFile(t *testing.T, name string) *Calendar {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	require.NoError(t, err)
	defer f.Close()
	cal, err := Parse(f)
	require.NoError(t, err)
	return cal
}

func parseString(t *testing.T, s string) *Calendar {
	t.Helper()
	cal, err := Parse(strings.NewReader(s))
	require.NoError(t, err)
	return cal
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

// brief renders occurrences as "uid start end [status]" with the times in
// their own zone, so expectations show the local time and its offset.
func brief(occs []Occurrence) []string {
	out := make([]string, 0, len(occs))
	for _, o := range occs {
		s := fmt.Sprintf("%s %s %s", o.UID, o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339))
		if o.Status == statusCancelled {
			s += " CANCELLED"
		}
		out = append(out, s)
	}
	return out
}

func expand(t *testing.T, cal *Calendar, from, to string, floating *time.Location) []Occurrence {
	t.Helper()
	occs, err := cal.Expand(at(t, from), at(t, to), floating)
	require.NoError(t, err)
	return occs
}

// TestExpandTestdata pins the expected occurrences of each testdata file,
// worked out by hand from RFC 5545 (the reference test only shows that two
// implementations agree).
func TestExpandTestdata(t *testing.T) {
	cph := mustZone(t, "Europe/Copenhagen")
	ny := mustZone(t, "America/New_York")
	tests := []struct {
		name     string
		file     string
		from, to string
		floating *time.Location
		want     []string
	}{
		{
			name: "DST gap: 02:30 on 2026-03-29 becomes 03:30 CEST, floating keeps its wall clock",
			file: "dst_gap.ics", from: "2026-03-01T00:00:00Z", to: "2026-05-01T00:00:00Z", floating: cph,
			want: []string{
				"night-ventilation@booking.example 2026-03-15T02:30:00+01:00 2026-03-15T03:30:00+01:00",
				"night-ventilation@booking.example 2026-03-22T02:30:00+01:00 2026-03-22T03:30:00+01:00",
				// 01:30 CET to 03:30 CEST is one hour of real time.
				"floating-over-gap@booking.example 2026-03-29T01:30:00+01:00 2026-03-29T03:30:00+02:00",
				// RFC 5545 3.3.5: read with the offset before the gap (+01:00).
				"night-ventilation@booking.example 2026-03-29T03:30:00+02:00 2026-03-29T04:30:00+02:00",
				"night-ventilation@booking.example 2026-04-05T02:30:00+02:00 2026-04-05T03:30:00+02:00",
			},
		},
		{
			name: "series crossing 2026-10-25 keep their wall clock, durations stay exact",
			file: "dst_autumn.ics", from: "2026-10-01T00:00:00Z", to: "2026-11-10T00:00:00Z", floating: cph,
			want: []string{
				"sunday-0230@booking.example 2026-10-11T02:30:00+02:00 2026-10-11T03:30:00+02:00",
				"volley-thursday@booking.example 2026-10-15T19:00:00+02:00 2026-10-15T21:00:00+02:00",
				"sunday-0230@booking.example 2026-10-18T02:30:00+02:00 2026-10-18T03:30:00+02:00",
				"volley-thursday@booking.example 2026-10-22T19:00:00+02:00 2026-10-22T21:00:00+02:00",
				// 22:00 CEST to 06:00 CET: nine hours.
				"night-watch@booking.example 2026-10-24T22:00:00+02:00 2026-10-25T06:00:00+01:00",
				// 02:30 happens twice; RFC 5545 3.3.5 takes the first (CEST).
				// PT1H later the clock shows 02:30 again, now CET.
				"sunday-0230@booking.example 2026-10-25T02:30:00+02:00 2026-10-25T02:30:00+01:00",
				"volley-thursday@booking.example 2026-10-29T19:00:00+01:00 2026-10-29T21:00:00+01:00",
				"sunday-0230@booking.example 2026-11-01T02:30:00+01:00 2026-11-01T03:30:00+01:00",
				"volley-thursday@booking.example 2026-11-05T19:00:00+01:00 2026-11-05T21:00:00+01:00",
			},
		},
		{
			name: "comma-separated and repeated EXDATE, TZID, UTC and DATE values",
			file: "exdate_comma.ics", from: "2026-10-01T00:00:00Z", to: "2026-10-27T00:00:00Z", floating: cph,
			want: []string{
				"handball-monday@booking.example 2026-10-05T17:00:00+02:00 2026-10-05T18:30:00+02:00",
				"utc-series@booking.example 2026-10-06T16:00:00Z 2026-10-06T17:00:00Z",
				"utc-series@booking.example 2026-10-08T16:00:00Z 2026-10-08T17:00:00Z",
				"utc-series@booking.example 2026-10-10T16:00:00Z 2026-10-10T17:00:00Z",
				"utc-series@booking.example 2026-10-11T16:00:00Z 2026-10-11T17:00:00Z",
				"handball-monday@booking.example 2026-10-26T17:00:00+01:00 2026-10-26T18:30:00+01:00",
			},
		},
		{
			name: "comma-separated EXDATE at Christmas, all-day series",
			file: "exdate_comma.ics", from: "2026-12-13T00:00:00Z", to: "2027-01-15T00:00:00Z", floating: cph,
			want: []string{
				"allday-weekly@booking.example 2026-12-14T00:00:00+01:00 2026-12-15T00:00:00+01:00",
				"handball-monday@booking.example 2026-12-14T17:00:00+01:00 2026-12-14T18:30:00+01:00",
				"allday-weekly@booking.example 2027-01-04T00:00:00+01:00 2027-01-05T00:00:00+01:00",
			},
		},
		{
			name: "METHOD:CANCEL cancels an instance and a whole event, not a newer one",
			file: "method_cancel.ics", from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z", floating: cph,
			want: []string{
				"chess-club@booking.example 2026-11-05T19:00:00+01:00 2026-11-05T21:00:00+01:00",
				"gym-rental@booking.example 2026-11-07T10:00:00+01:00 2026-11-07T14:00:00+01:00 CANCELLED",
				"choir@booking.example 2026-11-08T15:00:00+01:00 2026-11-08T17:00:00+01:00",
				"chess-club@booking.example 2026-11-12T19:00:00+01:00 2026-11-12T21:00:00+01:00 CANCELLED",
				"chess-club@booking.example 2026-11-19T19:00:00+01:00 2026-11-19T21:00:00+01:00",
				"chess-club@booking.example 2026-11-26T19:00:00+01:00 2026-11-26T21:00:00+01:00",
			},
		},
		{
			name: "overrides move, cancel and reshape instances",
			file: "overrides.ics", from: "2026-11-01T00:00:00Z", to: "2026-12-31T00:00:00Z", floating: cph,
			want: []string{
				"closed-series@booking.example 2026-11-02T08:00:00+01:00 2026-11-02T09:00:00+01:00 CANCELLED",
				"badminton@booking.example 2026-11-02T16:00:00+01:00 2026-11-02T17:00:00+01:00",
				"closed-series@booking.example 2026-11-03T08:00:00+01:00 2026-11-03T09:00:00+01:00 CANCELLED",
				"closed-series@booking.example 2026-11-04T08:00:00+01:00 2026-11-04T09:00:00+01:00 CANCELLED",
				"closed-series@booking.example 2026-11-05T08:00:00+01:00 2026-11-05T09:00:00+01:00 CANCELLED",
				"volley@booking.example 2026-11-05T19:00:00+01:00 2026-11-05T21:00:00+01:00",
				"closed-series@booking.example 2026-11-06T08:00:00+01:00 2026-11-06T09:00:00+01:00 CANCELLED",
				"badminton@booking.example 2026-11-09T16:00:00+01:00 2026-11-09T17:00:00+01:00",
				"volley@booking.example 2026-11-13T18:00:00+01:00 2026-11-13T20:00:00+01:00",
				// THISANDFUTURE: this and every later instance 90 minutes
				// later and 30 minutes longer.
				"badminton@booking.example 2026-11-16T17:30:00+01:00 2026-11-16T19:00:00+01:00",
				"volley@booking.example 2026-11-19T19:00:00+01:00 2026-11-19T21:00:00+01:00 CANCELLED",
				"badminton@booking.example 2026-11-23T17:30:00+01:00 2026-11-23T19:00:00+01:00",
				// SEQUENCE 2 beats the stale SEQUENCE 1 override.
				"volley@booking.example 2026-11-26T20:00:00+01:00 2026-11-26T22:00:00+01:00",
				// The 17 December session, moved forward (a UTC RECURRENCE-ID
				// matches the zoned instance by instant).
				"volley@booking.example 2026-11-30T17:00:00+01:00 2026-11-30T19:00:00+01:00",
				"badminton@booking.example 2026-11-30T17:30:00+01:00 2026-11-30T19:00:00+01:00",
				"volley@booking.example 2026-12-03T19:00:00+01:00 2026-12-03T21:00:00+01:00",
				"badminton@booking.example 2026-12-07T17:30:00+01:00 2026-12-07T19:00:00+01:00",
				"volley@booking.example 2026-12-10T19:00:00+01:00 2026-12-10T21:00:00+01:00",
			},
		},
		{
			name: "an override moves an instance out of the window",
			file: "overrides.ics", from: "2026-12-17T00:00:00Z", to: "2026-12-18T00:00:00Z", floating: cph,
			want: nil,
		},
		{
			name: "an override moves an instance into the window",
			file: "overrides.ics", from: "2026-11-13T00:00:00Z", to: "2026-11-14T00:00:00Z", floating: cph,
			want: []string{"volley@booking.example 2026-11-13T18:00:00+01:00 2026-11-13T20:00:00+01:00"},
		},
		{
			name: "floating and all-day events in Copenhagen",
			file: "floating_allday.ics", from: "2026-10-01T00:00:00Z", to: "2027-01-05T00:00:00Z", floating: cph,
			want: []string{
				"floating-series@booking.example 2026-10-20T18:00:00+02:00 2026-10-20T20:00:00+02:00",
				"floating-series@booking.example 2026-10-27T18:00:00+01:00 2026-10-27T20:00:00+01:00",
				"allday-series@booking.example 2026-11-02T00:00:00+01:00 2026-11-03T00:00:00+01:00",
				"zero-length@booking.example 2026-11-03T12:00:00+01:00 2026-11-03T12:00:00+01:00",
				"floating-series@booking.example 2026-11-03T18:00:00+01:00 2026-11-03T20:00:00+01:00",
				"allday-series@booking.example 2026-11-09T00:00:00+01:00 2026-11-10T00:00:00+01:00",
				// 16 November is an EXDATE; UNTIL=20261130 includes the 30th.
				"allday-series@booking.example 2026-11-23T00:00:00+01:00 2026-11-24T00:00:00+01:00",
				"allday-series@booking.example 2026-11-30T00:00:00+01:00 2026-12-01T00:00:00+01:00",
				// DTEND is exclusive: 24, 25 and 26 December.
				"christmas@booking.example 2026-12-24T00:00:00+01:00 2026-12-27T00:00:00+01:00",
				// No DTEND on a DATE: one day (RFC 5545 3.6.1).
				"new-years-eve@booking.example 2026-12-31T00:00:00+01:00 2027-01-01T00:00:00+01:00",
			},
		},
		{
			name: "floating and all-day events follow the floating zone",
			file: "floating_allday.ics", from: "2026-12-24T00:00:00Z", to: "2026-12-25T00:00:00Z", floating: ny,
			want: []string{
				"christmas@booking.example 2026-12-24T00:00:00-05:00 2026-12-27T00:00:00-05:00",
			},
		},
		{
			name: "Outlook's Windows TZID and an exception with its own place",
			file: "outlook_romance_standard_time.ics", from: "2026-10-01T00:00:00Z", to: "2026-11-13T00:00:00Z", floating: cph,
			want: []string{
				"040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5DC01000000000000000010000000C0FFEE0000000000000000000000000001 2026-10-01T18:00:00+02:00 2026-10-01T20:00:00+02:00",
				"040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5DC01000000000000000010000000C0FFEE0000000000000000000000000001 2026-10-08T18:00:00+02:00 2026-10-08T20:00:00+02:00",
				"040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5DC01000000000000000010000000C0FFEE0000000000000000000000000001 2026-10-29T18:00:00+01:00 2026-10-29T20:00:00+01:00",
				"040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5DC01000000000000000010000000C0FFEE0000000000000000000000000001 2026-11-05T19:30:00+01:00 2026-11-05T21:30:00+01:00",
				"040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5DC01000000000000000010000000C0FFEE0000000000000000000000000001 2026-11-12T18:00:00+01:00 2026-11-12T20:00:00+01:00",
			},
		},
		{
			name: "custom VTIMEZONEs: vendor prefix, Exchange display name, fixed offset",
			file: "custom_vtimezone.ics", from: "2026-01-01T00:00:00Z", to: "2027-01-01T00:00:00Z", floating: cph,
			want: []string{
				"mozilla-prefix@booking.example 2026-03-19T18:00:00+01:00 2026-03-19T20:00:00+01:00",
				"mozilla-prefix@booking.example 2026-03-26T18:00:00+01:00 2026-03-26T20:00:00+01:00",
				"mozilla-prefix@booking.example 2026-04-02T18:00:00+02:00 2026-04-02T20:00:00+02:00",
				"fixed-offset@booking.example 2026-06-01T12:00:00-01:00 2026-06-01T13:00:00-01:00",
				"exchange-display-name@booking.example 2026-10-22T18:00:00+02:00 2026-10-22T19:30:00+02:00",
				"exchange-display-name@booking.example 2026-10-29T18:00:00+01:00 2026-10-29T19:30:00+01:00",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cal := parseFile(t, tt.file)
			require.Empty(t, cal.Warnings())
			got := brief(expand(t, cal, tt.from, tt.to, tt.floating))
			if tt.want == nil {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestOutlookOccurrenceFields(t *testing.T) {
	cal := parseFile(t, "outlook_romance_standard_time.ics")
	paris := mustZone(t, "Europe/Paris")
	occs := expand(t, cal, "2026-09-01T00:00:00Z", "2027-01-01T00:00:00Z", time.UTC)
	// 16 Thursdays from 3 September to 17 December (UNTIL is 18:00 CET,
	// inclusive), less the two autumn-holiday EXDATEs.
	require.Len(t, occs, 14)
	first := occs[0]
	require.Equal(t, "Valby BK - basketball U14", first.Summary)
	require.Equal(t, "Valby Skole - Gymnastiksal A", first.Location)
	require.Equal(t, "mailto:booking@valbybk.example", first.Organizer)
	require.Equal(t, "", first.Status)
	require.False(t, first.AllDay)
	require.Equal(t, paris.String(), first.Start.Location().String(), "Romance Standard Time is Europe/Paris")
	require.True(t, first.RecurrenceID.Equal(first.Start))
	require.Equal(t, "Basketball U14. Gymnastiksal A, indgang ved nordd\u00f8ren.\n\nHusk indesko.", first.Props["DESCRIPTION"])
	require.Equal(t, "BUSY", first.Props["X-MICROSOFT-CDO-BUSYSTATUS"])
	require.Equal(t, "PUBLIC", first.Props["CLASS"])
	require.NotContains(t, first.Props, "ORGANIZER")
	require.NotContains(t, first.Props, "DTSTART")

	moved := occs[7]
	require.Equal(t, "Valby BK - basketball U14 (flyttet)", moved.Summary)
	require.Equal(t, 1, moved.Sequence)
	require.Equal(t, "2026-11-05T18:00:00+01:00", moved.RecurrenceID.Format(time.RFC3339))
	require.Equal(t, "2026-11-05T19:30:00+01:00", moved.Start.Format(time.RFC3339))

	last := occs[len(occs)-1]
	require.Equal(t, "2026-12-17T18:00:00+01:00", last.Start.Format(time.RFC3339))
}

func TestRecurrenceIDs(t *testing.T) {
	cal := parseFile(t, "overrides.ics")
	occs := expand(t, cal, "2026-11-30T15:00:00Z", "2026-11-30T17:00:00Z", time.UTC)
	require.Len(t, occs, 2)
	// Sorted by start: the badminton range override (16:30Z), then the
	// volley session moved from 17 December (16:00Z) comes first.
	require.Equal(t, "volley@booking.example", occs[0].UID)
	require.Equal(t, "2026-12-17T18:00:00Z", occs[0].RecurrenceID.Format(time.RFC3339))
	require.Equal(t, "badminton@booking.example", occs[1].UID)
	require.Equal(t, "TENTATIVE", occs[1].Status, "a THISANDFUTURE override's properties carry over")
	require.Equal(t, "2026-11-30T16:00:00+01:00", occs[1].RecurrenceID.Format(time.RFC3339))

	single := parseFile(t, "floating_allday.ics")
	occs = expand(t, single, "2026-12-24T00:00:00Z", "2026-12-25T00:00:00Z", time.UTC)
	require.Len(t, occs, 1)
	require.True(t, occs[0].RecurrenceID.IsZero(), "a non-recurring event has no recurrence id")
	require.True(t, occs[0].AllDay)
}

const calHead = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
const calTail = "END:VCALENDAR\r\n"

func vevent(lines ...string) string {
	return "BEGIN:VEVENT\r\n" + strings.Join(lines, "\r\n") + "\r\nEND:VEVENT\r\n"
}

func TestWindowOverlap(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:hour", "DTSTART:20261126T100000Z", "DTEND:20261126T110000Z")+
		vevent("UID:point", "DTSTART:20261126T120000Z")+calTail)
	tests := []struct {
		from, to string
		want     []string
	}{
		{"2026-11-26T11:00:00Z", "2026-11-26T12:00:00Z", nil},
		{"2026-11-26T10:59:59Z", "2026-11-26T11:00:00Z", []string{"hour"}},
		{"2026-11-26T09:00:00Z", "2026-11-26T10:00:00Z", nil},
		{"2026-11-26T09:00:00Z", "2026-11-26T10:00:01Z", []string{"hour"}},
		// A zero-length event overlaps when from <= start < to.
		{"2026-11-26T12:00:00Z", "2026-11-26T12:00:01Z", []string{"point"}},
		{"2026-11-26T11:00:00Z", "2026-11-26T12:00:00Z", nil},
		{"2026-11-26T12:00:00.5Z", "2026-11-26T13:00:00Z", nil},
		{"2026-11-26T11:59:59.5Z", "2026-11-26T12:00:00.5Z", []string{"point"}},
	}
	for _, tt := range tests {
		t.Run(tt.from+"/"+tt.to, func(t *testing.T) {
			occs, err := cal.Expand(at(t, tt.from), at(t, tt.to), time.UTC)
			require.NoError(t, err)
			var got []string
			for _, o := range occs {
				got = append(got, o.UID)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestExpandArguments(t *testing.T) {
	cal := parseString(t, calHead+vevent("UID:a", "DTSTART:20261126T100000Z")+calTail)
	_, err := cal.Expand(time.Now(), time.Now().Add(time.Hour), nil)
	require.Error(t, err)
	_, err = cal.Expand(time.Now(), time.Now().Add(-time.Hour), time.UTC)
	require.Error(t, err)
	occs, err := cal.Expand(time.Now(), time.Now(), time.UTC)
	require.NoError(t, err)
	require.Empty(t, occs)
}

func TestDurations(t *testing.T) {
	cph := mustZone(t, "Europe/Copenhagen")
	cal := parseString(t, calHead+
		// DTEND: the exact duration of the first instance, 2 hours, also
		// on the night with 25.
		vevent("UID:dtend", "DTSTART;TZID=Europe/Copenhagen:20261024T230000", "DTEND;TZID=Europe/Copenhagen:20261025T010000", "RRULE:FREQ=DAILY;COUNT=2")+
		// DURATION P1D is nominal: the same wall clock next day, 25 hours
		// over the change (RFC 5545 3.3.6).
		vevent("UID:nominal", "DTSTART;TZID=Europe/Copenhagen:20261024T120000", "DURATION:P1D")+
		// PT24H is exact.
		vevent("UID:exact", "DTSTART;TZID=Europe/Copenhagen:20261024T120000", "DURATION:PT24H")+
		vevent("UID:allday", "DTSTART;VALUE=DATE:20261024", "DURATION:P2D")+
		calTail)
	got := brief(expand(t, cal, "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z", cph))
	require.Equal(t, []string{
		"allday 2026-10-24T00:00:00+02:00 2026-10-26T00:00:00+01:00",
		"exact 2026-10-24T12:00:00+02:00 2026-10-25T11:00:00+01:00",
		"nominal 2026-10-24T12:00:00+02:00 2026-10-25T12:00:00+01:00",
		"dtend 2026-10-24T23:00:00+02:00 2026-10-25T01:00:00+02:00",
		"dtend 2026-10-25T23:00:00+01:00 2026-10-26T01:00:00+01:00",
	}, got)
}

func TestRecurrenceSets(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:rdates", "DTSTART;TZID=Europe/Copenhagen:20261102T100000", "DTEND;TZID=Europe/Copenhagen:20261102T110000",
			"RDATE;TZID=Europe/Copenhagen:20261104T100000,20261106T120000",
			"RDATE;VALUE=PERIOD:20261108T090000Z/PT3H,20261109T090000Z/20261109T093000Z",
			"RDATE;TZID=Europe/Copenhagen:20261102T100000")+
		// Two RRULEs (RFC 2445; RFC 5545 says SHOULD NOT but allows it):
		// their union, each instance once.
		vevent("UID:two-rules", "DTSTART:20261201T080000Z", "DURATION:PT1H",
			"RRULE:FREQ=DAILY;COUNT=3", "RRULE:FREQ=WEEKLY;COUNT=2")+
		// UNTIL before DTSTART: DTSTART is still an instance.
		vevent("UID:until-before", "DTSTART:20261210T080000Z", "RRULE:FREQ=DAILY;UNTIL=20261201T000000Z")+
		// BYSETPOS and a negative BYDAY ordinal: last weekday of the month.
		vevent("UID:last-weekday", "DTSTART;TZID=Europe/Copenhagen:20261130T170000", "DTEND;TZID=Europe/Copenhagen:20261130T180000",
			"RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3")+
		calTail)
	got := brief(expand(t, cal, "2026-11-01T00:00:00Z", "2027-02-01T00:00:00Z", time.UTC))
	require.Equal(t, []string{
		"rdates 2026-11-02T10:00:00+01:00 2026-11-02T11:00:00+01:00",
		"rdates 2026-11-04T10:00:00+01:00 2026-11-04T11:00:00+01:00",
		"rdates 2026-11-06T12:00:00+01:00 2026-11-06T13:00:00+01:00",
		"rdates 2026-11-08T10:00:00+01:00 2026-11-08T13:00:00+01:00",
		"rdates 2026-11-09T10:00:00+01:00 2026-11-09T10:30:00+01:00",
		"last-weekday 2026-11-30T17:00:00+01:00 2026-11-30T18:00:00+01:00",
		"two-rules 2026-12-01T08:00:00Z 2026-12-01T09:00:00Z",
		"two-rules 2026-12-02T08:00:00Z 2026-12-02T09:00:00Z",
		"two-rules 2026-12-03T08:00:00Z 2026-12-03T09:00:00Z",
		"two-rules 2026-12-08T08:00:00Z 2026-12-08T09:00:00Z",
		"until-before 2026-12-10T08:00:00Z 2026-12-10T08:00:00Z",
		"last-weekday 2026-12-31T17:00:00+01:00 2026-12-31T18:00:00+01:00",
		"last-weekday 2027-01-29T17:00:00+01:00 2027-01-29T18:00:00+01:00",
	}, got)
}

func TestUntilForms(t *testing.T) {
	cal := parseString(t, calHead+
		// UTC UNTIL equal to an instance includes it (RFC 5545 3.3.10).
		vevent("UID:utc", "DTSTART;TZID=America/Los_Angeles:20230105T100000", "RRULE:FREQ=WEEKLY;UNTIL=20230119T180000Z")+
		// A floating UNTIL on a zoned series is that zone's wall clock.
		vevent("UID:floating", "DTSTART;TZID=Europe/Copenhagen:20261102T190000", "RRULE:FREQ=DAILY;UNTIL=20261104T190000")+
		// A DATE UNTIL on a timed series is midnight: the 12th is out.
		vevent("UID:date", "DTSTART;TZID=Europe/Copenhagen:20261110T190000", "RRULE:FREQ=DAILY;UNTIL=20261112")+
		// An all-day series ends on UNTIL's date.
		vevent("UID:allday", "DTSTART;VALUE=DATE:20261120", "RRULE:FREQ=DAILY;UNTIL=20261121T225959Z")+
		calTail)
	var got []string
	for _, o := range expand(t, cal, "2023-01-01T00:00:00Z", "2027-01-01T00:00:00Z", time.UTC) {
		got = append(got, o.UID+" "+o.Start.Format("2006-01-02"))
	}
	require.Equal(t, []string{
		"utc 2023-01-05", "utc 2023-01-12", "utc 2023-01-19",
		"floating 2026-11-02", "floating 2026-11-03", "floating 2026-11-04",
		"date 2026-11-10", "date 2026-11-11",
		"allday 2026-11-20", "allday 2026-11-21",
	}, got)
}

func TestAllDayOverrideMatchesByDate(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:bday", "DTSTART;VALUE=DATE:20261201", "RRULE:FREQ=YEARLY;COUNT=3", "SUMMARY:master")+
		// Matched by its date, even written as a date-time.
		vevent("UID:bday", "RECURRENCE-ID:20271201T000000", "DTSTART;VALUE=DATE:20271202", "SUMMARY:moved")+
		calTail)
	occs := expand(t, cal, "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z", time.UTC)
	var got []string
	for _, o := range occs {
		got = append(got, o.Summary+" "+o.Start.Format("2006-01-02"))
	}
	require.Equal(t, []string{"master 2026-12-01", "moved 2027-12-02", "master 2028-12-01"}, got)
}

func TestDuplicatesKeepHigherSequenceThenLater(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:a", "SEQUENCE:2", "DTSTART:20261126T100000Z", "SUMMARY:seq 2")+
		vevent("UID:a", "SEQUENCE:1", "DTSTART:20261126T110000Z", "SUMMARY:seq 1, later")+
		vevent("UID:b", "SEQUENCE:1", "DTSTART:20261126T100000Z", "SUMMARY:first")+
		vevent("UID:b", "SEQUENCE:1", "DTSTART:20261126T120000Z", "SUMMARY:second")+
		calTail)
	var got []string
	for _, o := range expand(t, cal, "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z", time.UTC) {
		got = append(got, o.Summary)
	}
	require.Equal(t, []string{"seq 2", "second"}, got)
}

func TestMasterCancelledOverrideKeepsItsStatus(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:a", "DTSTART:20261102T100000Z", "RRULE:FREQ=DAILY;COUNT=3", "STATUS:CANCELLED")+
		// An override is a whole component (RFC 5545 3.8.4.4): its own
		// STATUS stands.
		vevent("UID:a", "RECURRENCE-ID:20261103T100000Z", "DTSTART:20261103T100000Z", "STATUS:CONFIRMED")+
		calTail)
	got := brief(expand(t, cal, "2026-11-01T00:00:00Z", "2026-11-05T00:00:00Z", time.UTC))
	require.Equal(t, []string{
		"a 2026-11-02T10:00:00Z 2026-11-02T10:00:00Z CANCELLED",
		"a 2026-11-03T10:00:00Z 2026-11-03T10:00:00Z",
		"a 2026-11-04T10:00:00Z 2026-11-04T10:00:00Z CANCELLED",
	}, got)
}

func TestCancelWholeSeriesAcrossCalendars(t *testing.T) {
	cal := parseString(t,
		calHead+"METHOD:CANCEL\r\n"+vevent("UID:a", "SEQUENCE:4", "DTSTART:20261102T100000Z")+calTail+
			calHead+vevent("UID:a", "SEQUENCE:4", "DTSTART:20261102T100000Z", "RRULE:FREQ=DAILY;COUNT=2")+
			vevent("UID:a", "SEQUENCE:5", "RECURRENCE-ID:20261103T100000Z", "DTSTART:20261103T120000Z")+calTail)
	got := brief(expand(t, cal, "2026-11-01T00:00:00Z", "2026-11-05T00:00:00Z", time.UTC))
	require.Equal(t, []string{
		// The series is cancelled wherever the notice sits in the stream,
		"a 2026-11-02T10:00:00Z 2026-11-02T10:00:00Z CANCELLED",
		// but an override newer than the notice survives it.
		"a 2026-11-03T12:00:00Z 2026-11-03T12:00:00Z",
	}, got)
}

func TestOrphanOverridesAreOccurrences(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:x", "RECURRENCE-ID;VALUE=DATE:20261201", "DTSTART;VALUE=DATE:20261201", "DTEND;VALUE=DATE:20261202")+calTail)
	occs := expand(t, cal, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", time.UTC)
	require.Len(t, occs, 1)
	require.Equal(t, "2026-12-01T00:00:00Z", occs[0].RecurrenceID.Format(time.RFC3339))
}

func TestBrokenEventsAreSkippedNotFatal(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:good", "DTSTART:20261126T180000Z", "DTEND:20261126T200000Z")+ // lines 4-8
		vevent("UID:bad-rrule", "DTSTART:20261126T180000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO,XX")+ // 9-13
		vevent("UID:bad-tz", "DTSTART;TZID=Mars/Olympus:20261126T180000")+ // 14-17
		// go-ical panics on this parameter; the line costs only its event.
		vevent("UID:bad-line", "DTSTART;TZID=\"Europe/Copenhagen\"x:20261126T180000")+ // 18-21
		// A malformed line that does not place the event only costs itself.
		vevent("UID:bad-x", "DTSTART:20261126T190000Z", "X-NOTE;BROKEN:value")+ // 22-26
		vevent("UID:no-start", "SUMMARY:no DTSTART")+ // 27-30
		vevent("UID:backwards", "DTSTART:20261126T180000Z", "DTEND:20261126T170000Z")+ // 31-35
		calTail)
	occs := expand(t, cal, "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z", time.UTC)
	var uids []string
	for _, o := range occs {
		uids = append(uids, o.UID)
	}
	require.Equal(t, []string{"good", "bad-x"}, uids)

	var got []string
	for _, p := range cal.Warnings() {
		got = append(got, p.String())
	}
	require.Equal(t, []string{
		`line 12: event "bad-rrule": RRULE: BYDAY=MO,XX: weekday "XX"; event skipped`,
		`line 16: event "bad-tz": DTSTART: unknown TZID "Mars/Olympus": not an IANA or Windows zone and no VTIMEZONE defines it; event skipped`,
		`line 20: event "bad-line": DTSTART: malformed content line: ical: unexpected character 'x' after decoding param value; event skipped`,
		`line 25: event "bad-x": X-NOTE: malformed content line left out: ical: malformed param: missing equal sign`,
		`line 27: event "no-start": DTSTART: missing; event skipped`,
		`line 34: event "backwards": DTEND: before DTSTART; event skipped`,
	}, got)
}

func TestRecoverableEventsAreKeptWithAWarning(t *testing.T) {
	cal := parseString(t, calHead+
		// Thunderbird: DURATION:PT0S beside the real DTEND; DTEND wins.
		vevent("UID:both-ends", "DTSTART:20261126T180000Z", "DTEND:20261126T200000Z", "DURATION:PT0S")+ // lines 4-9
		// Exchange CDO: spaces in BYDAY, across a fold too.
		vevent("UID:spaced-rrule", "DTSTART:20261123T080000Z", "DTEND:20261123T083000Z",
			"RRULE:FREQ=DAILY;COUNT=4;BYDAY=MO, TU,\r\n  TH")+ // 10-16
		calTail)
	got := brief(expand(t, cal, "2026-11-20T00:00:00Z", "2026-12-01T00:00:00Z", time.UTC))
	require.Equal(t, []string{
		"spaced-rrule 2026-11-23T08:00:00Z 2026-11-23T08:30:00Z",
		"spaced-rrule 2026-11-24T08:00:00Z 2026-11-24T08:30:00Z",
		"spaced-rrule 2026-11-26T08:00:00Z 2026-11-26T08:30:00Z",
		"both-ends 2026-11-26T18:00:00Z 2026-11-26T20:00:00Z",
		"spaced-rrule 2026-11-30T08:00:00Z 2026-11-30T08:30:00Z",
	}, got)

	var warnings []string
	for _, p := range cal.Warnings() {
		warnings = append(warnings, p.String())
	}
	require.Equal(t, []string{
		`line 4: event "both-ends": DTEND and DURATION both given (RFC 5545 3.6.1 allows one); DTEND used`,
		`line 10: event "spaced-rrule": spaces in RRULE ignored (RFC 5545 3.3.10 has none)`,
	}, warnings)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, input string
		line        int
		contains    string
	}{
		{"empty", "", 0, "empty stream"},
		{"only blank lines", "\r\n\r\n", 0, "empty stream"},
		{"truncated", calHead + "BEGIN:VEVENT\r\nUID:a\r\n", 4, "BEGIN:VEVENT is never closed"},
		{"wrong END", calHead + "BEGIN:VEVENT\r\nUID:a\r\nEND:VTODO\r\n" + calTail, 6, "END:VTODO closes BEGIN:VEVENT of line 4"},
		{"not a calendar", "BEGIN:VEVENT\r\nEND:VEVENT\r\n", 1, `"VEVENT" where a VCALENDAR must begin`},
		{"junk between calendars", calHead + calTail + "garbage\r\n", 5, "content line outside any VCALENDAR"},
		{"END without BEGIN", calHead + calTail + "END:VCALENDAR\r\n", 5, "END:VCALENDAR without BEGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.input))
			require.Error(t, err)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.line, pe.Line)
			require.Contains(t, err.Error(), tt.contains)
			if tt.line > 0 {
				require.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: ", tt.line)), err.Error())
			}
		})
	}
}

func TestParseStreamDetails(t *testing.T) {
	// A byte order mark, LF line endings, folding with a tab, two
	// VCALENDAR objects and X-WR-TIMEZONE in the second.
	cal := parseString(t, "\ufeffBEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nDTSTART:20261126T180000Z\nSUMMARY:Kor &\n\t Orkester\nEND:VEVENT\nEND:VCALENDAR\n"+
		"BEGIN:VCALENDAR\nX-WR-TIMEZONE:Europe/Copenhagen\nBEGIN:VEVENT\nUID:b\nDTSTART:20261126T190000\nEND:VEVENT\nEND:VCALENDAR\n")
	require.Equal(t, "Europe/Copenhagen", cal.XWRTimezone())
	occs := expand(t, cal, "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z", mustZone(t, cal.XWRTimezone()))
	require.Len(t, occs, 2)
	require.Equal(t, "Kor & Orkester", occs[0].Summary)
	require.Equal(t, "2026-11-26T18:00:00Z", occs[1].Start.UTC().Format(time.RFC3339))
}

func TestEXDATEDateOnTimedSeriesWarns(t *testing.T) {
	cal := parseString(t, calHead+
		vevent("UID:a", "DTSTART:20240609T030000Z", "RRULE:FREQ=DAILY;COUNT=4", "EXDATE;VALUE=DATE:20240611")+calTail)
	occs := expand(t, cal, "2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z", time.UTC)
	// RFC 5545 3.8.5.3 excludes equal start values; 03:00 is not midnight.
	require.Len(t, occs, 4)
	require.Len(t, cal.Warnings(), 1)
	require.Contains(t, cal.Warnings()[0].String(), "EXDATE: date 20240611 on a timed series only excludes an instance at midnight")
}

func TestConcurrentExpand(t *testing.T) {
	cal := parseFile(t, "overrides.ics")
	cph := mustZone(t, "Europe/Copenhagen")
	want := brief(expand(t, cal, "2026-11-01T00:00:00Z", "2026-12-31T00:00:00Z", cph))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			occs, err := cal.Expand(at(t, "2026-11-01T00:00:00Z"), at(t, "2026-12-31T00:00:00Z"), cph)
			require.NoError(t, err)
			require.Equal(t, want, brief(occs))
		})
	}
	wg.Wait()
}

func TestRunawayRuleIsCapped(t *testing.T) {
	cal := parseString(t, calHead+vevent("UID:tick", "DTSTART:19900101T000000Z", "RRULE:FREQ=SECONDLY")+calTail)
	occs := expand(t, cal, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", time.UTC)
	require.Empty(t, occs)
	require.Len(t, cal.Warnings(), 1)
	require.Contains(t, cal.Warnings()[0].Message, "instances before the window ends")
}
