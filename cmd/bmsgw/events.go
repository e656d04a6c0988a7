package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/localapi"
)

const eventsSynopsis = "events [-c CONFIG] [--since DURATION|TIME] [--until DURATION|TIME] [--since-id ID] [--kind door_forced,panic] [--site ID] [--space ID] [--severity info|warning|alarm|critical] [--limit N] [--format table|json|csv] [--personal] [--follow]"

// cmdEvents prints the events of the configured gateway from its journal,
// which it opens read-only, so it works while the gateway runs; with
// --follow it streams them from the running gateway instead.
func cmdEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("events", stderr, eventsSynopsis)
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	since := fs.String("since", "24h", "start: a `duration` back from now (90m, 2h, 7d) or a time (2026-11-26, 2026-11-26T18:00, RFC 3339)")
	until := fs.String("until", "", "end (exclusive): a duration back from now or a time; default now")
	sinceID := fs.Int64("since-id", 0, "only events after this journal `id` (to resume)")
	kinds := fs.String("kind", "", "only these `kinds`, comma-separated (door_forced,panic); default all")
	siteID := fs.String("site", "", "only this site `id`")
	space := fs.String("space", "", "only this space `id`")
	severity := fs.String("severity", "", "only this `severity` or higher: info, warning, alarm, critical")
	limit := fs.Int("limit", 0, "only the latest `n` events; 0 for all")
	format := fs.String("format", "table", "output format: table, json or csv (with --follow: json is one object a line)")
	personal := fs.Bool("personal", false, "show who held the card, where the journal keeps it (table only; personal data)")
	follow := fs.Bool("follow", false, "stream the running gateway's events: those since --since, then live ones, until interrupted")
	if !parseOptions(fs, args) {
		return 2
	}
	usage := func(format string, args ...any) int { return usageError(stderr, format, args...) }
	switch *format {
	case "table", "json", "csv":
	default:
		return usage("--format %q: use table, json or csv", *format)
	}
	switch {
	case *personal && *format != "table":
		return usage("--personal cannot be used with --format %s: card holders are personal data and never go into exports; use the table", *format)
	case *personal && *follow:
		return usage("--personal cannot be used with --follow: the gateway never streams card holders")
	case *follow && *limit != 0:
		return usage("--limit does not apply to --follow; narrow with --since or --since-id")
	case *follow && *until != "":
		return usage("--until does not apply to --follow, which runs until interrupted")
	case *limit < 0:
		return usage("--limit %d: use a positive number, or 0 for all", *limit)
	case *sinceID < 0:
		return usage("--since-id %d: use a journal id, 0 or more", *sinceID)
	}
	f := events.Filter{SinceID: *sinceID, Site: *siteID, Space: *space, Limit: *limit, Personal: *personal}
	var err error
	if f.Kinds, err = events.ParseKinds(*kinds); err != nil {
		return usage("--kind: %v", err)
	}
	if f.MinSeverity, err = events.ParseSeverity(*severity); err != nil {
		return usage("--severity: %v", err)
	}

	g, ok := loadConfig(*cfg, stderr)
	if !ok {
		return 1
	}
	loc, from, to, err := journalWindow(g, *siteID, *since, *until, "events", stderr)
	if err != nil {
		return usage("%v", err)
	}
	f.Since, f.Until = from, to
	zone := func(siteID string) *time.Location {
		if s := g.Site(siteID); s != nil {
			return s.Location
		}
		return loc
	}
	w := eventWriter{format: *format, personal: *personal, zone: zone}

	if *follow {
		c, err := localapi.Dial(g.StateDir)
		if err != nil {
			fmt.Fprintf(stderr, "bmsgw: %v; --follow streams from the running gateway (bmsgw run -c %s)\n", err, *cfg)
			return 1
		}
		return w.follow(ctx, c, f, stdout, stderr)
	}

	db, ok := openJournalReadOnly(ctx, g, *cfg, "", stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	evs, err := events.Query(ctx, db, f)
	if err == nil {
		err = w.all(stdout, evs, f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	return 0
}

// eventWriter renders events as a table, JSON or CSV. Exports (JSON,
// CSV) have no card holder column at all; the table has one only with
// --personal.
type eventWriter struct {
	format   string
	personal bool
	zone     func(site string) *time.Location
}

var eventsCSVHeader = []string{"id", "time", "site", "space", "kind", "severity", "subject", "points", "booking", "organiser", "message"}

func (ew eventWriter) csvRow(e events.Event) []string {
	return []string{
		strconv.FormatInt(e.ID, 10), e.Time.UTC().Format(time.RFC3339Nano), e.Site, e.Space, string(e.Kind), string(e.Severity),
		e.Subject, strings.Join(e.Points, " "), e.Booking, e.Organiser, e.Message,
	}
}

func (ew eventWriter) tableHeader() string {
	h := "TIME\tSEVERITY\tKIND\tSITE\tSPACE\tSUBJECT\tMESSAGE"
	if ew.personal {
		h += "\tCARD HOLDER"
	}
	return h + "\n"
}

func (ew eventWriter) tableRow(e events.Event) string {
	row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", e.Time.In(ew.zone(e.Site)).Format("2006-01-02 15:04:05 MST"),
		e.Severity, e.Kind, e.Site, oneLine(e.Space), oneLine(e.Subject), oneLine(e.Message))
	if ew.personal {
		row += "\t" + oneLine(e.CardHolder)
	}
	return row + "\n"
}

// all writes a finished list of events.
func (ew eventWriter) all(w io.Writer, evs []events.Event, f events.Filter) error {
	switch ew.format {
	case "json":
		if evs == nil {
			evs = []events.Event{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(evs) // Event's JSON has no card holder
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write(eventsCSVHeader)
		for _, e := range evs {
			_ = cw.Write(ew.csvRow(e))
		}
		cw.Flush()
		return cw.Error()
	}
	if len(evs) == 0 {
		loc := ew.zone(f.Site)
		end := "now"
		if !f.Until.IsZero() {
			end = f.Until.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		_, err := fmt.Fprintf(w, "no events between %s and %s\n", f.Since.In(loc).Format("2006-01-02 15:04:05 MST"), end)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, ew.tableHeader())
	for _, e := range evs {
		fmt.Fprint(tw, ew.tableRow(e))
	}
	return tw.Flush()
}

// follow streams events from the gateway and writes each at once: the
// table without alignment across rows (tabs become two spaces), JSON as
// one object a line, CSV row by row.
func (ew eventWriter) follow(ctx context.Context, c *localapi.Client, f events.Filter, stdout, stderr io.Writer) int {
	var write func(events.Event) error
	switch ew.format {
	case "json":
		enc := json.NewEncoder(stdout)
		write = func(e events.Event) error { return enc.Encode(e) }
	case "csv":
		cw := csv.NewWriter(stdout)
		_ = cw.Write(eventsCSVHeader)
		cw.Flush()
		write = func(e events.Event) error {
			_ = cw.Write(ew.csvRow(e))
			cw.Flush()
			return cw.Error()
		}
	default:
		fmt.Fprint(stdout, strings.ReplaceAll(ew.tableHeader(), "\t", "  "))
		write = func(e events.Event) error {
			_, err := fmt.Fprint(stdout, strings.ReplaceAll(ew.tableRow(e), "\t", "  "))
			return err
		}
	}
	last := f.SinceID
	err := c.StreamEvents(ctx, f, func(e events.Event) error {
		last = e.ID
		return write(e)
	})
	if err == nil { // interrupted
		return 0
	}
	fmt.Fprintf(stderr, "bmsgw: %v\n", err)
	if last > 0 {
		fmt.Fprintf(stderr, "resume with --since-id %d\n", last)
	}
	return 1
}
