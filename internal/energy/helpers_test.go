package energy_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/adapters/bookings"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sources"
	"github.com/bmsgw/bmsgw/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reference is the season config's reference site with the bookings of
// the season feeds, read as the gateway reads them.
type reference struct {
	site     *site.Site
	bookings []booking.Booking
}

// loadSeason loads configs/season.yaml (which includes
// mappings/valby-skole.yaml), reads its feeds for [from, to) with the
// booking adapters and merges Valby Skole's sources by precedence, as
// bmsgw plan does.
func loadSeason(t *testing.T, from, to time.Time) reference {
	t.Helper()
	g, err := config.Load(filepath.Join("..", "..", "configs", "season.yaml"))
	require.NoError(t, err)
	s := g.Site("valby-skole")
	require.NotNil(t, s)
	feeds, err := sources.Read(t.Context(), g, from, to, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for id, err := range feeds.Failed {
		// A short window may hold none of a feed's bookings.
		require.ErrorIs(t, err, bookings.ErrEmptyFeed, "source %s", id)
	}
	return reference{site: s, bookings: feeds.Site(s).Bookings}
}

// compile compiles the reference site's plan over [from, to).
func (r reference) compile(from, to time.Time) *schedule.Compiler {
	c := schedule.NewCompiler(r.site, from, to)
	c.SetBookings(r.bookings)
	return c
}

// find returns the booking of a resource starting at start.
func (r reference) find(t *testing.T, resource string, start time.Time) booking.Booking {
	t.Helper()
	i := slices.IndexFunc(r.bookings, func(b booking.Booking) bool {
		return b.Resource == resource && b.Start.Equal(start) && b.Status.Active()
	})
	require.GreaterOrEqual(t, i, 0, "no active booking of %s at %s", resource, start)
	return r.bookings[i]
}

var cph = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at is a wall-clock time in Copenhagen.
func at(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, cph) }

func days(ds ...time.Weekday) (out [7]bool) {
	for _, d := range ds {
		out[d] = true
	}
	return out
}

// lending is the lending period the tests declare: weekday evenings
// 17:00-22:00 and weekends 08:00-22:00, closed on public holidays.
func lending(s *site.Site) *site.Schedule {
	return &site.Schedule{
		ID: "lending",
		Weekly: []site.WeeklyPeriod{
			{Days: days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday), From: 17 * 60, To: 22 * 60},
			{Days: days(time.Saturday, time.Sunday), From: 8 * 60, To: 22 * 60},
		},
		Exceptions: []*site.Calendar{s.Calendars["public_holidays"]},
	}
}

// referenceSpec declares the gym (30 kW air handler, 8 kW hall lights)
// and classroom 12 (4 kW radiators, 0.6 kW lights).
func referenceSpec(s *site.Site) *energy.Spec {
	return &energy.Spec{Site: s, Lending: lending(s), Spaces: []energy.SpaceSpec{
		{Space: "gym", HeatingKW: 30, LightingKW: 8, Heating: []string{"gym_ahu.mode", "gym_ahu.setpoint"}, Lighting: []string{"gym_lights_enable"}},
		{Space: "room12", HeatingKW: 4, LightingKW: 0.6, Heating: []string{"room12.mode", "room12.heat_setpoint"}, Lighting: []string{"room12.lights_enable"}},
	}}
}

// releaseSpace is what the site monitor does with a no-show: every
// binding of the space is released for [from, to).
func releaseSpace(s *site.Site, spaceID string, from, to time.Time) []schedule.Release {
	var out []schedule.Release
	for _, b := range s.Space(spaceID).Bindings {
		out = append(out, schedule.Release{Point: b.Point.ID, From: from, To: to, Why: "no-show"})
	}
	return out
}

// journalEvents stores events in a real journal through the event bus,
// as the gateway does, and reads the no_show and in_use events back with
// events.Query, as the integrator's report command will.
func journalEvents(t *testing.T, evs ...events.Event) (noShows, inUse []events.Event) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	j, err := journal.Open(ctx, db, journal.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	bus, err := events.NewBus(ctx, j, events.Options{})
	require.NoError(t, err)
	defer func() {
		bus.Close()
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	}()
	for _, e := range evs {
		// One at a time: the order they are stored in matters.
		_, err := bus.Publish(ctx, e)
		require.NoError(t, err)
	}
	got, err := events.Query(ctx, db, events.Filter{Kinds: []events.Kind{events.NoShow, events.InUse}, Site: "valby-skole"})
	require.NoError(t, err)
	require.Len(t, got, len(evs))
	for _, e := range got {
		if e.Kind == events.NoShow {
			noShows = append(noShows, e)
		} else {
			inUse = append(inUse, e)
		}
	}
	return noShows, inUse
}
