package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Plan horizon of the running gateway: compiled from a day back (so a
// window that began yesterday evening is known) to a week ahead, and
// rolled forward every hour.
const (
	horizonBack  = 24 * time.Hour
	horizonAhead = 8 * 24 * time.Hour
	rollEvery    = time.Hour
)

type runFlags struct {
	cfg        string
	dryRun     bool
	clockSpeed float64
	clockStart string
	logLevel   string
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr, "run [-c CONFIG] [--dry-run] [--clock-speed N] [--clock-start TIME] [--log-level debug|info|warn|error]")
	var f runFlags
	fs.StringVar(&f.cfg, "c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "run everything but the writes (they are journalled as dry runs)")
	fs.Float64Var(&f.clockSpeed, "clock-speed", 1, "run the clock this many times faster than real time (demos, tests)")
	fs.StringVar(&f.clockStart, "clock-start", "", "start the clock at this RFC 3339 time instead of now (demos, tests)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level")
	rest, err := parseFlags(fs, args)
	if err != nil || len(rest) > 0 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(stderr, "bmsgw: --log-level %q: use debug, info, warn or error\n", f.logLevel)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	g, ok := loadConfig(f.cfg, stderr)
	if !ok {
		return 1
	}
	var clock control.Clock = control.RealClock{}
	if f.clockSpeed != 1 || f.clockStart != "" {
		origin := time.Now()
		if f.clockStart != "" {
			if origin, err = time.Parse(time.RFC3339, f.clockStart); err != nil {
				fmt.Fprintf(stderr, "bmsgw: --clock-start: %v\n", err)
				return 2
			}
		}
		if f.clockSpeed <= 0 {
			fmt.Fprintln(stderr, "bmsgw: --clock-speed must be positive")
			return 2
		}
		clock = control.NewScaledClock(origin, f.clockSpeed)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runGateway(ctx, g, f, clock, logger); err != nil {
		logger.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}

// gateway is the running daemon: feeds, plans, engine and API.
type gateway struct {
	cfgPath string
	g       *config.Gateway
	clock   control.Clock
	log     *slog.Logger
	eng     *control.Engine

	mu       sync.Mutex
	bySource map[string][]booking.Booking
	statuses map[string]bookings.Status
}

func runGateway(ctx context.Context, g *config.Gateway, f runFlags, clock control.Clock, logger *slog.Logger) error {
	gw := &gateway{cfgPath: f.cfg, g: g, clock: clock, log: logger, bySource: map[string][]booking.Booking{}, statuses: map[string]bookings.Status{}}

	jr, closeJournal, err := openJournal(ctx, g, logger)
	if err != nil {
		return err
	}
	defer closeJournal()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	// cancel before wg.Wait: deferred calls run last-in first-out.
	defer cancel()

	sims, err := startSimulators(ctx, g, clock, logger)
	if err != nil {
		return err
	}
	defer sims.Close()

	gw.eng = control.New(control.Config{Clock: clock, Journal: jr, Logger: logger, DryRun: f.dryRun})
	var drivers []control.Driver
	defer func() {
		for _, d := range drivers {
			_ = d.Close()
		}
	}()

	// Sources first: each serves its last good feed from the state
	// directory at once, so a restart plans from it before any fetch.
	srcs := map[string]*bookings.Source{}
	for _, s := range g.Sources {
		src, err := bookings.New(sourceOptions(g, s, g.StateDir), logger.With("source", s.ID))
		if err != nil {
			return err
		}
		srcs[s.ID] = src
		from, to := gw.horizon()
		gw.bySource[s.ID] = src.Cached(from, to).Bookings
	}
	for _, s := range g.Sites {
		rt := control.SiteRuntime{Site: s, Drivers: map[string]control.Driver{}, Policies: map[string]control.Policy{}}
		for id, p := range s.Points {
			if p.OnExternalChange != "" {
				rt.Policies[id] = control.Policy(p.OnExternalChange)
			}
		}
		rt.WriteRates = map[string]float64{}
		for _, c := range sortedConnections(s) {
			if c.OPCUA != nil {
				// Modbus paces per unit inside its adapter.
				rt.WriteRates[c.ID] = c.OPCUA.WriteRate
			}
			if c.Heartbeat != nil {
				rt.Heartbeats = append(rt.Heartbeats, control.Heartbeat{Connection: c.ID, Point: c.Heartbeat, Period: c.HeartbeatPeriod})
			}
		}
		for id, c := range s.Connections {
			d, err := newDriver(g.StateDir, s, c, logger.With("site", s.ID, "conn", id))
			if err != nil {
				return fmt.Errorf("site %s connection %s: %w", s.ID, id, err)
			}
			drivers = append(drivers, d)
			rt.Drivers[id] = d
		}
		if err := gw.eng.AddSite(rt, gw.compile(s)); err != nil {
			return err
		}
	}

	api, err := localapi.Listen(g.StateDir, gw, logger)
	if err != nil {
		return err
	}
	snaps := make(chan bookings.Snapshot, 16)
	wg.Go(func() {
		if err := api.Serve(ctx); err != nil {
			logger.Error("local api stopped", "err", err)
		}
	})
	for _, src := range srcs {
		wg.Go(func() {
			_ = src.Run(ctx, func(time.Time) (time.Time, time.Time) { return gw.horizon() }, snaps)
		})
	}
	wg.Go(func() { gw.follow(ctx, snaps) })
	wg.Go(func() { gw.signals(ctx) })

	logger.Info("gateway running", "config", g.File, "sites", len(g.Sites), "sources", len(g.Sources), "dry_run", f.dryRun, "api", g.StateDir+"/"+localapi.SocketName)
	return gw.eng.Run(ctx)
}

func (gw *gateway) horizon() (time.Time, time.Time) {
	now := gw.clock.Now()
	return now.Add(-horizonBack), now.Add(horizonAhead)
}

// compile builds a fresh plan for a site from the bookings in hand. Plans
// are immutable once handed to the engine, so the engine can read one
// while the next is built.
func (gw *gateway) compile(s *site.Site) *schedule.Compiler {
	gw.mu.Lock()
	merged := mergeForSite(s, gw.bySource)
	gw.mu.Unlock()
	for _, c := range merged.Conflicts {
		gw.log.Warn("booking conflict", "site", s.ID, "kind", c.Kind, "resource", c.Resource, "winner", c.Winner.String(), "loser", c.Loser.String(), "start", c.Start)
	}
	from, to := gw.horizon()
	c := schedule.NewCompiler(s, from, to)
	c.SetBookings(merged.Bookings)
	return c
}

// follow applies feed snapshots and rolls the plan horizon forward.
func (gw *gateway) follow(ctx context.Context, snaps <-chan bookings.Snapshot) {
	roll := gw.clock.NewTimer(rollEvery)
	defer roll.Stop()
	for {
		var changed map[string]bool
		select {
		case <-ctx.Done():
			return
		case snap := <-snaps:
			gw.mu.Lock()
			gw.statuses[snap.Source] = snap.Status
			if !snap.Changed {
				gw.mu.Unlock()
				continue
			}
			gw.bySource[snap.Source] = snap.Bookings
			gw.mu.Unlock()
			changed = map[string]bool{snap.Source: true}
		case <-roll.C():
			roll.Reset(rollEvery)
		}
		for _, s := range gw.g.Sites {
			if changed != nil && !usesAny(s, changed) {
				continue
			}
			if err := gw.eng.SetPlan(ctx, s.ID, gw.compile(s)); err != nil {
				return
			}
		}
	}
}

func usesAny(s *site.Site, sources map[string]bool) bool {
	for _, r := range s.Sources {
		if sources[r.Source] {
			return true
		}
	}
	return false
}

func (gw *gateway) signals(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := gw.Reload(ctx); err != nil {
				gw.log.Error("reload refused; the running config stays", "err", err)
			}
		}
	}
}

// Status, SetOverride and ClearOverride serve the local API.
func (gw *gateway) Status(ctx context.Context) (control.Status, error) { return gw.eng.Status(ctx) }

func (gw *gateway) SetOverride(ctx context.Context, o control.Override) error {
	return gw.eng.SetOverride(ctx, o)
}

func (gw *gateway) ClearOverride(ctx context.Context, siteID, point, who string) error {
	return gw.eng.ClearOverride(ctx, siteID, point, who)
}

// errReloadChanges is returned when a valid new config changes what the
// running gateway cannot change in place yet.
var errReloadChanges = errors.New("the new config is valid but changes connections or points, which needs a restart")

// Reload validates the config file again. A config that does not
// validate is refused with its errors and the running one stays. A valid
// one whose connections and points are unchanged replaces the plans
// (spaces, profiles, schedules, calendars, sources) without touching
// connections, subscriptions or pending writes.
func (gw *gateway) Reload(ctx context.Context) error {
	ng, err := config.Load(gw.cfgPath)
	if err != nil {
		return err
	}
	var why []string
	for _, ns := range ng.Sites {
		os := gw.g.Site(ns.ID)
		if os == nil {
			why = append(why, "site "+ns.ID+" is new")
			continue
		}
		if d := diffPoints(os, ns); d != "" {
			why = append(why, d)
		}
	}
	if len(ng.Sites) != len(gw.g.Sites) {
		why = append(why, "the list of sites changed")
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %s", errReloadChanges, strings.Join(why, "; "))
	}
	plans := map[string]control.Plan{}
	policies := map[string]map[string]control.Policy{}
	for _, s := range ng.Sites {
		plans[s.ID] = gw.compile(s)
		policies[s.ID] = map[string]control.Policy{}
		for id, p := range s.Points {
			if p.OnExternalChange != "" {
				policies[s.ID][id] = control.Policy(p.OnExternalChange)
			}
		}
	}
	if err := gw.eng.ReplaceSites(ctx, ng.Sites, plans, policies); err != nil {
		return err
	}
	gw.mu.Lock()
	gw.g = ng
	gw.mu.Unlock()
	gw.log.Info("config reloaded", "config", ng.File)
	return nil
}

// diffPoints says what differs between two versions of a site in what
// only a restart can change: connections and points.
func diffPoints(a, b *site.Site) string {
	if !reflect.DeepEqual(a.Connections, b.Connections) {
		return "site " + a.ID + ": connections changed"
	}
	if len(a.Points) != len(b.Points) {
		return "site " + a.ID + ": points added or removed"
	}
	for id, p := range a.Points {
		q := b.Points[id]
		if q == nil || !sameWire(p, q) {
			return "site " + a.ID + ": point " + id + " changed its connection, address or encoding"
		}
	}
	return ""
}

// sameWire reports whether two versions of a point talk to the device
// the same way. Limits, labels, access, policy and descriptions may
// change in place; they only affect what the engine decides.
func sameWire(p, q *site.Point) bool {
	return p.Connection == q.Connection && p.Type == q.Type && p.Scale == q.Scale && p.Offset == q.Offset &&
		reflect.DeepEqual(p.Modbus, q.Modbus) && reflect.DeepEqual(p.OPCUA, q.OPCUA) && p.Writable() == q.Writable()
}
