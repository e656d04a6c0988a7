package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/site"
)

// dialDaemon finds the running gateway of a config through its state
// directory.
func dialDaemon(cfg string, stderr io.Writer) (*config.Gateway, *localapi.Client, bool) {
	g, ok := loadConfig(cfg, stderr)
	if !ok {
		return nil, nil, false
	}
	c, err := localapi.Dial(g.StateDir)
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v; start it with: bmsgw run -c %s\n", err, cfg)
		return nil, nil, false
	}
	return g, c, true
}

// splitPoint splits "site/point"; a bare point id is looked up in every
// site of the config and must be unique.
func splitPoint(g *config.Gateway, ref string) (string, string, error) {
	if s, p, ok := strings.Cut(ref, "/"); ok {
		return s, p, nil
	}
	var found []string
	for _, s := range g.Sites {
		if s.Points[ref] != nil {
			found = append(found, s.ID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], ref, nil
	case 0:
		return "", "", fmt.Errorf("no point %q in any site; write SITE/POINT", ref)
	}
	return "", "", fmt.Errorf("point %q exists in sites %s; write SITE/POINT", ref, strings.Join(found, ", "))
}

func whoAmI() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

func cmdOverride(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "set" && args[0] != "clear") {
		fmt.Fprintln(stderr, "usage: bmsgw override set SITE/POINT VALUE --until TIME|DURATION --reason TEXT [-c CONFIG]\n       bmsgw override clear SITE/POINT [-c CONFIG]")
		return 2
	}
	verb := args[0]
	fs := newFlags("override "+verb, stderr, "override "+verb+" SITE/POINT ...")
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	until := fs.String("until", "", "RFC 3339 time, or a duration from now such as 2h")
	reason := fs.String("reason", "", "why (kept in the journal)")
	who := fs.String("who", whoAmI(), "who sets it (kept in the journal)")
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return 2
	}
	g, c, ok := dialDaemon(*cfg, stderr)
	if !ok {
		return 1
	}
	want := 2
	if verb == "clear" {
		want = 1
	}
	if len(rest) != want {
		fs.Usage()
		return 2
	}
	siteID, point, err := splitPoint(g, rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	if verb == "clear" {
		if err := c.ClearOverride(ctx, siteID, point, *who); err != nil {
			fmt.Fprintf(stderr, "bmsgw: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "override on %s/%s cleared\n", siteID, point)
		return 0
	}
	s := g.Site(siteID)
	p := s.Points[point]
	if p == nil {
		fmt.Fprintf(stderr, "bmsgw: no point %q in site %s\n", point, siteID)
		return 1
	}
	value, err := parseValue(p.Labels, rest[1])
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	if *reason == "" || *until == "" {
		fmt.Fprintln(stderr, "bmsgw: --until and --reason are required: an override must end and say why")
		return 2
	}
	var end time.Time
	if d, err := time.ParseDuration(*until); err == nil {
		st, serr := c.Status(ctx)
		if serr != nil {
			fmt.Fprintf(stderr, "bmsgw: %v\n", serr)
			return 1
		}
		end = st.Time.Add(d) // the daemon's clock, which may run fast in a demo
	} else if end, err = time.Parse(time.RFC3339, *until); err != nil {
		fmt.Fprintf(stderr, "bmsgw: --until %q: use an RFC 3339 time or a duration such as 2h\n", *until)
		return 2
	}
	o := control.Override{Site: siteID, Point: point, Value: value, Until: end, Who: *who, Why: *reason}
	if err := c.SetOverride(ctx, o); err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "override on %s/%s = %s until %s\n", siteID, point, rest[1], end.Format(time.RFC3339))
	return 0
}

// parseValue reads a number, true/false or a label.
func parseValue(labels map[string]float64, s string) (float64, error) {
	if v, ok := labels[s]; ok {
		return v, nil
	}
	switch s {
	case "true", "on":
		return 1, nil
	case "false", "off":
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number, true/false or a label of the point", s)
	}
	return v, nil
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr, "status [-c CONFIG] [--site ID] [--problems] [--format table|json]")
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	format := fs.String("format", "table", "table or json")
	siteID := fs.String("site", "", "only this site `id` (and the booking sources it uses)")
	problems := fs.Bool("problems", false, "only what needs looking at: devices down, failing booking sources, points not in their desired state")
	if rest, err := parseFlags(fs, args); err != nil || len(rest) > 0 {
		return 2
	}
	g, c, ok := dialDaemon(*cfg, stderr)
	if !ok {
		return 1
	}
	st, err := c.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	if *siteID != "" {
		s := g.Site(*siteID)
		if s == nil {
			fmt.Fprintf(stderr, "bmsgw: no site %q in %s\n", *siteID, *cfg)
			return 1
		}
		st = siteStatus(st, s)
	}
	if *problems {
		st = problemStatus(st)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	fmt.Fprintf(stdout, "gateway time %s%s\n\n", st.Time.Format(time.RFC3339), map[bool]string{true: " (dry run: no writes)"}[st.DryRun])
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSTATE\tSINCE\tLAST ERROR")
	for _, d := range st.Devices {
		state := "up"
		if !d.Up {
			state = "DOWN"
		}
		fmt.Fprintf(tw, "%s/%s/%s\t%s\t%s\t%s\n", d.Site, d.Connection, d.Device, state, d.Since.Format(time.RFC3339), d.LastError)
	}
	_ = tw.Flush()
	if len(st.Feeds) > 0 {
		fmt.Fprintln(stdout)
		tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "BOOKING SOURCE\tSTATE\tLAST GOOD POLL\tBOOKINGS\tLAST ERROR")
		for _, f := range st.Feeds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", f.Source, feedState(f), timeOrNever(f.LastSuccess), f.Bookings, map[bool]string{true: f.LastError}[!f.OK])
		}
		_ = tw.Flush()
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POINT\tDESIRED\tACTUAL\tSOURCE\tSTATE\tWHY")
	for _, p := range st.Points {
		state := pointState(p)
		actual := p.ActualText
		if p.Actual == nil {
			actual = "?"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\n", p.Site, p.Point, p.DesiredText, actual, p.Source, state, p.Reason)
	}
	_ = tw.Flush()
	return 0
}

func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload", stderr, "reload [-c CONFIG] [--check]")
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	check := fs.Bool("check", false, "say what a reload would change, and apply nothing")
	if rest, err := parseFlags(fs, args); err != nil || len(rest) > 0 {
		return 2
	}
	// Validate here first, so the operator sees every error with its
	// position; the daemon validates again before it applies anything.
	if _, ok := loadConfig(*cfg, stderr); !ok {
		return 1
	}
	_, c, ok := dialDaemon(*cfg, stderr)
	if !ok {
		return 1
	}
	if *check {
		changes, err := c.CheckReload(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "bmsgw: a reload would be refused, the running config would stay: %v\n", err)
			return 1
		}
		if len(changes) == 0 {
			fmt.Fprintln(stdout, "a reload would change nothing")
			return 0
		}
		fmt.Fprintln(stdout, "a reload would:")
		for _, ch := range changes {
			fmt.Fprintln(stdout, "  "+ch)
		}
		return 0
	}
	changes, err := c.Reload(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: reload refused, the running config stays: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "reloaded")
	for _, ch := range changes {
		fmt.Fprintln(stdout, "  "+ch)
	}
	return 0
}

// feedState says how a booking source is doing, for status.
func feedState(f control.FeedStatus) string {
	switch {
	case f.OK:
		return "ok"
	case f.ConsecutiveFailures == 0 && f.FetchedAt.IsZero():
		return "not polled yet"
	case f.ConsecutiveFailures == 0:
		return "not polled yet, planning from the last good feed of " + f.FetchedAt.Format(time.RFC3339)
	case f.LastSuccess.IsZero() && f.FetchedAt.IsZero():
		return fmt.Sprintf("FAILING (%d in a row), never read: no bookings from it", f.ConsecutiveFailures)
	case f.FromCache:
		return fmt.Sprintf("FAILING (%d in a row), planning from the last good feed of %s", f.ConsecutiveFailures, f.FetchedAt.Format(time.RFC3339))
	}
	return fmt.Sprintf("FAILING (%d in a row)", f.ConsecutiveFailures)
}

func timeOrNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}

// pointState says how a point is doing, for status.
func pointState(p control.PointStatus) string {
	switch {
	case p.Desired == nil && p.Override == nil:
		return "not scheduled (no space binds it)"
	case p.Pending:
		return "writing"
	case p.DeviceDown && !p.InSync:
		return "device down: written when it is back"
	case p.LastError != "":
		return "ERROR: " + p.LastError
	case !p.ExternalUntil.IsZero():
		return "changed at BMS, respected until " + p.ExternalUntil.Format("15:04")
	case !p.InSync:
		return "differs"
	}
	return "ok"
}

// siteStatus keeps what concerns one site: its devices, its points and
// the booking sources it uses.
func siteStatus(st control.Status, s *site.Site) control.Status {
	uses := map[string]bool{}
	for _, r := range s.Sources {
		uses[r.Source] = true
	}
	st.Devices = slices.DeleteFunc(st.Devices, func(d control.DeviceStatus) bool { return d.Site != s.ID })
	st.Points = slices.DeleteFunc(st.Points, func(p control.PointStatus) bool { return p.Site != s.ID })
	st.Feeds = slices.DeleteFunc(st.Feeds, func(f control.FeedStatus) bool { return !uses[f.Source] })
	return st
}

// problemStatus keeps what needs looking at: devices down, booking
// sources whose last poll failed, points not as they should be (a point
// being written, or no space binds, is not a problem).
func problemStatus(st control.Status) control.Status {
	st.Devices = slices.DeleteFunc(st.Devices, func(d control.DeviceStatus) bool { return d.Up })
	st.Feeds = slices.DeleteFunc(st.Feeds, func(f control.FeedStatus) bool { return f.OK || f.ConsecutiveFailures == 0 })
	st.Points = slices.DeleteFunc(st.Points, func(p control.PointStatus) bool {
		switch pointState(p) {
		case "ok", "writing", "not scheduled (no space binds it)":
			return true
		}
		return false
	})
	return st
}
