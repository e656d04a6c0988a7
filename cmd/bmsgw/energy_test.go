package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/site"
)

// seasonYAML is the season config of the reference site: the mapping
// in siteFile, the season's feeds from testdata, the state directory
// state and the access exports in it.
func seasonYAML(siteFile, state string) string {
	return strings.NewReplacer("ROOT", repoRoot, "SITE", siteFile, "STATE", state).Replace(`state_dir: STATE
templates: [ROOT/mappings/templates/*.yaml]
sites: [SITE]
sources:
  - id: leisure
    ical: {file: ROOT/testdata/feeds/leisure-season.ics}
  - id: timetable
    csv: {file: ROOT/testdata/feeds/school-timetable.csv}
access_outputs:
  - {id: acs, file: {path: STATE/acs.csv}}
  - {id: acs-export, file: {path: STATE/grants.csv}}
`)
}

// energyConfig is the season config of the reference site with a state
// directory of the test's own.
func energyConfig(t *testing.T) (cfg, state string) {
	dir := t.TempDir()
	state = filepath.Join(dir, "state")
	cfg = filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(seasonYAML(filepath.Join(repoRoot, "mappings", "valby-skole.yaml"), state)), 0o644))
	return cfg, state
}

func runBmsgw(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestReportEnergyAndOpenData: the energy report of the reference week
// (figures worked out by hand in internal/energy's tests) and the chess
// club's no-show, as the journal recorded it, in both the energy report
// and the open data export, which carries no personal data.
func TestReportEnergyAndOpenData(t *testing.T) {
	cfg, state := energyConfig(t)
	week := []string{"-c", cfg, "--site", "valby-skole", "--from", "2026-11-23", "--to", "2026-11-30"}

	code, out, errOut := runBmsgw(append([]string{"report", "energy", "--format", "csv"}, week...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "no journal", "without a journal no no-show is known, and it says so")
	gym := csvRow(t, out, "gym")
	require.Equal(t, "52.75", gym["comfort_hours"])
	require.Equal(t, "99.25", gym["baseline_hours"])
	require.Equal(t, "46.5", gym["saved_hours"])
	require.Equal(t, "47.5", csvRow(t, out, "room12")["comfort_hours"])

	// The gateway recorded the chess club's no-show at 19:20.
	require.NoError(t, os.MkdirAll(state, 0o700))
	publishReportEvents(t, state, []events.Event{{Time: cetOn("2026-11-26", "19:20"), Site: "valby-skole", Space: "room12",
		Kind: events.NoShow, Booking: "leisure:chess-room12@booking.kk.dk/20261126T180000Z", Organiser: "valby-skak"}})
	code, out, errOut = runBmsgw(append([]string{"report", "energy", "--format", "csv"}, week...)...)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "45.8333", csvRow(t, out, "room12")["comfort_hours"], "released 19:20-21:00: 1 h 40 min less")

	code, out, errOut = runBmsgw("export", "opendata", "-c", cfg, "--site", "valby-skole", "--from", "2026-11-26", "--to", "2026-11-27", "--format", "json")
	require.Equal(t, 0, code, errOut)
	var doc struct{ Days []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	var room12 map[string]any
	for _, d := range doc.Days {
		if d["space"] == "room12" {
			room12 = d
		}
	}
	require.NotNil(t, room12, out)
	require.Equal(t, 1.0, room12["no_shows"])
	require.Equal(t, 0.0, room12["in_use_hours"])
	require.Equal(t, 2.0, room12["booked_hours"])
	require.NotContains(t, out, "valby-skak", "no organiser in open data")
	require.NotContains(t, out, "chess-room12", "no booking id in open data")

	xlsx := filepath.Join(t.TempDir(), "energy.xlsx")
	code, _, errOut = runBmsgw(append([]string{"report", "energy", "--format", "xlsx", "-o", xlsx}, week...)...)
	require.Equal(t, 0, code, errOut)
	b, err := os.ReadFile(xlsx)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("PK")), "an OOXML (zip) workbook")

	code, _, errOut = runBmsgw(append([]string{"report", "energy", "--format", "xlsx"}, week...)...)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "needs -o")
}

// csvRow returns the row of a space in a CSV with a header, by column.
func csvRow(t *testing.T, out, space string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	head := strings.Split(lines[0], ",")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		row := map[string]string{}
		for i, h := range head {
			if i < len(f) {
				row[h] = f[i]
			}
		}
		if row["space"] == space {
			return row
		}
	}
	t.Fatalf("no row for %s in:\n%s", space, out)
	return nil
}

// TestReportEnergyCardLights: floodlights gated by cards count as the
// running gateway held them: off until the card the journal recorded.
// Without that record the booking counts as lit throughout.
func TestReportEnergyCardLights(t *testing.T) {
	cfg, state := energyConfig(t)
	week := []string{"-c", cfg, "--site", "valby-skole", "--from", "2026-11-23", "--to", "2026-11-30"}
	pitch := func() map[string]string {
		code, out, errOut := runBmsgw(append([]string{"report", "energy", "--format", "csv"}, week...)...)
		require.Equal(t, 0, code, errOut)
		return csvRow(t, out, "pitch")
	}
	require.Equal(t, "2", pitch()["lighting_hours"], "Thursday 18:00-20:00, no card on record")

	require.NoError(t, os.MkdirAll(state, 0o700))
	publishReportEvents(t, state, []events.Event{{Time: cetOn("2026-11-26", "18:03"), Site: "valby-skole", Space: "pitch",
		Kind: events.LightsEnabled, Booking: "leisure:valbybk-pitch-thu@booking.kk.dk/20261126T170000Z", Subject: "pitch_gate"}})
	row := pitch()
	require.Equal(t, "1.95", row["lighting_hours"], "the card came at 18:03")
	require.Equal(t, "51.05", row["lighting_saved_hours"])
	require.Equal(t, "2042", row["lighting_kwh_saved"], "3 minutes of 40 kW more")
}

func TestCardLightsReleases(t *testing.T) {
	flood := &site.Point{ID: "flood"}
	s := &site.Site{ID: "s", Spaces: []*site.Space{{ID: "pitch", Resources: []string{"p1"}, LightsByCard: &site.LightsByCard{Points: []*site.Point{flood}}}}}
	at := func(hhmm string) time.Time { return cetOn("2026-11-26", hhmm) }
	bk := func(id, from, to string) booking.Booking {
		return booking.Booking{Source: "l", ID: id, Resource: "p1", Start: at(from), End: at(to), Status: booking.Confirmed}
	}
	bs := []booking.Booking{bk("b", "19:00", "20:00"), bk("a", "17:00", "18:00"), bk("c", "20:00", "21:00")}
	evs := []events.Event{
		{Kind: events.LightsEnabled, Space: "pitch", Booking: bs[1].String(), Time: at("17:10")},
		{Kind: events.LightsEnabled, Space: "pitch", Booking: bs[0].String(), Time: at("18:55")}, // a card before the start
	}
	var got []string
	for _, r := range cardLights(s, bs, at("16:00"), at("22:00"), evs) {
		loc := at("00:00").Location()
		got = append(got, r.Point+" "+r.From.In(loc).Format("15:04")+"-"+r.To.In(loc).Format("15:04")+" "+r.Why)
	}
	require.Equal(t, []string{
		"flood 16:00-17:00 lights only inside a booking",
		"flood 18:00-19:00 lights only inside a booking", // b and c touch: one booked stretch 19-21
		"flood 21:00-22:00 lights only inside a booking",
		"flood 17:00-17:10 lights of booking " + bs[1].String() + " waited for a card",
	}, got, "b lit from its start (card before it), c without a record counts as lit")
}
