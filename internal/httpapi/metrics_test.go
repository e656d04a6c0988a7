package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/store"
)

// metric returns the value of a sample line of the exposition, e.g.
// `bmsgw_writes_total{result="ok",site="valby-skole"}`, or -1 if absent.
func metric(t *testing.T, text, sample string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

func (a *testAPI) scrape() string {
	a.t.Helper()
	code, body, hdr := a.do(http.MethodGet, "/metrics", a.tok[RoleViewer], nil)
	require.Equal(a.t, http.StatusOK, code)
	require.Contains(a.t, hdr.Get("Content-Type"), "text/plain")
	return string(body)
}

// TestMetrics: /metrics shows what the engine and daemon reported and
// the API's own requests; FollowEvents counts every event of a bus once,
// even one that left it behind.
func TestMetrics(t *testing.T) {
	a := newTestAPI(t)
	m := a.metrics
	m.WriteDone("valby-skole", true)
	m.WriteDone("valby-skole", true)
	m.WriteDone("valby-skole", false)
	m.Error("journal")
	m.DeviceUp("valby-skole", "security", false)
	good := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	m.Feed(control.FeedStatus{Source: "leisure", OK: true, LastSuccess: good, Bookings: 12})
	m.Feed(control.FeedStatus{Source: "timetable", LastSuccess: good, ConsecutiveFailures: 3, FromCache: true, Bookings: 40})
	m.DeviceUp("valby-skole", "gym_ahu", true)
	m.DeviceUp("oerestad-skole", "hall", true)
	m.ReconcileLag(0.25)
	a.do(http.MethodGet, "/api/sites", a.tok[RoleViewer], nil)
	a.do(http.MethodGet, "/api/sites", "", nil)
	a.do(http.MethodPut, "/api/sites/valby-skole/points/gym_ahu.mode/override", a.tok[RoleViewer], OverrideRequest{Label: "off", For: "1h", Why: "x"})

	text := a.scrape()
	for sample, want := range map[string]float64{
		`bmsgw_writes_total{result="ok",site="valby-skole"}`:                                          2,
		`bmsgw_writes_total{result="failed",site="valby-skole"}`:                                      1,
		`bmsgw_errors_total{component="journal"}`:                                                     1,
		`bmsgw_device_up{connection="security",site="valby-skole"}`:                                   0,
		`bmsgw_device_up{connection="gym_ahu",site="valby-skole"}`:                                    1,
		`bmsgw_reconcile_lag_seconds`:                                                                 0.25,
		`bmsgw_reconcile_lag_seconds_distribution_count`:                                              1,
		`bmsgw_events_total{kind="panic"}`:                                                            0,
		`bmsgw_events_by_severity_total{severity="critical"}`:                                         0,
		`bmsgw_http_requests_total{code="200",route="GET /api/sites"}`:                                1,
		`bmsgw_http_requests_total{code="401",route="GET /api/sites"}`:                                1,
		`bmsgw_http_requests_total{code="403",route="PUT /api/sites/{site}/points/{point}/override"}`: 1,
		`bmsgw_feed_ok{source="leisure"}`:                                                             1,
		`bmsgw_feed_ok{source="timetable"}`:                                                           0,
		`bmsgw_feed_consecutive_failures{source="timetable"}`:                                         3,
		`bmsgw_feed_bookings{source="timetable"}`:                                                     40,
		`bmsgw_feed_last_success_timestamp_seconds{source="leisure"}`:                                 float64(good.Unix()),
	} {
		require.Equal(t, want, metric(t, text, sample), sample)
	}
	require.Positive(t, metric(t, text, "go_goroutines"), "the Go collector is there")
	m.ForgetFeed("timetable")
	require.Equal(t, -1.0, metric(t, a.scrape(), `bmsgw_feed_ok{source="timetable"}`), "a removed source's series go")
	m.ForgetConnection("valby-skole", "gym_ahu")
	text = a.scrape()
	require.Equal(t, -1.0, metric(t, text, `bmsgw_device_up{connection="gym_ahu",site="valby-skole"}`))
	require.Equal(t, 0.0, metric(t, text, `bmsgw_device_up{connection="security",site="valby-skole"}`), "the site's other connections stay")
	m.ForgetSite("valby-skole")
	text = a.scrape()
	require.Equal(t, -1.0, metric(t, text, `bmsgw_device_up{connection="security",site="valby-skole"}`))
	require.Equal(t, 1.0, metric(t, text, `bmsgw_device_up{connection="hall",site="oerestad-skole"}`))

	// A nil *Metrics ignores every call.
	var none *Metrics
	none.WriteDone("x", true)
	none.DeviceUp("x", "y", true)
	none.Event(events.Panic, events.Critical)
	require.NoError(t, none.FollowEvents(t.Context(), nil))
}

func TestFollowEventsCountsEachEventOnce(t *testing.T) {
	a := newTestAPI(t)
	// A bus whose subscribers may fall one event behind: a burst leaves
	// the follower behind, and it catches up from the journal.
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	j, err := journal.Open(ctx, db, journal.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	bus, err := events.NewBus(ctx, j, events.Options{Buffer: 1})
	require.NoError(t, err)
	defer func() {
		bus.Close()
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	}()
	// Published before the follower starts: not counted.
	_, err = bus.Publish(ctx, events.Event{Site: "valby-skole", Kind: events.Leak, Severity: events.Alarm, Message: "before"})
	require.NoError(t, err)

	fctx, stop := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() { followed <- a.metrics.FollowEvents(fctx, bus) }()
	// The follower subscribes in its goroutine; an event published before
	// that is not counted, so wait for it the way a scraper would: until
	// a probe event shows.
	probe := func(n float64) {
		_, err := bus.Publish(ctx, events.Event{Site: "valby-skole", Kind: events.RoundDone, Severity: events.Info, Message: "probe"})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			return metric(t, a.scrape(), `bmsgw_events_total{kind="round_done"}`) >= n
		}, 10*time.Second, 5*time.Millisecond)
	}
	for n := 1.0; metric(t, a.scrape(), `bmsgw_events_total{kind="round_done"}`) < 1; n++ {
		_, err := bus.Publish(ctx, events.Event{Site: "valby-skole", Kind: events.RoundDone, Severity: events.Info, Message: "probe"})
		require.NoError(t, err)
		if n > 1000 {
			t.Fatal("the follower never subscribed")
		}
	}
	before := metric(t, a.scrape(), `bmsgw_events_total{kind="round_done"}`)

	const burst = 300
	es := make([]events.Event, burst)
	for i := range es {
		k, sev := events.DoorForced, events.Alarm
		if i%3 == 0 {
			k, sev = events.Panic, events.Critical
		}
		es[i] = events.Event{Site: "valby-skole", Kind: k, Severity: sev, Message: fmt.Sprint("burst ", i)}
	}
	_, err = bus.PublishAll(ctx, es)
	require.NoError(t, err)
	probe(before + 1)

	text := a.scrape()
	require.Equal(t, 100.0, metric(t, text, `bmsgw_events_total{kind="panic"}`))
	require.Equal(t, 200.0, metric(t, text, `bmsgw_events_total{kind="door_forced"}`))
	require.Equal(t, 0.0, metric(t, text, `bmsgw_events_total{kind="leak"}`), "published before the follower began")
	require.Equal(t, 100.0, metric(t, text, `bmsgw_events_by_severity_total{severity="critical"}`))
	require.Equal(t, before+1, metric(t, text, `bmsgw_events_total{kind="round_done"}`))

	stop()
	require.NoError(t, <-followed)
}
