package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// expandTestdata is the icalendar package's testdata directory.
func expandTestdata(t *testing.T, name string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "adapters", "bookings", "icalendar", "testdata", name))
	require.NoError(t, err)
	return path
}

// runExpand calls cmdBookingsExpand with buffers; stdin, if not nil,
// replaces os.Stdin for FILE "-".
func runExpand(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	if stdin != nil {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		go func() {
			w.Write(stdin)
			w.Close()
		}()
		old := os.Stdin
		os.Stdin = r
		t.Cleanup(func() { os.Stdin = old; r.Close() })
	}
	var out, errOut bytes.Buffer
	code := cmdBookingsExpand(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

type expandLine struct {
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrence_id"`
	Summary      string `json:"summary"`
	Location     string `json:"location"`
	Start        string `json:"start"`
	End          string `json:"end"`
}

func expandLines(t *testing.T, out string) []expandLine {
	t.Helper()
	var lines []expandLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var v expandLine
		require.NoError(t, json.Unmarshal([]byte(l), &v), l)
		lines = append(lines, v)
	}
	return lines
}

func TestBookingsExpandJSON(t *testing.T) {
	file := expandTestdata(t, "overrides.ics")
	code, out, errOut := runExpand(t, nil, file, "--from", "2026-11-26", "--to", "2026-12-01", "--json")
	require.Equal(t, 0, code, errOut)
	require.Empty(t, errOut)
	require.Equal(t, []expandLine{
		{"volley@booking.example", "2026-11-26T18:00:00Z", "Valby Volley (late start, sequence 2 wins)", "", "2026-11-26T19:00:00Z", "2026-11-26T21:00:00Z"},
		{"volley@booking.example", "2026-12-17T18:00:00Z", "Valby Volley (last session moved to 30 November)", "", "2026-11-30T16:00:00Z", "2026-11-30T18:00:00Z"},
		{"badminton@booking.example", "2026-11-30T15:00:00Z", "Badminton (from 16 November: 17:30-19:00)", "", "2026-11-30T16:30:00Z", "2026-11-30T18:00:00Z"},
	}, expandLines(t, out))
	// The exact bytes of one line: field order, UTC, no HTML escaping.
	require.True(t, strings.HasPrefix(out, `{"uid":"volley@booking.example","recurrence_id":"2026-11-26T18:00:00Z","summary":"Valby Volley (late start, sequence 2 wins)","location":"","start":"2026-11-26T19:00:00Z","end":"2026-11-26T21:00:00Z"}`+"\n"), out)
}

func TestBookingsExpandLeavesOutCancelled(t *testing.T) {
	code, out, errOut := runExpand(t, nil, "--json", "--from", "2026-11-01", "--to", "2026-12-01", expandTestdata(t, "method_cancel.ics"))
	require.Equal(t, 0, code, errOut)
	var got []string
	for _, l := range expandLines(t, out) {
		got = append(got, l.UID+" "+l.Start)
	}
	require.Equal(t, []string{
		"chess-club@booking.example 2026-11-05T18:00:00Z",
		"choir@booking.example 2026-11-08T14:00:00Z",
		"chess-club@booking.example 2026-11-19T18:00:00Z",
		"chess-club@booking.example 2026-11-26T18:00:00Z",
	}, got)
}

func TestBookingsExpandZones(t *testing.T) {
	file := expandTestdata(t, "floating_allday.ics")
	// Dates and floating times are read in --tz (default Copenhagen).
	code, out, errOut := runExpand(t, nil, file, "--from", "2026-12-24", "--to", "2026-12-25", "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, []expandLine{{"christmas@booking.example", "", "School closed 24-26 December", "", "2026-12-23T23:00:00Z", "2026-12-26T23:00:00Z"}}, expandLines(t, out))

	code, out, errOut = runExpand(t, nil, file, "--from", "2026-12-24", "--to", "2026-12-25", "--json", "--tz", "America/New_York")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, []expandLine{{"christmas@booking.example", "", "School closed 24-26 December", "", "2026-12-24T05:00:00Z", "2026-12-27T05:00:00Z"}}, expandLines(t, out))

	// RFC 3339 bounds are instants whatever --tz says.
	code, out, errOut = runExpand(t, nil, file, "--from", "2026-10-20T16:00:00Z", "--to", "2026-10-20T16:00:01Z", "--json", "--tz", "Europe/Copenhagen")
	require.Equal(t, 0, code, errOut)
	require.Len(t, expandLines(t, out), 1)
}

func TestBookingsExpandStdinAndXWRTimezone(t *testing.T) {
	ics := "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:America/New_York\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20261126T180000\r\nDTEND:20261126T190000\r\nSUMMARY:Floating & local\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	code, out, errOut := runExpand(t, []byte(ics), "-", "--from", "2026-11-26", "--to", "2026-11-27", "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, `{"uid":"a","recurrence_id":"","summary":"Floating & local","location":"","start":"2026-11-26T23:00:00Z","end":"2026-11-27T00:00:00Z"}`+"\n", out)
}

func TestBookingsExpandTable(t *testing.T) {
	code, out, errOut := runExpand(t, nil, expandTestdata(t, "dst_gap.ics"), "--from", "2026-03-29", "--to", "2026-03-30")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4)
	require.Regexp(t, `^START\s+END\s+SUMMARY\s+LOCATION\s+UID$`, lines[0])
	require.Regexp(t, `^2026-03-29 01:30 \+0100\s+2026-03-29 03:30 \+0200\s+Floating 01:30-03:30`, lines[1])
	require.Regexp(t, `^2026-03-29 03:30 \+0200\s+2026-03-29 04:30 \+0200\s+Weekly 02:30 run.*night-ventilation@booking.example @ 2026-03-29T01:30:00Z$`, lines[2])
	require.Equal(t, "2 occurrences, times in Europe/Copenhagen", lines[3])

	code, out, errOut = runExpand(t, nil, expandTestdata(t, "floating_allday.ics"), "--from", "2026-12-31", "--to", "2027-01-01")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "2026-12-31 (all day)  2027-01-01")
}

func TestBookingsExpandWarningsGoToStderr(t *testing.T) {
	ics := "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:bad\r\nDTSTART;TZID=Mars/Olympus:20261126T180000\r\nEND:VEVENT\r\n" +
		"BEGIN:VEVENT\r\nUID:good\r\nDTSTART:20261126T180000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	code, out, errOut := runExpand(t, []byte(ics), "-", "--from", "2026-11-26", "--to", "2026-11-27", "--json")
	require.Equal(t, 0, code)
	require.Len(t, expandLines(t, out), 1)
	require.Contains(t, errOut, `warning: -: line 4: event "bad": DTSTART: unknown TZID "Mars/Olympus"`)
}

func TestBookingsExpandErrors(t *testing.T) {
	file := expandTestdata(t, "overrides.ics")
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr string
	}{
		{"no file", []string{"--from", "2026-11-26", "--to", "2026-11-27"}, "", 2, "need exactly one FILE"},
		{"two files", []string{file, file, "--from", "2026-11-26", "--to", "2026-11-27"}, "", 2, "need exactly one FILE"},
		{"no --to", []string{file, "--from", "2026-11-26"}, "", 2, "need exactly one FILE, --from and --to"},
		{"bad time", []string{file, "--from", "26/11/2026", "--to", "2026-11-27"}, "", 2, `time "26/11/2026" is neither a date`},
		{"empty window", []string{file, "--from", "2026-11-27", "--to", "2026-11-26"}, "", 2, "is not after --from"},
		{"bad zone", []string{file, "--from", "2026-11-26", "--to", "2026-11-27", "--tz", "Mars/Olympus"}, "", 2, "--tz"},
		{"unknown flag", []string{file, "--since", "2026-11-26"}, "", 2, "flag provided but not defined: -since"},
		{"missing file", []string{"/nonexistent/feed.ics", "--from", "2026-11-26", "--to", "2026-11-27"}, "", 1, "read /nonexistent/feed.ics"},
		{"broken stream", []string{"-", "--from", "2026-11-26", "--to", "2026-11-27"}, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n", 1, "parse -: line 2: BEGIN: BEGIN:VEVENT is never closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin []byte
			if tt.stdin != "" {
				stdin = []byte(tt.stdin)
			}
			code, out, errOut := runExpand(t, stdin, tt.args...)
			require.Equal(t, tt.code, code, errOut)
			require.Empty(t, out)
			require.Contains(t, errOut, tt.stderr)
		})
	}
	code, _, errOut := runExpand(t, nil, "-h")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "usage: bmsgw bookings expand FILE.ics")
}

func TestBookingsExpandViaRun(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bookings", "expand", expandTestdata(t, "exdate_comma.ics"), "--from", "2026-10-05", "--to", "2026-10-27", "--json"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	// The two autumn-holiday Mondays are excluded by one comma-separated
	// EXDATE.
	var handball []string
	for _, l := range expandLines(t, out.String()) {
		if l.UID == "handball-monday@booking.example" {
			handball = append(handball, l.Start)
		}
	}
	require.Equal(t, []string{"2026-10-05T15:00:00Z", "2026-10-26T16:00:00Z"}, handball)
}
