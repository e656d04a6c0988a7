package main

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/access/acssim"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sources"
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
// Modbus controllers, with the door and alarm I/O scripted as the section
// tells it and the certified alarm panel played by the test. It checks
// that every point took its planned value at its planned moment and
// nothing else was written, where the plan is the compiled one refined by
// what happened in the building (the chess club's no-show, floodlights
// waiting for a card and their warning blink), and that the expected
// access and alarm events came in order and no unexpected ones.
func TestRunReferenceDay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(repoRoot, "mappings", "valby-skole.yaml"))
	require.NoError(t, err)
	mapping := string(b)
	for _, addr := range []string{"127.0.0.1:48400", "127.0.0.1:15020", "127.0.0.1:15021", "127.0.0.1:15022"} {
		mapping = strings.ReplaceAll(mapping, addr, freePort(t))
	}
	// The I/O module is polled every 20 ms of real time: 36 s of the
	// gateway's time at 1800x.
	mapping = strings.Replace(mapping, "poll_interval: 1s", "poll_interval: 20ms", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "valby-skole.yaml"), []byte(mapping), 0o644))
	// The access-control system, which allows one permission per group
	// and door at a time.
	acs := acssim.New(acssim.Options{MaxPerGroupDoor: 1})
	acsSrv := httptest.NewServer(acs)
	defer acsSrv.Close()
	cfg := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.NewReplacer("ROOT", repoRoot, "ACS", acsSrv.URL+"/api/grants").Replace(`state_dir: state
templates: [ROOT/mappings/templates/*.yaml]
sites: [valby-skole.yaml]
sources:
  - id: leisure
    ical: {file: ROOT/testdata/feeds/leisure-season.ics}
  - id: timetable
    csv: {file: ROOT/testdata/feeds/school-timetable.csv}
simulate: {devices: true}
access_outputs:
  - {id: acs, http: {url: ACS, max_per_group_door: 1}}
  - {id: acs-export, file: {path: grants.csv}}
`)), 0o644))
	g, err := config.Load(cfg)
	require.NoError(t, err)
	s := g.Sites[0]

	// The clock starts at 04:00, two and a half hours (5 s of real time)
	// before the first transition, so that connecting to the simulators is
	// done by then even on a loaded machine under the race detector. It
	// runs through the night to see the leak at 02:00.
	from, to := cetOn("2026-11-26", "04:00"), cetOn("2026-11-27", "02:30")
	const speed = 1800
	clock := control.NewScaledClock(from, speed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The test runs the simulators itself, so that it can script the door
	// and alarm I/O module.
	io := startIO(t, s)
	noIO := *s
	noIO.Connections = maps.Clone(s.Connections)
	delete(noIO.Connections, "security")
	simG := *g
	simG.Sites = []*site.Site{&noIO}
	sims, err := startSimulators(ctx, &simG, clock, logger)
	require.NoError(t, err)
	defer sims.Close()
	g.Simulate = nil

	set := func(point string, v float64) {
		require.NoError(t, io.SetPoint(s.Points[point], v))
	}
	get := func(point string) float64 {
		v, err := io.PointValue(s.Points[point])
		require.NoError(t, err)
		return v
	}
	// The night before: doors closed and bolted (the side door's loop is
	// normally closed: 1 = closed), both areas armed.
	set("gym_side_loop", 1)
	set("gym_side_bolt", 1)
	set("gym_entrance_bolt", 1)
	set("gym_wing_armed", 1)
	set("wing_b_armed", 1)

	done := make(chan error, 1)
	go func() { done <- runGateway(ctx, g, runFlags{cfg: cfg}, clock, logger) }()

	// The certified alarm panel: it disarms an area when the gateway
	// authorises it and arms it after its 30 s exit delay when the
	// authorisation ends, unless a door of the area is open.
	panel := func(auth, armed string, open func() bool) func(now time.Time) {
		var armAt time.Time
		return func(now time.Time) {
			switch {
			case get(auth) == 1:
				armAt = time.Time{}
				set(armed, 0)
			case get(armed) == 0 && armAt.IsZero():
				armAt = now.Add(30 * time.Second)
			case get(armed) == 0 && !now.Before(armAt) && !open():
				set(armed, 1)
			}
		}
	}
	panels := []func(time.Time){
		panel("gym_wing_authorised", "gym_wing_armed", func() bool { return get("gym_side_loop") == 0 || get("gym_entrance_contact") == 1 }),
		panel("wing_b_authorised", "wing_b_armed", func() bool { return get("wing_b_entrance_contact") == 1 }),
	}
	// The evening as DOMAIN.md section 5 tells it.
	script := []struct {
		at string
		do func()
	}{
		{"2026-11-26 18:03", func() { set("pitch_gate_grants", 1) }}, // a member's card at the pitch gate
		// The volleyball club's card at the gym entrance: the access system
		// unlocks it (motor lock: the bolt retracts), they come in, it
		// closes and stays unlocked for the evening.
		{"2026-11-26 18:50", func() { set("gym_entrance_grants", 1); set("gym_entrance_unlock", 1); set("gym_entrance_bolt", 0) }},
		{"2026-11-26 18:51", func() { set("gym_entrance_contact", 1) }},
		{"2026-11-26 18:52", func() { set("gym_entrance_contact", 0); set("gym_entrance_unlock", 0) }},
		// Someone leaves by the side door from inside and props it open
		// with a bin.
		{"2026-11-26 20:49", func() { set("gym_side_handle", 1); set("gym_side_bolt", 0) }},
		{"2026-11-26 20:50", func() { set("gym_side_loop", 0) }},
		{"2026-11-26 20:51", func() { set("gym_side_handle", 0) }},
		{"2026-11-26 21:05", func() { set("gym_entrance_bolt", 1) }},  // the club leaves by the entrance, which locks
		{"2026-11-27 02:00", func() { set("wing_b_water_flow", 12) }}, // 1.2 l/min in an empty, armed building
	}
	deadline := time.Now().Add(time.Duration(float64(to.Sub(from))/speed) + 60*time.Second)
	for clock.Now().Before(to) {
		require.True(t, time.Now().Before(deadline), "gateway clock stuck")
		now := clock.Now()
		for len(script) > 0 && !now.Before(cetAt(script[0].at)) {
			script[0].do()
			script = script[1:]
		}
		for _, p := range panels {
			p(now)
		}
		time.Sleep(2 * time.Millisecond)
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

	// The plan, as bmsgw plan computes it, refined by what the evening
	// brought.
	feeds, err := sources.Read(context.Background(), g, from.Add(-48*time.Hour), to.Add(48*time.Hour), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	compiled := schedule.NewCompiler(s, from, to)
	compiled.SetBookings(feeds.Site(s).Bookings)
	var releases []schedule.Release
	for _, p := range []string{"room12.mode", "room12.heat_setpoint", "room12.lights_enable"} {
		releases = append(releases, schedule.Release{Point: p, From: cetAt("2026-11-26 19:20"), To: cetAt("2026-11-26 21:00")})
	}
	releases = append(releases,
		schedule.Release{Point: "pitch_floodlight_enable", From: cetAt("2026-11-26 18:00"), To: cetAt("2026-11-26 18:03")},
		schedule.Release{Point: "pitch_floodlight_enable", From: cetAt("2026-11-26 19:55"), To: cetAt("2026-11-26 19:55").Add(3 * time.Second)})
	plan := schedule.NewOverlay(compiled, s, from, to, releases, nil)
	blinkEnd := cetAt("2026-11-26 19:55").Add(3 * time.Second)
	blinkSwallowed := false

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
	// At 1800x, 8 minutes of gateway time is 270 ms of real time; the
	// card at 18:03 is seen within a poll (36 s) of it.
	const slack = 8 * time.Minute
	checked := 0
	for _, id := range s.PointIDs() {
		for _, ch := range plan.Timeline(id) {
			if ch.Initial {
				continue
			}
			ws := writes[id]
			found := -1
			for i, w := range ws {
				if w.value == ch.Value.Num && !w.at.Before(ch.At) && w.at.Sub(ch.At) <= slack {
					found = i
					break
				}
			}
			if found < 0 && id == "pitch_floodlight_enable" && ch.At.Equal(blinkEnd) {
				// At 1800x the 3 s blink lasts 1.7 ms of real time, less
				// than the outdoor unit's write pacing (10 writes/s): the
				// lights may stay off until 20:00 instead of coming back
				// for the last five minutes, and then need no write at
				// 20:00. The blink itself (off at 19:55) is checked.
				blinkSwallowed = true
				continue
			}
			if found < 0 && blinkSwallowed && id == "pitch_floodlight_enable" && ch.At.Equal(blinkEnd.Add(5*time.Minute-3*time.Second)) {
				continue
			}
			require.GreaterOrEqual(t, found, 0, "planned %s %s = %s not written within %s; writes: %v", ch.At.Format("15:04"), id, ch.Point.Format(ch.Value), slack, ws)
			writes[id] = append(ws[:found], ws[found+1:]...)
			checked++
		}
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

	// The events of the evening, in order, each within a poll and a
	// settle time of when it happened.
	evs, err := events.Query(context.Background(), db, events.Filter{Since: cetAt("2026-11-26 17:00")})
	require.NoError(t, err)
	var got []string
	for _, e := range evs {
		got = append(got, e.Time.In(s.Location).Format("15:04:05")+" "+string(e.Kind)+" "+e.Subject+" "+e.Message)
	}
	t.Logf("events:\n%s", strings.Join(got, "\n"))
	want := []struct {
		at      string
		kind    events.Kind
		subject string
		text    string
	}{
		{"2026-11-26 18:03", events.AccessGranted, "pitch_gate", ""},
		{"2026-11-26 18:03", events.LightsEnabled, "", ""},
		{"2026-11-26 18:45", events.AreaDisarmed, "gym_wing", ""},
		{"2026-11-26 18:50", events.AccessGranted, "gym_entrance", ""},
		{"2026-11-26 18:51", events.DoorOpened, "gym_entrance", ""},
		{"2026-11-26 18:52", events.DoorClosed, "gym_entrance", ""},
		{"2026-11-26 19:20", events.NoShow, "", "valby-skak"},
		{"2026-11-26 19:55", events.LightsWarning, "", ""},
		{"2026-11-26 20:50", events.DoorOpened, "gym_side", ""},
		{"2026-11-26 20:53", events.DoorHeldOpen, "gym_side", ""},
		{"2026-11-26 21:15", events.DoorLeftUnlocked, "gym_side", ""},
		{"2026-11-26 21:15", events.AreaArmOverOpening, "gym_side", "Gym wing"},
		{"2026-11-26 21:20", events.RoundFinding, "gym_side", "open"},
		{"2026-11-26 21:20", events.RoundFinding, "gym_wing", "not armed"},
		{"2026-11-26 21:20", events.RoundDone, "", ""},
		{"2026-11-26 21:20", events.AreaMismatch, "gym_wing", ""},
		{"2026-11-27 02:00", events.Leak, "wing_b_water", ""},
	}
	i := 0
	matched := map[int]bool{}
	for _, w := range want {
		for i < len(evs) && !(evs[i].Kind == w.kind && (w.subject == "" || evs[i].Subject == w.subject) && strings.Contains(evs[i].Message+" "+evs[i].Organiser, w.text)) {
			i++
		}
		require.Less(t, i, len(evs), "no %s %s (%q) at %s in order; events:\n%s", w.kind, w.subject, w.text, w.at, strings.Join(got, "\n"))
		at := cetAt(w.at)
		require.True(t, !evs[i].Time.Before(at.Add(-time.Minute)) && evs[i].Time.Before(at.Add(2*time.Minute)),
			"%s %s at %s, want %s", w.kind, w.subject, evs[i].Time.In(s.Location).Format("15:04:05"), w.at)
		matched[i] = true
		i++
	}
	// Nothing else worth a warning.
	for i, e := range evs {
		if !matched[i] && e.Severity.Rank() >= events.Warning.Rank() {
			t.Errorf("unexpected event: %s %s %s %s", e.Time.In(s.Location).Format("15:04:05"), e.Severity, e.Kind, e.Message)
		}
	}
	for _, e := range evs {
		if e.Kind == events.NoShow {
			require.Equal(t, "valby-skak", e.Organiser, "only the chess club was a no-show")
		}
	}

	// The access-control system holds the evening's grants (DOMAIN.md
	// section 5: the volleyball club's cards open the gym entrance
	// 18:45-21:15), as does the export file, with pseudonymous groups only.
	held := map[string]acssim.Grant{}
	for _, gr := range acs.Grants() {
		held[gr.Group+" "+gr.Door+" "+gr.From.In(s.Location).Format("2006-01-02 15:04")] = gr
	}
	for _, w := range []struct{ key, to, mode string }{
		{"G1041 gym_entrance 2026-11-26 18:45", "21:15", "card"},
		{"G1041 gym_side 2026-11-26 18:45", "21:15", "card"},
		{"G1077 wing_b_entrance 2026-11-26 18:45", "21:15", "card"}, // the chess club: room 12 lies behind it
		{"org-valby-bk pitch_gate 2026-11-26 17:45", "20:15", "card"},
	} {
		gr, ok := held[w.key]
		require.True(t, ok, "the ACS holds no grant %s; it holds %v", w.key, slices.Sorted(maps.Keys(held)))
		require.Equal(t, w.to, gr.To.In(s.Location).Format("15:04"), w.key)
		require.Equal(t, w.mode, gr.Mode, w.key)
	}
	export, err := os.ReadFile(filepath.Join(dir, "grants.csv"))
	require.NoError(t, err)
	// At the end of the run (02:30) the export holds what is still to
	// come: the chess club's next Thursday, and no ended grant.
	require.Contains(t, string(export), ",G1077,wing_b_entrance,2026-12-03T18:45:00+01:00,2026-12-03T21:15:00+01:00,card\n")
	require.NotContains(t, string(export), "2026-11-26T")
	for _, r := range acs.Requests() {
		require.NotContains(t, string(r.Body), "valby-volley", "organisers go out as their access groups")
	}
}

// startIO starts the door and alarm I/O module of a site.
func startIO(t *testing.T, s *site.Site) *modbussim.Server {
	c := s.Connections["security"]
	only := &site.Site{ID: s.ID, Points: map[string]*site.Point{}}
	for id, p := range s.Points {
		if p.Connection == c.ID {
			only.Points[id] = p
		}
	}
	srvs, err := modbussim.ForSite(only, modbussim.Config{URL: c.Modbus.URL}, nil)
	require.NoError(t, err)
	require.Len(t, srvs, 1)
	for _, srv := range srvs {
		require.NoError(t, srv.Start())
		t.Cleanup(func() { _ = srv.Close() })
		return srv
	}
	return nil
}

func cetAt(dayTime string) time.Time {
	day, hhmm, _ := strings.Cut(dayTime, " ")
	return cetOn(day, hhmm)
}

func cetOn(day, hhmm string) time.Time {
	loc, _ := time.LoadLocation("Europe/Copenhagen")
	t, err := time.ParseInLocation("2006-01-02 15:04", day+" "+hhmm, loc)
	if err != nil {
		panic(err)
	}
	return t
}
