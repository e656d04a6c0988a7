package sources

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/bookings"
	"github.com/bmsgw/bmsgw/internal/config"
)

// TestReadSeason: the season config's feeds, read once as the offline
// commands read them, give each site its merged bookings.
func TestReadSeason(t *testing.T) {
	g, err := config.Load(filepath.Join("..", "..", "configs", "season.yaml"))
	require.NoError(t, err)
	cph, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)
	from, to := time.Date(2026, 11, 23, 0, 0, 0, 0, cph), time.Date(2026, 11, 30, 0, 0, 0, 0, cph)
	res, err := Read(t.Context(), g, from, to, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Empty(t, res.Failed)
	for _, s := range g.Sources {
		require.NotEmpty(t, res.BySource[s.ID], "source %s", s.ID)
		require.Equal(t, len(res.BySource[s.ID]), res.Status[s.ID].Bookings)
	}
	for _, s := range g.Sites {
		require.NotEmpty(t, res.Site(s).Bookings, "site %s", s.ID)
	}
	var out bytes.Buffer
	require.True(t, res.Report(&out))
	require.Empty(t, out.String())
}

// TestReadFallsBackAndReports: a feed that cannot be read contributes
// its last good copy, and the report says so.
func TestReadFallsBackAndReports(t *testing.T) {
	dir := t.TempDir()
	feed := filepath.Join(dir, "feed.ics")
	ics, err := os.ReadFile(filepath.Join("..", "..", "testdata", "feeds", "leisure-season.ics"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(feed, ics, 0o644))
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	cfg := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.NewReplacer("ROOT", root, "DIR", dir).Replace(`state_dir: DIR/state
templates: [ROOT/mappings/templates/*.yaml]
sites: [ROOT/mappings/valby-skole.yaml]
sources:
  - id: leisure
    ical: {file: DIR/feed.ics}
  - id: timetable
    csv: {file: ROOT/testdata/feeds/school-timetable.csv}
access_outputs:
  - {id: acs, file: {path: DIR/acs.csv}}
  - {id: acs-export, file: {path: DIR/grants.csv}}
`)), 0o644))
	g, err := config.Load(cfg)
	require.NoError(t, err)
	from, to := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

	// The gateway saved a good copy of the feed, as a running one does.
	src, err := bookings.New(Options(g.Source("leisure"), g.StateDir), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(g.StateDir, 0o700))
	good, err := src.Poll(t.Context(), from, to)
	require.NoError(t, err)
	require.NotEmpty(t, good.Bookings)

	require.NoError(t, os.Remove(feed))
	res, err := Read(t.Context(), g, from, to, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Error(t, res.Failed["leisure"])
	require.Equal(t, good.Bookings, res.BySource["leisure"], "the last good copy")
	var out bytes.Buffer
	require.False(t, res.Report(&out))
	require.Contains(t, out.String(), "warning: booking source leisure failed")
	require.Contains(t, out.String(), "using the last good feed")
}
