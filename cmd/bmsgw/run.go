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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/httpapi"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sitemon"
	"github.com/bmsgw/bmsgw/internal/sources"
	"github.com/bmsgw/bmsgw/internal/uaserver"
)

// Plan horizon of the running gateway: compiled from a day back (so a
// window that began yesterday evening is known) to a week ahead, and
// rolled forward every hour.
const (
	horizonBack  = 24 * time.Hour
	horizonAhead = 8 * 24 * time.Hour
	rollEvery    = time.Hour
	// defaultOPCUAWriteRate is the write requests per second sent to an
	// OPC UA server when its connection does not say (write_rate).
	defaultOPCUAWriteRate = 10
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

	reloading sync.Mutex
	mu        sync.Mutex
	bySource  map[string][]booking.Booking
	// drivers by site and connection id; every driver ever made, for
	// closing at exit.
	drivers map[string]map[string]control.Driver
	all     []control.Driver

	runCtx     context.Context       // the daemon's, for monitors started by a reload
	wg         *sync.WaitGroup       // the daemon's goroutines, for sources started by a reload
	snaps      chan sourceSnapshot   // feed snapshots for follow
	sources    map[string]*sourceRun // the running booking sources by id, under mu
	sims       *simulators           // the demo's simulators
	uaMu       sync.Mutex
	ua         *uaRun                        // the OPC UA server, nil for none
	plans      map[string]*schedule.Compiler // the latest compiled plan of each site, under mu
	bus        *events.Bus
	metrics    *httpapi.Metrics
	api        *httpapi.Server      // the HTTP API, for token reloads
	demoTokens []httpapi.TokenEntry // the demo's one-time token, kept across reloads
	monMu      sync.RWMutex
	monitors   map[string]*monitorRun
	accessKick chan struct{}
}

func runGateway(ctx context.Context, g *config.Gateway, f runFlags, clock control.Clock, logger *slog.Logger) error {
	gw := &gateway{cfgPath: f.cfg, g: g, clock: clock, log: logger, bySource: map[string][]booking.Booking{},
		monitors: map[string]*monitorRun{}, accessKick: make(chan struct{}, 1), plans: map[string]*schedule.Compiler{}}

	jr, j, closeJournal, err := openJournal(ctx, g, gw.config, logger)
	if err != nil {
		return err
	}
	defer closeJournal()
	bus, err := events.NewBus(ctx, j, events.Options{KeepPersonal: func(id string) bool {
		s := gw.site(id)
		return s != nil && s.KeepCardHolder
	}})
	if err != nil {
		return err
	}
	defer bus.Close() // before the journal closes: deferred calls run last-in first-out
	gw.bus = bus

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gw.runCtx = ctx
	var wg sync.WaitGroup
	defer wg.Wait()
	gw.wg = &wg
	// cancel before wg.Wait: deferred calls run last-in first-out.
	defer cancel()

	sims, err := startSimulators(ctx, g, clock, logger)
	if err != nil {
		return err
	}
	defer sims.Close()
	gw.sims = sims

	metrics, err := httpapi.NewMetrics(nil)
	if err != nil {
		return err
	}
	gw.metrics = metrics
	gw.eng = control.New(control.Config{Clock: clock, Journal: meteredJournal{jr, metrics}, Logger: logger, DryRun: f.dryRun, Observe: gw.observe,
		Lag: func(_ string, d time.Duration) { metrics.ReconcileLag(d.Seconds()) }})
	gw.drivers = map[string]map[string]control.Driver{}
	defer func() {
		for _, d := range gw.all {
			_ = d.Close()
		}
	}()

	// Sources first: each serves its last good feed from the state
	// directory at once, so a restart plans from it before any fetch.
	gw.snaps = make(chan sourceSnapshot, 16)
	gw.sources = map[string]*sourceRun{}
	var srcs []*sourceRun
	for _, s := range g.Sources {
		run, err := gw.newSource(g, s)
		if err != nil {
			return err
		}
		srcs = append(srcs, run)
	}
	gw.primeSources(ctx, srcs)
	for _, run := range srcs {
		gw.installSource(run)
	}
	mons := map[string]*sitemon.Monitor{}
	for _, s := range g.Sites {
		rt, err := gw.runtime(s, nil)
		if err != nil {
			return err
		}
		c, bs := gw.compile(s)
		var plan control.Plan = c
		m, err := gw.newMonitor(s)
		if err != nil {
			return err
		}
		if m != nil {
			mons[s.ID] = m
			plan = m.Prime(c, bs)
		}
		if err := gw.eng.AddSite(rt, plan); err != nil {
			return err
		}
	}
	defer gw.stopMonitors()
	for id, m := range mons {
		gw.runMonitor(ctx, id, m)
	}

	api, err := localapi.Listen(g.StateDir, gw, logger)
	if err != nil {
		return err
	}
	wg.Go(func() {
		if err := api.Serve(ctx); err != nil {
			logger.Error("local api stopped", "err", err)
		}
	})
	for _, run := range srcs {
		gw.startSource(run)
	}
	wg.Go(func() { gw.follow(ctx) })
	wg.Go(func() { gw.accessLoop(ctx) })
	wg.Go(func() {
		if err := metrics.FollowEvents(ctx, bus); err != nil && ctx.Err() == nil {
			logger.Warn("event metrics stopped", "err", err)
		}
	})
	ua, err := gw.startOPCUAServer(ctx, g.OPCUAServer)
	if err != nil {
		return err
	}
	gw.uaMu.Lock()
	gw.ua = ua
	gw.uaMu.Unlock()
	defer func() { // before wg.Wait: deferred calls run last-in first-out
		gw.uaMu.Lock()
		defer gw.uaMu.Unlock()
		if gw.ua != nil {
			gw.ua.stop()
		}
	}()
	httpBackend, err := gw.startHTTP(ctx, &wg)
	if err != nil {
		return err
	}
	if httpBackend != nil {
		// The journal is open and every site's plan compiled.
		httpBackend.ready.Store(true)
	}
	gw.kickAccess()
	wg.Go(func() { gw.signals(ctx) })

	logger.Info("gateway running", "config", g.File, "sites", len(g.Sites), "sources", len(g.Sources), "dry_run", f.dryRun, "api", g.StateDir+"/"+localapi.SocketName)
	return gw.eng.Run(ctx)
}

// runtime builds what the engine runs for a site: drivers (reusing the
// old site's driver of every connection whose settings are unchanged),
// policies, heartbeats and write rates.
func (gw *gateway) runtime(s *site.Site, old *site.Site) (control.SiteRuntime, error) {
	rt := control.SiteRuntime{Site: s, Drivers: map[string]control.Driver{}, Policies: map[string]control.Policy{}, WriteRates: map[string]float64{}}
	for id, p := range s.Points {
		if p.OnExternalChange != "" {
			rt.Policies[id] = control.Policy(p.OnExternalChange)
		}
	}
	prev := gw.drivers[s.ID]
	for _, c := range s.SortedConnections() {
		var d control.Driver
		if old != nil {
			if oc := old.Connections[c.ID]; oc != nil && sameConnection(old, oc, s, c) {
				d = prev[c.ID]
			}
		}
		if d == nil {
			var err error
			if d, err = newDriver(gw.g.StateDir, s, c, gw.log.With("site", s.ID, "conn", c.ID)); err != nil {
				return rt, fmt.Errorf("site %s connection %s: %w", s.ID, c.ID, err)
			}
			gw.all = append(gw.all, d)
		}
		rt.Drivers[c.ID] = d
		if c.OPCUA != nil {
			// Modbus paces per unit inside its adapter.
			rt.WriteRates[c.ID] = c.OPCUA.WriteRate
			if rt.WriteRates[c.ID] == 0 {
				rt.WriteRates[c.ID] = defaultOPCUAWriteRate
			}
		}
		if c.Heartbeat != nil {
			rt.Heartbeats = append(rt.Heartbeats, control.Heartbeat{Connection: c.ID, Point: c.Heartbeat, Period: c.HeartbeatPeriod})
		}
	}
	gw.drivers[s.ID] = rt.Drivers
	return rt, nil
}

func (gw *gateway) horizon() (time.Time, time.Time) {
	now := gw.clock.Now()
	return now.Add(-horizonBack), now.Add(horizonAhead)
}

// compile builds a fresh plan for a site from the bookings in hand. Plans
// are immutable once handed to the engine, so the engine can read one
// while the next is built.
func (gw *gateway) compile(s *site.Site) (*schedule.Compiler, []booking.Booking) {
	gw.mu.Lock()
	merged := booking.MergeForSite(s, gw.bySource)
	gw.mu.Unlock()
	for _, c := range merged.Conflicts {
		gw.log.Warn("booking conflict", "site", s.ID, "kind", c.Kind, "resource", c.Resource, "winner", c.Winner.String(), "loser", c.Loser.String(), "start", c.Start)
	}
	from, to := gw.horizon()
	c := schedule.NewCompiler(s, from, to)
	c.SetBookings(merged.Bookings)
	gw.mu.Lock()
	gw.plans[s.ID] = c
	gw.mu.Unlock()
	return c, merged.Bookings
}

// follow applies feed snapshots and rolls the plan horizon forward.
func (gw *gateway) follow(ctx context.Context) {
	roll := gw.clock.NewTimer(rollEvery)
	defer roll.Stop()
	for {
		var changed map[string]bool
		select {
		case <-ctx.Done():
			return
		case ts := <-gw.snaps:
			snap := ts.snap
			gw.mu.Lock()
			if gw.sources[snap.Source] != ts.run {
				gw.mu.Unlock()
				continue // from a source a reload stopped or replaced
			}
			if snap.Status.ConsecutiveFailures > ts.run.status.ConsecutiveFailures {
				gw.metrics.Error("feed")
			}
			ts.run.status = snap.Status
			gw.metrics.Feed(feedStatus(snap.Source, snap.Status))
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
		for _, s := range gw.config().Sites {
			if changed != nil && !usesAny(s, changed) {
				continue
			}
			c, bs := gw.compile(s)
			if err := gw.setPlan(ctx, s, c, bs); err != nil {
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
			if _, err := gw.Reload(ctx, false); err != nil {
				gw.log.Error("reload refused; the running config stays", "err", err)
			}
		}
	}
}

// Status, SetOverride and ClearOverride serve the local API.
func (gw *gateway) Status(ctx context.Context) (control.Status, error) {
	st, err := gw.eng.Status(ctx)
	if err != nil {
		return st, err
	}
	st.Feeds = gw.feedStatuses()
	return st, nil
}

// feedStatuses says how each running booking source is doing, by id.
func (gw *gateway) feedStatuses() []control.FeedStatus {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	out := make([]control.FeedStatus, 0, len(gw.sources))
	for id, run := range gw.sources {
		out = append(out, feedStatus(id, run.status))
	}
	slices.SortFunc(out, func(a, b control.FeedStatus) int { return strings.Compare(a.Source, b.Source) })
	return out
}

func feedStatus(id string, s bookings.Status) control.FeedStatus {
	return control.FeedStatus{Source: id, OK: s.ConsecutiveFailures == 0 && !s.LastSuccess.IsZero(), LastSuccess: s.LastSuccess,
		ConsecutiveFailures: s.ConsecutiveFailures, LastError: s.LastError, FromCache: s.FromCache, FetchedAt: s.FetchedAt, Bookings: s.Bookings}
}

func (gw *gateway) SetOverride(ctx context.Context, o control.Override) error {
	return gw.eng.SetOverride(ctx, o)
}

func (gw *gateway) ClearOverride(ctx context.Context, siteID, point, who string) error {
	return gw.eng.ClearOverride(ctx, siteID, point, who)
}

// config returns the running configuration.
func (gw *gateway) config() *config.Gateway {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	return gw.g
}

// Reload validates the config file again. A config that does not
// validate is refused with its errors and the running one stays. A valid
// one is applied in place: connections whose settings are unchanged keep
// their links, subscriptions and pending writes; changed connections get
// new drivers; points keep what the engine knows of them unless their
// connection, address or encoding changed. Sites are added and removed,
// and booking sources added, removed or changed (the others keep
// polling). Changing the state directory or the HTTP listener needs a
// restart.
func (gw *gateway) Reload(ctx context.Context, check bool) ([]string, error) {
	gw.reloading.Lock() // a SIGHUP and a `bmsgw reload` at once: one after the other
	defer gw.reloading.Unlock()
	ng, err := config.Load(gw.cfgPath)
	if err != nil {
		return nil, err
	}
	if errs := checkDrivers(ng); len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	old := gw.config()
	if err := checkReload(old, ng); err != nil {
		return nil, err
	}
	if o := ng.OPCUAServer; o != nil {
		if _, err := uaserver.New(uaOptions(o)); err != nil {
			return nil, fmt.Errorf("opcua_server: %w", err)
		}
	}
	st, err := gw.eng.Status(ctx)
	if err != nil {
		return nil, err
	}
	changes := reloadChanges(old, ng, st)
	if check {
		return changes, nil
	}
	// New and changed booking sources are made (each reads its last good
	// feed) before anything is applied: one that cannot be made refuses
	// the reload.
	var added []*sourceRun
	var dropped []string
	for _, s := range ng.Sources {
		if prev := old.Source(s.ID); prev != nil && sameSource(prev, s) {
			continue
		}
		run, err := gw.newSource(ng, s)
		if err != nil {
			return nil, err
		}
		added = append(added, run)
	}
	gw.primeSources(ctx, added)
	for _, s := range old.Sources {
		if ns := ng.Source(s.ID); ns == nil {
			dropped = append(dropped, s.ID)
		}
	}
	gw.mu.Lock()
	gw.g = ng
	gw.mu.Unlock()
	var rts []control.SiteRuntime
	for _, s := range ng.Sites {
		rt, err := gw.runtime(s, old.Site(s.ID))
		if err != nil {
			gw.mu.Lock()
			gw.g = old
			gw.mu.Unlock()
			return nil, err
		}
		rts = append(rts, rt)
	}
	// From here on the new config is applied.
	for _, id := range dropped {
		gw.stopSource(id)
	}
	for _, run := range added {
		gw.stopSource(run.id) // the one it replaces
		gw.installSource(run)
		gw.startSource(run)
	}
	plans := map[string]control.Plan{}
	compiled := map[string][]booking.Booking{}
	compilers := map[string]*schedule.Compiler{}
	for _, s := range ng.Sites {
		c, bs := gw.compile(s)
		plans[s.ID], compilers[s.ID], compiled[s.ID] = c, c, bs
	}
	addedSites, removedSites := siteDiff(old, ng)
	if ng.Simulate != nil && ng.Simulate.Devices {
		for _, s := range ng.Sites {
			// A new site gets its simulators; a site whose connections or
			// points changed gets them made again from its new mapping.
			prev := old.Site(s.ID)
			if prev != nil {
				if len(siteChanges(prev, s)) == 0 {
					continue
				}
				gw.sims.CloseSite(s.ID)
			}
			if err := gw.sims.StartSite(s); err != nil {
				gw.log.Error("simulator of a site not started", "site", s.ID, "err", err)
			}
		}
	}
	// The monitors hold the old sites' doors and areas: stop them (they
	// save their occupancy state) and start them again on the new sites.
	gw.stopMonitors()
	unused, err := gw.eng.ApplySites(ctx, rts, plans)
	if err != nil {
		gw.mu.Lock()
		gw.g = old
		gw.mu.Unlock()
		for _, s := range old.Sites {
			c, bs := gw.compile(s)
			if err := gw.startMonitor(gw.runCtx, s, c, bs); err != nil {
				gw.log.Error("site monitor not restarted", "site", s.ID, "err", err)
			}
		}
		return nil, err
	}
	for _, s := range ng.Sites {
		if err := gw.startMonitor(gw.runCtx, s, compilers[s.ID], compiled[s.ID]); err != nil {
			gw.log.Error("site monitor not restarted", "site", s.ID, "err", err)
		}
	}
	gw.mu.Lock()
	for _, id := range removedSites {
		delete(gw.drivers, id)
		delete(gw.plans, id)
	}
	gw.mu.Unlock()
	for _, id := range removedSites {
		gw.sims.CloseSite(id)
		gw.metrics.ForgetSite(id) // a gone device is not reported down forever
	}
	for _, s := range old.Sites {
		if ns := ng.Site(s.ID); ns != nil {
			for id := range s.Connections {
				if ns.Connections[id] == nil {
					gw.metrics.ForgetConnection(s.ID, id)
				}
			}
		}
	}
	if err := gw.reloadOPCUAServer(ng.OPCUAServer); err != nil {
		gw.log.Error("opc ua server not restarted with the new settings", "err", err)
	}
	gw.kickAccess()
	for _, d := range unused {
		_ = d.Close()
	}
	if err := gw.reloadTokens(ng); err != nil {
		gw.log.Error("api tokens of the new config refused; the old ones stay", "err", err)
	}
	gw.log.Info("config reloaded", "config", ng.File, "drivers_replaced", len(unused),
		"sites_added", addedSites, "sites_removed", removedSites, "sources_started", len(added), "sources_stopped", len(dropped))
	for _, c := range changes {
		gw.log.Info("reload: " + c)
	}
	return changes, nil
}

// sourceRun is a booking source the gateway runs.
type sourceRun struct {
	id     string
	src    *bookings.Source
	cancel context.CancelFunc // nil until started
	done   chan struct{}
	status bookings.Status // after its latest poll, under gw.mu
}

// sourceSnapshot is a feed snapshot from a source run: follow drops the
// snapshots of runs a reload stopped.
type sourceSnapshot struct {
	run  *sourceRun
	snap bookings.Snapshot
}

// newSource makes a booking source, which reads its last good feed from
// the state directory.
func (gw *gateway) newSource(g *config.Gateway, s *config.Source) (*sourceRun, error) {
	src, err := bookings.New(sources.Options(s, g.StateDir), gw.log.With("source", s.ID))
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.ID, err)
	}
	return &sourceRun{id: s.ID, src: src, done: make(chan struct{})}, nil
}

// primeTimeout bounds the first fetch of a feed that has no last good
// copy, before the gateway plans with it.
const primeTimeout = 10 * time.Second

// primeSources fetches, in parallel, the feeds of the sources that have
// no last good copy in the state directory (a new source, or the first
// start): planning without them would write every space's vacant
// values until the first poll, and its bookings' values a moment later.
// A fetch that fails leaves the source empty; its polls go on.
func (gw *gateway) primeSources(ctx context.Context, runs []*sourceRun) {
	ctx, cancel := context.WithTimeout(ctx, primeTimeout)
	defer cancel()
	from, to := gw.horizon()
	var wg sync.WaitGroup
	for _, run := range runs {
		if !run.src.Cached(from, to).Status.FetchedAt.IsZero() {
			continue
		}
		wg.Go(func() {
			if _, err := run.src.Poll(ctx, from, to); err != nil {
				gw.log.Warn("booking source not read; planning without it until it is", "source", run.id, "err", err)
			}
		})
	}
	wg.Wait()
}

// installSource makes run the source of its id and plans from its last
// good feed until it polls.
func (gw *gateway) installSource(run *sourceRun) {
	from, to := gw.horizon()
	snap := run.src.Cached(from, to)
	gw.mu.Lock()
	gw.sources[run.id] = run
	gw.bySource[run.id] = snap.Bookings
	run.status = snap.Status
	gw.mu.Unlock()
	gw.metrics.Feed(feedStatus(run.id, snap.Status))
}

// startSource polls the source until the daemon stops or stopSource.
func (gw *gateway) startSource(run *sourceRun) {
	ctx, cancel := context.WithCancel(gw.runCtx)
	run.cancel = cancel
	out := make(chan bookings.Snapshot, 1)
	gw.wg.Go(func() {
		defer close(run.done)
		fwd := make(chan struct{})
		go func() { // owned: the run waits for it below
			defer close(fwd)
			for {
				select {
				case <-ctx.Done():
					return
				case snap := <-out:
					select {
					case gw.snaps <- sourceSnapshot{run, snap}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
		_ = run.src.Run(ctx, func(time.Time) (time.Time, time.Time) { return gw.horizon() }, out)
		cancel()
		<-fwd
	})
}

// stopSource stops the source of an id, if one runs, and forgets its
// bookings.
func (gw *gateway) stopSource(id string) {
	gw.mu.Lock()
	run := gw.sources[id]
	delete(gw.sources, id)
	delete(gw.bySource, id)
	gw.mu.Unlock()
	gw.metrics.ForgetFeed(id)
	if run != nil && run.cancel != nil {
		run.cancel()
		<-run.done
	}
}

// sameSource reports whether two configs of a source poll the same feed
// the same way (time zones compared by name).
func sameSource(a, b *config.Source) bool {
	ac, bc := *a, *b
	if ac.TimeZone != nil && bc.TimeZone != nil {
		ac.TimeZone, bc.TimeZone = &config.TimeZone{Name: ac.TimeZone.Name}, &config.TimeZone{Name: bc.TimeZone.Name}
	}
	return reflect.DeepEqual(ac, bc)
}

// errReloadChanges is returned when a valid new config changes what only
// a restart can change.
var errReloadChanges = errors.New("the new config is valid but needs a restart")
