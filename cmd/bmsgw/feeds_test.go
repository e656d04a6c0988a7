package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/bookings"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/sources"
)

// TestPlanFallsBackToLastGoodFeed: the booking office's server is down,
// but the gateway saved the last good feed; plan uses it and says so.
func TestPlanFallsBackToLastGoodFeed(t *testing.T) {
	feed, err := os.ReadFile(filepath.Join(repoRoot, "testdata", "feeds", "leisure-season.ics"))
	require.NoError(t, err)
	up := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		require.Equal(t, "Bearer t0ken", r.Header.Get("Authorization"))
		w.Header().Set("ETag", `"season-1"`)
		_, _ = w.Write(feed)
	}))
	defer srv.Close()
	t.Setenv("BMSGW_TEST_BOOKING_TOKEN", "Bearer t0ken")

	dir := t.TempDir()
	cfg := strings.NewReplacer("ROOT", repoRoot, "URL", srv.URL+"/leisure.ics", "STATE", filepath.Join(dir, "state")).Replace(`
state_dir: STATE
templates: [ROOT/mappings/templates/*.yaml]
sites: [ROOT/mappings/valby-skole.yaml]
sources:
  - id: leisure
    ical: {url: URL}
    headers: {Authorization: "${BMSGW_TEST_BOOKING_TOKEN}"}
  - id: timetable
    csv: {file: ROOT/testdata/feeds/school-timetable.csv}
access_outputs:
  - {id: acs, file: {path: STATE/acs.csv}}
  - {id: acs-export, file: {path: STATE/grants.csv}}
`)
	path := filepath.Join(dir, "gw.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))

	// What the running gateway does: poll and save the good feed.
	g, err := config.Load(path)
	require.NoError(t, err)
	src, err := bookings.New(sources.Options(g.Source("leisure"), g.StateDir), quietLogger(os.Stderr))
	require.NoError(t, err)
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	_, err = src.Poll(context.Background(), from, from.AddDate(0, 2, 0))
	require.NoError(t, err)

	up = false
	code, out, errOut := bmsgw(t, "plan", "-c", path, "--from", "2026-11-26", "--to", "2026-11-27", "--point", "gym_ahu.mode", "--format", "csv")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "booking source leisure failed")
	require.Contains(t, errOut, "503")
	require.Contains(t, errOut, "using the last good feed")
	require.NotContains(t, errOut, "t0ken", "secrets never appear in messages")
	require.Contains(t, out, "2026-11-26T18:00:00+01:00,valby-skole,gym,gym_ahu.mode,2,comfort,true,false,booking leisure:volley-gym-thu@booking.kk.dk/20261126T180000Z")

	// The gateway's own saved state is untouched by plan: its failure
	// counters and missing-booking counters stay the gateway's business.
	st1, err := os.ReadFile(filepath.Join(g.StateDir, "leisure.json"))
	require.NoError(t, err)
	code, _, _ = bmsgw(t, "plan", "-c", path, "--from", "2026-11-26", "--to", "2026-11-27")
	require.Equal(t, 0, code)
	st2, err := os.ReadFile(filepath.Join(g.StateDir, "leisure.json"))
	require.NoError(t, err)
	require.Equal(t, string(st1), string(st2))
}
