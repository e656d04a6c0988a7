// Package config loads the gateway configuration and the site mapping
// files strictly: every unknown key, wrong type, dangling reference or
// out-of-range value is reported with file:line:column and what to do,
// all errors of all files at once. It resolves device templates and
// produces the validated internal/site model.
package config

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Gateway is a loaded and validated gateway configuration.
type Gateway struct {
	// File is the gateway config file.
	File string
	// StateDir is the absolute state directory.
	StateDir string
	// TimeZone is the default zone of booking feeds.
	TimeZone *time.Location
	// Sources are the booking sources with defaults applied and paths
	// made absolute.
	Sources []*Source
	// Sites in the order of the config's sites list.
	Sites []*site.Site
	// Templates by id.
	Templates map[string]*TemplateFile
	// Simulate is set for demos: simulated devices and booking system.
	Simulate *Simulate
	// AccessOutputs are where sites' access rights go.
	AccessOutputs []*ResolvedAccessOutput
	// Retention of journal entries (0: forever) and of card numbers.
	Retention, CardHolderRetention time.Duration
	// OPCUAServer is the gateway's OPC UA server, nil for none.
	OPCUAServer *OPCUAServer
	// HTTP is the HTTP API and web page, nil for none; paths absolute.
	HTTP *HTTPServer
}

// Site returns the site with the given id, or nil.
func (g *Gateway) Site(id string) *site.Site {
	for _, s := range g.Sites {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Source returns the source with the given id, or nil.
func (g *Gateway) Source(id string) *Source {
	for _, s := range g.Sources {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Defaults of the gateway config.
const (
	DefaultPollInterval  = 5 * time.Minute
	DefaultTimeout       = 30 * time.Second
	DefaultMissingPolls  = 3
	DefaultEmptyFraction = 0.5
	DefaultTimeZone      = "Europe/Copenhagen"
)

var (
	idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	xProp     = regexp.MustCompile(`^X-[A-Z0-9-]+$`)
)

// displayPath shortens an absolute path to one relative to the working
// directory when it lies below it, so error messages match what the user
// typed.
func displayPath(abs string) string {
	wd, err := os.Getwd()
	if err != nil {
		return abs
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return abs
	}
	return rel
}

// Load reads the gateway config at path and every file it includes. The
// error, if any, is an ErrorList naming every problem found.
func Load(path string) (*Gateway, error) {
	l := &loader{errs: &errs{}}
	g := l.load(path)
	if err := l.errs.list.Err(); err != nil {
		return nil, err
	}
	return g, nil
}

type loader struct {
	errs *errs
}

func (l *loader) read(abs string) ([]byte, bool) {
	b, err := os.ReadFile(abs)
	if err != nil {
		l.errs.add(Pos{File: displayPath(abs)}, "cannot read file: %v", unwrapPathErr(err))
		return nil, false
	}
	return b, true
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (l *loader) load(path string) *Gateway {
	abs, err := filepath.Abs(path)
	if err != nil {
		l.errs.add(Pos{File: path}, "%v", err)
		return nil
	}
	data, ok := l.read(abs)
	if !ok {
		return nil
	}
	file := displayPath(abs)
	var gf GatewayFile
	pos := decodeDocument(file, data, &gf, l.errs)
	dir := filepath.Dir(abs)
	g := &Gateway{File: file, Templates: map[string]*TemplateFile{}}

	g.StateDir = filepath.Join(dir, "var")
	if gf.StateDir != "" {
		g.StateDir = resolvePath(dir, gf.StateDir)
	}
	g.TimeZone, _ = time.LoadLocation(DefaultTimeZone)
	if gf.TimeZone != nil && gf.TimeZone.Location != nil {
		g.TimeZone = gf.TimeZone.Location
	}

	l.sources(g, &gf, pos, dir)
	l.accessOutputs(g, &gf, pos, dir)
	l.opcuaServer(g, &gf, pos)
	l.httpServer(g, &gf, pos, dir)
	g.CardHolderRetention = 30 * 24 * time.Hour
	if j := gf.Journal; j != nil {
		g.Retention = j.Retention
		if j.CardHolderRetention > 0 {
			g.CardHolderRetention = j.CardHolderRetention
		}
	}
	if sim := gf.Simulate; sim != nil {
		g.Simulate = sim
		if a := sim.BookingSystem; a != "" && !loopback(a) {
			l.errs.add(pos.Key(sim, "booking_system"), "booking_system %q must be a loopback host:port such as 127.0.0.1:18080; simulators never listen on the network", a)
		}
		if a := sim.AccessSystem; a != "" && !loopback(a) {
			l.errs.add(pos.Key(sim, "access_system"), "access_system %q must be a loopback host:port such as 127.0.0.1:18090; simulators never listen on the network", a)
		}
	}

	// Templates first: sites instantiate them.
	for i := range gf.Templates {
		for _, tf := range l.glob(dir, gf.Templates[i], pos.Of(&gf.Templates[i]), "templates") {
			l.template(g, tf)
		}
	}
	seen := map[string]string{}
	for i := range gf.Sites {
		for _, sf := range l.glob(dir, gf.Sites[i], pos.Of(&gf.Sites[i]), "sites") {
			s := l.mapping(g, sf)
			if s == nil {
				continue
			}
			if other, dup := seen[s.ID]; dup {
				l.errs.add(Pos{File: s.File}, "site id %q is also used by %s; site ids must be unique", s.ID, other)
				continue
			}
			seen[s.ID] = s.File
			g.Sites = append(g.Sites, s)
		}
	}
	l.checkOPCUAServer(g, &gf, pos)
	return g
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// glob expands a pattern relative to dir; a pattern that matches nothing
// is an error because a missing site would silently go uncontrolled.
func (l *loader) glob(dir, pattern string, p Pos, what string) []string {
	full := resolvePath(dir, pattern)
	matches, err := filepath.Glob(full)
	if err != nil {
		l.errs.add(p, "bad pattern %q in %s: %v", pattern, what, err)
		return nil
	}
	if len(matches) == 0 {
		l.errs.add(p, "%s entry %q matches no file (looked for %s)", what, pattern, displayPath(full))
		return nil
	}
	slices.Sort(matches)
	return matches
}

func (l *loader) sources(g *Gateway, gf *GatewayFile, pos *Positions, dir string) {
	ids := map[string]Pos{}
	for i := range gf.Sources {
		s := &gf.Sources[i]
		p := pos.Of(s)
		if s.ID != "" {
			if !idPattern.MatchString(s.ID) {
				l.errs.add(pos.Key(s, "id"), "source id %q must use lower case letters, digits, - and _", s.ID)
			}
			if first, dup := ids[s.ID]; dup {
				l.errs.add(pos.Key(s, "id"), "source id %q is already used at line %d; ids must be unique", s.ID, first.Line)
			}
			ids[s.ID] = pos.Key(s, "id")
		}
		n := 0
		for _, set := range []bool{s.ICal != nil, s.CSV != nil, s.JSON != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			l.errs.add(p, "source %q must have exactly one of ical, csv or json (it has %d)", s.ID, n)
		}
		check := func(file, url string, owner any) {
			switch {
			case file == "" && url == "":
				l.errs.add(pos.Of(owner), "source %q needs file or url", s.ID)
			case file != "" && url != "":
				l.errs.add(pos.Of(owner), "source %q has both file and url; keep one", s.ID)
			case url != "":
				if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
					l.errs.add(pos.Key(owner, "url"), "source %q url %q must start with https:// or http://", s.ID, url)
				}
			}
		}
		switch {
		case s.ICal != nil:
			check(s.ICal.File, s.ICal.URL, s.ICal)
			s.ICal.File = l.sourceFile(dir, s.ICal.File, pos.Key(s.ICal, "file"), s.ID)
			if r := s.ICal.ResourceProperty; r != "" && !slices.Contains([]string{"LOCATION", "SUMMARY", "RESOURCES"}, r) && !xProp.MatchString(r) {
				l.errs.add(pos.Key(s.ICal, "resource_property"), "resource_property %q: use LOCATION, RESOURCES, SUMMARY or an X- property (upper case)", r)
			}
			if o := s.ICal.OrganiserProperty; o != "" && !xProp.MatchString(o) {
				l.errs.add(pos.Key(s.ICal, "organiser_property"), "organiser_property %q: use an X- property holding a pseudonymous association id; ORGANIZER and the like hold personal data (set pseudonym_key to pseudonymise ORGANIZER instead)", o)
			}
		case s.CSV != nil:
			check(s.CSV.File, s.CSV.URL, s.CSV)
			s.CSV.File = l.sourceFile(dir, s.CSV.File, pos.Key(s.CSV, "file"), s.ID)
			if s.CSV.ArrayKey != "" {
				l.errs.add(pos.Key(s.CSV, "array_key"), "array_key applies to json sources only; remove it")
			}
		case s.JSON != nil:
			check(s.JSON.File, s.JSON.URL, s.JSON)
			s.JSON.File = l.sourceFile(dir, s.JSON.File, pos.Key(s.JSON, "file"), s.ID)
		}
		if pos.Has(s, "poll_interval") && s.PollInterval < 10*time.Second {
			l.errs.add(pos.Key(s, "poll_interval"), "poll_interval %s is too short; use 10s or more", s.PollInterval)
		}
		if s.PollInterval == 0 {
			s.PollInterval = DefaultPollInterval
		}
		if pos.Has(s, "timeout") && s.Timeout < time.Second {
			l.errs.add(pos.Key(s, "timeout"), "timeout %s is too short; use 1s or more", s.Timeout)
		}
		if s.Timeout == 0 {
			s.Timeout = DefaultTimeout
		}
		if pos.Has(s, "missing_polls") && s.MissingPolls < 1 {
			l.errs.add(pos.Key(s, "missing_polls"), "missing_polls must be 1 or more")
		}
		if s.MissingPolls == 0 {
			s.MissingPolls = DefaultMissingPolls
		}
		if pos.Has(s, "empty_fraction") && (s.EmptyFraction < 0 || s.EmptyFraction > 1) {
			l.errs.add(pos.Key(s, "empty_fraction"), "empty_fraction must be between 0 and 1")
		}
		if !pos.Has(s, "empty_fraction") {
			s.EmptyFraction = DefaultEmptyFraction
		}
		if s.TimeZone == nil {
			s.TimeZone = &TimeZone{Name: g.TimeZone.String(), Location: g.TimeZone}
		}
		g.Sources = append(g.Sources, s)
	}
}

// sourceFile resolves a feed file and checks that it exists: a typo in a
// feed path would otherwise look like a feed without bookings.
func (l *loader) sourceFile(dir, file string, p Pos, id string) string {
	if file == "" {
		return ""
	}
	abs := resolvePath(dir, file)
	if _, err := os.Stat(abs); err != nil {
		l.errs.add(p, "source %q file %q: %v", id, file, unwrapPathErr(err))
	}
	return abs
}

// loopback reports whether host:port names a loopback address.
func loopback(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
