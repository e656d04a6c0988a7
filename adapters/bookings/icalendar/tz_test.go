package icalendar

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWallResolverFollowsRFC5545(t *testing.T) {
	tests := []struct {
		zone string
		wall string // local wall clock
		want string // RFC 3339 with the chosen offset
	}{
		// Ordinary times.
		{"Europe/Copenhagen", "2026-11-26T18:00:00", "2026-11-26T18:00:00+01:00"},
		{"Europe/Copenhagen", "2026-07-01T18:00:00", "2026-07-01T18:00:00+02:00"},
		// A gap is read with the offset before it (RFC 5545 3.3.5).
		{"Europe/Copenhagen", "2026-03-29T02:30:00", "2026-03-29T03:30:00+02:00"},
		{"America/New_York", "2007-03-11T02:30:00", "2007-03-11T03:30:00-04:00"}, // the RFC's own example
		{"Australia/Sydney", "2026-10-04T02:30:00", "2026-10-04T03:30:00+11:00"},
		// A time that occurs twice means the first occurrence.
		{"Europe/Copenhagen", "2026-10-25T02:30:00", "2026-10-25T02:30:00+02:00"},
		{"America/New_York", "2007-11-04T01:30:00", "2007-11-04T01:30:00-04:00"}, // the RFC's own example
		{"Australia/Sydney", "2026-04-05T02:30:00", "2026-04-05T02:30:00+11:00"},
		// The edges of a gap and a fold.
		{"Europe/Copenhagen", "2026-03-29T02:00:00", "2026-03-29T03:00:00+02:00"},
		{"Europe/Copenhagen", "2026-03-29T03:00:00", "2026-03-29T03:00:00+02:00"},
		{"Europe/Copenhagen", "2026-10-25T03:00:00", "2026-10-25T03:00:00+01:00"},
		{"UTC", "2026-10-25T02:30:00", "2026-10-25T02:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.wall, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			w, err := time.Parse("2006-01-02T15:04:05", tt.wall)
			require.NoError(t, err)
			u := newWallResolver(loc).instant(w.Unix())
			require.Equal(t, tt.want, time.Unix(u, 0).In(loc).Format(time.RFC3339))
		})
	}
	// Why the resolver exists: time.Date leaves the choice open and gets
	// half of these wrong. It reads the Copenhagen gap as RFC 5545 does,
	// but the RFC's own New York gap example an hour early, and it picks
	// the second of Copenhagen's two 02:30s.
	ny, cph := mustZone(t, "America/New_York"), mustZone(t, "Europe/Copenhagen")
	require.Equal(t, "2026-03-29T03:30:00+02:00", time.Date(2026, 3, 29, 2, 30, 0, 0, cph).Format(time.RFC3339))
	require.Equal(t, "2007-03-11T01:30:00-05:00", time.Date(2007, 3, 11, 2, 30, 0, 0, ny).Format(time.RFC3339))
	require.Equal(t, "2026-10-25T02:30:00+01:00", time.Date(2026, 10, 25, 2, 30, 0, 0, cph).Format(time.RFC3339))
}

func TestWallResolverCacheAcrossPeriods(t *testing.T) {
	// One resolver walks a whole year of hourly wall times, through both
	// transitions, and must agree with a fresh resolver every time.
	loc := mustZone(t, "Europe/Copenhagen")
	r := newWallResolver(loc)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for w := start; w < start+366*secondsPerDay; w += 1800 {
		require.Equal(t, newWallResolver(loc).slow(w), r.instant(w), time.Unix(w, 0).UTC())
	}
}

func TestResolveTZID(t *testing.T) {
	cal := parseFile(t, "custom_vtimezone.ics")
	tests := []struct {
		tzid string
		want string // a zone name, or "offsets:<at>=<offset>,..." for built zones
	}{
		{"Europe/Copenhagen", "Europe/Copenhagen"},
		{"Romance Standard Time", "Europe/Paris"},
		{"W. Europe Standard Time", "Europe/Berlin"},
		{"GMT Standard Time", "Europe/London"},
		{"Pacific Standard Time", "America/Los_Angeles"},
		{`"Europe/Copenhagen"`, "Europe/Copenhagen"},
		{" Europe/Copenhagen ", "Europe/Copenhagen"},
		{"/mozilla.org/20050126_1/Europe/Berlin", "Europe/Berlin"},
		{"/softwarestudio.org/Olson_20011030_5/America/New_York", "America/New_York"},
		{"/citadel.org/20190914_1/America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"},
		{"(UTC+01:00) Brussels, Copenhagen, Madrid, Paris", "offsets:2026-01-15=3600,2026-07-15=7200,2026-10-25T01:30:00Z=3600"},
		{"Island Time", "offsets:2026-01-15=-3600,2026-07-15=-3600"},
	}
	for _, tt := range tests {
		t.Run(tt.tzid, func(t *testing.T) {
			loc, err := cal.ResolveTZID(tt.tzid)
			require.NoError(t, err)
			spec, ok := strings.CutPrefix(tt.want, "offsets:")
			if !ok {
				require.Equal(t, tt.want, loc.String())
				return
			}
			for _, pair := range strings.Split(spec, ",") {
				when, off, _ := strings.Cut(pair, "=")
				instant, err := time.Parse(time.RFC3339, when)
				if err != nil {
					instant, err = time.Parse(time.DateOnly, when)
					require.NoError(t, err)
				}
				_, got := instant.In(loc).Zone()
				require.Equal(t, off, strconv.Itoa(got), "offset at %s", when)
			}
		})
	}
	for _, bad := range []string{"Mars/Olympus", "", "Local", "GMT +0100 (Standard) / GMT +0200 (Daylight)"} {
		_, err := cal.ResolveTZID(bad)
		require.ErrorIs(t, err, ErrUnknownTZID, bad)
	}
}

func TestWindowsZonesAllLoad(t *testing.T) {
	require.GreaterOrEqual(t, len(windowsZones), 130)
	for win, iana := range windowsZones {
		_, err := time.LoadLocation(iana)
		require.NoError(t, err, "%s -> %s", win, iana)
	}
}

// TestVTimezoneMatchesIANA builds zones from VTIMEZONEs written the way
// Outlook and Thunderbird write them and compares them with tzdata.
func TestVTimezoneMatchesIANA(t *testing.T) {
	tests := []struct {
		name, iana, body string
	}{
		{
			// Only today's rules: compared from 1996, when the EU adopted them.
			name: "Outlook rules from 1601", iana: "Europe/Berlin",
			body: "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n" +
				"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n",
		},
		{
			name: "US rules since 2007 with an UNTIL-bounded history", iana: "America/New_York",
			body: "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\nDTSTART:19870405T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z\r\nEND:DAYLIGHT\r\n" +
				"BEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\nDTSTART:19671029T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z\r\nEND:STANDARD\r\n" +
				"BEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\nDTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\n" +
				"BEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\nDTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\n",
		},
		{
			name: "transitions by RDATE", iana: "America/Vancouver",
			body: "BEGIN:STANDARD\r\nDTSTART:20221106T020000\r\nTZOFFSETFROM:-0700\r\nTZOFFSETTO:-0800\r\nRDATE:20231105T020000,20241103T020000\r\nTZNAME:PST\r\nEND:STANDARD\r\n" +
				"BEGIN:DAYLIGHT\r\nDTSTART:20230312T020000\r\nTZOFFSETFROM:-0800\r\nTZOFFSETTO:-0700\r\nRDATE:20240310T020000\r\nTZNAME:PDT\r\nEND:DAYLIGHT\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cal := parseString(t, calHead+"BEGIN:VTIMEZONE\r\nTZID:Custom\r\n"+tt.body+"END:VTIMEZONE\r\n"+calTail)
			loc, err := cal.ResolveTZID("Custom")
			require.NoError(t, err)
			want := mustZone(t, tt.iana)
			from, to := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2038, 1, 1, 0, 0, 0, 0, time.UTC)
			switch tt.iana {
			case "Europe/Berlin":
				from = time.Date(1996, 1, 1, 0, 0, 0, 0, time.UTC)
			case "America/Vancouver":
				from, to = time.Date(2022, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC)
			}
			for at := from; at.Before(to); at = at.Add(6 * time.Hour) {
				_, got := at.In(loc).Zone()
				_, exp := at.In(want).Zone()
				require.Equal(t, exp, got, "offset at %s", at)
			}
		})
	}
}

func TestVTimezoneErrors(t *testing.T) {
	cal := parseString(t, calHead+
		"BEGIN:VTIMEZONE\r\nTZID:Empty\r\nEND:VTIMEZONE\r\n"+
		"BEGIN:VTIMEZONE\r\nTZID:Broken\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+01\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"+
		vevent("UID:a", "DTSTART;TZID=Broken:20261126T180000")+calTail)
	_, err := cal.ResolveTZID("Empty")
	require.ErrorContains(t, err, "no STANDARD or DAYLIGHT observance")
	_, err = cal.ResolveTZID("Broken")
	require.ErrorContains(t, err, `VTIMEZONE "Broken": STANDARD: TZOFFSETFROM`)
	require.Len(t, cal.Warnings(), 1)
	require.Contains(t, cal.Warnings()[0].String(), `line 17: event "a": DTSTART: VTIMEZONE "Broken"`)
}
