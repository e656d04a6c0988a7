package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sources"
	"github.com/bmsgw/bmsgw/internal/store"
)

// The end-to-end site: a gym on one Modbus controller, booked 19:00-21:00
// on the reference Thursday.
const e2eSite = `
site: {id: e2e, time_zone: Europe/Copenhagen}
sources: [{source: feed}]
connections:
  - id: plc
    modbus: {url: "URL", poll_interval: 200ms, timeout: 300ms, retries: 0, backoff_min: 100ms, backoff_max: 300ms}
    heartbeat: {point: watchdog, period: 5m}
points:
  - {id: watchdog, connection: plc, modbus: {table: holding_register, address: 9}, type: uint16, access: write}
  - {id: gym_mode, connection: plc, modbus: {table: holding_register, address: 0}, type: uint16, access: write, labels: {economy: 1, comfort: 2}}
  - {id: gym_setpoint, connection: plc, modbus: {table: holding_register, address: 1}, type: int16, scale: 0.1, unit: °C, access: write, min: 14, max: 24}
  - {id: gym_lights, connection: plc, modbus: {table: coil, address: 0}, type: bool, access: write}
profiles: [{id: hall, lead: 1h, lag: 15m}]
spaces:
  - id: gym
    resources: [gym]
    profile: hall
    points:
      - {point: gym_mode, occupied: comfort, vacant: economy}
      - {point: gym_setpoint, occupied: 20, vacant: 16}
      - {point: gym_lights, occupied: true, vacant: false, lead: 15m, lag: 0s}
`

const e2eFeed = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" +
	"BEGIN:VEVENT\r\nUID:volley@test\r\nDTSTAMP:20261101T000000Z\r\nLOCATION:gym\r\nX-ASSOCIATION-ID:valby-volley\r\n" +
	"DTSTART:20261126T180000Z\r\nDTEND:20261126T200000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

type e2e struct {
	t     *testing.T
	dir   string
	cfg   string
	g     *config.Gateway
	sim   *modbussim.Server
	speed float64
}

func newE2E(t *testing.T) *e2e {
	sim, err := modbussim.New(modbussim.Config{URL: "tcp://127.0.0.1:0"}, nil)
	require.NoError(t, err)
	require.NoError(t, sim.Start())
	t.Cleanup(func() { _ = sim.Close() })
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "feed.ics"), []byte(e2eFeed), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(strings.Replace(e2eSite, "URL", sim.URL(), 1)), 0o644))
	cfg := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state_dir: state\nsites: [site.yaml]\nsources:\n  - id: feed\n    ical: {file: feed.ics}\n"), 0o644))
	g, err := config.Load(cfg)
	require.NoError(t, err)
	return &e2e{t: t, dir: dir, cfg: cfg, g: g, sim: sim, speed: 600}
}

// run starts the gateway with its clock at origin, running e.speed times
// faster than real time, and returns a stop function that waits for it.
func (e *e2e) run(origin time.Time) (control.Clock, func()) {
	clock := control.NewScaledClock(origin, e.speed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- runGateway(ctx, e.g, runFlags{cfg: e.cfg}, clock, logger) }()
	// Ready when the local API answers.
	e.eventually(10*time.Second, "local API up", func() bool {
		c, err := localapi.Dial(e.g.StateDir)
		if err != nil {
			return false
		}
		_, err = c.Status(context.Background())
		return err == nil
	})
	return clock, func() {
		cancel()
		require.NoError(e.t, <-done)
	}
}

func (e *e2e) eventually(limit time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *e2e) value(point string) float64 {
	v, err := e.sim.PointValue(e.g.Sites[0].Points[point])
	require.NoError(e.t, err)
	return v
}

// until waits (in real time) until the gateway's clock passes t.
func (e *e2e) until(clock control.Clock, t time.Time) {
	e.eventually(time.Duration(float64(t.Sub(clock.Now()))/e.speed)+5*time.Second, "clock "+t.Format(time.TimeOnly), func() bool { return !clock.Now().Before(t) })
}

func (e *e2e) writes() []journal.Entry { return e.entries(journal.KindWrite) }

// entries returns the journal's entries of kind.
func (e *e2e) entries(kind journal.Kind) []journal.Entry {
	db, err := store.OpenReadOnly(context.Background(), journalFile(e.g))
	require.NoError(e.t, err)
	defer db.Close()
	es, err := journal.Query(context.Background(), db, journal.Filter{Kinds: []journal.Kind{kind}})
	require.NoError(e.t, err)
	return es
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func cet(hhmm string) time.Time {
	loc, _ := time.LoadLocation("Europe/Copenhagen")
	t, err := time.ParseInLocation("2006-01-02 15:04", "2026-11-26 "+hhmm, loc)
	if err != nil {
		panic(err)
	}
	return t
}

// TestRunPlaysTheEveningOnTime runs the evening at 600x and checks that
// every planned transition was written at its planned moment (within a
// few seconds of gateway time), with its reason, and nothing else.
func TestRunPlaysTheEveningOnTime(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.vacant()
	clock, stop := e.run(cet("17:50"))
	e.until(clock, cet("21:20"))
	stop()

	var want []string
	for _, ch := range e.plan(cet("17:50"), cet("21:20")).Changes() {
		if !ch.Initial {
			want = append(want, fmt.Sprintf("%s %s=%g", ch.At.Format("15:04"), ch.Point.ID, ch.Value.Num))
		}
	}
	require.Len(t, want, 6, "comfort and 20 °C at 18:00, lights at 18:45 and off at 21:00, economy and 16 °C at 21:15")
	var got []string
	for _, w := range e.writes() {
		require.True(t, w.Write.OK(), "write failed: %+v", w.Write)
		// Gateway time is checked to the minute: at 600x a minute is 100 ms.
		got = append(got, fmt.Sprintf("%s %s=%g", w.Time.In(cet("00:00").Location()).Truncate(time.Minute).Format("15:04"), w.Write.Point, w.Write.New.Num))
		if w.Write.Point == "gym_mode" && w.Write.New.Num == 2 {
			require.Contains(t, w.Write.Reason, "booking feed:volley@test (org valby-volley)")
			require.Equal(t, journal.Source("booking"), w.Write.Source)
		}
	}
	require.Equal(t, want, got)
	require.Equal(t, 1.0, e.value("gym_mode"), "economy after the booking")
}

// vacant puts the simulated controller in the vacant state, as a
// controller that has been running on its own would be.
// status asks the running gateway for its status.
func (e *e2e) status() control.Status {
	c, err := localapi.Dial(e.g.StateDir)
	require.NoError(e.t, err)
	st, err := c.Status(context.Background())
	require.NoError(e.t, err)
	return st
}

func (e *e2e) vacant() {
	s := e.g.Sites[0]
	require.NoError(e.t, e.sim.SetPoint(s.Points["gym_mode"], 1))
	require.NoError(e.t, e.sim.SetPoint(s.Points["gym_setpoint"], 16))
	require.NoError(e.t, e.sim.SetPoint(s.Points["gym_lights"], 0))
}

// plan compiles what the gateway should do, the way bmsgw plan does.
func (e *e2e) plan(from, to time.Time) *schedule.Compiler {
	feeds, err := sources.Read(context.Background(), e.g, from.Add(-48*time.Hour), to.Add(48*time.Hour), slog.New(slog.DiscardHandler))
	require.NoError(e.t, err)
	c := schedule.NewCompiler(e.g.Sites[0], from, to)
	c.SetBookings(feeds.Site(e.g.Sites[0]).Bookings)
	return c
}

// TestRunCatchesUpAfterOutage: the controller is off the network while
// the lights should switch off at 21:00; once it is back, it gets the
// right value without anyone doing anything.
func TestRunCatchesUpAfterOutage(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.vacant()
	clock, stop := e.run(cet("18:40"))
	defer stop()
	e.until(clock, cet("18:50"))
	require.Equal(t, 1.0, e.value("gym_lights"), "lights on for the booking")

	e.until(clock, cet("20:50"))
	require.NoError(t, e.sim.Stop())
	e.until(clock, cet("21:05"))
	require.Equal(t, 1.0, e.value("gym_lights"), "the controller was unreachable and kept its value")
	require.NoError(t, e.sim.Start())
	e.eventually(5*time.Second, "lights off after the outage", func() bool { return e.value("gym_lights") == 0 })

	// The write lands on the device before it is read back and journalled.
	var failed, ok int
	e.eventually(5*time.Second, "the successful write journalled", func() bool {
		failed, ok = 0, 0
		for _, w := range e.writes() {
			switch {
			case w.Write.Point != "gym_lights":
			case !w.Write.OK():
				// Whichever value was being written when the link
				// broke: the engine retries with backoff, so whether an
				// attempt of the 21:00 value falls inside the outage
				// depends on timing.
				failed++
			case w.Write.New.Num == 0:
				ok++
			}
		}
		return ok > 0
	})
	// The outage is in the journal: as the 21:00 write failing, or, if
	// the gateway saw the device go down first (it then writes nothing to
	// it until it is back), as the device going down.
	down := 0
	for _, d := range e.entries(journal.KindDevice) {
		if !d.Device.Up {
			down++
		}
	}
	require.Positive(t, failed+down, "the outage is journalled")
	require.Equal(t, 1, ok, "one successful write once the device was back")
}

// TestRunRestartWritesOnlyWhatDiffers: a gateway restarted mid-evening
// reads the devices first and writes nothing that is already right; a
// point changed while it was down is written once.
func TestRunRestartWritesOnlyWhatDiffers(t *testing.T) {
	e := newE2E(t)
	e.vacant()
	clock, stop := e.run(cet("18:50"))
	e.eventually(5*time.Second, "comfort", func() bool { return e.value("gym_mode") == 2 && e.value("gym_lights") == 1 })
	// The simulator can hold a value a moment before its write is
	// journalled (the journal entry follows the read-back).
	e.eventually(5*time.Second, "three writes journalled", func() bool { return len(e.writes()) >= 3 })
	_ = clock
	stop()
	before := len(e.writes())
	require.Equal(t, 3, before, "mode, setpoint and lights were written once")

	// While the gateway is down someone switches the lights off.
	require.NoError(t, e.sim.SetPoint(e.g.Sites[0].Points["gym_lights"], 0))
	clock, stop = e.run(cet("19:30"))
	defer stop()
	e.eventually(5*time.Second, "lights back on", func() bool { return e.value("gym_lights") == 1 })
	e.until(clock, cet("19:50"))
	after := e.writes()[before:]
	require.Len(t, after, 1, "only the point that differed is written: %v", after)
	require.Equal(t, "gym_lights", after[0].Write.Point)
}

// TestRunOverrideBeatsBookingAndExpires: an operator override through the
// CLI wins over the booking, is journalled with who and why, and the
// booking's value returns when it expires.
func TestRunOverrideBeatsBookingAndExpires(t *testing.T) {
	e := newE2E(t)
	e.vacant()
	clock, stop := e.run(cet("19:00"))
	defer stop()
	e.eventually(5*time.Second, "20 °C for the booking", func() bool { return e.value("gym_setpoint") == 20 })

	code, out, errOut := bmsgw(t, "override", "set", "e2e/gym_setpoint", "22.5", "--until", "30m", "--reason", "volleyball tournament, hall is cold", "--who", "operator-anna", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "override on e2e/gym_setpoint = 22.5")
	e.eventually(5*time.Second, "override written", func() bool { return e.value("gym_setpoint") == 22.5 })

	// The simulator may hold the value a moment before the engine has
	// read it back; status shows it once it has.
	statusRe := regexp.MustCompile(`e2e/gym_setpoint\s+22.5 °C\s+22.5 °C\s+override`)
	e.eventually(5*time.Second, "status shows the override in force", func() bool {
		code, out, errOut = bmsgw(t, "status", "-c", e.cfg)
		require.Equal(t, 0, code, errOut)
		return statusRe.MatchString(out)
	})

	// Outside the point's limits is refused and nothing is written.
	code, _, errOut = bmsgw(t, "override", "set", "e2e/gym_setpoint", "30", "--until", "30m", "--reason", "x", "-c", e.cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "outside the point's limits")

	e.until(clock, cet("19:40"))
	e.eventually(5*time.Second, "back to the booking's value", func() bool { return e.value("gym_setpoint") == 20 })

	db, err := store.OpenReadOnly(context.Background(), journalFile(e.g))
	require.NoError(t, err)
	defer db.Close()
	es, err := journal.Query(context.Background(), db, journal.Filter{Kinds: []journal.Kind{journal.KindOverride}})
	require.NoError(t, err)
	require.Len(t, es, 2)
	require.Equal(t, "operator-anna", es[0].Override.Who)
	require.Equal(t, "volleyball tournament, hall is cold", es[0].Override.Why)
	require.Equal(t, journal.OverrideAction("set"), es[0].Override.Action)
	require.Equal(t, journal.OverrideAction("expired"), es[1].Override.Action)
}

// TestRunReload: an invalid config is refused with its errors and the
// running one stays; a valid change of the plan applies in place.
func TestRunReload(t *testing.T) {
	e := newE2E(t)
	e.vacant()
	clock, stop := e.run(cet("17:40"))
	defer stop()
	sitePath := filepath.Join(e.dir, "site.yaml")
	orig, err := os.ReadFile(sitePath)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(sitePath, []byte(strings.Replace(string(orig), "lead: 1h", "lead: 1 hour", 1)), 0o644))
	code, _, errOut := bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `site.yaml:`)
	require.Contains(t, errOut, `"1 hour" is not a duration`)

	// Two hours of pre-heating instead of one: comfort from 17:00, which
	// is already past, so the gateway writes it at once.
	require.NoError(t, os.WriteFile(sitePath, []byte(strings.Replace(string(orig), "lead: 1h", "lead: 2h", 1)), 0o644))
	code, out, errOut := bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "reloaded")
	e.eventually(5*time.Second, "comfort after the reload", func() bool { return e.value("gym_mode") == 2 })
	require.True(t, clock.Now().Before(cet("18:00")), "written because of the new lead, not the old one")

	// Tighter limits apply in place: an override above the new max is refused.
	require.NoError(t, os.WriteFile(sitePath, []byte(strings.Replace(strings.Replace(string(orig), "lead: 1h", "lead: 2h", 1), "max: 24}", "max: 22}", 1)), 0o644))
	code, _, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	code, _, errOut = bmsgw(t, "override", "set", "e2e/gym_setpoint", "23", "--until", "30m", "--reason", "x", "-c", e.cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "outside the point's limits")

	// A new point is added in place.
	more := strings.Replace(strings.Replace(string(orig), "lead: 1h", "lead: 2h", 1), "points:\n  - {id: watchdog", "points:\n  - {id: aisle, connection: plc, modbus: {table: coil, address: 5}, type: bool, access: write}\n  - {id: watchdog", 1)
	more = strings.Replace(more, "      - {point: gym_lights,", "      - {point: aisle, occupied: true, vacant: false}\n      - {point: gym_lights,", 1)
	require.NoError(t, os.WriteFile(sitePath, []byte(more), 0o644))
	code, _, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	aisle := &site.Point{ID: "aisle", Type: site.TypeBool, Scale: 1, Modbus: &site.ModbusAddress{Table: site.Coil, Address: 5, Bit: -1, UnitID: 1}}
	e.eventually(5*time.Second, "the new point written", func() bool {
		v, err := e.sim.PointValue(aisle)
		return err == nil && v == 1
	})

	// The controller moves to another address: a new link, and every
	// point is brought right on it; the old simulator gets nothing more.
	// The operator's override is on the point, not its wiring: it moves
	// with it.
	code, _, errOut = bmsgw(t, "override", "set", "e2e/gym_setpoint", "21.5", "--until", "3h", "--reason", "tournament", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	moved, err := modbussim.New(modbussim.Config{URL: "tcp://127.0.0.1:0"}, nil)
	require.NoError(t, err)
	require.NoError(t, moved.Start())
	defer moved.Close()
	movedText := strings.Replace(more, e.sim.URL(), moved.URL(), 1)
	require.NoError(t, os.WriteFile(sitePath, []byte(movedText), 0o644))
	code, _, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	e.eventually(5*time.Second, "points written on the new link", func() bool {
		v, err := moved.PointValue(e.g.Sites[0].Points["gym_mode"])
		return err == nil && v == 2
	})
	e.eventually(5*time.Second, "the override written on the new link", func() bool {
		v, err := moved.PointValue(e.g.Sites[0].Points["gym_setpoint"])
		return err == nil && v == 21.5
	})

	// Limits tightened below the override: it ends, journalled as
	// cleared by the reload, and the booking's value comes back.
	require.NoError(t, os.WriteFile(sitePath, []byte(strings.Replace(movedText, "max: 24}", "max: 21}", 1)), 0o644))
	code, out, errOut = bmsgw(t, "reload", "--check", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "end the override on e2e/gym_setpoint by ")
	require.Contains(t, out, "21.5 is outside the point's new limits")
	code, _, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	e.eventually(5*time.Second, "the booking's setpoint back", func() bool {
		v, err := moved.PointValue(e.g.Sites[0].Points["gym_setpoint"])
		return err == nil && v == 20
	})
	cleared := false
	for _, en := range e.entries(journal.KindOverride) {
		o := en.Override
		cleared = cleared || o.Point == "gym_setpoint" && o.Action == journal.OverrideClear && o.Who == "reload" && strings.Contains(o.Why, "no longer allowed")
	}
	require.True(t, cleared, "the end of the override journalled")

	// An HTTP listener cannot be opened in place: refused, the running
	// config stays.
	cfgText, err := os.ReadFile(e.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.cfg, append(cfgText, "http:\n  listen: 127.0.0.1:0\n  tokens:\n    - {name: energy-office, role: viewer, token_sha256: "+strings.Repeat("ab", 32)+"}\n"...), 0o644))
	code, _, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "needs a restart")
	require.Contains(t, errOut, "http listen address")
}

// TestRunReloadSitesAndSources: a reload adds a site (a new school) and
// its booking source, changes the feed of a running source and removes
// the site again, without a restart and without disturbing the others.
func TestRunReloadSitesAndSources(t *testing.T) {
	e := newE2E(t)
	e.speed = 30 // 17:00 to 18:00 (the booked hall's comfort) in two minutes
	e.vacant()
	clock, stop := e.run(cet("17:00"))
	defer stop()
	baseCfg, err := os.ReadFile(e.cfg)
	require.NoError(t, err)

	// The feed moves to another file whose booking starts at 17:30: with
	// an hour's lead the hall is wanted in comfort at once.
	early := strings.Replace(e2eFeed, "DTSTART:20261126T180000Z", "DTSTART:20261126T163000Z", 1)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "feed-b.ics"), []byte(early), 0o644))
	require.NoError(t, os.WriteFile(e.cfg, []byte(strings.Replace(string(baseCfg), "feed.ics", "feed-b.ics", 1)), 0o644))
	code, _, errOut := bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	e.eventually(5*time.Second, "comfort from the changed feed", func() bool { return e.value("gym_mode") == 2 })
	require.True(t, clock.Now().Before(cet("18:00")), "written because of the new feed, not the old one")

	// A second school joins with its own controller and booking source.
	sim2, err := modbussim.New(modbussim.Config{URL: "tcp://127.0.0.1:0"}, nil)
	require.NoError(t, err)
	require.NoError(t, sim2.Start())
	defer sim2.Close()
	site2 := strings.Replace(strings.Replace(strings.Replace(e2eSite, "URL", sim2.URL(), 1), "id: e2e,", "id: e2e-two,", 1), "source: feed}", "source: feed2}", 1)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "site2.yaml"), []byte(site2), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "feed2.ics"), []byte(early), 0o644))
	probe := filepath.Join(e.dir, "probe.yaml")
	require.NoError(t, os.WriteFile(probe, []byte("state_dir: probe\nsites: [site2.yaml]\nsources:\n  - id: feed2\n    ical: {file: feed2.ics}\n"), 0o644))
	cfg2, err := config.Load(probe)
	require.NoError(t, err)
	s2 := cfg2.Sites[0]
	// Its setpoint already holds the comfort value: the new site's
	// points are read first, so only what differs is written.
	require.NoError(t, sim2.SetPoint(s2.Points["gym_mode"], 1))
	require.NoError(t, sim2.SetPoint(s2.Points["gym_setpoint"], 20))
	withSite2 := strings.Replace(strings.Replace(string(baseCfg), "feed.ics", "feed-b.ics", 1), "sites: [site.yaml]", "sites: [site.yaml, site2.yaml]", 1) +
		"  - id: feed2\n    ical: {file: feed2.ics}\n"
	require.NoError(t, os.WriteFile(e.cfg, []byte(withSite2), 0o644))
	// What the reload would do, before it does it.
	code, out, errOut := bmsgw(t, "reload", "--check", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "a reload would:")
	require.Contains(t, out, "add site e2e-two (4 points, 1 connection)")
	require.Contains(t, out, "start booking source feed2")
	require.False(t, slices.ContainsFunc(e.status().Points, func(p control.PointStatus) bool { return p.Site == "e2e-two" }), "nothing applied by --check")
	code, out, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "reloaded\n  add site e2e-two")
	e.eventually(5*time.Second, "the new site in comfort", func() bool {
		v, err := sim2.PointValue(s2.Points["gym_mode"])
		return err == nil && v == 2
	})
	e.eventually(5*time.Second, "the new site's write journalled", func() bool {
		for _, w := range e.writes() {
			if w.Write.Site == "e2e-two" && w.Write.Point == "gym_mode" && w.Write.Err == "" {
				return true
			}
		}
		return false
	})
	for _, w := range e.writes() {
		require.False(t, w.Write.Site == "e2e-two" && w.Write.Point == "gym_setpoint", "the setpoint already held its value: %+v", w.Write)
	}
	st := e.status()
	require.True(t, slices.ContainsFunc(st.Points, func(p control.PointStatus) bool { return p.Site == "e2e-two" && p.Point == "gym_mode" && p.InSync }))
	require.Equal(t, 2.0, e.value("gym_mode"), "the first site is left as it was")

	// The school leaves again: its points and device are no longer run,
	// and an override on one of them ends, journalled.
	code, _, errOut = bmsgw(t, "override", "set", "e2e-two/gym_setpoint", "21", "--until", "3h", "--reason", "cold hall", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, os.WriteFile(e.cfg, []byte(strings.Replace(string(baseCfg), "feed.ics", "feed-b.ics", 1)), 0o644))
	code, out, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "remove site e2e-two")
	require.Contains(t, out, "stop booking source feed2")
	require.Contains(t, out, "end the override on e2e-two/gym_setpoint by ")
	require.True(t, slices.ContainsFunc(e.entries(journal.KindOverride), func(en journal.Entry) bool {
		o := en.Override
		return o.Site == "e2e-two" && o.Action == journal.OverrideClear && o.Who == "reload" && strings.Contains(o.Why, "removed")
	}), "the removed site's override ended in the journal: %v", func() (out []journal.OverrideEntry) {
		for _, en := range e.entries(journal.KindOverride) {
			out = append(out, *en.Override)
		}
		return
	}())
	st = e.status()
	require.False(t, slices.ContainsFunc(st.Points, func(p control.PointStatus) bool { return p.Site == "e2e-two" }), "no point of the removed site")
	require.False(t, slices.ContainsFunc(st.Devices, func(d control.DeviceStatus) bool { return d.Site == "e2e-two" }), "no device of the removed site")
	require.NoError(t, sim2.SetPoint(s2.Points["gym_mode"], 1))
	require.NoError(t, sim2.Set(1, site.HoldingRegister, 9, 0)) // the heartbeat register
	time.Sleep(500 * time.Millisecond)                          // 15 gateway minutes: polls, resyncs
	v, err := sim2.PointValue(s2.Points["gym_mode"])
	require.NoError(t, err)
	require.Equal(t, 1.0, v, "nothing written to the removed site")
	require.True(t, clock.Now().Before(cet("18:00")))
	require.Equal(t, 2.0, e.value("gym_mode"), "the first site is left as it was")
}

// TestRunDryRun: everything runs and is journalled, nothing is written.
func TestRunDryRun(t *testing.T) {
	e := newE2E(t)
	e.vacant()
	clock := control.NewScaledClock(cet("18:30"), e.speed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runGateway(ctx, e.g, runFlags{cfg: e.cfg, dryRun: true}, clock, slog.New(slog.DiscardHandler))
	}()
	e.eventually(10*time.Second, "dry-run writes journalled", func() bool {
		// The daemon may still be creating the journal: errors mean "not yet".
		db, err := store.OpenReadOnly(context.Background(), journalFile(e.g))
		if err != nil {
			return false
		}
		defer db.Close()
		es, err := journal.Query(context.Background(), db, journal.Filter{Kinds: []journal.Kind{journal.KindWrite}})
		return err == nil && len(es) >= 2
	})
	cancel()
	require.NoError(t, <-done)
	for _, w := range e.writes() {
		require.True(t, w.Write.DryRun)
	}
	require.Equal(t, 1.0, e.value("gym_mode"), "nothing reached the controller")
	require.Equal(t, 16.0, e.value("gym_setpoint"))
}

// externalChange sets the gym setpoint at the "BMS" while the gym is
// booked, and returns the gateway clock.
func externalChange(t *testing.T, policy string) (*e2e, control.Clock, func()) {
	e := newE2E(t)
	if policy != "" {
		sitePath := filepath.Join(e.dir, "site.yaml")
		b, err := os.ReadFile(sitePath)
		require.NoError(t, err)
		b = []byte(strings.Replace(string(b), "access: write, min: 14, max: 24}", "access: write, min: 14, max: 24, on_external_change: "+policy+"}", 1))
		require.NoError(t, os.WriteFile(sitePath, b, 0o644))
		g, err := config.Load(e.cfg)
		require.NoError(t, err)
		e.g = g
	}
	e.vacant()
	clock, stop := e.run(cet("19:00"))
	e.eventually(5*time.Second, "20 °C for the booking", func() bool { return e.value("gym_setpoint") == 20 })
	e.until(clock, cet("19:05"))
	// The caretaker turns the hall up at the BMS.
	require.NoError(t, e.sim.SetPoint(e.g.Sites[0].Points["gym_setpoint"], 23))
	return e, clock, stop
}

// TestRunRespectsAChangeAtTheBMS: by default a value changed by someone
// else stays until the point's next scheduled change, and is reported.
func TestRunRespectsAChangeAtTheBMS(t *testing.T) {
	e, clock, stop := externalChange(t, "")
	defer stop()
	e.until(clock, cet("20:30"))
	require.Equal(t, 23.0, e.value("gym_setpoint"), "respected during the booking")
	code, out, errOut := bmsgw(t, "status", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `e2e/gym_setpoint\s+20 °C\s+23 °C\s+booking\s+changed at BMS, respected until 21:15`, out)

	// At the next scheduled change (vacant at 21:15) the plan takes over.
	e.until(clock, cet("21:20"))
	e.eventually(5*time.Second, "vacant setpoint", func() bool { return e.value("gym_setpoint") == 16 })

	db, err := store.OpenReadOnly(context.Background(), journalFile(e.g))
	require.NoError(t, err)
	defer db.Close()
	es, err := journal.Query(context.Background(), db, journal.Filter{Kinds: []journal.Kind{journal.KindEvent}})
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.Contains(t, es[0].Event.Message, "gym_setpoint changed to 23 °C at the BMS (desired 20 °C); respected until")
}

// TestRunEnforcesWhereTheMappingSaysSo: on_external_change: enforce
// writes the desired value back at once.
func TestRunEnforcesWhereTheMappingSaysSo(t *testing.T) {
	e, _, stop := externalChange(t, "enforce")
	defer stop()
	e.eventually(5*time.Second, "20 °C written back", func() bool { return e.value("gym_setpoint") == 20 })
	// The write lands on the device before it is read back and journalled.
	var back int
	e.eventually(5*time.Second, "the write back journalled", func() bool {
		back = 0
		for _, w := range e.writes() {
			if w.Write.Point == "gym_setpoint" && w.Write.New.Num == 20 && strings.Contains(w.Write.Reason, "enforce after external change") {
				back++
			}
		}
		return back > 0
	})
	require.Equal(t, 1, back, "one write back, journalled with its reason")
}

// TestRunHeartbeat: the watchdog register counts up every period, so the
// controller can tell the gateway is alive.
func TestRunHeartbeat(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.vacant()
	clock, stop := e.run(cet("12:00"))
	defer stop()
	e.until(clock, cet("12:01"))
	first := e.value("watchdog")
	e.until(clock, cet("12:31")) // six periods of 5 minutes
	n := e.value("watchdog") - first
	require.GreaterOrEqual(t, n, 5.0, "counter advanced by %g", n)
	require.LessOrEqual(t, n, 7.0, "counter advanced by %g", n)
	for _, w := range e.writes() {
		require.NotEqual(t, "watchdog", w.Write.Point, "heartbeats are not journalled as writes")
	}
}

// TestRunReloadSimulatedSite: in a demo (simulate: devices), a site added
// by a reload gets its simulator, and a removed site's simulator stops.
func TestRunReloadSimulatedSite(t *testing.T) {
	dir := t.TempDir()
	mapping := `
site: {id: ID, time_zone: Europe/Copenhagen}
connections:
  - id: plc
    modbus: {url: "tcp://ADDR", poll_interval: 200ms, timeout: 300ms}
points:
  - {id: setpoint, connection: plc, modbus: {table: holding_register, address: 1}, type: int16, scale: 0.1, access: write, min: 14, max: 24}
spaces:
  - id: hall
    resources: [hall]
    points:
      - {point: setpoint, occupied: 20, vacant: 16}
`
	addr2 := freePort(t)
	for _, f := range []struct{ file, id, addr string }{{"site.yaml", "one", freePort(t)}, {"site2.yaml", "two", addr2}} {
		m := strings.NewReplacer("ID", f.id, "ADDR", f.addr).Replace(mapping)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f.file), []byte(m), 0o644))
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	base := "state_dir: state\nsites: [site.yaml]\nsimulate: {devices: true}\n"
	require.NoError(t, os.WriteFile(cfg, []byte(base), 0o644))
	_, api, stop := startGateway(t, cfg, control.RealClock{})
	defer stop()
	inSync := func(siteID string) bool {
		st, err := api.Status(context.Background())
		return err == nil && slices.ContainsFunc(st.Points, func(p control.PointStatus) bool { return p.Site == siteID && p.InSync })
	}
	require.Eventually(t, func() bool { return inSync("one") }, 20*time.Second, 20*time.Millisecond, "the first site's simulated device written")

	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(base, "[site.yaml]", "[site.yaml, site2.yaml]", 1)), 0o644))
	code, out, errOut := bmsgw(t, "reload", "-c", cfg)
	require.Equal(t, 0, code, errOut, out)
	require.Eventually(t, func() bool { return inSync("two") }, 20*time.Second, 20*time.Millisecond, "the new site's simulator started and written")

	// The second site's controller moves to another port: its simulator
	// is made again from the new mapping, and the point is written there.
	addr3 := freePort(t)
	m2 := strings.NewReplacer("ID", "two", "ADDR", addr3).Replace(mapping)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site2.yaml"), []byte(m2), 0o644))
	code, out, errOut = bmsgw(t, "reload", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "site two: replace connection plc")
	require.Eventually(t, func() bool {
		st, err := api.Status(context.Background())
		return err == nil && slices.ContainsFunc(st.Points, func(p control.PointStatus) bool {
			return p.Site == "two" && p.InSync && p.Actual != nil && *p.Actual == 16
		})
	}, 20*time.Second, 20*time.Millisecond, "the point written on the remade simulator")

	require.NoError(t, os.WriteFile(cfg, []byte(base), 0o644))
	code, _, errOut = bmsgw(t, "reload", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr2, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond, "the removed site's simulator stopped")
	require.True(t, inSync("one"))
}

// TestRunReloadAccessOutput: a reload that moves an access output (here
// a file export to another path) makes the output again from the new
// config; the grants appear at the new place without a restart.
func TestRunReloadAccessOutput(t *testing.T) {
	dir := t.TempDir()
	mapping, err := os.ReadFile(filepath.Join(repoRoot, "mappings", "valby-skole.yaml"))
	require.NoError(t, err)
	// No controller answers: the access rights follow the bookings alone.
	m := strings.NewReplacer("127.0.0.1:48400", freePort(t), "127.0.0.1:15020", freePort(t),
		"127.0.0.1:15021", freePort(t), "127.0.0.1:15022", freePort(t)).Replace(string(mapping))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "valby-skole.yaml"), []byte(m), 0o644))
	state := filepath.Join(dir, "state")
	cfg := seasonYAML(filepath.Join(dir, "valby-skole.yaml"), state)
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	_, _, stop := startGateway(t, path, control.NewScaledClock(cet("12:00"), 1))
	defer stop()
	grants := func(file string) func() bool {
		return func() bool {
			b, err := os.ReadFile(filepath.Join(state, file))
			return err == nil && strings.Count(string(b), "\n") > 1
		}
	}
	require.Eventually(t, grants("grants.csv"), 20*time.Second, 20*time.Millisecond, "the evening's grants exported")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(cfg, "grants.csv", "grants-moved.csv", 1)), 0o644))
	code, _, errOut := bmsgw(t, "reload", "-c", path)
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, grants("grants-moved.csv"), 20*time.Second, 20*time.Millisecond, "the grants exported at the new path")
}

// TestRunFeedHealth: the status says how each booking feed is doing, and
// a feed that cannot be read is shown failing.
func TestRunFeedHealth(t *testing.T) {
	e := newE2E(t)
	e.vacant()
	_, stop := e.run(cet("17:00"))
	defer stop()
	feed := func() control.FeedStatus {
		st := e.status()
		require.Len(t, st.Feeds, 1)
		return st.Feeds[0]
	}
	e.eventually(10*time.Second, "the feed polled", func() bool { return feed().OK })
	require.Equal(t, 1, feed().Bookings)
	code, out, errOut := bmsgw(t, "status", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^BOOKING SOURCE +STATE +LAST GOOD POLL +BOOKINGS +LAST ERROR\nfeed +ok +\S+ +1`, out)

	// The feed moves to a file that is broken: the reload reads it at
	// once, and the status shows it failing with nothing to plan from.
	base, err := os.ReadFile(e.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "broken.ics"), []byte("BEGIN:VCALENDAR\r\nthis is not"), 0o644))
	require.NoError(t, os.WriteFile(e.cfg, []byte(strings.Replace(string(base), "feed.ics", "broken.ics", 1)), 0o644))
	code, _, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	f := feed()
	require.False(t, f.OK)
	require.Positive(t, f.ConsecutiveFailures)
	require.NotEmpty(t, f.LastError)
	code, out, errOut = bmsgw(t, "status", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `feed +FAILING \(\d+ in a row\), never read: no bookings from it +never +0 +icalendar: `, out)
	// Only what needs looking at: the failing feed, not the points in
	// their desired state; and one site with the sources it uses.
	e.eventually(5*time.Second, "every point in sync", func() bool {
		return !slices.ContainsFunc(e.status().Points, func(p control.PointStatus) bool { return p.Desired != nil && !p.InSync })
	})
	code, out, errOut = bmsgw(t, "status", "--problems", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^feed +FAILING`, out)
	require.NotContains(t, out, "e2e/gym_mode")
	code, out, errOut = bmsgw(t, "status", "--site", "e2e", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "e2e/gym_mode")
	require.Contains(t, out, "FAILING")
	code, _, errOut = bmsgw(t, "status", "--site", "nowhere", "-c", e.cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no site "nowhere"`)

	// Back to the good file: its last good copy is planned from at once
	// and the next poll is good.
	require.NoError(t, os.WriteFile(e.cfg, base, 0o644))
	code, _, errOut = bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	e.eventually(10*time.Second, "the feed good again", func() bool { return feed().OK })
	require.Equal(t, 1, feed().Bookings)
}
