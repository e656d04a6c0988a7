package bookings

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
)

// icalFeed is the reference Thursday as the central booking system
// exports it: a weekly gym booking with one instance cancelled, a chess
// club booking whose only organiser is a person, a pitch booking with its
// resource in RESOURCES and X-ROOM-ID, and an event without a location.
const icalFeed = "BEGIN:VCALENDAR\r\n" +
	"VERSION:2.0\r\n" +
	"PRODID:-//Test//Central booking//EN\r\n" +
	"X-WR-TIMEZONE:Europe/Copenhagen\r\n" +
	"BEGIN:VEVENT\r\n" +
	"UID:gym-1\r\n" +
	"DTSTAMP:20261101T000000Z\r\n" +
	"DTSTART;TZID=Europe/Copenhagen:20261126T190000\r\n" +
	"DTEND;TZID=Europe/Copenhagen:20261126T210000\r\n" +
	"RRULE:FREQ=WEEKLY;COUNT=3\r\n" +
	"SUMMARY:Volleyball\r\n" +
	"LOCATION:gym\r\n" +
	"X-ASSOCIATION-ID:valby-volley\r\n" +
	"ORGANIZER;CN=Bo Jensen:mailto:bo.jensen@example.org\r\n" +
	"END:VEVENT\r\n" +
	"BEGIN:VEVENT\r\n" +
	"UID:gym-1\r\n" +
	"DTSTAMP:20261101T000000Z\r\n" +
	"RECURRENCE-ID;TZID=Europe/Copenhagen:20261203T190000\r\n" +
	"DTSTART;TZID=Europe/Copenhagen:20261203T190000\r\n" +
	"DTEND;TZID=Europe/Copenhagen:20261203T210000\r\n" +
	"SEQUENCE:1\r\n" +
	"STATUS:CANCELLED\r\n" +
	"SUMMARY:Volleyball\r\n" +
	"LOCATION:gym\r\n" +
	"X-ASSOCIATION-ID:valby-volley\r\n" +
	"END:VEVENT\r\n" +
	"BEGIN:VEVENT\r\n" +
	"UID:chess-1\r\n" +
	"DTSTAMP:20261101T000000Z\r\n" +
	"DTSTART:20261126T190000\r\n" +
	"DTEND:20261126T210000\r\n" +
	"STATUS:TENTATIVE\r\n" +
	"SUMMARY:Chess club (Anna Larsen)\r\n" +
	"LOCATION:room12\r\n" +
	"ORGANIZER;CN=Anna Larsen:mailto:Anna.Larsen@Example.org\r\n" +
	"END:VEVENT\r\n" +
	"BEGIN:VEVENT\r\n" +
	"UID:pitch-1\r\n" +
	"DTSTAMP:20261101T000000Z\r\n" +
	"DTSTART:20261126T170000Z\r\n" +
	"DTEND:20261126T190000Z\r\n" +
	"SUMMARY:Football\r\n" +
	"LOCATION:Valby Skole\\, pitch\r\n" +
	"RESOURCES:pitch-a\r\n" +
	"X-ROOM-ID:R-17\r\n" +
	"X-ASSOCIATION-ID:valby-bk\r\n" +
	"END:VEVENT\r\n" +
	"BEGIN:VEVENT\r\n" +
	"UID:nowhere-1\r\n" +
	"DTSTAMP:20261101T000000Z\r\n" +
	"DTSTART:20261127T170000Z\r\n" +
	"DTEND:20261127T190000Z\r\n" +
	"SUMMARY:Somewhere\r\n" +
	"END:VEVENT\r\n" +
	"END:VCALENDAR\r\n"

// personal is every piece of personal data in icalFeed.
var personal = []string{"Anna", "anna", "Larsen", "Bo Jensen", "bo.jensen", "mailto"}

func TestDecodeICal(t *testing.T) {
	at := func(day, h int) time.Time { return time.Date(2026, 11, 26+day, h, 0, 0, 0, cph) }
	key := []byte("municipality-secret")
	anna := Pseudonym(key, "mailto:anna.larsen@example.org")
	tests := []struct {
		name string
		opts Options
		want []booking.Booking
	}{
		{
			name: "defaults: LOCATION, X-ASSOCIATION-ID, no pseudonyms",
			want: []booking.Booking{
				{ID: "pitch-1", Resource: "Valby Skole, pitch", Organiser: "valby-bk", Start: at(0, 18), End: at(0, 20), Status: booking.Confirmed},
				{ID: "gym-1/20261126T180000Z", Resource: "gym", Organiser: "valby-volley", Start: at(0, 19), End: at(0, 21), Status: booking.Confirmed},
				{ID: "chess-1", Resource: "room12", Organiser: "", Start: at(0, 19), End: at(0, 21), Status: booking.Tentative},
				{ID: "gym-1/20261203T180000Z", Resource: "gym", Organiser: "valby-volley", Start: at(7, 19), End: at(7, 21), Status: booking.Cancelled},
			},
		},
		{
			name: "pseudonym key",
			opts: Options{PseudonymKey: key},
			want: []booking.Booking{
				{ID: "pitch-1", Resource: "Valby Skole, pitch", Organiser: "valby-bk", Start: at(0, 18), End: at(0, 20), Status: booking.Confirmed},
				{ID: "gym-1/20261126T180000Z", Resource: "gym", Organiser: "valby-volley", Start: at(0, 19), End: at(0, 21), Status: booking.Confirmed},
				{ID: "chess-1", Resource: "room12", Organiser: anna, Start: at(0, 19), End: at(0, 21), Status: booking.Tentative},
				{ID: "gym-1/20261203T180000Z", Resource: "gym", Organiser: "valby-volley", Start: at(7, 19), End: at(7, 21), Status: booking.Cancelled},
			},
		},
		{
			name: "resource from RESOURCES",
			opts: Options{ResourceProperty: "resources"},
			want: []booking.Booking{
				{ID: "pitch-1", Resource: "pitch-a", Organiser: "valby-bk", Start: at(0, 18), End: at(0, 20), Status: booking.Confirmed},
			},
		},
		{
			name: "resource and organiser from X- properties",
			opts: Options{ResourceProperty: "X-ROOM-ID", OrganiserProperty: "X-ROOM-ID"},
			want: []booking.Booking{
				{ID: "pitch-1", Resource: "R-17", Organiser: "R-17", Start: at(0, 18), End: at(0, 20), Status: booking.Confirmed},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format, tt.opts.Path = FormatICal, "unused.ics"
			s, _ := newTestSource(t, tt.opts)
			got, err := s.decodeICal([]byte(icalFeed), winFrom, winFrom.AddDate(0, 0, 14))
			require.NoError(t, err)
			require.Len(t, got.bookings, len(tt.want), "got %v", ids(got.bookings))
			for i := range tt.want {
				tt.want[i].Source = "cbs"
				require.True(t, tt.want[i].Same(got.bookings[i]), "booking %d:\nwant %#v\ngot  %#v", i, tt.want[i], got.bookings[i])
			}
			require.NotEmpty(t, got.warnings)
			for _, w := range got.warnings {
				for _, p := range personal {
					require.NotContains(t, w, p)
				}
			}
		})
	}
}

func TestDecodeICalWarnsOncePerSeries(t *testing.T) {
	s, _ := newTestSource(t, Options{Format: FormatICal, Path: "unused.ics", ResourceProperty: "RESOURCES"})
	got, err := s.decodeICal([]byte(icalFeed), winFrom, winFrom.AddDate(0, 0, 14))
	require.NoError(t, err)
	require.Equal(t, []string{"pitch-1"}, ids(got.bookings))
	require.ElementsMatch(t, []string{
		"event gym-1: no RESOURCES; skipped",
		"event chess-1: no RESOURCES; skipped",
		"event nowhere-1: no RESOURCES; skipped",
	}, got.warnings)
}

func TestDecodeICalFloatingTimes(t *testing.T) {
	floating := strings.ReplaceAll(icalFeed, "X-WR-TIMEZONE:Europe/Copenhagen", "X-WR-TIMEZONE:Mars/Olympus")
	s, _ := newTestSource(t, Options{Format: FormatICal, Path: "unused.ics", Location: time.UTC})
	got, err := s.decodeICal([]byte(floating), winFrom, winTo)
	require.NoError(t, err)
	require.Contains(t, got.warnings, `X-WR-TIMEZONE "Mars/Olympus" is not a known time zone; floating times are in UTC`)
	for _, b := range got.bookings {
		if b.ID == "chess-1" {
			require.Equal(t, time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC), b.Start.UTC(), "floating time in Options.Location")
		}
	}
}

func TestDecodeICalGarbage(t *testing.T) {
	s, _ := newTestSource(t, Options{Format: FormatICal, Path: "unused.ics"})
	_, err := s.decodeICal([]byte("<html><body>502 Bad Gateway</body></html>"), winFrom, winTo)
	require.ErrorContains(t, err, "icalendar: ")
}

func TestPseudonym(t *testing.T) {
	key := []byte("k1")
	p := Pseudonym(key, "mailto:Anna@Example.org")
	require.Regexp(t, `^anon-[0-9a-f]{12}$`, p)
	require.Equal(t, p, Pseudonym(key, "  MAILTO:anna@example.org "), "case and spaces do not matter")
	require.NotEqual(t, p, Pseudonym([]byte("k2"), "mailto:Anna@Example.org"), "another key, another pseudonym")
	require.NotEqual(t, p, Pseudonym(key, "mailto:bo@example.org"))
}

// TestICalOverHTTPHasNoPersonalData polls the feed, fails a poll, restarts,
// and checks that no raw organiser reaches the snapshots, the state file
// or the logs.
func TestICalOverHTTPHasNoPersonalData(t *testing.T) {
	dir := t.TempDir()
	feed := newFeedServer(t, icalFeed)
	feed.set(func(f *feedServer) { f.etag = `"1"` })
	opts := Options{
		Format: FormatICal, URL: feed.srv.URL, Client: feed.srv.Client(),
		StateDir: dir, PseudonymKey: []byte("municipality-secret"),
	}
	s, logs := newTestSource(t, opts)
	var out []any
	snap, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	require.Equal(t, []string{"pitch-1", "gym-1/20261126T180000Z", "chess-1"}, ids(snap.Bookings))
	require.Equal(t, "text/calendar, */*;q=0.1", feed.requests()[0].Get("Accept"))
	out = append(out, snap)
	snap, err = s.Poll(context.Background(), winFrom, winTo) // 304
	require.NoError(t, err)
	out = append(out, snap)

	feed.set(func(f *feedServer) {
		f.body = strings.ReplaceAll(icalFeed, "UID:chess-1", "UID:chess-2")
		f.etag = `"2"`
	})
	for range DefaultMissingPolls {
		snap, err = s.Poll(context.Background(), winFrom, winTo)
		require.NoError(t, err)
		out = append(out, snap)
	}
	require.Equal(t, booking.Cancelled, statusOf(t, snap.Bookings, "chess-1"))

	s2, logs2 := newTestSource(t, opts)
	out = append(out, s2.Cached(winFrom, winTo))

	data, err := json.Marshal(out)
	require.NoError(t, err)
	state, err := os.ReadFile(filepath.Join(dir, "cbs.json"))
	require.NoError(t, err)
	var persisted persisted
	require.NoError(t, json.Unmarshal(state, &persisted))
	persisted.Body = nil // the raw feed is kept as fetched, by design
	meta, err := json.Marshal(persisted)
	require.NoError(t, err)
	for _, p := range personal {
		require.NotContains(t, string(data), p, "snapshots")
		require.NotContains(t, string(meta), p, "state besides the raw feed")
		require.NotContains(t, logs.String()+logs2.String(), p, "logs")
	}
	require.Contains(t, string(data), Pseudonym(opts.PseudonymKey, "mailto:anna.larsen@example.org"))
}
