package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sources"
)

func cmdBookingsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bookings list", stderr, "bookings list [-c CONFIG] [--from DATE] [--to DATE] [--site ID] [--format table|json|csv]")
	var w window
	w.register(fs, "table")
	if !parseOptions(fs, args) {
		return 2
	}
	g, sites, from, to, ok := w.resolve(stderr)
	if !ok {
		return 1
	}
	feeds, err := sources.Read(ctx, g, from, to, quietLogger(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	good := feeds.Report(stderr)
	type row struct {
		site *site.Site
		b    booking.Booking
	}
	var rows []row
	for _, s := range sites {
		merged := feeds.Site(s)
		reportConflicts(stderr, s, merged.Conflicts)
		resources := map[string]bool{}
		for _, sp := range s.Spaces {
			for _, r := range sp.Resources {
				resources[r] = true
			}
		}
		for _, b := range merged.Bookings {
			if resources[b.Resource] && b.End.After(from) && b.Start.Before(to) {
				rows = append(rows, row{s, b})
			}
		}
	}
	switch w.format {
	case "json":
		type jb struct {
			Site string `json:"site"`
			booking.Booking
		}
		out := []jb{}
		for _, r := range rows {
			b := r.b
			b.Start, b.End = b.Start.UTC(), b.End.UTC()
			out = append(out, jb{r.site.ID, b})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(stdout)
		_ = cw.Write([]string{"site", "source", "id", "resource", "organiser", "start", "end", "status"})
		for _, r := range rows {
			_ = cw.Write([]string{r.site.ID, r.b.Source, r.b.ID, r.b.Resource, r.b.Organiser, r.b.Start.Format(time.RFC3339), r.b.End.Format(time.RFC3339), string(r.b.Status)})
		}
		cw.Flush()
		err = cw.Error()
	default:
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "START\tEND\tSITE\tRESOURCE\tORGANISER\tSTATUS\tBOOKING")
		for _, r := range rows {
			loc := r.site.Location
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.b.Start.In(loc).Format("Mon 2006-01-02 15:04 -07:00"), r.b.End.In(loc).Format("15:04"),
				r.site.ID, r.b.Resource, r.b.Organiser, r.b.Status, r.b.String())
		}
		err = tw.Flush()
	}
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	if !good {
		return 1
	}
	return 0
}
