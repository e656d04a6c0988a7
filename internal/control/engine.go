package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Source says where a desired value comes from, highest priority first:
// an operator override, booking-derived occupancy, a base schedule, and
// the point's vacant value (its default), like BACnet's priority array
// ending in the relinquish default.
type Source string

// Sources of desired values.
const (
	SourceOverride  Source = "override"
	SourceBooking   Source = "booking"
	SourceSchedule  Source = "schedule"
	SourceOccupancy Source = "occupancy" // a child space is occupied
	SourceDefault   Source = "default"
)

// Policy says what to do when someone changes a written point at the BMS.
type Policy string

// Policies for values changed by someone else.
const (
	// Respect leaves the value alone until the next scheduled transition
	// and reports it: the caretaker who turned the heat up knew why.
	Respect Policy = "respect"
	// Enforce writes the desired value back at once.
	Enforce Policy = "enforce"
)

// Plan gives the desired occupancy values of a site's points; the
// schedule compiler satisfies it.
type Plan interface {
	ValueAt(pointID string, t time.Time) (schedule.Change, bool)
	// NextChange returns when a point next changes after t (not its
	// initial value), false when it does not change again in the plan.
	NextChange(pointID string, t time.Time) (time.Time, bool)
}

// Override is an operator's value for a point, which beats bookings until
// it expires or is cleared.
type Override struct {
	Site  string    `json:"site"`
	Point string    `json:"point"`
	Value float64   `json:"value"`
	Until time.Time `json:"until"`
	Who   string    `json:"who"`
	Why   string    `json:"why"`
	Set   time.Time `json:"set"`
}

// Heartbeat is a point the engine writes periodically, so that a
// controller can fall back to its local schedule when the gateway is gone.
type Heartbeat struct {
	Connection string
	Point      *site.Point
	Period     time.Duration
}

// SiteRuntime is one site with its drivers, as the engine runs it.
type SiteRuntime struct {
	Site *site.Site
	// Drivers by connection id.
	Drivers map[string]Driver
	// Policies by point id; Respect when absent.
	Policies   map[string]Policy
	Heartbeats []Heartbeat
	// WriteRates by connection id: the most write requests per second
	// the engine sends through that driver (a per-device guard rail for
	// protocols whose adapter has none of its own). Absent: no limit.
	WriteRates map[string]float64
}

// Config holds the engine's dependencies and timings.
type Config struct {
	Clock   Clock
	Journal Journal
	Logger  *slog.Logger
	// DryRun runs everything but the writes, which are journalled as such.
	DryRun bool
	// RetryMin and RetryMax bound the backoff after a failed write.
	// Defaults: 2s and 2m.
	RetryMin, RetryMax time.Duration
	// Resync is how often every point is compared again even without an
	// event. Default 1m.
	Resync time.Duration
	// HealthEvery is how often device states are collected. Default 2s.
	HealthEvery time.Duration
	// Observe, if set, receives every reading of every point (read-only
	// ones too) with the id of its site, on the engine's goroutine: it
	// must not block. The door, alarm and occupancy logic listens here.
	Observe func(site string, r Reading)
	// Lag, if set, receives how long after a scheduled transition its
	// write was confirmed (the reconcile lag), for metrics. It runs on
	// the engine's goroutine and must not block.
	Lag func(site string, lag time.Duration)
}

// Engine is the level-triggered reconciler. Create it with New, add sites
// with AddSite before Run, and drive it with Run; the other methods are
// safe for concurrent use while Run runs.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	sites []*siteState

	cmds     chan func()
	results  chan writeResults
	readings chan readings
	firsts   chan firstRead // the first reads of drivers, at start and after a reload
	readBufs sync.Pool      // of *[]Reading, see read and release

	// Fields below are owned by the Run goroutine.
	byKey        map[pointKey]*pointState          // by site and point id, made by pointIndex
	byDriver     map[Driver]map[string]*pointState // by driver and point id, made by lookup
	driverStates map[Driver][]*pointState          // by driver
	driverSite   map[Driver]string
	due          map[Driver][]*pointState // reconcile's lists, kept for their arrays
	dueDrivers   []Driver
	freeJobs     [][]job  // the arrays of batches whose results are in, for jobBuf
	hints        []hintOf // from first reads taken since the last reconcile
	transitions  transitions
	trGen        int       // counts rebuilds of transitions
	taken        []takenAt // taken by advance, next transitions not yet asked for
	nextOrder    int32     // order of the next point state made
	dirty        dirtySet
	retryWake    time.Time // the earliest retry among the dirty points, from reconcile
	overrides    map[*pointState]*Override
	devices      map[string]DeviceState // by "site/connection/device"
	workers      map[Driver]chan []job
	stops        map[Driver][]context.CancelFunc // writer, watcher (nil until started)
	unwatched    map[Driver][]*site.Point        // drivers whose watcher waits for their first read and writes
	mayWatch     []Driver                        // unwatched drivers whose first read or writes came in since startWatches
	readIn       map[Driver]bool                 // drivers whose first read is in
	inflight     map[Driver]int                  // batches handed to a driver's writer and not yet back
	driverDown   map[Driver]bool                 // every device of the driver was down at the last health check
	hbNext       map[hbKey]time.Time             // when each heartbeat is due
	hbCount      map[hbKey]float64               // the value each heartbeat wrote last
	spawn        func(func(context.Context)) context.CancelFunc
	started      bool
}

// startDriver starts the writer and the watcher of a driver. With later
// set, the watcher waits for startWatches.
func (e *Engine) startDriver(d Driver, points []*site.Point, rate float64, later bool) {
	ch := make(chan []job, 16)
	e.workers[d] = ch
	e.stops[d] = []context.CancelFunc{e.spawn(func(ctx context.Context) { e.writer(ctx, d, ch, rate) }), nil}
	if later {
		e.unwatched[d] = points
		return
	}
	e.stops[d][1] = e.watch(d, points)
}

// startWatches starts the watchers of the drivers started with later
// whose first read is in and whose writes it caused are done: at a cold
// start, the first writes then wait for no poll, and the poll reads what
// they wrote.
func (e *Engine) startWatches() {
	for _, d := range e.mayWatch {
		if points, waiting := e.unwatched[d]; waiting && e.readIn[d] && e.inflight[d] == 0 {
			delete(e.unwatched, d)
			e.stops[d][1] = e.watch(d, points)
		}
	}
	clear(e.mayWatch)
	e.mayWatch = e.mayWatch[:0]
}

// readings are readings of one driver: point ids are unique within a
// site, not across sites.
type readings struct {
	d  Driver
	rs []Reading
}

// maxBatch is the most readings handed to the main loop at once.
const maxBatch = 1024

func (e *Engine) watch(d Driver, points []*site.Point) context.CancelFunc {
	return e.spawn(func(ctx context.Context) {
		out := make(chan Reading, 16)
		done := make(chan struct{})
		go func() { // owned: the watch waits for it below
			defer close(done)
			for {
				var batch []Reading
				select {
				case <-ctx.Done():
					return
				case r := <-out:
					if p, _ := e.readBufs.Get().(*[]Reading); p != nil {
						batch = *p
					}
					batch = append(batch, r)
				}
				// Whatever else has arrived goes along: a poll's readings
				// reach the main loop in a few hand-overs, not one each.
			more:
				for len(batch) < maxBatch {
					select {
					case r := <-out:
						batch = append(batch, r)
					default:
						break more
					}
				}
				select {
				case e.readings <- readings{d, batch}:
				case <-ctx.Done():
					return
				}
			}
		}()
		if err := d.Watch(ctx, points, out); err != nil && ctx.Err() == nil {
			e.log.Error("watch stopped", "err", err)
		}
		<-done
	})
}

// index rebuilds the lists of point states by driver; each driver's
// lookup by point id is made from its list when its first reading
// arrives (lookup).
func (e *Engine) index() {
	all := e.pointIndex()
	e.indexSites()
	clear(e.byDriver)
	clear(e.driverStates)
	for _, ps := range all {
		e.driverStates[ps.driver] = append(e.driverStates[ps.driver], ps)
	}
}

// indexSites rebuilds the site id of every driver.
func (e *Engine) indexSites() {
	clear(e.driverSite)
	for _, ss := range e.sites {
		for _, d := range ss.rt.Drivers {
			e.driverSite[d] = ss.rt.Site.ID
		}
	}
}

// lookup returns the point states of a driver by point id. It is made
// when first asked for: at a start of 10,000 points the watchers'
// readings come after the first writes, and making every lookup before
// those took a millisecond or two from them.
func (e *Engine) lookup(d Driver) map[string]*pointState {
	m := e.byDriver[d]
	if m == nil {
		states := e.driverStates[d]
		m = make(map[string]*pointState, len(states))
		for _, ps := range states {
			m[ps.point.ID] = ps
		}
		e.byDriver[d] = m
	}
	return m
}

// pointIndex returns the point states by site and point id. Run lists
// the states by driver only; the index is made from those lists when
// first needed (an override, a status, a reload, the first timetable),
// which at a cold start is after the first writes are out.
func (e *Engine) pointIndex() map[pointKey]*pointState {
	if e.byKey == nil {
		n := 0
		for _, states := range e.driverStates {
			n += len(states)
		}
		e.byKey = make(map[pointKey]*pointState, n)
		for _, states := range e.driverStates {
			for _, ps := range states {
				e.byKey[pointKey{ps.site.rt.Site.ID, ps.point.ID}] = ps
			}
		}
	}
	return e.byKey
}

// pointKey identifies a writable point of the engine.
type pointKey struct{ site, point string }

type siteState struct {
	rt   SiteRuntime
	plan Plan
	// planGen counts the site's plan changes: values worked out from an
	// earlier plan (hints) no longer hold.
	planGen int
	// added holds the states of the site's writable points from AddSite
	// until Run takes them into its lookups; points are the site's
	// points in id order, for Run.
	added  []pointState
	points []*site.Point
}

type pointState struct {
	site   *siteState
	point  *site.Point
	driver Driver

	actual   float64
	actualAt time.Time
	// writtenAt is the wall time of the last confirmed write and dueAt
	// the scheduled transition not yet confirmed written (for Lag), both
	// in Unix nanoseconds, 0 for none: a time.Time is three times the
	// size, in every one of 10,000 states.
	writtenAt int64
	dueAt     int64
	// trouble holds what only a point in trouble needs (failed writes, a
	// failed read, a value changed at the BMS): nil otherwise, which
	// keeps the states of 10,000 points small.
	trouble *trouble

	order     int32 // the order the engine took the point in, for stable ties
	hint      int32 // 1 + its index in the engine's hints, 0 for none
	enforce   bool  // Policy Enforce
	actualOK  bool
	pending   bool
	confirmed bool // the device holds what we wrote for the current desired value
	external  bool // changed at the BMS; respected until trouble.respectTill
	dirty     bool // in the engine's dirty set
	gone      bool // replaced or removed by a reload
	// primed is set once the engine knows what the device held when it
	// started (its first reading is in), so that a restart writes only
	// what differs; points a reload adds to a running driver start
	// primed, those of a new driver are read first.
	primed bool
}

// trouble is the part of a point's state that only a point in trouble
// needs.
type trouble struct {
	attempts    int
	retryAt     time.Time
	lastErr     string
	actualErr   error
	respectTill time.Time
}

// tr returns the point's trouble, made if it has none.
func (ps *pointState) tr() *trouble {
	if ps.trouble == nil {
		ps.trouble = &trouble{}
	}
	return ps.trouble
}

// attempts returns how many writes of the current value failed in a row.
func (ps *pointState) attempts() int {
	if ps.trouble == nil {
		return 0
	}
	return ps.trouble.attempts
}

// retryAt returns when a failed write may be tried again (zero: now).
func (ps *pointState) retryAt() time.Time {
	if ps.trouble == nil {
		return time.Time{}
	}
	return ps.trouble.retryAt
}

// respectTill returns until when a value changed at the BMS is respected.
func (ps *pointState) respectTill() time.Time {
	if ps.trouble == nil {
		return time.Time{}
	}
	return ps.trouble.respectTill
}

// setRespectTill sets until when a value changed at the BMS is respected.
func (ps *pointState) setRespectTill(t time.Time) {
	if !t.IsZero() || ps.trouble != nil {
		ps.tr().respectTill = t
		ps.tidy()
	}
}

// setActualErr notes why the last read failed (nil: it did not).
func (ps *pointState) setActualErr(err error) {
	if err != nil || ps.trouble != nil {
		ps.tr().actualErr = err
		ps.tidy()
	}
}

// writeOK forgets failed writes: the next failure backs off from the start.
func (ps *pointState) writeOK() {
	if t := ps.trouble; t != nil {
		t.attempts, t.retryAt, t.lastErr = 0, time.Time{}, ""
		ps.tidy()
	}
}

// retryNow lets the next write go at once, keeping the last error.
func (ps *pointState) retryNow() {
	if t := ps.trouble; t != nil {
		t.attempts, t.retryAt = 0, time.Time{}
		ps.tidy()
	}
}

// tidy drops the trouble once there is none.
func (ps *pointState) tidy() {
	if t := ps.trouble; t != nil && *t == (trouble{}) {
		ps.trouble = nil
	}
}

// policy returns the point's policy for values changed at the BMS.
func (ps *pointState) policy() Policy {
	if ps.enforce {
		return Enforce
	}
	return Respect
}

// job is one write decided on the Run goroutine. The writer reads only
// what the job carries: the point state is the Run goroutine's, and a
// reload may swap its point while the write runs.
type job struct {
	ps      *pointState
	point   *site.Point
	siteID  string
	value   float64
	old     float64 // what the device held, if hadOld
	source  Source
	reason  string
	attempt int32
	hadOld  bool
}

// writeResults are the outcomes of a writer's batch: per job, the error
// (nil: written and read back right) and the read-back, if any.
type writeResults struct {
	d         Driver
	jobs      []job
	errs      []error
	readbacks []*Reading
	buf       []Reading // what readbacks point into, given back once taken
}

// New returns an engine.
func New(cfg Config) *Engine {
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 2 * time.Second
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 2 * time.Minute
	}
	if cfg.Resync == 0 {
		cfg.Resync = time.Minute
	}
	if cfg.HealthEvery == 0 {
		cfg.HealthEvery = 2 * time.Second
	}
	if cfg.Journal == nil {
		cfg.Journal = nopJournal{}
	}
	return &Engine{
		cfg: cfg, log: cfg.Logger,
		cmds:         make(chan func()),
		results:      make(chan writeResults, 64),
		readings:     make(chan readings, 64),
		firsts:       make(chan firstRead, 16),
		byDriver:     map[Driver]map[string]*pointState{},
		driverStates: map[Driver][]*pointState{},
		driverSite:   map[Driver]string{},
		due:          map[Driver][]*pointState{},
		freeJobs:     make([][]job, 0, 8),
		overrides:    map[*pointState]*Override{},
		devices:      map[string]DeviceState{},
		workers:      map[Driver]chan []job{},
		stops:        map[Driver][]context.CancelFunc{},
		unwatched:    map[Driver][]*site.Point{},
		readIn:       map[Driver]bool{},
		inflight:     map[Driver]int{},
		driverDown:   map[Driver]bool{},
		hbNext:       map[hbKey]time.Time{},
		hbCount:      map[hbKey]float64{},
	}
}

// AddSite adds a site with its plan. Call it before Run.
func (e *Engine) AddSite(rt SiteRuntime, plan Plan) error {
	if e.started {
		return errors.New("add site: engine already running")
	}
	ss := &siteState{rt: rt, plan: plan}
	e.sites = append(e.sites, ss)
	ss.points = rt.Site.SortedPoints()
	// One allocation for the site's states; Run indexes them.
	slab := make([]pointState, 0, len(ss.points))
	var d Driver
	conn := ""
	for _, p := range ss.points {
		if !p.Writable() {
			continue
		}
		if d == nil || p.Connection != conn {
			conn, d = p.Connection, rt.Drivers[p.Connection]
		}
		if d == nil {
			return fmt.Errorf("add site %s: no driver for connection %q of point %s", rt.Site.ID, p.Connection, p.ID)
		}
		pol := rt.Policies[p.ID]
		if pol == "" {
			pol = Respect
		}
		e.nextOrder++
		slab = append(slab, pointState{order: e.nextOrder, site: ss, point: p, driver: d, enforce: pol == Enforce})
	}
	ss.added = slab
	// Run builds the lookups once, sized for every site: rebuilding them
	// here made adding n sites quadratic (1.2 s of CPU for 72 sites of
	// 139 points), and growing them point by point cost more than the
	// rest of AddSite.
	return nil
}

func (e *Engine) newPointState(ss *siteState, p *site.Point, d Driver, pol Policy) *pointState {
	e.nextOrder++
	return &pointState{order: e.nextOrder, site: ss, point: p, driver: d, enforce: pol == Enforce, primed: e.started}
}

// do runs f on the Run goroutine and waits for it.
func (e *Engine) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case e.cmds <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run reconciles until ctx is done. It starts one watcher per driver and
// one writer per driver, and waits for all of them before it returns.
func (e *Engine) Run(ctx context.Context) error {
	e.started = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	// Take the point states AddSite made, and list per driver the points
	// it watches (all of them) and the writable ones it reads first.
	type watch struct {
		d      Driver
		points []*site.Point
		first  firstRead
	}
	var watches []*watch
	byDriver := map[Driver]*watch{}
	// Learn what the devices hold before writing anything, so a restart
	// writes only what differs. The drivers read in parallel, each as
	// soon as its points are listed (the connects and first round trips
	// overlap the rest of the start), and each driver's points are
	// reconciled as soon as its own reading is in: one slow or dead
	// device does not hold back the others, and deciding values overlaps
	// the other devices' reads. A driver a site shares with sites after
	// it reads once they are listed too.
	sitesLeft := map[Driver]int{}
	for _, ss := range e.sites {
		for _, d := range ss.rt.Drivers {
			sitesLeft[d]++
		}
	}
	for _, ss := range e.sites {
		added, k := ss.added, 0 // in point id order, as PointIDs
		var w *watch
		conn := ""
		for _, p := range ss.points {
			if w == nil || p.Connection != conn {
				conn, w = p.Connection, nil
				d := ss.rt.Drivers[conn]
				if d == nil {
					continue
				}
				if w = byDriver[d]; w != nil && w.first.site != ss {
					w.first.plan, w.first.site = nil, nil // a driver of several sites: no hints
				}
				if w == nil {
					w = &watch{d: d, first: firstRead{d: d, plan: ss.plan, site: ss, gen: ss.planGen}}
					if len(ss.rt.Drivers) == 1 { // the usual case: sized for the site
						w.points = make([]*site.Point, 0, len(ss.points))
						w.first.states = make([]*pointState, 0, len(ss.added))
					}
					byDriver[d] = w
					watches = append(watches, w)
				}
			}
			w.points = append(w.points, p)
			if k < len(added) && added[k].point == p {
				ps := &added[k]
				k++
				w.first.states = append(w.first.states, ps)
			}
		}
		ss.added, ss.points = nil, nil
		for _, d := range ss.rt.Drivers {
			if sitesLeft[d]--; sitesLeft[d] > 0 {
				continue
			}
			if w := byDriver[d]; w != nil && len(w.first.states) > 0 {
				// The writable points, read first: usually all of them.
				if len(w.first.states) == len(w.points) {
					w.first.points = w.points
				} else {
					w.first.points = make([]*site.Point, len(w.first.states))
					for i, ps := range w.first.states {
						w.first.points[i] = ps.point
					}
				}
				fr := w.first
				wg.Go(func() { e.readFirst(ctx, fr) })
			}
		}
	}

	now := e.cfg.Clock.Now()
	e.indexSites()
	clear(e.byDriver)
	for _, w := range watches {
		e.driverStates[w.d] = w.first.states
	}
	e.byKey = nil // pointIndex makes it from driverStates
	rates := map[Driver]float64{}
	for _, ss := range e.sites {
		for conn, r := range ss.rt.WriteRates {
			if d := ss.rt.Drivers[conn]; d != nil && r > 0 {
				rates[d] = r
			}
		}
	}
	// spawn runs a goroutine owned by Run (it waits for it) with a context
	// of its own, so that a reload can stop one driver's goroutines. It
	// holds Run's context; it is only called from the Run goroutine.
	e.spawn = func(f func(context.Context)) context.CancelFunc {
		cctx, ccancel := context.WithCancel(ctx)
		wg.Go(func() { f(cctx) })
		return ccancel
	}
	// A driver's watcher starts once its first read is in and the writes
	// that read called for are done: both read every point, and at a
	// cold start of many devices polls queued before the first writes
	// would only delay them.
	for _, w := range watches {
		e.startDriver(w.d, w.points, rates[w.d], len(w.first.states) > 0)
	}

	// The timetable of 10,000 points takes milliseconds of CPU to work
	// out. It waits until the first writes are out (every driver's
	// watcher started) or timetableWait has passed, whichever is first,
	// so that it does not take a core from the start's reads and writes;
	// it is then worked out on another goroutine from the start instant,
	// and a transition that fell due meanwhile is taken as soon as it is
	// in. A reload or plan change before then builds its own, and this
	// one is not built or is dropped.
	var firstTimetable <-chan timetable
	startNow, startGen := now, e.trGen
	timetableAfter := time.NewTimer(timetableWait)
	defer timetableAfter.Stop()
	timetableDue := timetableAfter.C
	startTimetable := func() {
		if e.trGen == startGen {
			firstTimetable = e.buildTransitionsAsync(startNow)
		}
		timetableDue = nil
	}

	timer := e.cfg.Clock.NewTimer(0)
	defer timer.Stop()
	health := time.NewTicker(e.cfg.HealthEvery)
	defer health.Stop()
	lastResync := now

	for {
		now = e.cfg.Clock.Now()
		e.advance(now)
		if now.Sub(lastResync) >= e.cfg.Resync {
			lastResync = now
			e.dirty.all(e.pointIndex())
		}
		e.heartbeats(ctx, now)
		e.reconcile(ctx, now)
		e.renewTransitions()
		if len(e.mayWatch) > 0 {
			e.startWatches()
		}
		if timetableDue != nil && len(e.unwatched) == 0 {
			startTimetable()
		}
		wake := e.nextWake(now, lastResync)
		timer.Stop()
		timer.Reset(max(wake.Sub(now), 0))

		select {
		case <-ctx.Done():
			return nil
		case <-timer.C():
		case fr := <-e.firsts:
			e.firstRead(fr, e.cfg.Clock.Now())
		case <-timetableDue:
			startTimetable()
		case t := <-firstTimetable:
			if t.gen == e.trGen {
				e.transitions = t.transitions
			}
			firstTimetable = nil
		case f := <-e.cmds:
			f()
		case b := <-e.readings:
			now := e.cfg.Clock.Now()
			for _, r := range b.rs {
				e.reading(r, now, b.d)
			}
			e.release(b.rs)
		drain:
			for range 15 {
				select {
				case b := <-e.readings:
					for _, r := range b.rs {
						e.reading(r, now, b.d)
					}
					e.release(b.rs)
				default:
					break drain
				}
			}
		case res := <-e.results:
			if _, running := e.workers[res.d]; running {
				if e.inflight[res.d]--; e.inflight[res.d] == 0 {
					e.mayWatch = append(e.mayWatch, res.d)
				}
			}
			bt := batchTimes{now: e.cfg.Clock.Now(), wall: time.Now(), info: e.log.Enabled(ctx, slog.LevelInfo)}
			for i := range res.jobs {
				e.result(&res.jobs[i], res.errs[i], res.readbacks[i], bt)
			}
			e.release(res.buf)
			e.freeJob(res.jobs)
		case <-health.C:
			e.health(ctx, e.cfg.Clock.Now())
		}
	}
}

// rebuildTransitions asks the plan for the next change of every point
// after now, so the engine sleeps until the earliest instead of polling
// the clock; each point's following change is asked for when its
// current one is taken.
func (e *Engine) rebuildTransitions(now time.Time) {
	e.trGen++
	e.transitions = timetableOf(e.asks(), now)
}

// ask is what working out a point's next transition needs, taken on the
// Run goroutine.
type ask struct {
	ps   *pointState
	plan Plan
	id   string
}

func (e *Engine) asks() []ask {
	all := e.pointIndex()
	asks := make([]ask, 0, len(all))
	for _, ps := range all {
		asks = append(asks, ask{ps, ps.site.plan, ps.point.ID})
	}
	return asks
}

// timetableOf asks the plans for each point's next change after now.
func timetableOf(asks []ask, now time.Time) transitions {
	var t transitions
	t.reset()
	for _, a := range asks {
		if at, ok := a.plan.NextChange(a.id, now); ok {
			t.add(at, a.ps)
		}
	}
	return t
}

// timetableWait is the longest Run holds back working out its first
// timetable while first reads and writes are still under way (a dead
// device's first read can take its timeouts): well within the second
// in which a window boundary must be acted on.
const timetableWait = 250 * time.Millisecond

// timetable is transitions built off the Run goroutine, for the
// generation of the engine's transitions it was started in.
type timetable struct {
	transitions transitions
	gen         int
}

// buildTransitionsAsync works out what rebuildTransitions would, on
// another goroutine, from what the points and plans are now; the result
// arrives on the channel returned.
func (e *Engine) buildTransitionsAsync(now time.Time) <-chan timetable {
	asks := e.asks()
	out := make(chan timetable, 1)
	gen := e.trGen
	go func() { // owned: it only computes, and out is buffered
		out <- timetable{transitions: timetableOf(asks, now), gen: gen}
	}()
	return out
}

// takenAt are points whose transition at at was taken by advance; their
// next transitions are asked for after the reconcile it caused, so that
// the writes of a boundary do not wait for them.
type takenAt struct {
	at  time.Time
	pts []*pointState
}

// renewTransitions schedules the next transitions of the points advance
// took.
func (e *Engine) renewTransitions() {
	for _, t := range e.taken {
		for _, ps := range t.pts {
			if ps.gone {
				continue
			}
			if next, ok := ps.site.plan.NextChange(ps.point.ID, t.at); ok {
				e.transitions.add(next, ps)
			}
		}
	}
	clear(e.taken)
	e.taken = e.taken[:0]
}

// advance marks the points whose transitions are due as dirty.
func (e *Engine) advance(now time.Time) {
	for {
		at, due, ok := e.transitions.take(now)
		if !ok {
			break
		}
		for _, ps := range due {
			if ps.gone {
				continue
			}
			ps.dueAt = at.UnixNano()
			ps.setRespectTill(time.Time{})
			ps.external = false
			e.dirty.mark(ps)
		}
		e.taken = append(e.taken, takenAt{at, due})
	}
	for ps, o := range e.overrides {
		if !o.Until.After(now) {
			delete(e.overrides, ps)
			e.journalOverride(context.Background(), *o, "expired", now)
			e.log.Info("override expired", "site", o.Site, "point", o.Point)
			e.dirty.mark(ps)
		}
	}
}

func (e *Engine) nextWake(now, lastResync time.Time) time.Time {
	wake := lastResync.Add(e.cfg.Resync)
	if at, ok := e.transitions.next(); ok && at.Before(wake) {
		wake = at
	}
	for _, o := range e.overrides {
		if o.Until.Before(wake) {
			wake = o.Until
		}
	}
	if !e.retryWake.IsZero() && e.retryWake.Before(wake) {
		wake = e.retryWake
	}
	for _, t := range e.hbNext {
		if t.Before(wake) {
			wake = t
		}
	}
	if wake.Before(now) {
		return now
	}
	return wake
}

// goal is the value a point should have and where it comes from.
type goal struct {
	value    float64
	src      Source
	override *Override // set when src is SourceOverride
	occupied bool
	reasons  []schedule.Reason // shared with the plan; do not modify
}

// desired works out the value a point should have now and where it comes
// from. It formats nothing: most callers only compare the value, and the
// reason text of a write is made by reasons.
func (e *Engine) desired(ps *pointState, now time.Time) (goal, bool) {
	if o := e.overrides[ps]; o != nil && o.Until.After(now) {
		return goal{value: o.Value, src: SourceOverride, override: o}, true
	}
	if g, ok := e.hinted(ps, now); ok {
		return g, true
	}
	ch, ok := ps.site.plan.ValueAt(ps.point.ID, now)
	if !ok {
		return goal{}, false
	}
	return goalOf(ch), true
}

// goalOf is the goal a plan's change gives.
func goalOf(ch schedule.Change) goal {
	return planGoal(ch.Value.Num, ch.Occupied, ch.Reasons)
}

// planGoal is the goal of a plan's value, occupancy and reasons.
func planGoal(value float64, occupied bool, reasons []schedule.Reason) goal {
	src := SourceDefault
	if occupied {
		src = SourceOccupancy
		for _, r := range reasons {
			if r.Kind == schedule.ReasonBooking {
				src = SourceBooking
				break
			}
			if r.Kind == schedule.ReasonSchedule || r.Kind == schedule.ReasonException {
				src = SourceSchedule
			}
		}
	}
	return goal{value: value, src: src, occupied: occupied, reasons: reasons}
}

// spanPlan is a Plan that also says until when the value it gives holds
// (schedule.Compiler); for other plans NextChange says it.
type spanPlan interface {
	ValueSpan(pointID string, t time.Time) (schedule.Change, time.Time, bool)
}

// hint is what a point's plan gives, worked out ahead of deciding it: it
// holds from the instant it was worked out until until (Unix
// nanoseconds; 0: no hint).
type hint struct {
	value    float64
	reasons  []schedule.Reason // shared with the plan
	until    int64
	occupied bool
}

// planHints works out what the plan gives each point at now, and until
// when it holds. A driver's first read does it on its own goroutine
// before its request goes on the wire: at a cold start every device's
// reading comes in at about the same time, and the loop that decides
// them one after the other, asking the plan for each point, was the
// last device's wait.
func planHints(plan Plan, points []*site.Point, now time.Time) []hint {
	hs := make([]hint, len(points))
	sp, spans := plan.(spanPlan)
	for i, p := range points {
		var ch schedule.Change
		var until time.Time
		var ok bool
		if spans {
			ch, until, ok = sp.ValueSpan(p.ID, now)
		} else if ch, ok = plan.ValueAt(p.ID, now); ok {
			until, ok = plan.NextChange(p.ID, now)
		}
		if ok {
			hs[i] = hint{value: ch.Value.Num, reasons: ch.Reasons, until: until.UnixNano(), occupied: ch.Occupied}
		}
	}
	return hs
}

// hintOf is a hint taken in with a first read, for the next reconcile.
type hintOf struct {
	ps   *pointState
	gen  int   // the site's planGen the hint was worked out for
	from int64 // when it was worked out, Unix nanoseconds
	hint
}

// hinted returns the point's goal from its first read's hint if the hint
// holds: for the site's plan of now, at now.
func (e *Engine) hinted(ps *pointState, now time.Time) (goal, bool) {
	i := int(ps.hint) - 1
	if i < 0 || i >= len(e.hints) {
		return goal{}, false
	}
	h := &e.hints[i]
	if ns := now.UnixNano(); h.ps != ps || h.gen != ps.site.planGen || ns < h.from || ns >= h.until {
		return goal{}, false
	}
	return planGoal(h.value, h.occupied, h.reasons), true
}

// reasonKey identifies the reasons of a goal by the plan's shared slice:
// the points of a space share their window's reasons, so a reconcile of a
// whole building formats each window's reasons once.
type reasonKey struct {
	first    *schedule.Reason
	n        int
	occupied bool
}

// reasonTexts formats the reasons of goals, each distinct slice once.
type reasonTexts map[reasonKey]string

// text says why g is wanted, as journalled with a write.
func (rt reasonTexts) text(g goal) string {
	if o := g.override; o != nil {
		return fmt.Sprintf("override by %s until %s: %s", o.Who, o.Until.Format(time.RFC3339), o.Why)
	}
	var k reasonKey
	if len(g.reasons) > 0 {
		k = reasonKey{first: &g.reasons[0], n: len(g.reasons), occupied: g.occupied}
		if t, ok := rt[k]; ok {
			return t
		}
	}
	rs := make([]string, len(g.reasons))
	for i, r := range g.reasons {
		rs[i] = r.String()
	}
	reason := strings.Join(rs, "; ")
	if !g.occupied {
		reason = "vacant"
		if len(rs) > 0 {
			reason = "vacant after " + reason
		}
	}
	if k.first != nil && rt != nil {
		rt[k] = reason
	}
	return reason
}

// same compares values as the device stores them: within half a step of
// the point's scale for scaled integers, exactly otherwise.
func same(p *site.Point, a, b float64) bool {
	tol := 1e-9 * math.Max(1, math.Abs(a))
	switch p.Type {
	case site.TypeFloat32:
		tol = math.Max(tol, 1e-5*math.Max(1, math.Abs(a)))
	case site.TypeFloat64:
	default:
		tol = math.Max(tol, math.Abs(p.Scale)/2)
	}
	return math.Abs(a-b) <= tol
}

func (e *Engine) reconcile(ctx context.Context, now time.Time) {
	// First the points that may be written now, by driver; then, driver
	// by driver, what to write, handed to the driver's writer at once so
	// that its requests are on the wire while the next driver's values
	// are worked out.
	drivers := e.dueDrivers[:0]
	due := e.due // kept across reconciles, so are its lists' arrays
	for d, pts := range due {
		clear(pts)
		due[d] = pts[:0]
	}
	var last Driver
	var lastPts []*pointState
	e.retryWake = time.Time{}
	e.dirty.each(func(ps *pointState) {
		if ps.pending || !ps.primed {
			// A pending write wakes the loop with its result; waking for
			// its (past) retry time as well would spin the loop until it
			// lands.
			return
		}
		if at := ps.retryAt(); !at.IsZero() && now.Before(at) {
			if e.retryWake.IsZero() || at.Before(e.retryWake) {
				e.retryWake = at
			}
			return
		}
		e.dirty.unmark(ps)
		if e.driverDown[ps.driver] {
			return // health marks it again when a device is back
		}
		if ps.driver != last { // the dirty points of a driver come in runs
			if last != nil {
				due[last] = lastPts
			}
			last = ps.driver
			lastPts = due[last]
			if len(lastPts) == 0 {
				drivers = append(drivers, last)
			}
		}
		lastPts = append(lastPts, ps)
	})
	if last != nil {
		due[last] = lastPts
	}
	e.dueDrivers = drivers
	// The hints of first reads are for this reconcile only.
	defer func() {
		clear(e.hints)
		e.hints = e.hints[:0]
	}()
	texts := reasonTexts{}
	for _, d := range drivers {
		jobs := e.jobBuf(len(due[d]))
		for _, ps := range due[d] {
			if j, ok := e.decide(ps, now, texts); ok {
				jobs = append(jobs, j)
			}
		}
		if len(jobs) == 0 {
			e.freeJob(jobs)
			continue
		}
		// In the order of the site's point ids, as the states were made.
		slices.SortFunc(jobs, func(a, b job) int { return int(a.ps.order - b.ps.order) })
		e.inflight[d]++
		select {
		case e.workers[d] <- jobs:
		case <-ctx.Done():
			return
		}
	}
}

// jobBuf returns an empty job list with room for n, reusing the array of
// a batch whose results are in: at a cold start the drivers that wrote
// first lend theirs to the last.
func (e *Engine) jobBuf(n int) []job {
	for i, b := range slices.Backward(e.freeJobs) {
		if cap(b) >= n {
			e.freeJobs = slices.Delete(e.freeJobs, i, i+1)
			return b
		}
	}
	return make([]job, 0, n)
}

// freeJob keeps a job list's array for jobBuf, while there is room.
func (e *Engine) freeJob(jobs []job) {
	if len(e.freeJobs) < cap(e.freeJobs) {
		clear(jobs)
		e.freeJobs = append(e.freeJobs, jobs[:0])
	}
}

// decide works out whether a dirty point needs a write now, and the job
// if so (the point is then pending).
func (e *Engine) decide(ps *pointState, now time.Time, texts reasonTexts) (job, bool) {
	g, ok := e.desired(ps, now)
	if !ok {
		return job{}, false
	}
	want, src := g.value, g.src
	if ps.actualOK && same(ps.point, ps.actual, want) {
		ps.writeOK()
		ps.confirmed = true
		return job{}, false
	}
	if ps.external && src != SourceOverride && now.Before(ps.respectTill()) {
		return job{}, false
	}
	reason := texts.text(g)
	if ps.external && src != SourceOverride {
		reason = "enforce after external change; " + reason
	}
	ps.pending = true
	return job{ps: ps, point: ps.point, siteID: ps.site.rt.Site.ID, value: want, old: ps.actual, hadOld: ps.actualOK, source: src, reason: reason, attempt: int32(ps.attempts() + 1)}, true
}

// writer performs the writes of one driver in order, reads them back,
// and journals each attempt, a batch's records together. Journalling
// here rather than in the main loop lets the journal group-commit the
// records of all drivers, and keeps an fsync out of the loop that serves
// every point. A batch's results go back to the loop together.
func (e *Engine) writer(ctx context.Context, d Driver, in <-chan []job, rate float64) {
	var last time.Time // real time of the last write request
	pace := time.NewTimer(0)
	defer pace.Stop()
	<-pace.C
	for {
		var jobs []job
		select {
		case <-ctx.Done():
			return
		case jobs = <-in:
		}
		if rate > 0 && !last.IsZero() {
			if wait := time.Duration(float64(time.Second)/rate) - time.Since(last); wait > 0 {
				pace.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-pace.C:
				}
			}
		}
		last = time.Now()
		var errs []error
		var got []Reading
		rb := make([]*Reading, len(jobs))
		if e.cfg.DryRun {
			errs = make([]error, len(jobs))
		} else {
			ws := make([]Write, len(jobs))
			for i, j := range jobs {
				ws[i] = Write{Point: j.point, Value: j.value}
			}
			errs = d.Write(ctx, ws)
			okPts := make([]*site.Point, 0, len(jobs))
			okIdx := make([]int, 0, len(jobs))
			for i := range jobs {
				if errs[i] == nil {
					okPts = append(okPts, jobs[i].point)
					okIdx = append(okIdx, i)
				}
			}
			if len(okPts) > 0 {
				got = e.read(ctx, d, okPts)
				for k := range got {
					rb[okIdx[k]] = &got[k]
				}
			}
		}
		for i, j := range jobs {
			if errs[i] == nil && rb[i] != nil {
				switch r := *rb[i]; {
				case r.Err != nil:
					errs[i] = fmt.Errorf("read back: %w", r.Err)
				case !same(j.point, r.Value, j.value):
					errs[i] = fmt.Errorf("read back %g after writing %g", r.Value, j.value)
				}
			}
		}
		e.journalWrites(ctx, jobs, errs)
		select {
		case e.results <- writeResults{d: d, jobs: jobs, errs: errs, readbacks: rb, buf: got}:
		case <-ctx.Done():
		}
	}
}

// journalWrites records a batch's write attempts, one record each.
func (e *Engine) journalWrites(ctx context.Context, jobs []job, errs []error) {
	if _, none := e.cfg.Journal.(nopJournal); none {
		return
	}
	now := e.cfg.Clock.Now()
	recs := make([]WriteRecord, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		var old *float64
		if j.hadOld {
			old = &j.old
		}
		recs[i] = WriteRecord{
			Time: now, Site: j.siteID, Point: j.point.ID, Old: old, New: j.value,
			Reason: j.reason, Source: j.source, Attempt: int(j.attempt), DryRun: e.cfg.DryRun,
		}
		if errs[i] != nil {
			recs[i].Err = errs[i].Error()
		}
	}
	if err := e.cfg.Journal.Writes(ctx, recs); err != nil && ctx.Err() == nil {
		e.log.Error("journal write failed", "err", err, "records", len(recs))
	}
}

func (e *Engine) backoff(attempts int) time.Duration {
	d := e.cfg.RetryMin
	for i := 1; i < attempts && d < e.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, e.cfg.RetryMax)
}

// batchTimes are what the results of a batch share: the engine's time,
// the wall time, and whether successful writes are logged.
type batchTimes struct {
	now, wall time.Time
	info      bool
}

func (e *Engine) result(j *job, err error, readback *Reading, bt batchTimes) {
	now := bt.now
	ps := j.ps
	if ps.gone {
		return // the point was replaced by a reload while its write ran
	}
	ps.pending = false
	if r := readback; r != nil && r.Err == nil {
		ps.actual, ps.actualOK, ps.actualAt = r.Value, true, now
		ps.setActualErr(nil)
	}
	if err == nil && e.cfg.DryRun {
		ps.actual, ps.actualOK = j.value, true
	}
	siteID := ps.site.rt.Site.ID
	if err != nil {
		t := ps.tr()
		t.attempts++
		t.lastErr = err.Error()
		t.retryAt = now.Add(e.backoff(t.attempts))
		e.log.Warn("write failed", "site", siteID, "point", ps.point.ID, "value", j.value, "attempt", j.attempt, "retry_in", e.backoff(t.attempts), "err", err)
		e.dirty.mark(ps)
		return
	}
	if bt.info {
		e.log.Info("wrote point", "site", siteID, "point", ps.point.ID, "value", ps.point.Format(site.Value{Num: j.value, Label: ps.point.Label(j.value)}), "source", j.source, "reason", j.reason, "dry_run", e.cfg.DryRun)
	}
	ps.writeOK()
	if ps.dueAt != 0 && e.cfg.Lag != nil {
		e.cfg.Lag(siteID, time.Duration(now.UnixNano()-ps.dueAt))
	}
	ps.dueAt = 0
	ps.confirmed = true
	ps.external = false
	ps.writtenAt = bt.wall.UnixNano()
}

// firstRead is what a driver's writable points held when the engine
// started: the readings of points, whose states are states.
type firstRead struct {
	d        Driver
	points   []*site.Point
	states   []*pointState
	readings []Reading
	// plan and gen are the plan of the site of every point and its
	// planGen, for hints; plan is nil when the points are of several
	// sites.
	plan    Plan
	site    *siteState
	gen     int
	hints   []hint
	hintsAt time.Time // when hints were worked out
}

// readFirst reads what a driver's writable points hold and hands the
// readings to the Run goroutine (firstRead).
func (e *Engine) readFirst(ctx context.Context, fr firstRead) {
	if fr.plan != nil {
		fr.hintsAt = e.cfg.Clock.Now()
		fr.hints = planHints(fr.plan, fr.points, fr.hintsAt)
	}
	fr.readings = e.read(ctx, fr.d, fr.points)
	select {
	case e.firsts <- fr:
	case <-ctx.Done():
	}
}

// firstRead takes a driver's first readings and lets its points be
// written.
func (e *Engine) firstRead(fr firstRead, now time.Time) {
	e.readIn[fr.d] = true
	e.mayWatch = append(e.mayWatch, fr.d)
	for i, r := range fr.readings {
		if e.cfg.Observe != nil {
			if id, ok := e.driverSite[fr.d]; ok {
				e.cfg.Observe(id, r)
			}
		}
		ps := fr.states[i]
		if ps.gone {
			continue // replaced by a reload meanwhile
		}
		e.readingOf(ps, r, now)
		ps.primed = true
		e.dirty.mark(ps)
		if i < len(fr.hints) && fr.hints[i].until != 0 && ps.site == fr.site {
			e.hints = append(e.hints, hintOf{ps: ps, gen: fr.gen, from: fr.hintsAt.UnixNano(), hint: fr.hints[i]})
			ps.hint = int32(len(e.hints))
		}
	}
	e.release(fr.readings)
}

// read reads points through d, into a buffer given back by release if
// the driver can (ReaderInto).
func (e *Engine) read(ctx context.Context, d Driver, points []*site.Point) []Reading {
	r, ok := d.(ReaderInto)
	if !ok {
		return d.Read(ctx, points)
	}
	var buf []Reading
	if p, _ := e.readBufs.Get().(*[]Reading); p != nil {
		buf = *p
	}
	return r.ReadInto(ctx, points, buf)
}

// release gives back the buffer of readings the engine has taken: a
// driver's first readings become the buffer of its first read-back, and
// a watcher's batches are made in those of the batches before.
func (e *Engine) release(rs []Reading) {
	if cap(rs) == 0 {
		return
	}
	clear(rs)
	rs = rs[:0]
	e.readBufs.Put(&rs)
}

// reading takes a value read from a device.
func (e *Engine) reading(r Reading, now time.Time, from Driver) {
	if e.cfg.Observe != nil {
		if id, ok := e.driverSite[from]; ok {
			e.cfg.Observe(id, r)
		}
	}
	ps := e.lookup(from)[r.Point]
	if ps == nil {
		return // a read-only point: only Observe wants it
	}
	e.readingOf(ps, r, now)
}

// readingOf takes a value read from the device of a writable point.
func (e *Engine) readingOf(ps *pointState, r Reading, now time.Time) {
	if !r.Time.IsZero() && r.Time.UnixNano() < ps.writtenAt {
		// Sampled before our last write was confirmed (a subscription's
		// first notification, a poll that crossed the write): it says
		// nothing about what the device holds now.
		return
	}
	if r.Err != nil {
		ps.setActualErr(r.Err)
		if !errors.Is(r.Err, ErrStale) {
			ps.actualOK = false
		}
		return
	}
	prev, had := ps.actual, ps.actualOK
	ps.actual, ps.actualOK, ps.actualAt = r.Value, true, now
	ps.setActualErr(nil)
	if ps.pending {
		return
	}
	if !had {
		// The first value known (at start, after a read error): nothing
		// to tell apart, reconcile compares it.
		e.dirty.mark(ps)
		return
	}
	g, ok := e.desired(ps, now)
	if !ok || same(ps.point, r.Value, g.value) {
		return
	}
	want, src := g.value, g.src
	// The device holds something else than we put there: someone changed
	// it at the BMS (or the device lost it).
	if ps.confirmed && had && same(ps.point, prev, want) && src != SourceOverride {
		ps.external = true
		till := e.nextTransition(ps, now)
		ps.setRespectTill(till)
		e.log.Warn("point changed at the BMS", "site", ps.site.rt.Site.ID, "point", ps.point.ID, "value", r.Value, "desired", want, "policy", ps.policy(), "until", till)
		_ = e.cfg.Journal.Event(context.Background(), EventRecord{
			Time: now, Site: ps.site.rt.Site.ID, Kind: "value_changed_at_bms", Severity: "info",
			Message: fmt.Sprintf("%s changed to %s at the BMS (desired %s); %s", ps.point.ID,
				ps.point.Format(site.Value{Num: r.Value, Label: ps.point.Label(r.Value)}),
				ps.point.Format(site.Value{Num: want, Label: ps.point.Label(want)}), policyText(ps.policy(), till)),
		})
		if ps.enforce {
			ps.setRespectTill(time.Time{})
		}
	}
	e.dirty.mark(ps)
}

func policyText(p Policy, until time.Time) string {
	if p == Enforce {
		return "enforcing the desired value"
	}
	return "respected until " + until.Format(time.RFC3339)
}

// nextTransition returns the next scheduled change of a point after now,
// or the end of its plan.
func (e *Engine) nextTransition(ps *pointState, now time.Time) time.Time {
	if at, ok := ps.site.plan.NextChange(ps.point.ID, now); ok {
		return at
	}
	return now.Add(24 * time.Hour)
}

// hbKey identifies a heartbeat: one per connection of a site.
type hbKey struct{ site, conn string }

// heartbeats writes the heartbeats that are due. Their times and counts
// are kept by site and connection, so that a reload that adds or removes
// sites keeps every other heartbeat's count and period.
func (e *Engine) heartbeats(ctx context.Context, now time.Time) {
	next, count := e.hbNext, e.hbCount
	for _, ss := range e.sites {
		for _, hb := range ss.rt.Heartbeats {
			i := hbKey{ss.rt.Site.ID, hb.Connection}
			if t, ok := next[i]; !ok || !now.Before(t) {
				next[i] = now.Add(hb.Period)
				count[i] = math.Mod(count[i]+1, 32768)
				if d := ss.rt.Drivers[hb.Connection]; d != nil && !e.cfg.DryRun && !e.driverDown[d] {
					d := d
					w := Write{Point: hb.Point, Value: count[i]}
					go func() { // a heartbeat must never wait behind a slow reconcile
						if errs := d.Write(ctx, []Write{w}); errs[0] != nil && ctx.Err() == nil {
							e.log.Warn("heartbeat failed", "point", w.Point.ID, "err", errs[0])
						}
					}()
				}
			}
		}
	}
}

// health collects device states, journals changes, and catches up on the
// points of a device that came back. A driver whose every device is down
// gets no writes until one is back: each would fail at once, and with
// every point retried on its backoff a day's outage filled the journal
// with thousands of failed attempts; the outage is journalled once, as
// the device going down, and the catch-up as the writes when it is back.
func (e *Engine) health(ctx context.Context, now time.Time) {
	for _, ss := range e.sites {
		conns := make([]string, 0, len(ss.rt.Drivers))
		for c := range ss.rt.Drivers {
			conns = append(conns, c)
		}
		slices.Sort(conns)
		for _, c := range conns {
			d := ss.rt.Drivers[c]
			states := d.States()
			down := len(states) > 0
			for _, st := range states {
				down = down && !st.Up
			}
			e.driverDown[d] = down
			for _, st := range states {
				key := ss.rt.Site.ID + "/" + c + "/" + st.Device
				old, seen := e.devices[key]
				e.devices[key] = st
				if seen && old.Up == st.Up {
					continue
				}
				if !seen && st.Up {
					continue
				}
				rec := DeviceRecord{Time: now, Site: ss.rt.Site.ID, Connection: c, Device: st.Device, Up: st.Up, Err: st.LastError}
				_ = e.cfg.Journal.Device(ctx, rec)
				if st.Up {
					e.log.Info("device up", "site", rec.Site, "conn", c, "device", st.Device)
					for _, ps := range e.driverStates[d] {
						ps.retryNow()
						e.dirty.mark(ps)
					}
				} else {
					e.log.Warn("device down", "site", rec.Site, "conn", c, "device", st.Device, "err", st.LastError)
				}
			}
		}
	}
}

// SetOverride sets an operator override. The value must be writable
// within the point's limits; it beats bookings until Until.
func (e *Engine) SetOverride(ctx context.Context, o Override) error {
	var err error
	if derr := e.do(ctx, func() {
		ps := e.pointIndex()[pointKey{o.Site, o.Point}]
		if ps == nil {
			err = fmt.Errorf("override %s/%s: no writable point by that name", o.Site, o.Point)
			return
		}
		if cerr := CheckWrite(Write{Point: ps.point, Value: o.Value}); cerr != nil {
			err = fmt.Errorf("override %s/%s = %g: %w", o.Site, o.Point, o.Value, cerr)
			return
		}
		now := e.cfg.Clock.Now()
		if !o.Until.After(now) {
			err = fmt.Errorf("override %s/%s: until %s is not in the future", o.Site, o.Point, o.Until.Format(time.RFC3339))
			return
		}
		o.Set = now
		e.overrides[ps] = &o
		ps.external = false
		ps.retryNow()
		e.dirty.mark(ps)
		e.journalOverride(ctx, o, "set", now)
		e.log.Info("override set", "site", o.Site, "point", o.Point, "value", o.Value, "until", o.Until, "who", o.Who, "why", o.Why)
	}); derr != nil {
		return derr
	}
	return err
}

// ErrNoOverride is returned by ClearOverride for a point without one.
var ErrNoOverride = errors.New("no override on that point")

// ClearOverride removes an override; the point returns to its scheduled
// value at once.
func (e *Engine) ClearOverride(ctx context.Context, siteID, point, who string) error {
	var err error
	if derr := e.do(ctx, func() {
		ps := e.pointIndex()[pointKey{siteID, point}]
		if ps == nil || e.overrides[ps] == nil {
			err = fmt.Errorf("clear override %s/%s: %w", siteID, point, ErrNoOverride)
			return
		}
		o := *e.overrides[ps]
		delete(e.overrides, ps)
		o.Who = who
		now := e.cfg.Clock.Now()
		e.journalOverride(ctx, o, "clear", now)
		e.log.Info("override cleared", "site", siteID, "point", point, "who", who)
		ps.retryNow()
		e.dirty.mark(ps)
	}); derr != nil {
		return derr
	}
	return err
}

// dropOverride ends a point's override because of a reload, journalled
// as cleared by "reload" with why.
func (e *Engine) dropOverride(ctx context.Context, ps *pointState, why string, now time.Time) {
	o := *e.overrides[ps]
	delete(e.overrides, ps)
	o.Who, o.Why = "reload", why
	// Recorded even if whoever asked for the reload has gone away.
	e.journalOverride(context.WithoutCancel(ctx), o, "clear", now)
	e.log.Warn("override cleared", "site", o.Site, "point", o.Point, "why", why)
	e.dirty.mark(ps)
}

func (e *Engine) journalOverride(ctx context.Context, o Override, action string, now time.Time) {
	if err := e.cfg.Journal.Override(ctx, OverrideRecord{Time: now, Site: o.Site, Point: o.Point, Value: o.Value, Until: o.Until, Who: o.Who, Why: o.Why, Action: action}); err != nil {
		e.log.Error("journal override failed", "err", err)
	}
}

// SetPlan replaces a site's plan (after a feed change) and reconciles.
func (e *Engine) SetPlan(ctx context.Context, siteID string, plan Plan) error {
	return e.do(ctx, func() {
		for _, ss := range e.sites {
			if ss.rt.Site.ID == siteID {
				ss.plan = plan
				ss.planGen++
			}
		}
		now := e.cfg.Clock.Now()
		e.rebuildTransitions(now)
		for _, ps := range e.pointIndex() {
			if ps.site.rt.Site.ID == siteID {
				e.dirty.mark(ps)
			}
		}
	})
}

// ApplySites applies a reloaded configuration while Run runs: rts are
// every site to run from now on, with plans by site id. Sites not running
// yet are added and sites no longer listed are removed (their points are
// left as they are). A driver that is new gets its writer and watcher,
// and its points are read before anything is written to them, as at a
// start; a running driver keeps its link, its subscriptions and its
// pending writes. A point keeps its state (value read, override) unless
// its driver, address or encoding changed. It returns the drivers no
// longer used, for the caller to close.
func (e *Engine) ApplySites(ctx context.Context, rts []SiteRuntime, plans map[string]Plan) ([]Driver, error) {
	listed := map[string]bool{}
	for _, rt := range rts {
		switch {
		case listed[rt.Site.ID]:
			return nil, fmt.Errorf("apply sites: site %s is listed twice", rt.Site.ID)
		case plans[rt.Site.ID] == nil:
			return nil, fmt.Errorf("apply sites: site %s has no plan", rt.Site.ID)
		}
		listed[rt.Site.ID] = true
	}
	var unused []Driver
	derr := e.do(ctx, func() {
		byID := map[string]*siteState{}
		oldDrivers := map[Driver]bool{}
		oldPoints := map[Driver][]*site.Point{}
		for _, ss := range e.sites {
			byID[ss.rt.Site.ID] = ss
			for _, d := range ss.rt.Drivers {
				oldDrivers[d] = true
			}
			for _, id := range ss.rt.Site.PointIDs() {
				p := ss.rt.Site.Points[id]
				if d := ss.rt.Drivers[p.Connection]; d != nil {
					oldPoints[d] = append(oldPoints[d], p)
				}
			}
			if !listed[ss.rt.Site.ID] {
				// Removed: its devices are no longer reported.
				for key := range e.devices {
					if strings.HasPrefix(key, ss.rt.Site.ID+"/") {
						delete(e.devices, key)
					}
				}
			}
		}
		sites := make([]*siteState, 0, len(rts))
		newPoints := map[Driver][]*site.Point{}
		firsts := map[Driver]*firstRead{}
		rates := map[Driver]float64{}
		keep := map[pointKey]bool{}
		for _, rt := range rts {
			ss := byID[rt.Site.ID]
			if ss == nil {
				ss = &siteState{}
			}
			ss.rt, ss.plan = rt, plans[rt.Site.ID]
			ss.planGen++
			sites = append(sites, ss)
			for conn, r := range rt.WriteRates {
				if d := rt.Drivers[conn]; d != nil && r > 0 {
					rates[d] = r
				}
			}
			for _, id := range rt.Site.PointIDs() {
				p := rt.Site.Points[id]
				d := rt.Drivers[p.Connection]
				if d == nil {
					continue
				}
				newPoints[d] = append(newPoints[d], p)
				if !p.Writable() {
					continue
				}
				key := pointKey{rt.Site.ID, id}
				keep[key] = true
				pol := rt.Policies[id]
				if pol == "" {
					pol = Respect
				}
				ps := e.pointIndex()[key]
				if ps != nil && ps.driver == d && SameWire(ps.point, p) {
					ps.point, ps.site, ps.enforce = p, ss, pol == Enforce
				} else {
					var carried *Override
					if ps != nil {
						carried = e.overrides[ps]
						delete(e.overrides, ps)
						e.dirty.unmark(ps)
						ps.gone = true
					}
					ps = e.newPointState(ss, p, d, pol)
					e.pointIndex()[key] = ps
					if carried != nil {
						// The operator's override is on the point, not its
						// wiring: it moves with it (checked below).
						e.overrides[ps] = carried
					}
					if !oldDrivers[d] {
						// A new driver's points are read first, as at a
						// start, so that only what differs is written.
						ps.primed = false
						fr := firsts[d]
						if fr == nil {
							fr = &firstRead{d: d}
							firsts[d] = fr
						}
						fr.points = append(fr.points, p)
						fr.states = append(fr.states, ps)
					}
				}
				e.dirty.mark(ps)
			}
		}
		e.sites = sites
		now := e.cfg.Clock.Now()
		all := e.pointIndex()
		for key, ps := range all {
			if !keep[key] {
				if o := e.overrides[ps]; o != nil {
					e.dropOverride(ctx, ps, "the point was removed by a config reload", now)
				}
				delete(all, key)
				e.dirty.unmark(ps)
				ps.gone = true
			}
		}
		// Overrides outside a point's new limits end: each write would
		// be refused.
		for ps, o := range e.overrides {
			if err := CheckWrite(Write{Point: ps.point, Value: o.Value}); err != nil {
				e.dropOverride(ctx, ps, fmt.Sprintf("%g is no longer allowed after a config reload: %v", o.Value, err), now)
			}
		}
		for d := range oldDrivers {
			if _, used := newPoints[d]; !used {
				for _, stop := range e.stops[d] {
					if stop != nil {
						stop()
					}
				}
				delete(e.unwatched, d)
				delete(e.readIn, d)
				delete(e.inflight, d)
				delete(e.driverDown, d)
				delete(e.due, d)
				delete(e.stops, d)
				delete(e.workers, d)
				unused = append(unused, d)
			}
		}
		for d, pts := range newPoints {
			switch {
			case !oldDrivers[d]:
				fr := firsts[d]
				e.startDriver(d, pts, rates[d], fr != nil)
				if fr != nil {
					e.spawn(func(ctx context.Context) { e.readFirst(ctx, *fr) })
				}
			case !samePoints(oldPoints[d], pts):
				// Same link, other points: only the watch is renewed.
				if _, waiting := e.unwatched[d]; waiting {
					e.unwatched[d] = pts
					break
				}
				e.stops[d][1]()
				e.stops[d][1] = e.watch(d, pts)
			}
		}
		// Heartbeats of removed sites and connections are forgotten.
		hbs := map[hbKey]bool{}
		for _, ss := range e.sites {
			for _, hb := range ss.rt.Heartbeats {
				hbs[hbKey{ss.rt.Site.ID, hb.Connection}] = true
			}
		}
		for key := range e.hbNext {
			if !hbs[key] {
				delete(e.hbNext, key)
				delete(e.hbCount, key)
			}
		}
		e.index()
		e.rebuildTransitions(e.cfg.Clock.Now())
	})
	if derr != nil {
		return nil, derr
	}
	return unused, nil
}

func samePoints(a, b []*site.Point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !SameWire(a[i], b[i]) {
			return false
		}
	}
	return true
}

// SameWire reports whether two versions of a point talk to the device the
// same way: connection, address, data type and encoding. Limits, labels,
// access, policy and descriptions may differ.
func SameWire(p, q *site.Point) bool {
	return p.Connection == q.Connection && p.Type == q.Type && p.Scale == q.Scale && p.Offset == q.Offset &&
		reflect.DeepEqual(p.Modbus, q.Modbus) && reflect.DeepEqual(p.OPCUA, q.OPCUA) && reflect.DeepEqual(p.Serial, q.Serial)
}
