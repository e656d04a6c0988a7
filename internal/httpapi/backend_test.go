package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sitemon"
	"github.com/bmsgw/bmsgw/internal/sources"
	"github.com/bmsgw/bmsgw/internal/store"
)

// refBackend is the Backend of the tests: the reference gateway of
// configs/season.yaml (Valby Skole and Ørestad Skole) with the season's
// booking feeds, read with the booking adapters and compiled with the
// schedule compiler as bmsgw plan does, and a real event bus on a real
// journal in a temp dir. What it cannot have without devices (actual
// values, patrol readings) it reports as unknown, never made up.
type refBackend struct {
	g        *config.Gateway
	bookings map[string][]booking.Booking // merged, by site
	bus      *events.Bus
	now      time.Time

	mu        sync.Mutex
	overrides map[string]control.Override // by site/point
	journal   []string                    // "set site/point who" lines, in order
	notReady  error
}

// Reference instants: Thursday of DOMAIN.md section 5 in the season.
var (
	copenhagen = mustZone("Europe/Copenhagen")
	thursday   = time.Date(2026, 11, 26, 0, 0, 0, 0, copenhagen)
	// testNow is the API's clock: the Friday after, at noon, so that
	// Thursday's bookings have been judged for no-shows.
	testNow = thursday.Add(36 * time.Hour)
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// The test's lending period and powers for the energy report (the
// integrator's config declares them; these are the test's own, stated
// here so the expected numbers can be worked out by hand): the lending
// period is Monday to Friday 17:00-22:00, Saturday and Sunday
// 08:00-22:00; the gym has 30 kW of heating and 6 kW of lights, room 12
// 4 kW and 0.5 kW.
var testPowers = map[string][2]float64{"gym": {30, 6}, "room12": {4, 0.5}}

func lendingHours(day time.Weekday) (from, to int) {
	if day == time.Saturday || day == time.Sunday {
		return 8, 22
	}
	return 17, 22
}

func newRefBackend(t *testing.T) *refBackend {
	t.Helper()
	ctx := t.Context()
	g, err := config.Load(filepath.Join("..", "..", "configs", "season.yaml"))
	require.NoError(t, err)

	// The season's feeds, read as the gateway reads them.
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
	// The journal keeps card holders, as a site that declares it may
	// does: the API must still never show them.
	j, err := journal.Open(ctx, db, journal.Options{KeepPersonal: true, PersonalRetention: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	b.bus, err = events.NewBus(ctx, j, events.Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		b.bus.Close()
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	})
	return b
}

func (b *refBackend) Sites() []*site.Site { return b.g.Sites }

func (b *refBackend) Ready(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notReady
}

func (b *refBackend) site(id string) (*site.Site, error) {
	if s := b.g.Site(id); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("site %q: %w", id, ErrNotFound)
}

// compiler compiles a site over [from, to) with the feeds' bookings, as
// bmsgw plan does.
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

// Feeds are the season's two sources, both read.
func (b *refBackend) Feeds() []control.FeedStatus {
	return []control.FeedStatus{{Source: "leisure", OK: true, LastSuccess: b.now}, {Source: "timetable", OK: true, LastSuccess: b.now}}
}

// Status is what an engine without devices knows: every bound point's
// desired value from the plan (or the override), and no actual values.
func (b *refBackend) Status(context.Context) (control.Status, error) {
	st := control.Status{Time: b.now, Devices: []control.DeviceStatus{}, Points: []control.PointStatus{}}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.g.Sites {
		c, _ := b.compiler(s.ID, b.now.Add(-time.Hour), b.now.Add(time.Hour))
		for _, id := range s.PointIDs() {
			ch, ok := c.ValueAt(id, b.now)
			if !ok {
				continue
			}
			p := control.PointStatus{Site: s.ID, Point: id, Desired: &ch.Value.Num, DesiredText: ch.Point.Format(ch.Value),
				Source: control.SourceSchedule, Reason: ch.String()}
			if o, ok := b.overrides[s.ID+"/"+id]; ok {
				oc := o
				p.Override, p.Desired, p.Source, p.Reason = &oc, &oc.Value, control.SourceOverride, "override by "+o.Who+": "+o.Why
			}
			st.Points = append(st.Points, p)
		}
	}
	return st, nil
}

// SetOverride checks the override as the engine does and records it.
func (b *refBackend) SetOverride(_ context.Context, o control.Override) error {
	s, err := b.site(o.Site)
	if err != nil {
		return err
	}
	p := s.Points[o.Point]
	if p == nil || !p.Writable() {
		return fmt.Errorf("override %s/%s: no writable point by that name: %w", o.Site, o.Point, ErrNotFound)
	}
	if err := control.CheckWrite(control.Write{Point: p, Value: o.Value}); err != nil {
		return fmt.Errorf("override %s/%s = %g: %w", o.Site, o.Point, o.Value, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	o.Set = b.now
	b.overrides[o.Site+"/"+o.Point] = o
	b.journal = append(b.journal, "set "+o.Site+"/"+o.Point+" "+o.Who)
	return nil
}

func (b *refBackend) ClearOverride(_ context.Context, siteID, point, who string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.overrides[siteID+"/"+point]; !ok {
		return fmt.Errorf("clear override %s/%s: no override on that point", siteID, point)
	}
	delete(b.overrides, siteID+"/"+point)
	b.journal = append(b.journal, "clear "+siteID+"/"+point+" "+who)
	return nil
}

func (b *refBackend) Events() *events.Bus { return b.bus }

// Round runs the site's real patrol round on a monitor that has read
// nothing yet: every door and area is a finding ("not read yet").
func (b *refBackend) Round(_ context.Context, siteID string) (security.RoundReport, error) {
	s, err := b.site(siteID)
	if err != nil {
		return security.RoundReport{}, err
	}
	m, err := security.NewMonitor(s.ID, sitemon.SecuritySpec(s), s.Location)
	if err != nil {
		return security.RoundReport{}, err
	}
	return m.Round(b.now, nil), nil
}

// NoShowReport counts, per organiser, the active bookings of watched
// spaces whose deadline (start + grace) is in [from, to), and the
// no_show events of the journal for them. (The daemon's report also
// counts late arrivals from in_use events and bookings the gateway was
// not watching; the test needs the shape and real figures, not that.)
func (b *refBackend) NoShowReport(ctx context.Context, from, to time.Time, siteID string) (NoShowReport, error) {
	rep := NoShowReport{Since: from.UTC(), Until: to.UTC(), Site: siteID, Complete: true}
	evs, err := b.bus.Query(ctx, events.Filter{Kinds: []events.Kind{events.NoShow}, Site: siteID})
	if err != nil {
		return rep, err
	}
	noShow := map[string]bool{}
	for _, e := range evs {
		noShow[e.Site+"/"+e.Space+"/"+e.Booking] = true
	}
	rows := map[string]*NoShowCount{}
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
					r = &NoShowCount{Organiser: bk.Organiser}
					rows[bk.Organiser] = r
				}
				r.Bookings++
				if noShow[s.ID+"/"+sp.ID+"/"+bk.String()] {
					r.NoShows++
				}
			}
		}
	}
	for _, r := range rows {
		r.Rate = math.Round(float64(r.NoShows)/float64(r.Bookings)*1e4) / 1e4
		rep.Organisers = append(rep.Organisers, *r)
	}
	slices.SortFunc(rep.Organisers, func(a, b NoShowCount) int {
		return cmp.Or(cmp.Compare(b.NoShows, a.NoShows), cmp.Compare(a.Organiser, b.Organiser))
	})
	return rep, nil
}

// EnergyReport: comfort hours are the union of the space's compiled
// windows in the week; the baseline the test's lending period.
func (b *refBackend) EnergyReport(_ context.Context, siteID string, week Week) (EnergyReport, error) {
	s, err := b.site(siteID)
	if err != nil {
		return EnergyReport{}, err
	}
	from, to := week.Start(s.Location), week.End(s.Location)
	c, _ := b.compiler(siteID, from, to)
	rep := EnergyReport{Site: siteID, Week: week.String(), From: from, To: to}
	for _, sp := range s.Spaces {
		pw, ok := testPowers[sp.ID]
		if !ok {
			continue
		}
		var comfort, baseline time.Duration
		for _, w := range c.Windows(sp.ID) {
			comfort += earlier(w.End, to).Sub(later(w.Start, from))
		}
		for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
			f, t := lendingHours(d.Weekday())
			baseline += d.Add(time.Duration(t) * time.Hour).Sub(d.Add(time.Duration(f) * time.Hour))
		}
		es := EnergySpace{Space: sp.ID, Name: sp.Name, ComfortHours: comfort.Hours(), BaselineHours: baseline.Hours(),
			HeatingKW: pw[0], LightingKW: pw[1]}
		es.SavedHours = es.BaselineHours - es.ComfortHours
		es.SavedHeatingKWh, es.SavedLightingKWh = es.SavedHours*pw[0], es.SavedHours*pw[1]
		rep.Spaces = append(rep.Spaces, es)
		rep.Total.ComfortHours += es.ComfortHours
		rep.Total.BaselineHours += es.BaselineHours
		rep.Total.SavedHours += es.SavedHours
		rep.Total.SavedHeatingKWh += es.SavedHeatingKWh
		rep.Total.SavedLightingKWh += es.SavedLightingKWh
	}
	return rep, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

var _ Backend = (*refBackend)(nil)

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
