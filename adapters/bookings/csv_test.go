package bookings

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
)

func TestDecodeCSV(t *testing.T) {
	at := func(day, h, m int) time.Time {
		return time.Date(2026, 11, 26+day, h, m, 0, 0, cph)
	}
	tests := []struct {
		name     string
		opts     Options
		body     string
		want     []booking.Booking
		warnings []string
		err      string
	}{
		{
			name: "local and RFC 3339 times, default status",
			body: "id,resource,organiser,start,end,status\n" +
				"b1,gym,valby-volley,2026-11-26 19:00,2026-11-26 21:00,\n" +
				"b2,pitch,valby-bk,2026-11-26T17:00:00Z,2026-11-26T19:00:00Z,TENTATIVE\n",
			want: []booking.Booking{
				{Source: "cbs", ID: "b2", Resource: "pitch", Organiser: "valby-bk", Start: at(0, 18, 0), End: at(0, 20, 0), Status: booking.Tentative},
				{Source: "cbs", ID: "b1", Resource: "gym", Organiser: "valby-volley", Start: at(0, 19, 0), End: at(0, 21, 0), Status: booking.Confirmed},
			},
		},
		{
			name: "semicolons, BOM, CRLF, no optional columns, columns in any order and case",
			body: "\ufeffEnd;Start;Resource;ID\r\n2026-11-26 21:00;2026-11-26 19:00;gym;b1\r\n",
			want: []booking.Booking{
				{Source: "cbs", ID: "b1", Resource: "gym", Start: at(0, 19, 0), End: at(0, 21, 0), Status: booking.Confirmed},
			},
		},
		{
			name: "remapped columns",
			opts: Options{Fields: Fields{ID: "booking_no", Resource: "room", Organiser: "club", Start: "from", End: "to", Status: "state"}},
			body: "booking_no,room,club,from,to,state\n7,hall,chess,2026-11-26 19:00,2026-11-26 21:00,cancelled\n",
			want: []booking.Booking{
				{Source: "cbs", ID: "7", Resource: "hall", Organiser: "chess", Start: at(0, 19, 0), End: at(0, 21, 0), Status: booking.Cancelled},
			},
		},
		{
			name: "bad rows are reported by line and skipped",
			body: "id,resource,organiser,start,end,status\n" +
				"ok1,gym,a,2026-11-26 19:00,2026-11-26 21:00,confirmed\n" +
				",gym,a,2026-11-26 19:00,2026-11-26 21:00,confirmed\n" +
				"b3,gym,a,yesterday,2026-11-26 21:00,confirmed\n" +
				"b4,gym,a,2026-11-26 21:00,2026-11-26 19:00,confirmed\n" +
				"b5,gym,a,2026-11-26 19:00,2026-11-26 21:00,booked\n" +
				"ok1,hall,a,2026-11-26 19:00,2026-11-26 21:00,confirmed\n" +
				"b7,gym\n" +
				"b8,\"gym\"x,a,2026-11-26 19:00,2026-11-26 21:00,\n" +
				"ok9,gym,a,2026-11-27 19:00,2026-11-27 21:00,\n",
			want: []booking.Booking{
				{Source: "cbs", ID: "ok1", Resource: "gym", Organiser: "a", Start: at(0, 19, 0), End: at(0, 21, 0), Status: booking.Confirmed},
				{Source: "cbs", ID: "ok9", Resource: "gym", Organiser: "a", Start: at(1, 19, 0), End: at(1, 21, 0), Status: booking.Confirmed},
			},
			warnings: []string{
				"line 3: no id; skipped",
				`line 4: start: "yesterday" is neither RFC 3339 nor "2006-01-02 15:04"; skipped`,
				"line 5: end 2026-11-26 19:00 is not after start 2026-11-26 21:00; skipped",
				`line 6: status "booked": want confirmed, tentative or cancelled; skipped`,
				`line 7: duplicate id "ok1" (first at line 2); skipped`,
				"line 8: start: missing; end: missing; skipped",
				`line 9: extraneous or missing " in quoted-field; skipped`,
			},
		},
		{
			name: "bookings outside the window are left out",
			body: "id,resource,start,end\n" +
				"before,gym,2026-11-25 19:00,2026-11-25 21:00\n" +
				"ended-at-from,gym,2026-11-25 22:00,2026-11-26 00:00\n" +
				"running,gym,2026-11-25 22:00,2026-11-26 01:00\n" +
				"after,gym,2026-12-03 00:00,2026-12-03 01:00\n",
			want: []booking.Booking{
				{Source: "cbs", ID: "running", Resource: "gym", Start: at(-1, 22, 0), End: at(0, 1, 0), Status: booking.Confirmed},
			},
		},
		{
			name: "pseudonymised organiser column",
			opts: Options{PseudonymKey: []byte("k"), PseudonymiseOrganiser: true},
			body: "id,resource,organiser,start,end\nb1,gym,Anna@Example.org,2026-11-26 19:00,2026-11-26 21:00\n",
			want: []booking.Booking{
				{Source: "cbs", ID: "b1", Resource: "gym", Organiser: Pseudonym([]byte("k"), "anna@example.org"), Start: at(0, 19, 0), End: at(0, 21, 0), Status: booking.Confirmed},
			},
		},
		{name: "missing required column", body: "id,room,start,end\n", err: `csv header: no column "resource" (delimiter ',')`},
		{name: "empty body", body: "", err: "csv: no header row"},
		{name: "garbage", body: "<html><body>Service Unavailable</body></html>", err: "csv header: no column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format, tt.opts.Path = FormatCSV, "unused.csv"
			s, _ := newTestSource(t, tt.opts)
			got, err := s.decodeCSV([]byte(tt.body), winFrom, winTo)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, got.bookings, len(tt.want))
			for i := range tt.want {
				require.True(t, tt.want[i].Same(got.bookings[i]), "booking %d:\nwant %#v\ngot  %#v", i, tt.want[i], got.bookings[i])
			}
			require.Equal(t, tt.warnings, got.warnings)
		})
	}
}

func TestCSVWarningsAreCapped(t *testing.T) {
	s, _ := newTestSource(t, Options{Format: FormatCSV, Path: "unused.csv"})
	body := "id,resource,start,end\n"
	for range maxWarnings + 5 {
		body += "x,gym,never,never\n"
	}
	got, err := s.decodeCSV([]byte(body), winFrom, winTo)
	require.NoError(t, err)
	require.Len(t, got.warnings, maxWarnings+1)
	require.Equal(t, "and 5 more problems", got.warnings[maxWarnings])
}

func TestPollCSVFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bookings.csv")
	require.NoError(t, os.WriteFile(path, []byte(csvFeed(csvRow("b1", "gym", 0, 19, 21), "b2,gym,,bad,bad,")), 0o600))
	s, logs := newTestSource(t, Options{Format: FormatCSV, Path: path})

	snap, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	require.True(t, snap.Changed)
	require.True(t, snap.Status.Healthy())
	require.Equal(t, []string{`line 3: start: "bad" is neither RFC 3339 nor "2006-01-02 15:04"; end: "bad" is neither RFC 3339 nor "2006-01-02 15:04"; skipped`}, snap.Status.Warnings)
	require.Contains(t, logs.String(), "booking feed has bad entries")

	// A missing file fails the poll and keeps the bookings.
	require.NoError(t, os.Remove(path))
	snap, err = s.Poll(context.Background(), winFrom, winTo)
	require.ErrorContains(t, err, "no such file")
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	require.True(t, snap.Status.FromCache)
	require.False(t, snap.Changed)
}
