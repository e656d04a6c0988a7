package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sources"
	"github.com/bmsgw/bmsgw/internal/store"
)

const reportSynopsis = "report noshows [-c CONFIG] [--since DURATION|TIME] [--until DURATION|TIME] [--site ID] [--format table|csv|json]"

// cmdReport dispatches the reports; the booking office's no-show report
// is the only one so far.
func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "noshows" {
		return cmdReportNoShows(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "energy" {
		return cmdReportEnergy(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintf(stdout, "usage: bmsgw %s\n       bmsgw %s\n", reportSynopsis, energySynopsis)
		return 0
	}
	what := "name a report"
	if len(args) > 0 {
		what = fmt.Sprintf("unknown report %q", args[0])
	}
	fmt.Fprintf(stderr, "bmsgw: report: %s; reports: noshows, energy\nusage: bmsgw %s\n       bmsgw %s\n", what, reportSynopsis, energySynopsis)
	return 2
}

// noShowRow is one organiser's line in the no-show report. Organiser is
// the booking feed's pseudonymous association id; nothing else about
// people is in the report.
type noShowRow struct {
	Organiser string `json:"organiser"`
	// Bookings counts the watched bookings that were due in the period:
	// shown, no-show and late.
	Bookings int `json:"bookings"`
	// NoShows counts those with no evidence from their deadline on.
	NoShows int `json:"no_shows"`
	// Late counts no-shows that evidence later brought back; they are
	// not in NoShows.
	Late int `json:"late"`
	// Rate is NoShows / Bookings, rounded to 4 decimals.
	Rate float64 `json:"rate"`
}

// bookingKey names a judgement as the live tracker keys it: a booking
// ("source:id") in one space of one site.
type bookingKey struct{ site, space, booking string }

// watchedBooking is an active booking of a space with no-show detection,
// as the feeds list it now.
type watchedBooking struct {
	organiser  string
	start, end time.Time
	// deadline is when it is judged: start + grace, no later than end.
	deadline time.Time
	// evidenceFrom is start - before, where its evidence range begins.
	evidenceFrom time.Time
}

// outcome is what became of one booking.
type outcome int

const (
	shown outcome = iota
	noShow
	late
)

// judged returns what the journal says of a booking: its last no_show
// event whose time passes in (a booking judged again after it moved has
// an older event at its old times), then the first in_use event stored
// after it. Evidence stamped before the deadline that arrived after it
// (a delayed reading) made the booking shown, as in the live tracker.
// ok is false when no no_show event passes in.
func judged(noShows, inUse []events.Event, in func(time.Time) bool) (o outcome, ns events.Event, ok bool) {
	for _, e := range noShows {
		if in(e.Time) && (!ok || e.ID > ns.ID) {
			ns, ok = e, true
		}
	}
	if !ok {
		return shown, ns, false
	}
	var back *events.Event
	for i, e := range inUse {
		if e.ID > ns.ID && (back == nil || e.ID < back.ID) {
			back = &inUse[i]
		}
	}
	switch {
	case back == nil:
		return noShow, ns, true
	case back.Time.Before(ns.Time):
		return shown, ns, true
	}
	return late, ns, true
}

// cmdReportNoShows prints the booking office's no-show report: per
// organiser, the watched bookings due in the period, the no-shows, the
// late arrivals and the no-show rate. Bookings come from the configured
// feeds (read as bmsgw bookings list does, on a copy of the saved feed
// state), the judgements from the no_show and in_use events of the
// journal, which is opened read-only so the report works while the
// gateway runs.
func cmdReportNoShows(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report noshows", stderr, reportSynopsis)
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	sinceFlag := fs.String("since", "30d", "start: a `duration` back from now (30d, 12h) or a time (2026-11-01, 2026-11-01T18:00, RFC 3339); bookings whose deadline (start + grace) is at or after it")
	untilFlag := fs.String("until", "", "end (exclusive): a duration back from now or a time; default now, and never later than now")
	siteID := fs.String("site", "", "only this site `id`")
	format := fs.String("format", "table", "output format: table, csv or json")
	if !parseOptions(fs, args) {
		return 2
	}
	usage := func(format string, args ...any) int { return usageError(stderr, format, args...) }
	switch *format {
	case "table", "json", "csv":
	default:
		return usage("--format %q: use table, csv or json", *format)
	}

	g, ok := loadConfig(*cfg, stderr)
	if !ok {
		return 1
	}
	sites := g.Sites
	loc := g.TimeZone
	if *siteID != "" {
		s := g.Site(*siteID)
		if s == nil {
			ids := make([]string, len(g.Sites))
			for i, s := range g.Sites {
				ids[i] = s.ID
			}
			fmt.Fprintf(stderr, "bmsgw: no site %q in %s; sites: %s\n", *siteID, g.File, strings.Join(ids, ", "))
			return 1
		}
		sites, loc = []*site.Site{s}, s.Location
	}
	now := time.Now()
	since, err := journalTime(*sinceFlag, now, loc)
	if err != nil {
		return usage("--since: %v", err)
	}
	until := now
	if *untilFlag != "" {
		if until, err = journalTime(*untilFlag, now, loc); err != nil {
			return usage("--until: %v", err)
		}
	}
	if !until.After(since) {
		return usage("--until %s is not after --since %s", until.In(loc).Format(time.RFC3339), since.In(loc).Format(time.RFC3339))
	}
	// A booking not yet due has not been judged: the period ends now at
	// the latest.
	end := earlier(until, now)

	db, ok := openJournalReadOnly(ctx, g, *cfg, ", so there are no no-shows to report", stderr)
	if !ok {
		return 1
	}
	defer db.Close()

	rows, good, err := noShowReport(ctx, g, db, sites, *siteID, since, end, stderr)
	if err == nil {
		err = writeNoShows(stdout, *format, rows, since, end, loc)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	if !good {
		// The rows are printed, but a feed that failed without a saved
		// copy contributed no bookings: the figures are incomplete.
		return 1
	}
	return 0
}

// noShowReport computes the rows for the bookings of sites due in [since,
// end); siteID narrows the journal's events to one site ("" for all). It
// writes feed failures and bookings that were not watched to stderr and
// reports whether every feed was good.
func noShowReport(ctx context.Context, g *config.Gateway, db *store.DB, sites []*site.Site, siteID string, since, end time.Time, stderr io.Writer) ([]noShowRow, bool, error) {
	var reach time.Duration // the longest grace + before of the watched spaces
	for _, s := range sites {
		for _, sp := range s.Spaces {
			if sp.NoShow != nil {
				reach = max(reach, sp.NoShow.Grace+sp.NoShow.Before)
			}
		}
	}

	// The watched bookings as the feeds list them now, due or not (a
	// booking moved out of the period must not count at its old time).
	feed := map[bookingKey]watchedBooking{}
	good := true
	if end.After(since) && reach > 0 {
		// The adapters' log is left out: a failure is reported below by
		// reportFeeds, skipped entries from the status.
		feeds, err := sources.Read(ctx, g, since.Add(-reach), end, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, false, err
		}
		for _, src := range g.Sources {
			// The live gateway refuses a feed without bookings in its
			// window as a likely broken export; for a past period, a
			// holiday, it is plausible.
			if errors.Is(feeds.Failed[src.ID], bookings.ErrEmptyFeed) {
				delete(feeds.Failed, src.ID)
				fmt.Fprintf(stderr, "note: booking source %s lists no bookings in the period\n", src.ID)
			}
			for _, w := range feeds.Status[src.ID].Warnings {
				fmt.Fprintf(stderr, "warning: booking source %s: %s\n", src.ID, w)
			}
		}
		good = feeds.Report(stderr)
		for _, s := range sites {
			merged := feeds.Site(s)
			for _, sp := range s.Spaces {
				ns := sp.NoShow
				if ns == nil {
					continue
				}
				for _, b := range merged.Bookings {
					if !b.Status.Active() || !slices.Contains(sp.Resources, b.Resource) {
						continue
					}
					feed[bookingKey{s.ID, sp.ID, b.String()}] = watchedBooking{
						organiser: b.Organiser, start: b.Start, end: b.End,
						deadline: earlier(b.Start.Add(ns.Grace), b.End), evidenceFrom: b.Start.Add(-ns.Before),
					}
				}
			}
		}
	}

	// The judgements. An in_use event may be stamped before its no_show
	// (a delayed reading), by up to grace + before; a day more covers
	// spaces whose detection was removed from the config since.
	evs, err := events.Query(ctx, db, events.Filter{
		Since: since.Add(-reach - 24*time.Hour), Kinds: []events.Kind{events.NoShow, events.InUse}, Site: siteID,
	})
	if err != nil {
		return nil, false, err
	}
	noShows, inUse := map[bookingKey][]events.Event{}, map[bookingKey][]events.Event{}
	for _, e := range evs {
		k := bookingKey{e.Site, e.Space, e.Booking}
		if e.Kind == events.NoShow {
			noShows[k] = append(noShows[k], e)
		} else {
			inUse[k] = append(inUse[k], e)
		}
	}

	byOrg := map[string]*noShowRow{}
	add := func(organiser string, o outcome) {
		r := byOrg[organiser]
		if r == nil {
			r = &noShowRow{Organiser: organiser}
			byOrg[organiser] = r
		}
		r.Bookings++
		switch o {
		case noShow:
			r.NoShows++
		case late:
			r.Late++
		}
	}
	inPeriod := func(t time.Time) bool { return !t.Before(since) && t.Before(end) }

	// The bookings the feeds list, at their current times and with their
	// current organiser (a correction is taken over). One without a
	// no_show event counts as shown only if the gateway was watching
	// from the start of its evidence range: its site's first journal
	// entry is the earliest the gateway can have watched (or the
	// retention horizon), so a gateway installed last week does not
	// report a month of attended bookings.
	watchedFrom := map[string]*time.Time{}
	unwatched := map[string]int{}
	for k, b := range feed {
		if !inPeriod(b.deadline) {
			continue
		}
		o, _, ok := judged(noShows[k], inUse[k], func(t time.Time) bool { return !t.Before(b.start) && !t.After(b.end) })
		if !ok {
			from, seen := watchedFrom[k.site]
			if !seen {
				if from, err = firstEntry(ctx, db, k.site); err != nil {
					return nil, false, err
				}
				watchedFrom[k.site] = from
			}
			if from == nil || b.evidenceFrom.Before(*from) {
				unwatched[k.site]++
				continue
			}
		}
		add(b.organiser, o)
	}
	// No-shows of bookings the feeds no longer list as active (cancelled
	// after the fact, or dropped by a feed that lists only what is to
	// come) still count, under the organiser their event names.
	for k, nss := range noShows {
		if _, listed := feed[k]; listed {
			continue
		}
		if o, ns, ok := judged(nss, inUse[k], inPeriod); ok {
			add(ns.Organiser, o)
		}
	}

	for _, s := range sites {
		n := unwatched[s.ID]
		if n == 0 {
			continue
		}
		if from := watchedFrom[s.ID]; from != nil {
			fmt.Fprintf(stderr, "note: %s: %d booking(s) due in the period began before the journal's first entry for the site (%s); the gateway was not watching them, so they are not counted\n",
				s.ID, n, from.In(s.Location).Format("2006-01-02 15:04 MST"))
		} else {
			fmt.Fprintf(stderr, "note: %s: the journal has no entries for the site, so the gateway never watched it; its %d booking(s) due in the period are not counted\n", s.ID, n)
		}
	}

	rows := make([]noShowRow, 0, len(byOrg))
	for _, r := range byOrg {
		r.Rate = rate(r.NoShows, r.Bookings)
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b noShowRow) int {
		return cmp.Or(cmp.Compare(b.NoShows, a.NoShows), cmp.Compare(a.Organiser, b.Organiser))
	})
	return rows, good, nil
}

// firstEntry returns the time of the first journal entry of a site, nil
// when it has none.
func firstEntry(ctx context.Context, db *store.DB, siteID string) (*time.Time, error) {
	es, err := journal.Query(ctx, db, journal.Filter{Site: siteID, First: 1})
	if err != nil || len(es) == 0 {
		return nil, err
	}
	return &es[0].Time, nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func rate(noShows, bookings int) float64 {
	if bookings == 0 {
		return 0
	}
	return math.Round(float64(noShows)/float64(bookings)*1e4) / 1e4
}

// writeNoShows renders the report. Only the table has a total row;
// exports leave summing to the spreadsheet.
func writeNoShows(w io.Writer, format string, rows []noShowRow, since, end time.Time, loc *time.Location) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Since      time.Time   `json:"since"`
			Until      time.Time   `json:"until"`
			Organisers []noShowRow `json:"organisers"`
		}{since.UTC(), end.UTC(), rows})
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"organiser", "bookings", "no_shows", "late", "rate"})
		for _, r := range rows {
			_ = cw.Write([]string{r.Organiser, strconv.Itoa(r.Bookings), strconv.Itoa(r.NoShows), strconv.Itoa(r.Late), strconv.FormatFloat(r.Rate, 'f', 4, 64)})
		}
		cw.Flush()
		return cw.Error()
	}
	const stamp = "2006-01-02 15:04 MST"
	if len(rows) == 0 {
		_, err := fmt.Fprintf(w, "no watched bookings were due between %s and %s\n", since.In(loc).Format(stamp), end.In(loc).Format(stamp))
		return err
	}
	fmt.Fprintf(w, "no-shows of the bookings due between %s and %s\n\n", since.In(loc).Format(stamp), end.In(loc).Format(stamp))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORGANISER\tBOOKINGS\tNO-SHOWS\tLATE\tRATE")
	var total noShowRow
	line := func(name string, r noShowRow) {
		// From the counts, not the rounded Rate: one rounding only.
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\n", name, r.Bookings, r.NoShows, r.Late, 100*float64(r.NoShows)/float64(r.Bookings))
	}
	for _, r := range rows {
		name := oneLine(r.Organiser)
		if name == "" {
			name = "(none)"
		}
		line(name, r)
		total.Bookings += r.Bookings
		total.NoShows += r.NoShows
		total.Late += r.Late
	}
	line("TOTAL", total)
	return tw.Flush()
}
