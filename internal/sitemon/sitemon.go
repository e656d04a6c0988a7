// Package sitemon joins a site's access, alarm and occupancy logic to the
// control engine: it feeds internal/security and internal/occupancy with
// the engine's readings and the compiled plan's windows, publishes the
// events they raise, turns their decisions (no-show releases, lights
// waiting for a card, warning blinks, direct-control pulses) into a plan
// overlay for the engine, and runs the virtual patrol round after the
// day's last window.
package sitemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/occupancy"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/statefile"
)

// Config holds a monitor's dependencies.
type Config struct {
	Site  *site.Site
	Clock control.Clock
	// Publish stores events durably, in order, and streams them; one call
	// per burst shares the journal's commits.
	Publish func(context.Context, []events.Event) error
	// SetPlan hands the engine the site's plan with the overlay applied.
	SetPlan func(context.Context, control.Plan) error
	// Points returns what the engine knows of the site's points (its
	// Status), for the round: values read back after writes are fresher
	// than the last poll. Nil: the round uses the readings it saw.
	Points func(context.Context) ([]control.PointStatus, error)
	// StateDir keeps the occupancy tracker's snapshot across restarts.
	StateDir string
	Logger   *slog.Logger
}

// Monitor runs one site's logic. Create it with New, hand it plans with
// SetPlan and readings with Observe, and drive it with Run.
type Monitor struct {
	cfg Config
	log *slog.Logger
	sec *security.Monitor
	occ *occupancy.Tracker

	readings chan control.Reading
	plans    chan planMsg
	rounds   chan chan security.RoundReport
	states   chan chan SecurityState
	dropped  int

	// Owned by Run.
	plan      planMsg
	havePlan  bool
	pulses    map[string][]security.Command // by point, in time order
	values    map[string]observed           // latest reading of bound points
	roundDone time.Time                     // the scheduled round last run
	rev       uint64                        // the tracker's revision the engine's plan reflects
	savedAt   time.Time                     // of the last occupancy snapshot
}

type planMsg struct {
	c        *schedule.Compiler
	bookings []booking.Booking
}

type observed struct {
	v     float64
	ok    bool
	since time.Time
}

// New builds the monitor of a site; it returns nil and no error for a
// site without doors, alarm areas, detectors, evidence or card-enabled
// lights, which needs none.
func New(cfg Config) (*Monitor, error) {
	s := cfg.Site
	if !hasSecurity(s) && !hasOccupancy(s) && s.Round == nil && len(accessPoints(s)) == 0 {
		return nil, nil
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger, readings: make(chan control.Reading, 8192),
		plans: make(chan planMsg, 4), rounds: make(chan chan security.RoundReport), states: make(chan chan SecurityState),
		pulses: map[string][]security.Command{}, values: map[string]observed{}}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("site", s.ID)
	var err error
	if m.sec, err = security.NewMonitor(s.ID, SecuritySpec(s), s.Location); err != nil {
		return nil, err
	}
	if data, err := m.readState(m.securityPath()); err == nil {
		if err := m.sec.Restore(data); err != nil {
			m.log.Warn("door states not restored; starting afresh", "file", m.securityPath(), "err", err)
		}
	}
	if hasOccupancy(s) {
		if m.occ, err = occupancy.NewTracker(s.ID, OccupancySpec(s), s.Location); err != nil {
			return nil, err
		}
		if data, err := m.readState(m.snapshotPath()); err == nil {
			if err := m.occ.Restore(data); err != nil {
				m.log.Warn("occupancy state not restored; starting afresh", "file", m.snapshotPath(), "err", err)
			}
		}
	}
	return m, nil
}

func (m *Monitor) snapshotPath() string {
	return filepath.Join(m.cfg.StateDir, "occupancy", m.cfg.Site.ID+".json")
}

// readState reads a file of the state directory; without one there is
// nothing to read.
func (m *Monitor) readState(path string) ([]byte, error) {
	if m.cfg.StateDir == "" {
		return nil, os.ErrNotExist
	}
	return os.ReadFile(path)
}

// securityPath keeps the doors' judged states and raised conditions.
func (m *Monitor) securityPath() string {
	return filepath.Join(m.cfg.StateDir, "security", m.cfg.Site.ID+".json")
}

// Prime takes the site's first plan before Run starts and returns it
// with the overlay, for the engine's first reconcile: lights that wait
// for a card must not come on for a moment at start-up.
func (m *Monitor) Prime(c *schedule.Compiler, bs []booking.Booking) control.Plan {
	m.plan, m.havePlan = planMsg{c, bs}, true
	m.windows()
	if m.occ != nil {
		m.rev = m.occ.Revision()
	}
	return m.overlay()
}

// Observe hands a reading to the monitor. It never blocks: the engine
// calls it on its own goroutine. A reading that does not fit the queue is
// dropped and counted; the next poll or change brings the point back.
func (m *Monitor) Observe(r control.Reading) {
	select {
	case m.readings <- r:
	default:
		m.dropped++
		if m.dropped == 1 || m.dropped%1000 == 0 {
			m.log.Warn("readings dropped: the monitor is behind", "dropped", m.dropped)
		}
	}
}

// SetPlan hands the monitor a newly compiled plan of the site and the
// bookings it was compiled from; the monitor passes it on to the engine
// with its overlay.
func (m *Monitor) SetPlan(ctx context.Context, c *schedule.Compiler, bs []booking.Booking) error {
	select {
	case m.plans <- planMsg{c, bs}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Round runs the virtual patrol round now and returns its report; its
// events are published like the daily round's.
func (m *Monitor) Round(ctx context.Context) (security.RoundReport, error) {
	ch := make(chan security.RoundReport, 1)
	select {
	case m.rounds <- ch:
	case <-ctx.Done():
		return security.RoundReport{}, ctx.Err()
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return security.RoundReport{}, ctx.Err()
	}
}

// SecurityState is what the door and alarm logic knows now: the status
// window of DOMAIN.md section 2.
type SecurityState struct {
	Doors     []security.DoorStatus
	Areas     []security.AreaStatus
	Detectors []security.DetectorStatus
}

// Security returns the state of the site's doors, areas and detectors.
func (m *Monitor) Security(ctx context.Context) (SecurityState, error) {
	ch := make(chan SecurityState, 1)
	select {
	case m.states <- ch:
	case <-ctx.Done():
		return SecurityState{}, ctx.Err()
	}
	select {
	case st := <-ch:
		return st, nil
	case <-ctx.Done():
		return SecurityState{}, ctx.Err()
	}
}

// Run works until ctx is done.
func (m *Monitor) Run(ctx context.Context) error {
	clock := m.cfg.Clock
	timer := clock.NewTimer(time.Hour)
	defer timer.Stop()
	m.advance(ctx, clock.Now())
	for {
		now := clock.Now()
		next := m.next(now)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), 0)
			wait = min(wait, time.Hour)
		}
		timer.Stop()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			m.saveSnapshot(clock.Now())
			return nil
		case r := <-m.readings:
			// Take what queued meanwhile too, and store the events of the
			// burst in one go.
			evs := m.reading(nil, r, clock.Now())
			for n := 0; n < 4096; n++ {
				select {
				case r := <-m.readings:
					evs = m.reading(evs, r, clock.Now())
					continue
				default:
				}
				break
			}
			m.publish(ctx, evs)
		case p := <-m.plans:
			m.plan, m.havePlan = p, true
			m.windows()
			m.advance(ctx, clock.Now())
			m.publishPlan(ctx)
		case ch := <-m.states:
			m.advance(ctx, clock.Now())
			ch <- SecurityState{Doors: m.sec.Doors(), Areas: m.sec.Areas(), Detectors: m.sec.Detectors()}
		case ch := <-m.rounds:
			now := clock.Now()
			m.advance(ctx, now)
			ch <- m.round(ctx, now)
		case <-timer.C():
			m.advance(ctx, clock.Now())
		}
	}
}

// next is when Run must act without an input.
func (m *Monitor) next(now time.Time) time.Time {
	ts := []time.Time{m.sec.Next(), m.nextRound(now)}
	if m.occ != nil {
		ts = append(ts, m.occ.Next())
	}
	var best time.Time
	for _, t := range ts {
		if !t.IsZero() && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	return best
}

// reading judges one reading and appends the events it raises to evs.
func (m *Monitor) reading(evs []events.Event, r control.Reading, now time.Time) []events.Event {
	ok := r.Err == nil
	if errors.Is(r.Err, control.ErrStale) {
		ok = false
	}
	if prev, had := m.values[r.Point]; !had || prev.ok != ok || (ok && prev.v != r.Value) {
		m.values[r.Point] = observed{v: r.Value, ok: ok, since: now}
	}
	evs = append(evs, m.sec.Observe(r.Point, r.Value, ok, now)...)
	if m.occ != nil {
		evs = append(evs, m.occ.Observe(r.Point, r.Value, ok, now)...)
	}
	return evs
}

// advance fires the timers due by now and acts on what they decide.
func (m *Monitor) advance(ctx context.Context, now time.Time) {
	evs, cmds := m.sec.Advance(now)
	if m.occ != nil {
		evs = append(evs, m.occ.Advance(now)...)
	}
	m.publish(ctx, evs)
	if len(cmds) > 0 {
		for _, c := range cmds {
			m.pulses[c.Point] = append(m.pulses[c.Point], c)
		}
		m.publishPlan(ctx)
	}
	if r := m.nextRound(now); !r.IsZero() && !r.After(now) {
		m.roundDone = r
		m.round(ctx, now)
	}
}

// publish stores and streams events; a grant also counts as occupancy
// evidence, and a no-show or its end changes the overlay.
func (m *Monitor) publish(ctx context.Context, evs []events.Event) {
	for i := 0; i < len(evs); i++ {
		if e := &evs[i]; e.Kind == events.AccessGranted {
			if m.occ != nil {
				evs = append(evs, m.occ.Consume(*e)...)
				e = &evs[i] // append may have moved it
			}
			e.CardHolder = m.cardHolder(e.Subject)
		}
	}
	if len(evs) > 0 {
		if err := m.cfg.Publish(ctx, evs); err != nil && ctx.Err() == nil {
			m.log.Error("events not stored", "count", len(evs), "first", evs[0].Kind, "err", err)
		}
	}
	for _, e := range evs {
		if raisesOrClears[e.Kind] {
			// A condition raised or cleared is saved at once: a crash
			// right after a forced door must not forget it.
			m.saveSecurity()
			break
		}
	}
	m.sync(ctx)
}

// raisesOrClears are the event kinds that raise or clear a condition the
// security snapshot keeps.
var raisesOrClears = map[events.Kind]bool{
	events.DoorHeldOpen: true, events.DoorForced: true, events.DoorLeftUnlocked: true, events.DoorWireFault: true,
	events.DoorRestored: true, events.AreaMismatch: true, events.AreaArmFailed: true, events.Leak: true,
}

// snapshotEvery bounds the occupancy and door state lost by a crash.
const snapshotEvery = 2 * time.Minute

// sync hands the engine a new overlay when the tracker's decisions
// changed, and saves the tracker's and the doors' state then and every
// few minutes.
func (m *Monitor) sync(ctx context.Context) {
	now := m.cfg.Clock.Now()
	if m.occ == nil {
		if now.Sub(m.savedAt) >= snapshotEvery {
			m.saveSnapshot(now)
		}
		return
	}
	if rev := m.occ.Revision(); rev != m.rev {
		m.rev = rev
		m.publishPlan(ctx)
		m.saveSnapshot(now)
	} else if now.Sub(m.savedAt) >= snapshotEvery {
		m.saveSnapshot(now)
	}
}

// cardHolder returns the card number last read at a door's reader, ""
// unless the site keeps card holders and the door declares a card point.
func (m *Monitor) cardHolder(doorID string) string {
	if !m.cfg.Site.KeepCardHolder {
		return ""
	}
	for _, d := range m.cfg.Site.Doors {
		if d.ID == doorID && d.Card != nil {
			if o := m.values[d.Card.ID]; o.ok {
				return strconv.FormatFloat(o.v, 'f', -1, 64)
			}
		}
	}
	return ""
}

// windows hands the logic the windows of the current plan.
func (m *Monitor) windows() {
	s, c := m.cfg.Site, m.plan.c
	for _, a := range s.Areas {
		if a.Space == nil {
			continue
		}
		var ws []security.Interval
		for _, w := range c.Windows(a.Space.ID) {
			start, end := w.Start.Add(-a.DisarmBefore), w.End.Add(a.RearmAfter)
			if n := len(ws); n > 0 && !start.After(ws[n-1].End) {
				ws[n-1].End = later(ws[n-1].End, end)
				continue
			}
			ws = append(ws, security.Interval{Start: start, End: end})
		}
		if err := m.sec.SetAreaWindows(a.ID, ws); err != nil {
			m.log.Error("area windows refused", "area", a.ID, "err", err)
		}
	}
	for _, id := range m.sec.Spaces() {
		var ws []security.Interval
		for _, w := range c.Windows(id) {
			ws = append(ws, security.Interval{Start: w.Start, End: w.End})
		}
		if err := m.sec.SetSpaceWindows(id, ws); err != nil {
			m.log.Error("space windows refused", "space", id, "err", err)
		}
	}
	if m.occ == nil {
		return
	}
	for _, sp := range s.Spaces {
		if len(sp.Evidence) == 0 && sp.NoShow == nil && sp.LightsByCard == nil {
			continue
		}
		var ws []occupancy.Window
		for _, b := range m.plan.bookings {
			if !b.Status.Active() || !slices.Contains(sp.Resources, b.Resource) {
				continue
			}
			ws = append(ws, occupancy.Window{Start: b.Start, End: b.End, Booking: b.String(), Organiser: b.Organiser})
		}
		if err := m.occ.SetWindows(sp.ID, ws); err != nil {
			m.log.Error("booking windows refused", "space", sp.ID, "err", err)
		}
	}
}

// publishPlan hands the engine the plan with the overlay.
func (m *Monitor) publishPlan(ctx context.Context) {
	if !m.havePlan {
		return
	}
	if err := m.cfg.SetPlan(ctx, m.overlay()); err != nil && ctx.Err() == nil {
		m.log.Error("plan not handed to the engine", "err", err)
	}
}

// overlay is the current plan with releases and outputs applied.
func (m *Monitor) overlay() *schedule.Overlay {
	from, to := m.plan.c.Range()
	var rels []schedule.Release
	if m.occ != nil {
		byID := map[string]*site.Space{}
		for _, sp := range m.cfg.Site.Spaces {
			byID[sp.ID] = sp
		}
		for _, a := range m.occ.Adjustments() {
			rf, rt := a.From, a.To
			if rf.IsZero() || rf.Before(from) {
				rf = from
			}
			if rt.IsZero() || rt.After(to) {
				rt = to
			}
			if a.Point != "" {
				rels = append(rels, schedule.Release{Point: a.Point, From: rf, To: rt, Why: a.Reason})
				continue
			}
			if sp := byID[a.Space]; sp != nil {
				for _, b := range sp.Bindings {
					rels = append(rels, schedule.Release{Point: b.Point.ID, From: rf, To: rt, Why: a.Reason})
				}
			}
		}
	}
	var outs []schedule.Output
	// Every direct-control output is in the plan from the start, at rest
	// (0) outside its pulses: one left on by a crash in the middle of a
	// pulse is put back at once rather than at its next pulse.
	for _, id := range m.sec.Outputs() {
		cmds := m.pulses[id]
		// A pulse that ended before the plan's range is history.
		for len(cmds) > 1 && cmds[1].At.Before(from) {
			cmds = cmds[1:]
		}
		if cmds != nil {
			m.pulses[id] = cmds
		}
		p := m.cfg.Site.Points[id]
		if p == nil {
			continue
		}
		out := schedule.Output{Point: p, On: site.Value{Num: 1}, Off: site.Value{Num: 0}}
		for i, c := range cmds {
			if c.Value == 0 {
				continue
			}
			end := to
			if i+1 < len(cmds) {
				end = cmds[i+1].At
			}
			out.Windows = append(out.Windows, schedule.OutputWindow{From: c.At, To: end, Why: c.Reason})
		}
		outs = append(outs, out)
	}
	if pm := accessPoints(m.cfg.Site); len(pm) > 0 {
		spec, _ := AccessSpec(m.cfg.Site, 0)
		grants := access.Grants(spec, m.plan.bookings, from, to)
		for id, ivs := range access.PointSchedule(grants, pm) {
			out := schedule.Output{Point: m.cfg.Site.Points[id], On: site.Value{Num: 1}, Off: site.Value{Num: 0}}
			var why []string
			for _, p := range pm {
				if p.Point == id {
					why = append(why, fmt.Sprintf("group %s at door %s", p.Group, p.Door))
				}
			}
			for _, iv := range ivs {
				out.Windows = append(out.Windows, schedule.OutputWindow{From: iv.From, To: iv.To, Why: "access grant of " + strings.Join(why, ", ")})
			}
			outs = append(outs, out)
		}
	}
	return schedule.NewOverlay(m.plan.c, m.cfg.Site, from, to, rels, outs)
}

// nextRound is when the daily round is due: After past the last window of
// the day, the first such time not yet run.
func (m *Monitor) nextRound(now time.Time) time.Time {
	r := m.cfg.Site.Round
	if r == nil || !m.havePlan {
		return time.Time{}
	}
	for d := -1; d <= 1; d++ {
		end := m.sec.LastWindowEnd(now.AddDate(0, 0, d))
		if end.IsZero() {
			continue
		}
		at := end.Add(r.After)
		if at.After(m.roundDone) && at.After(now.Add(-12*time.Hour)) {
			return at
		}
	}
	return time.Time{}
}

// round runs the patrol round and publishes its events.
func (m *Monitor) round(ctx context.Context, now time.Time) security.RoundReport {
	actual := map[string]control.PointStatus{}
	if m.cfg.Points != nil {
		sts, err := m.cfg.Points(ctx)
		if err != nil {
			m.log.Warn("round: engine status unavailable; using the last readings", "err", err)
		}
		for _, st := range sts {
			if st.Site == m.cfg.Site.ID {
				actual[st.Point] = st
			}
		}
	}
	var checks []security.PointCheck
	for _, sp := range m.cfg.Site.Spaces {
		for _, b := range sp.Bindings {
			if isAuthorisation(m.cfg.Site, b.Point) {
				continue
			}
			o := m.values[b.Point.ID]
			if st, ok := actual[b.Point.ID]; ok && st.Actual != nil {
				if !o.ok || o.v != *st.Actual {
					o = observed{v: *st.Actual, ok: true, since: st.ActualAt}
				}
			}
			tol := 1e-6
			if b.Point.Scale != 0 {
				tol = math.Abs(b.Point.Scale) / 2
			}
			pt := b.Point
			checks = append(checks, security.PointCheck{Point: pt.ID, Space: sp.ID, What: what(pt),
				Want: b.Vacant.Num, Tolerance: tol, Got: o.v, OK: o.ok, Since: o.since,
				Format: func(v float64) string { return pt.Format(site.Value{Num: v, Label: pt.Label(v)}) }})
		}
	}
	rep := m.sec.Round(now, checks)
	m.publish(ctx, rep.Events)
	return rep
}

func isAuthorisation(s *site.Site, p *site.Point) bool {
	for _, a := range s.Areas {
		if a.Authorisation == p {
			return true
		}
	}
	return false
}

func what(p *site.Point) string {
	if p.Description != "" {
		return p.Description
	}
	return fmt.Sprintf("point %s", p.ID)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// saveSnapshot keeps the tracker's judgements and the doors' states for
// a restart or a reload.
func (m *Monitor) saveSnapshot(now time.Time) {
	if m.cfg.StateDir == "" {
		return
	}
	m.savedAt = now
	if m.occ != nil {
		writeSnapshot(m.log, "occupancy snapshot", m.snapshotPath(), m.occ.Snapshot)
	}
	m.saveSecurity()
}

// saveSecurity keeps the doors', areas' and leaks' state for a restart.
func (m *Monitor) saveSecurity() {
	if m.cfg.StateDir != "" {
		writeSnapshot(m.log, "door state snapshot", m.securityPath(), m.sec.Snapshot)
	}
}

// writeSnapshot replaces the file at path with what snapshot returns.
func writeSnapshot(log *slog.Logger, what, path string, snapshot func() ([]byte, error)) {
	data, err := snapshot()
	if err == nil {
		err = statefile.Write(path, data)
	}
	if err != nil {
		log.Error(what, "err", err)
	}
}
