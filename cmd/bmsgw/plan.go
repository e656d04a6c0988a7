package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/adapters/modbus"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/httpapi"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sources"
)

// parseWhen parses a date (midnight in loc) or an RFC 3339 time.
func parseWhen(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04", s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a date (2026-11-26) nor an RFC 3339 time (2026-11-26T18:00:00+01:00)", s)
}

// window holds the common --from/--to/--site flags.
type window struct {
	cfg, from, to, site, format string
}

func (w *window) register(fs interface {
	StringVar(*string, string, string, string)
}, defFormat string) {
	fs.StringVar(&w.cfg, "c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	fs.StringVar(&w.from, "from", "", "start: a date (midnight in the site's zone) or an RFC 3339 time; default today")
	fs.StringVar(&w.to, "to", "", "end (exclusive); default one day after --from")
	fs.StringVar(&w.site, "site", "", "only this site `id`")
	fs.StringVar(&w.format, "format", defFormat, "output format: table, json or csv")
}

// resolve loads the config and picks the sites and the window. The window
// is taken in the zone of the first selected site.
func (w *window) resolve(stderr io.Writer) (*config.Gateway, []*site.Site, time.Time, time.Time, bool) {
	if !slices.Contains([]string{"table", "json", "csv"}, w.format) {
		fmt.Fprintf(stderr, "bmsgw: --format %q: use table, json or csv\n", w.format)
		return nil, nil, time.Time{}, time.Time{}, false
	}
	g, ok := loadConfig(w.cfg, stderr)
	if !ok {
		return nil, nil, time.Time{}, time.Time{}, false
	}
	sites := g.Sites
	if w.site != "" {
		s := g.Site(w.site)
		if s == nil {
			var ids []string
			for _, s := range g.Sites {
				ids = append(ids, s.ID)
			}
			fmt.Fprintf(stderr, "bmsgw: no site %q in %s; sites: %s\n", w.site, g.File, strings.Join(ids, ", "))
			return nil, nil, time.Time{}, time.Time{}, false
		}
		sites = []*site.Site{s}
	}
	loc := g.TimeZone
	if len(sites) > 0 {
		loc = sites[0].Location
	}
	var from, to time.Time
	var err error
	if w.from == "" {
		y, m, d := time.Now().In(loc).Date()
		from = time.Date(y, m, d, 0, 0, 0, 0, loc)
	} else if from, err = parseWhen(w.from, loc); err != nil {
		fmt.Fprintf(stderr, "bmsgw: --from: %v\n", err)
		return nil, nil, time.Time{}, time.Time{}, false
	}
	if w.to == "" {
		y, m, d := from.In(loc).Date()
		to = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	} else if to, err = parseWhen(w.to, loc); err != nil {
		fmt.Fprintf(stderr, "bmsgw: --to: %v\n", err)
		return nil, nil, time.Time{}, time.Time{}, false
	}
	if !to.After(from) {
		fmt.Fprintf(stderr, "bmsgw: --to %s is not after --from %s\n", to.Format(time.RFC3339), from.Format(time.RFC3339))
		return nil, nil, time.Time{}, time.Time{}, false
	}
	return g, sites, from, to, true
}

func quietLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// reportConflicts prints booking conflicts as warnings.
func reportConflicts(w io.Writer, s *site.Site, cs []booking.Conflict) {
	for _, c := range cs {
		fmt.Fprintf(w, "warning: %s: %s on %s %s–%s: %s vs %s\n", s.ID, c.Kind, c.Resource,
			c.Start.In(s.Location).Format("2006-01-02 15:04"), c.End.In(s.Location).Format("15:04"), c.Winner, c.Loser)
	}
}

func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", stderr, "plan [-c CONFIG] [--from DATE] [--to DATE] [--site ID] [--format table|json|csv] [--point ID] [--space ID]")
	var w window
	w.register(fs, "table")
	point := fs.String("point", "", "only this point `id`")
	space := fs.String("space", "", "only points of this space `id`")
	noInitial := fs.Bool("no-initial", false, "leave out the values in force at --from; show transitions only")
	requests := fs.Bool("requests", false, "print the exact Modbus read requests per device instead of the writes")
	if !parseOptions(fs, args) {
		return 2
	}
	g, sites, from, to, ok := w.resolve(stderr)
	if !ok {
		return 1
	}
	if *requests {
		return planRequests(stdout, stderr, sites)
	}
	// Bookings are read over a wider window than the plan, so that a
	// booking just after the end still counts through its lead time and
	// one just before the start through its lag.
	feeds, err := sources.Read(ctx, g, from.Add(-48*time.Hour), to.Add(48*time.Hour), quietLogger(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	feeds.Report(stderr)
	var changes []schedule.Change
	for _, s := range sites {
		merged := feeds.Site(s)
		reportConflicts(stderr, s, merged.Conflicts)
		c := schedule.NewCompiler(s, from, to)
		c.SetBookings(merged.Bookings)
		for _, ch := range c.Changes() {
			if *noInitial && ch.Initial {
				continue
			}
			if *point != "" && ch.Point.ID != *point {
				continue
			}
			if *space != "" && !slices.ContainsFunc(ch.Spaces, func(sp *site.Space) bool { return sp.ID == *space }) {
				continue
			}
			changes = append(changes, ch)
		}
	}
	schedule.SortChanges(changes)
	switch w.format {
	case "json":
		err = planJSON(stdout, changes)
	case "csv":
		err = planCSV(stdout, changes)
	default:
		err = planTable(stdout, changes, from, to)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	return 0
}

func spaceIDs(ch schedule.Change) string {
	ids := make([]string, len(ch.Spaces))
	for i, s := range ch.Spaces {
		ids[i] = s.ID
	}
	return strings.Join(ids, ",")
}

func reasonText(ch schedule.Change) string {
	var parts []string
	for _, r := range ch.Reasons {
		parts = append(parts, r.String())
	}
	s := strings.Join(parts, "; ")
	switch {
	case ch.Initial && ch.Occupied:
		return "in force at start: " + s
	case ch.Initial:
		return "in force at start: vacant"
	case !ch.Occupied:
		return "ended: " + s
	}
	return s
}

func planTable(w io.Writer, changes []schedule.Change, from, to time.Time) error {
	if len(changes) == 0 {
		_, err := fmt.Fprintf(w, "no point writes between %s and %s\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSITE\tSPACE\tPOINT\tVALUE\tREASON")
	for _, ch := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ch.At.Format("Mon 2006-01-02 15:04 -07:00"), ch.Site.ID, spaceIDs(ch), ch.Point.ID, ch.Point.Format(ch.Value), reasonText(ch))
	}
	return tw.Flush()
}

func planJSON(w io.Writer, changes []schedule.Change) error {
	out := make([]httpapi.PlanChange, 0, len(changes))
	for _, ch := range changes {
		out = append(out, httpapi.PlanChangeOf(ch))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func planCSV(w io.Writer, changes []schedule.Change) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "site", "spaces", "point", "value", "label", "occupied", "initial", "reason"})
	for _, ch := range changes {
		_ = cw.Write([]string{
			ch.At.Format(time.RFC3339), ch.Site.ID, spaceIDs(ch), ch.Point.ID,
			strconv.FormatFloat(ch.Value.Num, 'f', -1, 64), ch.Value.Label,
			strconv.FormatBool(ch.Occupied), strconv.FormatBool(ch.Initial), reasonText(ch),
		})
	}
	cw.Flush()
	return cw.Error()
}

// planRequests prints, per Modbus connection, the read requests the
// gateway makes to poll every point: the coalesced plan within the
// connection's limits.
func planRequests(stdout, stderr io.Writer, sites []*site.Site) int {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tCONNECTION\tUNIT\tFUNCTION\tADDRESSES\tCOUNT\tPOINTS")
	total, points := 0, 0
	for _, s := range sites {
		for _, c := range s.SortedConnections() {
			if c.Modbus == nil {
				continue
			}
			d, err := newDriver("", s, c, quietLogger(stderr))
			if err != nil {
				fmt.Fprintf(stderr, "bmsgw: site %s connection %s: %v\n", s.ID, c.ID, err)
				return 1
			}
			var pts []*site.Point
			for _, id := range s.PointIDs() {
				if p := s.Points[id]; p.Connection == c.ID {
					pts = append(pts, p)
				}
			}
			for _, r := range d.(*modbus.Client).Requests(pts) {
				fmt.Fprintf(tw, "%s\t%s\t%d\tfc%d %s\t%d-%d\t%d\t%s\n", s.ID, c.ID, r.Unit, r.Function, r.FunctionName, r.Start, int(r.Start)+int(r.Quantity)-1, r.Quantity, strings.Join(r.Points, ", "))
				total++
			}
			points += len(pts)
			_ = d.Close()
		}
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	fmt.Fprintf(stdout, "%d requests read %d Modbus points\n", total, points)
	return 0
}
