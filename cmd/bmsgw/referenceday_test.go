package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/store"
)

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunReferenceDay runs Valby Skole's reference Thursday (DOMAIN.md
// section 5) from the season feeds at 1800x against simulated OPC UA and
// Modbus controllers, and checks that every point took its planned value
// at its planned moment, and that nothing else was written.
func TestRunReferenceDay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(repoRoot, "mappings", "valby-skole.yaml"))
	require.NoError(t, err)
	mapping := string(b)
	for _, addr := range []string{"127.0.0.1:48400", "127.0.0.1:15020", "127.0.0.1:15021"} {
		mapping = strings.ReplaceAll(mapping, addr, freePort(t))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "valby-skole.yaml"), []byte(mapping), 0o644))
	cfg := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.ReplaceAll(`state_dir: state
templates: [ROOT/mappings/templates/*.yaml]
sites: [valby-skole.yaml]
sources:
  - id: leisure
    ical: {file: ROOT/testdata/feeds/leisure-season.ics}
  - id: timetable
    csv: {file: ROOT/testdata/feeds/school-timetable.csv}
simulate: {devices: true}
`, "ROOT", repoRoot)), 0o644))
	g, err := config.Load(cfg)
	require.NoError(t, err)

	// The clock starts at 04:00, two and a half hours (5 s of real time)
	// before the first transition, so that connecting to the simulators is
	// done by then even on a loaded machine under the race detector.
	from, to := cetOn("2026-11-26", "04:00"), cetOn("2026-11-26", "21:30")
	const speed = 1800
	clock := control.NewScaledClock(from, speed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runGateway(ctx, g, runFlags{cfg: cfg}, clock, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}()
	deadline := time.Now().Add(time.Duration(float64(to.Sub(from))/speed) + 30*time.Second)
	for clock.Now().Before(to) {
		require.True(t, time.Now().Before(deadline), "gateway clock stuck")
		time.Sleep(50 * time.Millisecond)
	}
	c, err := localapi.Dial(g.StateDir)
	require.NoError(t, err)
	st, err := c.Status(ctx)
	require.NoError(t, err)
	cancel()
	require.NoError(t, <-done)

	// Every device was up and every scheduled point ended in sync.
	for _, d := range st.Devices {
		require.True(t, d.Up, "%s/%s down: %s", d.Connection, d.Device, d.LastError)
	}
	for _, p := range st.Points {
		if p.Desired != nil {
			require.True(t, p.InSync, "%s: desired %s, actual %s", p.Point, p.DesiredText, p.ActualText)
		}
	}

	// The plan, as bmsgw plan computes it.
	feeds, err := readFeeds(context.Background(), g, from.Add(-48*time.Hour), to.Add(48*time.Hour), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	plan := schedule.NewCompiler(g.Sites[0], from, to)
	plan.SetBookings(feeds.siteBookings(g.Sites[0]).Bookings)

	db, err := store.OpenReadOnly(context.Background(), journalFile(g))
	require.NoError(t, err)
	defer db.Close()
	es, err := journal.Query(context.Background(), db, journal.Filter{Kinds: []journal.Kind{journal.KindWrite}})
	require.NoError(t, err)
	type write struct {
		at    time.Time
		value float64
	}
	writes := map[string][]write{}
	for _, e := range es {
		require.True(t, e.Write.OK(), "failed write %+v", e.Write)
		writes[e.Write.Point] = append(writes[e.Write.Point], write{e.Time, e.Write.New.Num})
	}
	// At 1800x, 8 minutes of gateway time is 270 ms of real time.
	const slack = 8 * time.Minute
	checked := 0
	for _, ch := range plan.Changes() {
		if ch.Initial {
			continue
		}
		ws := writes[ch.Point.ID]
		found := -1
		for i, w := range ws {
			if w.value == ch.Value.Num && !w.at.Before(ch.At) && w.at.Sub(ch.At) <= slack {
				found = i
				break
			}
		}
		require.GreaterOrEqual(t, found, 0, "planned %s %s = %s not written within %s; writes: %v", ch.At.Format("15:04"), ch.Point.ID, ch.Point.Format(ch.Value), slack, ws)
		writes[ch.Point.ID] = append(ws[:found], ws[found+1:]...)
		checked++
	}
	require.Greater(t, checked, 30, "the day has its school hours and evening bookings")
	// What is left are the writes at start that brought the simulators
	// (all zeros) to the values in force at 04:00, while the gateway was
	// connecting to every controller, each before the point's first
	// transition; nothing else.
	for point, ws := range writes {
		for _, w := range ws {
			ch, ok := plan.ValueAt(point, from)
			require.True(t, ok)
			require.Equal(t, ch.Value.Num, w.value, "unplanned write %s = %g at %s", point, w.value, w.at.Format("15:04"))
			first := to
			for _, c := range plan.Timeline(point) {
				if !c.Initial {
					first = c.At
					break
				}
			}
			require.True(t, w.at.Before(first), "write %s = %g at %s, after the point's first transition at %s", point, w.value, w.at.Format("15:04"), first.Format("15:04"))
		}
	}
	t.Logf("%d planned transitions written on time", checked)
}

func cetOn(day, hhmm string) time.Time {
	loc, _ := time.LoadLocation("Europe/Copenhagen")
	t, err := time.ParseInLocation("2006-01-02 15:04", day+" "+hhmm, loc)
	if err != nil {
		panic(err)
	}
	return t
}
