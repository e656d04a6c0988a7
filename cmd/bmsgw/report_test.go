package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/store"
)

// Two small sites for the no-show report. North watches room1 (grace
// 20m, before 15m by default) and room2 (grace 30m, before 0); its hall
// has no no-show detection. South watches one room (grace 20m).
const (
	reportNorth = `site: {id: north, time_zone: Europe/Copenhagen}
sources: [{source: leisure}]
connections: [{id: plc, modbus: {url: "tcp://127.0.0.1:1502"}}]
points:
  - {id: r1_heat, connection: plc, modbus: {table: coil, address: 1}, type: bool, access: write}
  - {id: r1_pir, connection: plc, modbus: {table: discrete_input, address: 1}, type: bool}
  - {id: r2_heat, connection: plc, modbus: {table: coil, address: 2}, type: bool, access: write}
  - {id: r2_pir, connection: plc, modbus: {table: discrete_input, address: 2}, type: bool}
  - {id: hall_heat, connection: plc, modbus: {table: coil, address: 3}, type: bool, access: write}
spaces:
  - id: room1
    resources: [north-room-1]
    points: [{point: r1_heat, occupied: true, vacant: false}]
    evidence: [{point: r1_pir}]
    no_show: {grace: 20m}
  - id: room2
    resources: [north-room-2]
    points: [{point: r2_heat, occupied: true, vacant: false}]
    evidence: [{point: r2_pir}]
    no_show: {grace: 30m, before: 0s}
  - id: hall
    resources: [north-hall]
    points: [{point: hall_heat, occupied: true, vacant: false}]
`
	reportSouth = `site: {id: south, time_zone: Europe/Copenhagen}
sources: [{source: leisure}]
connections: [{id: plc, modbus: {url: "tcp://127.0.0.1:1503"}}]
points:
  - {id: heat, connection: plc, modbus: {table: coil, address: 1}, type: bool, access: write}
  - {id: pir, connection: plc, modbus: {table: discrete_input, address: 1}, type: bool}
spaces:
  - id: room
    resources: [south-room]
    points: [{point: heat, occupied: true, vacant: false}]
    evidence: [{point: pir}]
    no_show: {grace: 20m}
`
)

// reportBooking is one line of the test's booking feed.
type reportBooking struct {
	id, resource, organiser string
	start                   time.Time
	status                  string
}

// reportFeed is the CSV feed of the bookings, each two hours long.
func reportFeed(bookings []reportBooking) string {
	var b strings.Builder
	b.WriteString("id,resource,organiser,start,end,status\n")
	for _, k := range bookings {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s\n", k.id, k.resource, k.organiser,
			k.start.Format(time.RFC3339), k.start.Add(2*time.Hour).Format(time.RFC3339), k.status)
	}
	return b.String()
}

// reportConfig writes the two sites, the feed and a gateway config with
// the given state directory, and returns the config file.
func reportConfig(t *testing.T, state, feed string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "north.yaml"), []byte(reportNorth), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "south.yaml"), []byte(reportSouth), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "leisure.csv"), []byte(feed), 0o644))
	cfg := fmt.Sprintf(`state_dir: %s
time_zone: Europe/Copenhagen
sites: [north.yaml, south.yaml]
sources:
  - id: leisure
    csv: {file: leisure.csv}
`, state)
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	return path
}

// publishReportEvents stores events in the journal of the state
// directory through the real bus, in order, then closes the journal.
func publishReportEvents(t *testing.T, state string, evs []events.Event) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(state, "journal.db"))
	require.NoError(t, err)
	j, err := journal.Open(ctx, db, journal.Options{KeepPersonal: true, PersonalRetention: 30 * 24 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	bus, err := events.NewBus(ctx, j, events.Options{})
	require.NoError(t, err)
	for _, e := range evs {
		if e.Severity == "" {
			e.Severity = events.Info
		}
		if e.Message == "" {
			e.Message = string(e.Kind) + " " + e.Booking
		}
		_, err := bus.Publish(ctx, e)
		require.NoError(t, err)
	}
	bus.Close()
	require.NoError(t, j.Close(context.Background()))
	require.NoError(t, db.Close())
}

func TestReportNoShows(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	state := t.TempDir()
	// Whole minutes, so RFC 3339 bounds hit deadlines exactly; the
	// command's own now is a little later.
	base := time.Now().UTC().Truncate(time.Minute)
	ago := func(days int) time.Time { return base.Add(-time.Duration(days) * 24 * time.Hour) }
	const (
		room1Grace = 20 * time.Minute
		room2Grace = 30 * time.Minute
	)
	bookings := []reportBooking{
		{"n1", "north-room-1", "org-a", ago(10), "confirmed"},                     // shown: no event
		{"n2", "north-room-1", "org-a", ago(9), "confirmed"},                      // no-show; its event names the organiser before a correction
		{"n3", "north-room-2", "org-a", ago(8), "tentative"},                      // late
		{"n4", "north-room-2", "org-b", ago(7), "confirmed"},                      // no-show
		{"n5", "north-room-1", "org-b", ago(6), "cancelled"},                      // no-show, cancelled after the fact
		{"n7", "north-hall", "org-a", ago(4), "confirmed"},                        // hall: not watched
		{"n8", "north-room-1", "org-b", base.Add(-10 * time.Minute), "confirmed"}, // not due yet
		{"n9", "north-room-1", "org-c", ago(40), "confirmed"},                     // before the default 30 days
		{"n10", "north-room-1", "org-a", ago(3), "confirmed"},                     // no-show withdrawn by a delayed reading: shown
		{"n11", "north-room-2", "", ago(2), "confirmed"},                          // no-show of a booking without organiser
		{"n12", "north-room-1", "org-c", ago(11), "confirmed"},                    // moved a day on after a no-show; shown at its new time
		{"s1", "south-room", "org-b", ago(2), "confirmed"},                        // no-show
		{"s2", "south-room", "org-a", ago(5), "confirmed"},                        // before south's journal begins: not watched
		{"s3", "south-room", "org-a", ago(1), "confirmed"},                        // shown
	}
	at := func(id string, d time.Duration) time.Time {
		for _, b := range bookings {
			if b.id == id {
				return b.start.Add(d)
			}
		}
		t.Fatalf("no booking %s", id)
		return time.Time{}
	}
	noShow := func(siteID, space, id, organiser string, when time.Time) events.Event {
		return events.Event{Time: when, Site: siteID, Space: space, Kind: events.NoShow, Booking: "leisure:" + id, Organiser: organiser}
	}
	inUse := func(siteID, space, id, organiser string, when time.Time) events.Event {
		return events.Event{Time: when, Site: siteID, Space: space, Kind: events.InUse, Booking: "leisure:" + id, Organiser: organiser, Subject: "r2_pir"}
	}
	cfg := reportConfig(t, state, reportFeed(bookings))

	t.Run("no journal yet", func(t *testing.T) {
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", cfg)
		require.Equal(t, 1, code)
		require.Empty(t, out)
		require.Contains(t, errOut, "no journal at "+filepath.Join(state, "journal.db"))
		require.Contains(t, errOut, "bmsgw run -c "+cfg)
	})

	publishReportEvents(t, state, []events.Event{
		// The first entries of each site: north has run for 60 days,
		// south for 3.
		{Time: ago(60), Site: "north", Space: "hall", Kind: events.DoorClosed, Subject: "hall_door"},
		{Time: ago(3), Site: "south", Space: "room", Kind: events.DoorClosed, Subject: "door"},
		noShow("north", "room1", "n2", "org-old", at("n2", room1Grace)),
		noShow("north", "room2", "n3", "org-a", at("n3", room2Grace)),
		inUse("north", "room2", "n3", "org-a", at("n3", 45*time.Minute)),
		noShow("north", "room2", "n4", "org-b", at("n4", room2Grace)),
		noShow("north", "room1", "n5", "org-b", at("n5", room1Grace)),
		noShow("north", "room1", "gone", "org-c", ago(5).Add(room1Grace)), // no longer in the feed at all
		noShow("north", "room1", "n10", "org-a", at("n10", room1Grace)),
		inUse("north", "room1", "n10", "org-a", at("n10", 10*time.Minute)), // stamped before the deadline, stored after
		noShow("north", "room2", "n11", "", at("n11", room2Grace)),
		noShow("north", "room1", "n12", "org-c", ago(12).Add(room1Grace)), // at its old time
		noShow("south", "room", "s1", "org-b", at("s1", room1Grace)),
		{Time: at("s3", 0), Site: "south", Space: "room", Kind: events.AccessGranted, Subject: "door", Booking: "leisure:s3",
			Organiser: "org-a", CardHolder: "Jens Jensen"},
	})

	const cph = "2006-01-02 15:04 MST"
	loc, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)

	t.Run("table", func(t *testing.T) {
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", cfg)
		require.Equal(t, 0, code, errOut)
		lines := strings.Split(out, "\n")
		require.Regexp(t, `^no-shows of the bookings due between `+ago(30).In(loc).Format("2006-01-02")+` \d\d:\d\d CE[S]?T and `+
			base.In(loc).Format("2006-01-02")+` \d\d:\d\d CE[S]?T$`, lines[0])
		require.Equal(t, ""+
			"ORGANISER  BOOKINGS  NO-SHOWS  LATE  RATE\n"+
			"org-b      3         3         0     100.0%\n"+
			"(none)     1         1         0     100.0%\n"+
			"org-a      5         1         1     20.0%\n"+
			"org-c      2         1         0     50.0%\n"+
			"TOTAL      11        6         1     54.5%\n", strings.Join(lines[2:], "\n"))
		require.Equal(t, fmt.Sprintf("note: south: 1 booking(s) due in the period began before the journal's first entry for the site (%s); "+
			"the gateway was not watching them, so they are not counted\n", ago(3).In(loc).Format(cph)), errOut)
		require.NotContains(t, out, "org-old", "the feed's organiser wins over the event's")
		require.NotContains(t, out, "Jens")
	})

	t.Run("csv of one site", func(t *testing.T) {
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", cfg, "--site", "north", "--format", "csv")
		require.Equal(t, 0, code, errOut)
		require.Empty(t, errOut, "north was watched all along")
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, [][]string{
			{"organiser", "bookings", "no_shows", "late", "rate"},
			{"org-b", "2", "2", "0", "1.0000"},
			{"", "1", "1", "0", "1.0000"},
			{"org-a", "4", "1", "1", "0.2500"},
			{"org-c", "2", "1", "0", "0.5000"},
		}, recs)
	})

	t.Run("table of the other site", func(t *testing.T) {
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", cfg, "--site", "south")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, ""+
			"ORGANISER  BOOKINGS  NO-SHOWS  LATE  RATE\n"+
			"org-b      1         1         0     100.0%\n"+
			"org-a      1         0         0     0.0%\n"+
			"TOTAL      2         1         0     50.0%\n", strings.Join(strings.Split(out, "\n")[2:], "\n"))
		require.Contains(t, errOut, "note: south: 1 booking(s)")
	})

	t.Run("json from a date, until capped at now", func(t *testing.T) {
		day := ago(45).In(loc).Format("2006-01-02")
		before := time.Now()
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", cfg, "--site", "north", "--format", "json", "--since", day, "--until", "2099-01-01")
		require.Equal(t, 0, code, errOut)
		var rep struct {
			Since, Until time.Time
			Organisers   []noShowRow
		}
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		midnight, err := time.ParseInLocation("2006-01-02", day, loc)
		require.NoError(t, err)
		require.True(t, rep.Since.Equal(midnight), "%s", rep.Since)
		require.False(t, rep.Until.Before(before.Truncate(time.Second)), "until is now: %s", rep.Until)
		require.False(t, rep.Until.After(time.Now()), "never later than now: %s", rep.Until)
		// n9 (40 days ago) is in; n8 is still not due.
		require.Equal(t, []noShowRow{
			{Organiser: "org-b", Bookings: 2, NoShows: 2, Rate: 1},
			{Organiser: "", Bookings: 1, NoShows: 1, Rate: 1},
			{Organiser: "org-a", Bookings: 4, NoShows: 1, Late: 1, Rate: 0.25},
			{Organiser: "org-c", Bookings: 3, NoShows: 1, Rate: 0.3333},
		}, rep.Organisers)
		require.Contains(t, out, `"no_shows": 2`)
		require.NotContains(t, out, "Jens")
	})

	t.Run("period bounds", func(t *testing.T) {
		// From n4's deadline (inclusive) to s1's (exclusive): n4, n5,
		// gone, n10 and the unwatched s2; not n11 (10 minutes after s1's
		// deadline) nor s1.
		since := at("n4", room2Grace).Format(time.RFC3339)
		until := at("s1", room1Grace).Format(time.RFC3339)
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", cfg, "--since", since, "--until", until, "--format", "csv")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "organiser,bookings,no_shows,late,rate\norg-b,2,2,0,1.0000\norg-c,1,1,0,1.0000\norg-a,1,0,0,0.0000\n", out)
		require.Contains(t, errOut, "note: south: 1 booking(s)")
		// One second on: n4 drops out.
		since = at("n4", room2Grace+time.Second).Format(time.RFC3339)
		code, out, errOut = bmsgw(t, "report", "noshows", "-c", cfg, "--since", since, "--until", until, "--format", "csv")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "organiser,bookings,no_shows,late,rate\norg-b,1,1,0,1.0000\norg-c,1,1,0,1.0000\norg-a,1,0,0,0.0000\n", out)
	})

	t.Run("empty period", func(t *testing.T) {
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", cfg, "--since", "70d", "--until", "65d")
		require.Equal(t, 0, code, errOut)
		require.Regexp(t, `^no watched bookings were due between .* and .*\n$`, out)
		require.Equal(t, "note: booking source leisure lists no bookings in the period\n", errOut,
			"a quiet period is no failed feed")
		code, out, errOut = bmsgw(t, "report", "noshows", "-c", cfg, "--since", "70d", "--until", "65d", "--format", "json")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"organisers": []`)
	})

	t.Run("a failed feed", func(t *testing.T) {
		// Without the feed (and no saved copy) only the no_show events
		// are left: each counts under the organiser it names, the stale
		// one of the moved booking too; shown bookings are unknown.
		broken := reportConfig(t, state, "when,where\nyesterday,gym\n")
		code, out, errOut := bmsgw(t, "report", "noshows", "-c", broken, "--format", "csv")
		require.Equal(t, 1, code, "the figures are incomplete")
		require.Contains(t, errOut, "warning: booking source leisure failed: poll leisure: csv header")
		require.Equal(t, "organiser,bookings,no_shows,late,rate\n"+
			"org-b,3,3,0,1.0000\norg-c,2,2,0,1.0000\n,1,1,0,1.0000\norg-old,1,1,0,1.0000\norg-a,2,0,1,0.0000\n", out)
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"report"}, 2, "bmsgw: report: name a report; reports: noshows"},
			{[]string{"report", "weekly"}, 2, `unknown report "weekly"`},
			{[]string{"report", "noshows", "-c", cfg, "--format", "xml"}, 2, `--format "xml": use table, csv or json`},
			{[]string{"report", "noshows", "-c", cfg, "--since", "last week"}, 2, "--since:"},
			{[]string{"report", "noshows", "-c", cfg, "--until", "soon"}, 2, "--until:"},
			{[]string{"report", "noshows", "-c", cfg, "--since", "1d", "--until", "2d"}, 2, "is not after --since"},
			{[]string{"report", "noshows", "-c", cfg, "extra"}, 2, "usage: bmsgw report noshows"},
			{[]string{"report", "noshows", "-c", cfg, "--site", "west"}, 1, `no site "west" in ` + cfg + "; sites: north, south"},
			{[]string{"report", "noshows", "-c", filepath.Join(state, "nope.yaml")}, 1, "nope.yaml"},
		} {
			code, out, errOut := bmsgw(t, tc.args...)
			require.Equal(t, tc.code, code, "%v: %s", tc.args, errOut)
			require.Empty(t, out, tc.args)
			require.Contains(t, errOut, tc.want, tc.args)
		}
	})
}
