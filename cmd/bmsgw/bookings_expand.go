package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings/icalendar"
)

const bookingsExpandUsage = `usage: bmsgw bookings expand FILE.ics --from TIME --to TIME [--tz ZONE] [--json]

List the occurrences of an iCalendar file that overlap [from, to), sorted by
start; cancelled occurrences are left out. FILE "-" reads standard input.
TIME is a date (2026-11-26, midnight in --tz) or an RFC 3339 time.

flags:
`

// defaultExpandZone places floating times when neither --tz nor the
// calendar's X-WR-TIMEZONE names a zone: the gateway's schools are in
// Copenhagen.
const defaultExpandZone = "Europe/Copenhagen"

// cmdBookingsExpand implements `bmsgw bookings expand`. It returns 0 on
// success, 1 when the file cannot be read or parsed, 2 on a usage error.
func cmdBookingsExpand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bookings expand", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, bookingsExpandUsage)
		fs.PrintDefaults()
	}
	fromFlag := fs.String("from", "", "start of the window (required)")
	toFlag := fs.String("to", "", "end of the window, exclusive (required)")
	tzFlag := fs.String("tz", "", "zone for floating times, all-day events, dates and the table (default: the calendar's X-WR-TIMEZONE, else "+defaultExpandZone+")")
	jsonFlag := fs.Bool("json", false, "print one JSON object per occurrence")

	// Flags may follow FILE, which the flag package does not allow: parse,
	// take one positional argument, parse the rest.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 || *fromFlag == "" || *toFlag == "" {
		fmt.Fprintln(stderr, "bmsgw bookings expand: need exactly one FILE, --from and --to")
		fs.Usage()
		return 2
	}
	// Check the syntax before reading the file; the zone that dates are
	// read in may come from the file.
	for _, v := range []string{*fromFlag, *toFlag} {
		if _, err := parseExpandTime(v, time.UTC); err != nil {
			fmt.Fprintf(stderr, "bmsgw bookings expand: %v\n", err)
			return 2
		}
	}
	var zone *time.Location
	if *tzFlag != "" {
		loc, err := time.LoadLocation(*tzFlag)
		if err != nil {
			fmt.Fprintf(stderr, "bmsgw bookings expand: --tz: %v\n", err)
			return 2
		}
		zone = loc
	}

	cal, err := readExpandCalendar(ctx, files[0])
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw bookings expand: %v\n", err)
		return 1
	}
	if zone == nil {
		zone = expandZone(cal, stderr)
	}
	from, _ := parseExpandTime(*fromFlag, zone)
	to, _ := parseExpandTime(*toFlag, zone)
	if !from.Before(to) {
		fmt.Fprintf(stderr, "bmsgw bookings expand: --to %s is not after --from %s\n", *toFlag, *fromFlag)
		return 2
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "bmsgw bookings expand: %v\n", err)
		return 1
	}
	occs, err := cal.Expand(from, to, zone)
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw bookings expand: %v\n", err)
		return 1
	}
	for _, p := range cal.Warnings() {
		fmt.Fprintf(stderr, "bmsgw bookings expand: warning: %s: %s\n", files[0], p)
	}
	active := occs[:0:0]
	for _, o := range occs {
		if o.Status != "CANCELLED" {
			active = append(active, o)
		}
	}
	if *jsonFlag {
		err = writeExpandJSON(stdout, active)
	} else {
		err = writeExpandTable(stdout, active, zone)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw bookings expand: write output: %v\n", err)
		return 1
	}
	return 0
}

// readExpandCalendar parses FILE, or standard input for "-".
func readExpandCalendar(ctx context.Context, name string) (*icalendar.Calendar, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		defer f.Close()
		r = f
	}
	cal, err := icalendar.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return cal, nil
}

// expandZone is the calendar's X-WR-TIMEZONE if it names a zone we can
// load, else the default.
func expandZone(cal *icalendar.Calendar, stderr io.Writer) *time.Location {
	if name := cal.XWRTimezone(); name != "" {
		loc, err := cal.ResolveTZID(name)
		if err == nil {
			return loc
		}
		fmt.Fprintf(stderr, "bmsgw bookings expand: warning: X-WR-TIMEZONE %q: %v; using %s\n", name, err, defaultExpandZone)
	}
	loc, err := time.LoadLocation(defaultExpandZone)
	if err != nil {
		// main imports time/tzdata, so this cannot fail in the binary.
		return time.UTC
	}
	return loc
}

// parseExpandTime reads a window bound: a date is midnight in zone.
func parseExpandTime(s string, zone *time.Location) (time.Time, error) {
	if d, err := time.ParseInLocation(time.DateOnly, s, zone); err == nil {
		// ParseInLocation keeps the wall clock even in a gap; midnight
		// gaps exist (America/Santiago), so normalise through time.Date.
		return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, zone), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is neither a date (2026-11-26) nor RFC 3339 (2026-11-26T18:00:00+01:00)", s)
	}
	return t, nil
}

func writeExpandJSON(w io.Writer, occs []icalendar.Occurrence) error {
	enc := json.NewEncoder(w)
	// Summaries hold "&" and "<" often enough ("Kor & Orkester"); escaped
	// they are unreadable and differ from other tools' output.
	enc.SetEscapeHTML(false)
	for _, o := range occs {
		if err := enc.Encode(icalendar.RecordOf(o)); err != nil {
			return err
		}
	}
	return nil
}

func writeExpandTable(w io.Writer, occs []icalendar.Occurrence, zone *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tEND\tSUMMARY\tLOCATION\tUID")
	const layout = "2006-01-02 15:04 -0700"
	for _, o := range occs {
		start, end := o.Start.In(zone).Format(layout), o.End.In(zone).Format(layout)
		if o.AllDay {
			start, end = o.Start.In(zone).Format(time.DateOnly)+" (all day)", o.End.In(zone).Format(time.DateOnly)
		}
		id := o.UID
		if !o.RecurrenceID.IsZero() {
			id += " @ " + o.RecurrenceID.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", start, end, expandOneLine(o.Summary), expandOneLine(o.Location), id)
	}
	fmt.Fprintf(tw, "%d occurrences, times in %s\n", len(occs), zone)
	return tw.Flush()
}

// expandOneLine keeps a table row on one line.
func expandOneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
