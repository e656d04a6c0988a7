package webui_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/httpapi"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sitemon"
	"github.com/bmsgw/bmsgw/internal/sources"
	"github.com/bmsgw/bmsgw/internal/store"
)

// refBackend is the Backend the page is tested against: the reference
// gateway of configs/season.yaml with the season's booking feeds read by
// the booking adapters and compiled by the schedule compiler, as bmsgw
// plan does; the energy report computed by internal/energy from the
// mapping's energy: section; a real event bus on a real journal in a
// temp dir, which overrides are journalled to as the engine journals
// them; the doors and areas judged by the site's real security monitor
// from fixed readings. (The same idea as internal/httpapi's test
// backend, which is not exported.)
type refBackend struct {
	g        *config.Gateway
	bookings map[string][]booking.Booking // merged, by site
	bus      *events.Bus
	journal  *journal.Journal
	now      time.Time

	mu        sync.Mutex
	overrides map[string]control.Override // by site/point
}

var (
	copenhagen = mustZone("Europe/Copenhagen")
	// thursday is the reference Thursday of DOMAIN.md section 5, in the
	// week of Monday 2026-11-23 (ISO 2026-W48).
	thursday = time.Date(2026, 11, 26, 0, 0, 0, 0, copenhagen)
	// testNow is the API's clock: the Friday after, at noon.
	testNow = thursday.Add(36 * time.Hour)
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func newRefBackend(t *testing.T) *refBackend {
	t.Helper()
	ctx := t.Context()
	g, err := config.Load(filepath.Join("..", "..", "configs", "season.yaml"))
	require.NoError(t, err)

	from, to := time.Date(2026, 8, 1, 0, 0, 0, 0, copenhagen), time.Date(2027, 7, 1, 0, 0, 0, 0, copenhagen)
	feeds, err := sources.Read(ctx, g, from, to, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Empty(t, feeds.Failed)
	for _, s := range g.Sources {
		require.NotEmpty(t, feeds.BySource[s.ID], "source %s", s.ID)
	}
	b := &refBackend{g: g, bookings: map[string][]booking.Booking{}, now: testNow, overrides: map[string]control.Override{}}
	for _, s := range g.Sites {
		b.bookings[s.ID] = feeds.Site(s).Bookings
	}

	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	b.journal, err = journal.Open(ctx, db, journal.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	b.bus, err = events.NewBus(ctx, b.journal, events.Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		b.bus.Close()
		require.NoError(t, b.journal.Close(context.Background()))
		require.NoError(t, db.Close())
	})
	return b
}

func (b *refBackend) Sites() []*site.Site { return b.g.Sites }

func (b *refBackend) Ready(context.Context) error { return nil }

func (b *refBackend) site(id string) (*site.Site, error) {
	if s := b.g.Site(id); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("site %q: %w", id, httpapi.ErrNotFound)
}

func (b *refBackend) compiler(siteID string, from, to time.Time) (*schedule.Compiler, error) {
	s, err := b.site(siteID)
	if err != nil {
		return nil, err
	}
	c := schedule.NewCompiler(s, from, to)
	c.SetBookings(b.bookings[siteID])
	return c, nil
}

func (b *refBackend) Plan(_ context.Context, siteID string, from, to time.Time) ([]schedule.Change, error) {
	c, err := b.compiler(siteID, from, to)
	if err != nil {
		return nil, err
	}
	return c.Changes(), nil
}

func (b *refBackend) Windows(_ context.Context, siteID, space string, from, to time.Time) ([]schedule.Window, error) {
	c, err := b.compiler(siteID, from, to)
	if err != nil {
		return nil, err
	}
	return c.Windows(space), nil
}

// Status: every writable point's desired value from the plan (or the
// override); an engine without devices has no actual values.
// Feeds: the school's timetable export has been failing since the
// morning.
func (b *refBackend) Feeds() []control.FeedStatus {
	return []control.FeedStatus{
		{Source: "leisure", OK: true, LastSuccess: b.now.Add(-time.Minute), FetchedAt: b.now.Add(-time.Minute), Bookings: 412},
		{Source: "timetable", LastSuccess: b.now.Add(-9 * time.Hour), ConsecutiveFailures: 7, LastError: "timetable.csv: HTTP 500",
			FromCache: true, FetchedAt: b.now.Add(-9 * time.Hour), Bookings: 1480},
	}
}

func (b *refBackend) Status(context.Context) (control.Status, error) {
	st := control.Status{Time: b.now, Devices: []control.DeviceStatus{}, Points: []control.PointStatus{}, Feeds: b.Feeds()}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.g.Sites {
		c, err := b.compiler(s.ID, b.now.Add(-time.Hour), b.now.Add(time.Hour))
		if err != nil {
			return st, err
		}
		for _, id := range s.PointIDs() {
			if !s.Points[id].Writable() {
				continue
			}
			// The floodlights' outdoor unit is down in this fixture.
			p := control.PointStatus{Site: s.ID, Point: id, Source: control.SourceSchedule, DeviceDown: id == "pitch_floodlight_enable"}
			if ch, ok := c.ValueAt(id, b.now); ok {
				p.Desired, p.DesiredText, p.Reason = &ch.Value.Num, ch.Point.Format(ch.Value), ch.String()
			}
			if o, ok := b.overrides[s.ID+"/"+id]; ok {
				oc := o
				p.Override, p.Desired, p.Source, p.Reason = &oc, &oc.Value, control.SourceOverride, "override by "+o.Who+": "+o.Why
				p.DesiredText = s.Points[id].Format(site.Value{Num: o.Value, Label: s.Points[id].Label(o.Value)})
			}
			st.Points = append(st.Points, p)
		}
	}
	return st, nil
}

// SetOverride checks the override as the engine does, holds it and
// journals it.
func (b *refBackend) SetOverride(ctx context.Context, o control.Override) error {
	s, err := b.site(o.Site)
	if err != nil {
		return err
	}
	p := s.Points[o.Point]
	if p == nil || !p.Writable() {
		return fmt.Errorf("override %s/%s: no writable point by that name: %w", o.Site, o.Point, httpapi.ErrNotFound)
	}
	if err := control.CheckWrite(control.Write{Point: p, Value: o.Value}); err != nil {
		return fmt.Errorf("override %s/%s = %g: %w", o.Site, o.Point, o.Value, err)
	}
	if err := b.journal.Override(ctx, journal.OverrideEntry{Site: o.Site, Point: o.Point, Action: journal.OverrideSet,
		Value: site.Value{Num: o.Value, Label: p.Label(o.Value)}, Until: o.Until, Who: o.Who, Why: o.Why}); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	o.Set = b.now
	b.overrides[o.Site+"/"+o.Point] = o
	return nil
}

func (b *refBackend) ClearOverride(ctx context.Context, siteID, point, who string) error {
	b.mu.Lock()
	_, ok := b.overrides[siteID+"/"+point]
	delete(b.overrides, siteID+"/"+point)
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("clear override %s/%s: no override on that point", siteID, point)
	}
	return b.journal.Override(ctx, journal.OverrideEntry{Site: siteID, Point: point, Action: journal.OverrideClear, Who: who})
}

func (b *refBackend) Events() *events.Bus { return b.bus }

func (b *refBackend) Round(_ context.Context, siteID string) (security.RoundReport, error) {
	m, err := b.monitor(siteID)
	if err != nil {
		return security.RoundReport{}, err
	}
	return m.Round(b.now, nil), nil
}

// NoShowReport counts the watched bookings whose deadline is in [from,
// to) per organiser, and the journal's no_show events for them.
func (b *refBackend) NoShowReport(ctx context.Context, from, to time.Time, siteID string) (httpapi.NoShowReport, error) {
	rep := httpapi.NoShowReport{Since: from.UTC(), Until: to.UTC(), Site: siteID, Complete: true}
	evs, err := b.bus.Query(ctx, events.Filter{Kinds: []events.Kind{events.NoShow}, Site: siteID})
	if err != nil {
		return rep, err
	}
	noShow := map[string]bool{}
	for _, e := range evs {
		noShow[e.Site+"/"+e.Space+"/"+e.Booking] = true
	}
	rows := map[string]*httpapi.NoShowCount{}
	for _, s := range b.g.Sites {
		if siteID != "" && s.ID != siteID {
			continue
		}
		for _, sp := range s.Spaces {
			if sp.NoShow == nil {
				continue
			}
			for _, bk := range b.bookings[s.ID] {
				deadline := bk.Start.Add(sp.NoShow.Grace)
				if !bk.Status.Active() || !slices.Contains(sp.Resources, bk.Resource) || deadline.Before(from) || !deadline.Before(to) {
					continue
				}
				r := rows[bk.Organiser]
				if r == nil {
					r = &httpapi.NoShowCount{Organiser: bk.Organiser}
					rows[bk.Organiser] = r
				}
				r.Bookings++
				if noShow[s.ID+"/"+sp.ID+"/"+bk.String()] {
					r.NoShows++
				}
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		r := rows[k]
		r.Rate = float64(int(float64(r.NoShows)/float64(r.Bookings)*1e4+0.5)) / 1e4
		rep.Organisers = append(rep.Organisers, *r)
	}
	return rep, nil
}

// EnergyReport is internal/energy's week report of the mapping's
// energy: section over the compiled plan, as the daemon reports it.
func (b *refBackend) EnergyReport(_ context.Context, siteID string, week httpapi.Week) (httpapi.EnergyReport, error) {
	s, err := b.site(siteID)
	if err != nil {
		return httpapi.EnergyReport{}, err
	}
	if s.Energy == nil {
		return httpapi.EnergyReport{}, fmt.Errorf("%w: site %s declares no energy: section", httpapi.ErrNotFound, siteID)
	}
	spec := energy.SpecOf(s)
	from, to := week.Start(s.Location), week.End(s.Location)
	// The plan reaches a day beyond the week on each side, so that
	// windows crossing midnight at its edges are whole.
	c, err := b.compiler(siteID, from.AddDate(0, 0, -1), to.AddDate(0, 0, 1))
	if err != nil {
		return httpapi.EnergyReport{}, err
	}
	rows, err := energy.WeekReport(spec, c, from, to)
	if err != nil {
		return httpapi.EnergyReport{}, err
	}
	return httpapi.EnergyReportOf(s.ID, week, from, to, rows), nil
}

// Bookings lists the merged season bookings that overlap [from, to).
func (b *refBackend) Bookings(_ context.Context, siteID string, from, to time.Time) ([]booking.Booking, error) {
	if _, err := b.site(siteID); err != nil {
		return nil, err
	}
	var out []booking.Booking
	for _, bk := range b.bookings[siteID] {
		if bk.End.After(from) && bk.Start.Before(to) {
			out = append(out, bk)
		}
	}
	return out, nil
}

// readings are what the doors' and areas' inputs read: the gym entrance
// closed and locked, the gym side door held open by a bin (loop open,
// bolt not thrown) for an hour, the gym wing disarmed, wing B armed. The
// pitch gate and wing B entrance are never read.
var readings = map[string]float64{
	"gym_entrance_contact": 0, "gym_entrance_bolt": 1, "gym_entrance_unlock": 0, "gym_entrance_grants": 0,
	"gym_side_loop": 0, "gym_side_bolt": 0, "gym_side_handle": 0,
	"gym_wing_armed": 0, "wing_b_armed": 1, "gym_pir": 0, "gym_panic": 0,
}

func (b *refBackend) monitor(siteID string) (*security.Monitor, error) {
	s, err := b.site(siteID)
	if err != nil {
		return nil, err
	}
	m, err := security.NewMonitor(s.ID, sitemon.SecuritySpec(s), s.Location)
	if err != nil {
		return nil, err
	}
	at := b.now.Add(-time.Hour)
	m.Advance(at)
	for _, p := range slices.Sorted(maps.Keys(readings)) {
		if s.Points[p] != nil {
			m.Observe(p, readings[p], true, at)
		}
	}
	m.Advance(b.now)
	return m, nil
}

func (b *refBackend) Security(_ context.Context, siteID string) (httpapi.SiteSecurity, error) {
	m, err := b.monitor(siteID)
	if err != nil {
		return httpapi.SiteSecurity{}, err
	}
	return httpapi.SiteSecurity{Doors: m.Doors(), Areas: m.Areas(), Detectors: m.Detectors()}, nil
}

var (
	_ httpapi.Backend          = (*refBackend)(nil)
	_ httpapi.BookingLister    = (*refBackend)(nil)
	_ httpapi.SecurityReporter = (*refBackend)(nil)
)
