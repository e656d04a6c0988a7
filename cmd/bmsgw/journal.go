package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/store"
)

// journalFile is the journal database in the state directory.
func journalFile(g *config.Gateway) string { return filepath.Join(g.StateDir, "journal.db") }

// journalCloseTimeout bounds the journal's last commit at shutdown.
const journalCloseTimeout = 10 * time.Second

// openJournal opens the journal of g's state directory read-write for
// bmsgw run and returns it as the engine's control.Journal, with the
// function that drains and closes it (call it after the engine stopped).
// openJournal opens the gateway's journal. The engine's records name
// values by the labels of the config current returns (the running one,
// which a reload replaces).
func openJournal(ctx context.Context, g *config.Gateway, current func() *config.Gateway, logger *slog.Logger) (control.Journal, *journal.Journal, func(), error) {
	db, err := store.Open(ctx, journalFile(g))
	if err != nil {
		return nil, nil, nil, err
	}
	opts := journalOptions(g)
	opts.Logger = logger
	j, err := journal.Open(ctx, db, opts)
	if err != nil {
		_ = db.Close()
		return nil, nil, nil, err
	}
	closeJournal := func() {
		// ctx is usually cancelled by now (SIGTERM); the last batch must
		// still be committed, within a bound.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalCloseTimeout)
		defer cancel()
		if err := j.Close(cctx); err != nil {
			logger.Error("journal close failed", "err", err)
		}
		if err := db.Close(); err != nil {
			logger.Error("journal close failed", "err", err)
		}
	}
	return engineJournal{j: j, g: current}, j, closeJournal, nil
}

// journalOptions are the journal's retention settings from the config.
func journalOptions(g *config.Gateway) journal.Options {
	opts := journal.Options{Retention: g.Retention}
	for _, s := range g.Sites {
		if s.KeepCardHolder {
			// Card numbers are kept only for the sites that say so (the
			// event bus drops the others'), and erased after their own
			// retention.
			opts.KeepPersonal, opts.PersonalRetention = true, g.CardHolderRetention
		}
	}
	return opts
}

// engineJournal records the control engine's records in the journal,
// naming values by the labels of the points in the config.
type engineJournal struct {
	j *journal.Journal
	g func() *config.Gateway
}

var _ control.Journal = engineJournal{}

// value labels v as the point's labels name it.
func (e engineJournal) value(siteID, pointID string, v float64) site.Value {
	if s := e.g().Site(siteID); s != nil {
		if p := s.Points[pointID]; p != nil {
			return site.Value{Num: v, Label: p.Label(v)}
		}
	}
	return site.Value{Num: v}
}

// Writes commits a batch of write records together.
func (e engineJournal) Writes(ctx context.Context, rs []control.WriteRecord) error {
	es := make([]journal.Entry, len(rs))
	for i, r := range rs {
		w := journal.WriteEntry{
			Site: r.Site, Point: r.Point, New: e.value(r.Site, r.Point, r.New), Reason: r.Reason,
			Source: journal.Source(r.Source), Err: r.Err, Attempt: r.Attempt, DryRun: r.DryRun,
		}
		if r.Old != nil {
			old := e.value(r.Site, r.Point, *r.Old)
			w.Old = &old
		}
		es[i] = journal.Entry{Time: r.Time, Write: &w}
	}
	_, err := e.j.AppendAll(ctx, es)
	return err
}

func (e engineJournal) Override(ctx context.Context, r control.OverrideRecord) error {
	_, err := e.j.Append(ctx, journal.Entry{Time: r.Time, Override: &journal.OverrideEntry{
		Site: r.Site, Point: r.Point, Action: journal.OverrideAction(r.Action), Value: e.value(r.Site, r.Point, r.Value),
		Until: r.Until, Who: r.Who, Why: r.Why,
	}})
	return err
}

func (e engineJournal) Device(ctx context.Context, r control.DeviceRecord) error {
	_, err := e.j.Append(ctx, journal.Entry{Time: r.Time, Device: &journal.DeviceEntry{
		Site: r.Site, Connection: r.Connection, Device: r.Device, Up: r.Up, Err: r.Err,
	}})
	return err
}

func (e engineJournal) Event(ctx context.Context, r control.EventRecord) error {
	_, err := e.j.Append(ctx, journal.Entry{Time: r.Time, Event: &journal.EventEntry{
		Site: r.Site, Space: r.Space, Kind: r.Kind, Severity: journal.Severity(r.Severity), Message: r.Message,
	}})
	return err
}

const journalSynopsis = "journal [-c CONFIG] [--since DURATION|TIME] [--until DURATION|TIME] [--site ID] [--point ID] [--kind write,override,device,event] [--limit N] [--format table|json|csv]"

// cmdJournal prints the journal of the configured gateway. It opens the
// database read-only, so it works while the gateway runs.
func cmdJournal(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("journal", stderr, journalSynopsis)
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	since := fs.String("since", "24h", "start: a `duration` back from now (90m, 2h, 7d) or a time (2026-11-26, 2026-11-26T18:00, RFC 3339)")
	until := fs.String("until", "", "end (exclusive): a duration back from now or a time; default now")
	siteID := fs.String("site", "", "only this site `id`")
	point := fs.String("point", "", "only this point `id` (writes and overrides)")
	kinds := fs.String("kind", "", "only these `kinds`, comma-separated: write, override, device, event; default all")
	limit := fs.Int("limit", 0, "only the latest `n` entries; 0 for all")
	format := fs.String("format", "table", "output format: table, json or csv")
	if !parseOptions(fs, args) {
		return 2
	}
	usage := func(format string, args ...any) int { return usageError(stderr, format, args...) }
	switch *format {
	case "table", "json", "csv":
	default:
		return usage("--format %q: use table, json or csv", *format)
	}
	if *limit < 0 {
		return usage("--limit %d: use a positive number, or 0 for all", *limit)
	}
	f := journal.Filter{Site: *siteID, Point: *point, Limit: *limit}
	for k := range strings.SplitSeq(*kinds, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if !journal.Kind(k).Valid() {
			return usage("--kind %q: use write, override, device or event", k)
		}
		f.Kinds = append(f.Kinds, journal.Kind(k))
	}

	g, ok := loadConfig(*cfg, stderr)
	if !ok {
		return 1
	}
	loc, from, to, err := journalWindow(g, *siteID, *since, *until, "journal", stderr)
	if err != nil {
		return usage("%v", err)
	}
	f.Since, f.Until = from, to

	db, ok := openJournalReadOnly(ctx, g, *cfg, "", stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	entries, err := journal.Query(ctx, db, f)
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}

	jf := journalFormatter{g: g, loc: loc}
	switch *format {
	case "json":
		err = jf.json(stdout, entries)
	case "csv":
		err = jf.csv(stdout, entries)
	default:
		err = jf.table(stdout, entries, f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	return 0
}

// journalTime parses --since and --until: a duration back from now
// (Go syntax, plus whole days: 7d) or a time as parseWhen takes it.
func journalTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if d, ok := journalAgo(s); ok {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now cannot be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := parseWhen(s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (2h, 7d) nor a time (2026-11-26, 2026-11-26T18:00, RFC 3339)", s)
	}
	return t, nil
}

// journalAgo parses a Go duration or a number of days ("7d").
func journalAgo(s string) (time.Duration, bool) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, true
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil {
			return time.Duration(days) * 24 * time.Hour, true
		}
	}
	return 0, false
}

// journalFormatter renders entries, formatting values with the units and
// labels of the points in the current config where the point still
// exists.
type journalFormatter struct {
	g   *config.Gateway
	loc *time.Location
}

func (jf journalFormatter) point(siteID, pointID string) *site.Point {
	if s := jf.g.Site(siteID); s != nil {
		return s.Points[pointID]
	}
	return nil
}

// zone is the zone entries of the site are shown in.
func (jf journalFormatter) zone(siteID string) *time.Location {
	if s := jf.g.Site(siteID); s != nil {
		return s.Location
	}
	return jf.loc
}

// show renders a value for people: "comfort", "21.5 °C", "true".
func (jf journalFormatter) show(siteID, pointID string, v site.Value) string {
	if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
		return strconv.FormatFloat(v.Num, 'f', -1, 64) // a bool point would say "true"
	}
	if p := jf.point(siteID, pointID); p != nil {
		return p.Format(v)
	}
	if v.Label != "" {
		return v.Label
	}
	return strconv.FormatFloat(v.Num, 'f', -1, 64)
}

// oneLine folds free text (error messages, reasons) onto one line for the
// table.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (jf journalFormatter) table(w io.Writer, entries []journal.Entry, f journal.Filter) error {
	if len(entries) == 0 {
		end := "now"
		if !f.Until.IsZero() {
			end = f.Until.In(jf.loc).Format("2006-01-02 15:04:05 MST")
		}
		_, err := fmt.Fprintf(w, "no journal entries between %s and %s\n", f.Since.In(jf.loc).Format("2006-01-02 15:04:05 MST"), end)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tSITE\tPOINT\tCHANGE\tWHY\tRESULT")
	for _, e := range entries {
		var subject, change, why, result string
		siteID := e.Site()
		switch {
		case e.Write != nil:
			wr := e.Write
			subject = wr.Point
			old := "?"
			if wr.Old != nil {
				old = jf.show(siteID, wr.Point, *wr.Old)
			}
			change = old + " → " + jf.show(siteID, wr.Point, wr.New)
			why = string(wr.Source)
			if wr.Reason != "" {
				why += ": " + wr.Reason
			}
			switch {
			case !wr.OK():
				result = "error: " + wr.Err
			case wr.DryRun:
				result = "dry run"
			default:
				result = "ok"
			}
			if wr.Attempt > 1 {
				result += fmt.Sprintf(" (attempt %d)", wr.Attempt)
			}
		case e.Override != nil:
			o := e.Override
			subject = o.Point
			switch o.Action {
			case journal.OverrideSet:
				change = "override → " + jf.show(siteID, o.Point, o.Value)
				if !o.Until.IsZero() {
					change += " until " + o.Until.In(jf.zone(siteID)).Format("2006-01-02 15:04")
				}
			default:
				change = "override " + map[journal.OverrideAction]string{journal.OverrideClear: "cleared", journal.OverrideExpired: "expired"}[o.Action]
			}
			why = o.Why
			if o.Who != "" {
				why = o.Who + ": " + o.Why
			}
			why = strings.TrimSuffix(why, ": ")
		case e.Device != nil:
			d := e.Device
			subject = d.Connection
			if d.Device != "" {
				subject += "/" + d.Device
			}
			change = "down"
			if d.Up {
				change = "up"
			}
			why = d.Err
		case e.Event != nil:
			ev := e.Event
			subject, change, why, result = ev.Space, ev.Kind, ev.Message, string(ev.Severity)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.In(jf.zone(siteID)).Format("2006-01-02 15:04:05 MST"),
			e.Kind, siteID, oneLine(subject), oneLine(change), oneLine(why), oneLine(result))
	}
	return tw.Flush()
}

// journalValue is a value in JSON output: the number (null for NaN and
// infinities, which JSON cannot hold), its label and how people see it.
type journalValue struct {
	Value   *float64 `json:"value"`
	Label   string   `json:"label,omitempty"`
	Display string   `json:"display"`
}

// journalRow is one entry in JSON output: the common fields and those of
// its kind.
type journalRow struct {
	ID         int64         `json:"id"`
	Time       string        `json:"time"`
	Kind       journal.Kind  `json:"kind"`
	Site       string        `json:"site"`
	Point      string        `json:"point,omitempty"`
	Connection string        `json:"connection,omitempty"`
	Device     string        `json:"device,omitempty"`
	Space      string        `json:"space,omitempty"`
	Old        *journalValue `json:"old,omitempty"`
	New        *journalValue `json:"new,omitempty"`
	Source     string        `json:"source,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	OK         *bool         `json:"ok,omitempty"`
	Error      string        `json:"error,omitempty"`
	Attempt    int           `json:"attempt,omitempty"`
	DryRun     bool          `json:"dry_run,omitempty"`
	Action     string        `json:"action,omitempty"`
	Value      *journalValue `json:"value,omitempty"`
	Until      string        `json:"until,omitempty"`
	Who        string        `json:"who,omitempty"`
	Why        string        `json:"why,omitempty"`
	State      string        `json:"state,omitempty"`
	Event      string        `json:"event,omitempty"`
	Severity   string        `json:"severity,omitempty"`
	Message    string        `json:"message,omitempty"`
}

func (jf journalFormatter) value(siteID, pointID string, v site.Value) *journalValue {
	jv := &journalValue{Label: v.Label, Display: jf.show(siteID, pointID, v)}
	if !math.IsNaN(v.Num) && !math.IsInf(v.Num, 0) {
		jv.Value = &v.Num
	}
	return jv
}

func (jf journalFormatter) row(e journal.Entry) journalRow {
	r := journalRow{ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano), Kind: e.Kind, Site: e.Site(), Point: e.Point()}
	switch {
	case e.Write != nil:
		w := e.Write
		if w.Old != nil {
			r.Old = jf.value(r.Site, r.Point, *w.Old)
		}
		r.New = jf.value(r.Site, r.Point, w.New)
		ok := w.OK()
		r.Source, r.Reason, r.OK, r.Error, r.Attempt, r.DryRun = string(w.Source), w.Reason, &ok, w.Err, w.Attempt, w.DryRun
	case e.Override != nil:
		o := e.Override
		r.Action, r.Who, r.Why = string(o.Action), o.Who, o.Why
		if o.Action == journal.OverrideSet {
			r.Value = jf.value(r.Site, r.Point, o.Value)
		}
		if !o.Until.IsZero() {
			r.Until = o.Until.UTC().Format(time.RFC3339)
		}
	case e.Device != nil:
		d := e.Device
		r.Connection, r.Device, r.Error, r.State = d.Connection, d.Device, d.Err, "down"
		if d.Up {
			r.State = "up"
		}
	case e.Event != nil:
		ev := e.Event
		r.Space, r.Event, r.Severity, r.Message = ev.Space, ev.Kind, string(ev.Severity), ev.Message
	}
	return r
}

func (jf journalFormatter) json(w io.Writer, entries []journal.Entry) error {
	rows := make([]journalRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, jf.row(e))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// journalCSVHeader are the CSV columns: every field of every kind, empty
// where the kind has none.
var journalCSVHeader = []string{
	"id", "time", "kind", "site", "point", "connection", "device", "space",
	"old", "old_value", "new", "new_value", "source", "reason", "ok", "error", "attempt", "dry_run",
	"action", "until", "who", "why", "state", "event", "severity", "message",
}

func (jf journalFormatter) csv(w io.Writer, entries []journal.Entry) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(journalCSVHeader)
	num := func(v *journalValue) (string, string) {
		if v == nil {
			return "", ""
		}
		if v.Value == nil {
			return v.Display, ""
		}
		return v.Display, strconv.FormatFloat(*v.Value, 'f', -1, 64)
	}
	for _, e := range entries {
		r := jf.row(e)
		nv := r.New
		if nv == nil {
			nv = r.Value // an override's value goes in the new column
		}
		old, oldNum := num(r.Old)
		nw, newNum := num(nv)
		ok, attempt, dry := "", "", ""
		if r.OK != nil {
			ok, attempt, dry = strconv.FormatBool(*r.OK), strconv.Itoa(r.Attempt), strconv.FormatBool(r.DryRun)
		}
		_ = cw.Write([]string{
			strconv.FormatInt(r.ID, 10), r.Time, string(r.Kind), r.Site, r.Point, r.Connection, r.Device, r.Space,
			old, oldNum, nw, newNum, r.Source, r.Reason, ok, r.Error, attempt, dry,
			r.Action, r.Until, r.Who, r.Why, r.State, r.Event, r.Severity, r.Message,
		})
	}
	cw.Flush()
	return cw.Error()
}

// journalWindow resolves --site, --since and --until the way bmsgw
// journal and bmsgw events read them: times in the site's zone (the
// gateway's when no site is named), durations back from now. what names
// the records in the note for an unknown site.
func journalWindow(g *config.Gateway, siteID, since, until, what string, stderr io.Writer) (loc *time.Location, from, to time.Time, err error) {
	// A journal of a Copenhagen school reads in Copenhagen time wherever
	// it is printed.
	loc = g.TimeZone
	if s := g.Site(siteID); s != nil {
		loc = s.Location
	} else if siteID != "" {
		fmt.Fprintf(stderr, "note: no site %q in %s; showing its %s anyway\n", siteID, g.File, what)
	}
	now := time.Now()
	if from, err = journalTime(since, now, loc); err != nil {
		return nil, from, to, fmt.Errorf("--since: %w", err)
	}
	if until != "" {
		if to, err = journalTime(until, now, loc); err != nil {
			return nil, from, to, fmt.Errorf("--until: %w", err)
		}
		if !to.After(from) {
			return nil, from, to, fmt.Errorf("--until %s is not after --since %s", to.In(loc).Format(time.RFC3339), from.In(loc).Format(time.RFC3339))
		}
	}
	return loc, from, to, nil
}

// openJournalReadOnly opens the gateway's journal for reading, or says
// why not (never run: cfg names the config to run; an old schema: run the
// gateway once to upgrade it). why ends the never-run message, e.g.
// ", so there are no no-shows to report".
func openJournalReadOnly(ctx context.Context, g *config.Gateway, cfg, why string, stderr io.Writer) (*store.DB, bool) {
	path := journalFile(g)
	db, err := store.OpenReadOnly(ctx, path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stderr, "bmsgw: no journal at %s: the gateway has not run with this state directory yet%s (bmsgw run -c %s)\n", path, why, cfg)
		return nil, false
	case errors.Is(err, store.ErrOldSchema):
		fmt.Fprintf(stderr, "bmsgw: %v; run the gateway once (bmsgw run -c %s) to upgrade it\n", err, cfg)
		return nil, false
	case err != nil:
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return nil, false
	}
	return db, true
}
