package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// cmdRound runs the virtual patrol round of a site on the running
// gateway: every door closed and locked, every area armed, every light
// and HVAC point at its vacant value. Findings are also stored as events.
func cmdRound(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("round", stderr, "round SITE [-c CONFIG] [--format table|json]")
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	format := fs.String("format", "table", "table or json")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) != 1 || (*format != "table" && *format != "json") {
		fs.Usage()
		return 2
	}
	g, c, ok := dialDaemon(*cfg, stderr)
	if !ok {
		return 1
	}
	if g.Site(rest[0]) == nil {
		var ids []string
		for _, s := range g.Sites {
			ids = append(ids, s.ID)
		}
		fmt.Fprintf(stderr, "bmsgw: no site %q in %s; sites: %s\n", rest[0], g.File, strings.Join(ids, ", "))
		return 1
	}
	rep, err := c.Round(ctx, rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: round: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		s := g.Site(rep.Site)
		at := rep.At.In(s.Location)
		fmt.Fprintf(stdout, "round of %s at %s: %d checked, %d findings\n\n", rep.Site, at.Format("2006-01-02 15:04:05 MST"), len(rep.Checks), rep.Findings)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RESULT\tKIND\tSUBJECT\tSPACE\tFOUND\tWANTED\tSINCE\tNOTE")
		for _, ch := range rep.Checks {
			res := "ok"
			if !ch.OK {
				res = "FINDING"
			}
			since := ""
			if !ch.Since.IsZero() {
				since = ch.Since.In(s.Location).Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", res, ch.Kind, ch.Subject, ch.Space, ch.Got, ch.Want, since, ch.Note)
		}
		_ = tw.Flush()
	}
	if rep.Findings > 0 {
		return 1 // like validate: the command found problems
	}
	return 0
}
