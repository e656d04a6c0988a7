package icalendar

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCivilDays(t *testing.T) {
	for _, d := range []time.Time{
		time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		days := daysFromCivil(int64(d.Year()), int64(d.Month()), int64(d.Day()))
		require.Equal(t, d.Unix()/secondsPerDay, days, d)
		y, m, dd := civilFromDays(days)
		require.Equal(t, []int64{int64(d.Year()), int64(d.Month()), int64(d.Day())}, []int64{y, m, dd})
		require.Equal(t, days, wallDay(days*secondsPerDay+3600))
	}
	require.Equal(t, int64(-1), wallDay(-1), "the day before the epoch")
}

func TestParseDateTimeValues(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 of the wall clock, "" for an error
		utc  bool
	}{
		{"20261126T180000", "2026-11-26T18:00:00Z", false},
		{"20261126T180000Z", "2026-11-26T18:00:00Z", true},
		{"20240229T000000", "2024-02-29T00:00:00Z", false},
		{"20230229T000000", "", false},
		{"20261126T240000", "", false},
		{"20261126 180000", "", false},
		{"2026-11-26T18:00:00", "", false},
		{"20210527Z", "", false},
		{"20261126", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			wall, utc, err := parseDateTimeWall(tt.in)
			if tt.want == "" {
				require.ErrorIs(t, err, errValue)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, wallTime(wall).Format(time.RFC3339))
			require.Equal(t, tt.utc, utc)
		})
	}
	_, err := parseDate("20261301")
	require.ErrorIs(t, err, errValue)
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in         string
		days, secs int64
		bad        bool
	}{
		{in: "PT1H30M", secs: 5400},
		{in: "P1D", days: 1},
		{in: "P2W", days: 14},
		{in: "P1DT12H", days: 1, secs: 43200},
		{in: "PT0S"},
		{in: "+PT15M", secs: 900},
		{in: "-P1D", days: -1},
		{in: "P", bad: true},
		{in: "PT", bad: true},
		{in: "P1H", bad: true},
		{in: "PT1D", bad: true},
		{in: "1H", bad: true},
		{in: "PT1H2", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := parseDuration(tt.in)
			if tt.bad {
				require.ErrorIs(t, err, errValue)
				return
			}
			require.NoError(t, err)
			require.Equal(t, duration{tt.days, tt.secs}, d)
		})
	}
}

func TestUnescapeText(t *testing.T) {
	tests := map[string]string{
		`plain`:                 "plain",
		`a\, b\; c\\ d\n e\N f`: "a, b; c\\ d\n e\n f",
		`C:\\new`:               `C:\new`,
		`unknown \: escape`:     `unknown \: escape`,
		`trailing \`:            `trailing \`,
	}
	for in, want := range tests {
		require.Equal(t, want, unescapeText(in), in)
	}
}

func TestParseUTCOffset(t *testing.T) {
	for in, want := range map[string]int64{"+0100": 3600, "-0800": -28800, "+0530": 19800, "+053045": 19845, "-0000": 0} {
		got, err := parseUTCOffset(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"+01", "0100", "+2500", "+01:00"} {
		_, err := parseUTCOffset(in)
		require.Error(t, err, in)
	}
}

func TestParseRRule(t *testing.T) {
	good := []string{
		"FREQ=WEEKLY;BYDAY=TH;UNTIL=20261217T180000Z",
		"freq=weekly;byday=th", // names and values are case-insensitive
		"FREQ=MONTHLY;BYDAY=-1SU,+2MO;BYSETPOS=1;WKST=SU;COUNT=10",
		"FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;UNTIL=20061029",
		"FREQ=DAILY;X-NAME=ignored;INTERVAL=2;",
		"RSCALE=GREGORIAN;FREQ=DAILY",
	}
	for _, v := range good {
		_, err := parseRRule(v)
		require.NoError(t, err, v)
	}
	bad := map[string]string{
		"BYDAY=TH":                   "FREQ is missing",
		"FREQ=FORTNIGHTLY":           "FREQ=FORTNIGHTLY",
		"FREQ=WEEKLY;BYDAY=MO, TU":   `weekday " TU"`,
		"FREQ=WEEKLY;COUNT=0":        "not a positive integer",
		"FREQ=WEEKLY;INTERVAL=-1":    "not a positive integer",
		"FREQ=WEEKLY;BYFOO=1":        "unknown rule part",
		"FREQ=WEEKLY;UNTIL=tomorrow": "UNTIL=tomorrow",
		"FREQ=WEEKLY;FREQ=DAILY":     "given twice",
		"FREQ=MONTHLY;BYMONTHDAY=32": "",
		"FREQ=MONTHLY;BYDAY=54MO":    "weekday",
		"FREQ=DAILY;RSCALE=HEBREW":   "not supported",
		"FREQ":                       "not NAME=VALUE",
	}
	for v, msg := range bad {
		r, err := parseRRule(v)
		if err == nil {
			err = r.build(0)
		}
		require.Error(t, err, v)
		require.Contains(t, err.Error(), msg, v)
	}
}
