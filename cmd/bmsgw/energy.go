package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sources"
	"github.com/bmsgw/bmsgw/internal/store"
)

// sitePlan is what a site's plan was over [from, to): compiled from the
// feeds, with the no-shows the journal recorded released as the running
// gateway released them (from the no-show until the booking's end, or
// until evidence brought the space back).
type sitePlan struct {
	plan     schedule.PlanSource
	bookings []booking.Booking
	noShows  []events.Event
	inUse    []events.Event
}

func planOf(ctx context.Context, s *site.Site, from, to time.Time, bookings []booking.Booking, db *store.DB) (*sitePlan, error) {
	c := schedule.NewCompiler(s, from, to)
	c.SetBookings(bookings)
	sp := &sitePlan{plan: c, bookings: bookings}
	var evs []events.Event
	if db != nil {
		var err error
		evs, err = events.Query(ctx, db, events.Filter{Site: s.ID, Kinds: []events.Kind{events.NoShow, events.InUse, events.LightsEnabled},
			Since: from.Add(-48 * time.Hour), Until: to})
		if err != nil {
			return nil, err
		}
	}
	rels := cardLights(s, bookings, from, to, evs)
	byKey := map[string]booking.Booking{}
	for _, b := range bookings {
		byKey[b.String()] = b
	}
	for _, e := range evs {
		if e.Kind == events.LightsEnabled {
			continue
		}
		if e.Kind == events.InUse {
			sp.inUse = append(sp.inUse, e)
			continue
		}
		sp.noShows = append(sp.noShows, e)
		b, ok := byKey[e.Booking]
		space := s.Space(e.Space)
		if !ok || space == nil {
			continue
		}
		end := b.End
		for _, u := range evs {
			if u.Kind == events.InUse && u.Booking == e.Booking && u.Space == e.Space && u.Time.After(e.Time) && u.Time.Before(end) {
				end = u.Time
			}
		}
		for _, bd := range space.Bindings {
			rels = append(rels, schedule.Release{Point: bd.Point.ID, From: e.Time, To: end, Why: "no-show of booking " + e.Booking})
		}
	}
	sp.plan = schedule.NewOverlay(c, s, from, to, rels, nil)
	return sp, nil
}

// cardLights releases lights gated by cards (lights_by_card) as the
// running gateway held them off: outside every booking of their space,
// whatever lead, lag or base schedule the plan gives them, and inside a
// booking until the card that switched them on, as the journal recorded
// it (lights_enabled). A booking without that record counts as lit
// throughout: the journal cannot tell a booking nobody came to from a
// time the gateway did not watch, and a report must not claim savings it
// cannot show.
func cardLights(s *site.Site, bookings []booking.Booking, from, to time.Time, evs []events.Event) []schedule.Release {
	enabled := map[[2]string]time.Time{} // by space and booking
	for _, e := range evs {
		if e.Kind == events.LightsEnabled {
			enabled[[2]string{e.Space, e.Booking}] = e.Time
		}
	}
	var rels []schedule.Release
	for _, sp := range s.Spaces {
		l := sp.LightsByCard
		if l == nil {
			continue
		}
		var ws []booking.Booking
		for _, b := range bookings {
			if b.Status.Active() && slices.Contains(sp.Resources, b.Resource) {
				ws = append(ws, b)
			}
		}
		slices.SortFunc(ws, func(a, b booking.Booking) int { return a.Start.Compare(b.Start) })
		release := func(a, b time.Time, why string) {
			a, b = later(a, from), earlier(b, to)
			if !b.After(a) {
				return
			}
			for _, p := range l.Points {
				rels = append(rels, schedule.Release{Point: p.ID, From: a, To: b, Why: why})
			}
		}
		// Outside the bookings, merged where they touch or overlap.
		gapFrom := from
		for i := 0; i < len(ws); {
			start, end := ws[i].Start, ws[i].End
			for i++; i < len(ws) && !ws[i].Start.After(end); i++ {
				end = later(end, ws[i].End)
			}
			release(gapFrom, start, "lights only inside a booking")
			gapFrom = later(gapFrom, end)
		}
		release(gapFrom, to, "lights only inside a booking")
		// Inside a booking, until the recorded card.
		for _, b := range ws {
			if on, ok := enabled[[2]string{sp.ID, b.String()}]; ok && on.After(b.Start) {
				release(b.Start, earlier(on, b.End), "lights of booking "+b.String()+" waited for a card")
			}
		}
	}
	return rels
}

// openJournalIfAny opens the journal read-only, nil when the gateway has
// not run yet.
func openJournalIfAny(ctx context.Context, g *config.Gateway) (*store.DB, error) {
	db, err := store.OpenReadOnly(ctx, journalFile(g))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return db, err
}

const energySynopsis = "report energy [-c CONFIG] [--site ID] [--from DATE] [--to DATE] [--format table|csv|json|xlsx] [-o FILE]"

// cmdReportEnergy prints the energy report: comfort hours per space per
// ISO week under the gateway against the old practice's lending period,
// and the energy that saved.
func cmdReportEnergy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report energy", stderr, energySynopsis)
	var w window
	w.register(fs, "table")
	out := fs.String("o", "", "write to this `file` instead of standard output (needed for xlsx)")
	if !parseOptions(fs, args) {
		return 2
	}
	format := w.format
	if !slices.Contains([]string{"table", "csv", "json", "xlsx"}, format) {
		return usageError(stderr, "--format %q: use table, csv, json or xlsx", format)
	}
	if format == "xlsx" && *out == "" {
		fmt.Fprintln(stderr, "bmsgw: --format xlsx needs -o FILE.xlsx")
		return 2
	}
	w.format = "table"
	defaultWeek := w.from == ""
	g, sites, from, to, ok := w.resolve(stderr)
	if !ok {
		return 1
	}
	if defaultWeek {
		// This ISO week, Monday to Monday.
		loc := from.Location()
		d := site.DateOf(from).AddDays(-((int(from.Weekday()) + 6) % 7))
		from = site.Clock(0).On(d, loc)
		if w.to == "" {
			to = site.Clock(0).On(d.AddDays(7), loc)
		}
	}
	var rows []energy.SpaceWeek
	var days []energy.SpaceDay
	err := withPlans(ctx, g, sites, from, to, stderr, func(s *site.Site, spec *energy.Spec, sp *sitePlan) error {
		r, err := energy.WeekReport(spec, sp.plan, from, to)
		rows = append(rows, r...)
		if err == nil && format == "xlsx" {
			var d []energy.SpaceDay
			d, err = energy.DailyOpenData(spec, sp.plan, sp.bookings, sp.noShows, sp.inUse, from, to)
			days = append(days, d...)
		}
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	return writeOut(*out, stdout, stderr, func(w io.Writer) error {
		switch format {
		case "csv":
			return energy.WriteWeeksCSV(w, rows)
		case "json":
			return energy.WriteWeeksJSON(w, rows)
		case "xlsx":
			return energy.WriteXLSX(w, rows, days)
		}
		return energyTable(w, rows)
	})
}

const opendataSynopsis = "export opendata [-c CONFIG] [--site ID] [--from DATE] [--to DATE] [--format csv|json] [-o FILE]"

// cmdExport dispatches the exports; open data is the only one.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "opendata" {
		return cmdExportOpenData(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "bmsgw: export: name an export; exports: opendata\nusage: bmsgw %s\n", opendataSynopsis)
	return 2
}

// cmdExportOpenData writes the open data export: per space per day,
// booked hours, hours in use, no-shows, comfort hours; no personal data.
func cmdExportOpenData(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("export opendata", stderr, opendataSynopsis)
	var w window
	w.register(fs, "csv")
	out := fs.String("o", "", "write to this `file` instead of standard output")
	if !parseOptions(fs, args) {
		return 2
	}
	format := w.format
	if format != "csv" && format != "json" {
		return usageError(stderr, "--format %q: use csv or json", format)
	}
	g, sites, from, to, ok := w.resolve(stderr)
	if !ok {
		return 1
	}
	var days []energy.SpaceDay
	err := withPlans(ctx, g, sites, from, to, stderr, func(s *site.Site, spec *energy.Spec, sp *sitePlan) error {
		d, err := energy.DailyOpenData(spec, sp.plan, sp.bookings, sp.noShows, sp.inUse, from, to)
		days = append(days, d...)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	return writeOut(*out, stdout, stderr, func(w io.Writer) error {
		if format == "json" {
			return energy.WriteDaysJSON(w, days)
		}
		return energy.WriteDaysCSV(w, days)
	})
}

// withPlans reads the feeds and the journal once and calls f for every
// selected site that declares an energy report.
func withPlans(ctx context.Context, g *config.Gateway, sites []*site.Site, from, to time.Time, stderr io.Writer, f func(*site.Site, *energy.Spec, *sitePlan) error) error {
	feeds, err := sources.Read(ctx, g, from.Add(-48*time.Hour), to.Add(48*time.Hour), quietLogger(stderr))
	if err != nil {
		return err
	}
	feeds.Report(stderr)
	db, err := openJournalIfAny(ctx, g)
	if err != nil {
		return err
	}
	if db == nil {
		fmt.Fprintf(stderr, "note: no journal at %s yet: no no-shows are known, so every booking counts as used\n", journalFile(g))
	} else {
		defer db.Close()
	}
	n := 0
	for _, s := range sites {
		spec := energy.SpecOf(s)
		if spec == nil {
			continue
		}
		n++
		if err := spec.Validate(); err != nil {
			return fmt.Errorf("site %s: %w", s.ID, err)
		}
		sp, err := planOf(ctx, s, from, to, feeds.Site(s).Bookings, db)
		if err != nil {
			return err
		}
		if err := f(s, spec, sp); err != nil {
			return fmt.Errorf("site %s: %w", s.ID, err)
		}
	}
	if n == 0 {
		return errors.New("no selected site declares energy: in its mapping (see docs/mapping.md)")
	}
	return nil
}

// writeOut writes to a file (atomically) or to stdout.
func writeOut(path string, stdout, stderr io.Writer, write func(io.Writer) error) int {
	if path == "" {
		if err := write(stdout); err != nil {
			fmt.Fprintf(stderr, "bmsgw: %v\n", err)
			return 1
		}
		return 0
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err == nil {
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	return 0
}

func energyTable(w io.Writer, rows []energy.SpaceWeek) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SITE\tSPACE\tWEEK\tLENDING h\tBASELINE h\tCOMFORT h\tSAVED h\tLIGHT BASE h\tLIGHT h\tLIGHT SAVED h\tkWh SAVED\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d-W%02d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t\n", r.Site, r.Space, r.Year, r.Week,
			r.LendingHours, r.BaselineHours, r.ComfortHours, r.SavedHours, r.LightingBaselineHours, r.LightingHours, r.LightingSavedHours, r.KWhSaved)
	}
	t := energy.Total(rows)
	fmt.Fprintf(tw, "TOTAL\t\t\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t\n", t.LendingHours, t.BaselineHours, t.ComfortHours, t.SavedHours,
		t.LightingBaselineHours, t.LightingHours, t.LightingSavedHours, t.KWhSaved)
	return tw.Flush()
}
