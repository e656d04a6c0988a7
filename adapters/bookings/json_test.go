package bookings

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
)

func TestDecodeJSON(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 26, h, 0, 0, 0, cph) }
	gym := booking.Booking{Source: "cbs", ID: "b1", Resource: "gym", Organiser: "valby-volley", Start: at(19), End: at(21), Status: booking.Confirmed}
	tests := []struct {
		name     string
		opts     Options
		body     string
		want     []booking.Booking
		warnings []string
		err      string
	}{
		{
			name: "array",
			body: `[{"id":"b1","resource":"gym","organiser":"valby-volley","start":"2026-11-26 19:00","end":"2026-11-26T20:00:00Z"}]`,
			want: []booking.Booking{gym},
		},
		{
			name: "nested array key, remapped fields, numeric id, null status",
			opts: Options{ArrayKey: "data.bookings", Fields: Fields{ID: "bookingId", Resource: "roomId", Organiser: "associationId", Start: "from", End: "to", Status: "state"}},
			body: `{"meta":{"count":1,"pages":[1,2]},"data":{"total":1,"bookings":[
				{"bookingId":42,"roomId":"gym","associationId":"valby-volley","from":"2026-11-26 19:00","to":"2026-11-26 21:00","state":null}
			]}}`,
			want: []booking.Booking{{Source: "cbs", ID: "42", Resource: "gym", Organiser: "valby-volley", Start: at(19), End: at(21), Status: booking.Confirmed}},
		},
		{
			name: "field names match case-insensitively",
			body: `[{"ID":"b1","Resource":"gym","Organiser":"valby-volley","Start":"2026-11-26 19:00","End":"2026-11-26 21:00","Status":"Confirmed"}]`,
			want: []booking.Booking{gym},
		},
		{
			name: "bad items are reported by position and skipped",
			body: "[\n" +
				`{"id":"b1","resource":"gym","organiser":"valby-volley","start":"2026-11-26 19:00","end":"2026-11-26 21:00"},` + "\n" +
				`"not an object",` + "\n" +
				`{"id":"b3","resource":["gym"],"start":"2026-11-26 19:00","end":"2026-11-26 21:00"},` + "\n" +
				`{"id":"b4","resource":"gym","start":"2026-11-26 19:00"}` + "\n" +
				"]",
			want: []booking.Booking{gym},
			warnings: []string{
				"item 2 (line 3): not an object; skipped",
				"item 3 (line 4): resource: want a string; skipped",
				"item 4 (line 5): end: missing; skipped",
			},
		},
		{name: "truncated", body: `[{"id":"b1","resource":"gym"`, err: "json: item 1 (line 1): unexpected EOF"},
		{name: "object without array key", body: `{"bookings":[]}`, err: "set the array key"},
		{name: "array key absent", opts: Options{ArrayKey: "bookings"}, body: `{"data":[]}`, err: `json: array key "bookings": no key "bookings"`},
		{name: "garbage", body: `<html>`, err: "json: invalid character '<'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format, tt.opts.Path = FormatJSON, "unused.json"
			s, _ := newTestSource(t, tt.opts)
			got, err := s.decodeJSON([]byte(tt.body), winFrom, winTo)
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

func TestPollJSONOverHTTP(t *testing.T) {
	feed := newFeedServer(t, `{"bookings":[{"id":"b1","resource":"gym","start":"2026-11-26 19:00","end":"2026-11-26 21:00","status":"tentative"}]}`)
	s, _ := newTestSource(t, Options{Format: FormatJSON, URL: feed.srv.URL, Client: feed.srv.Client(), ArrayKey: "bookings"})
	snap, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	require.Equal(t, booking.Tentative, snap.Bookings[0].Status)
	require.Equal(t, "application/json, */*;q=0.1", feed.requests()[0].Get("Accept"))
}
