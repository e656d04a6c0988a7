package icalendar

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	ical "github.com/emersion/go-ical"
)

//go:generate go run windowszones_gen.go

// ErrUnknownTZID is wrapped by ResolveTZID when a TZID is neither an IANA
// nor a Windows zone name and the calendar defines no VTIMEZONE for it.
var ErrUnknownTZID = errors.New("unknown TZID")

// staticZone resolves a TZID without looking at VTIMEZONE components: an
// IANA name, a Windows name (CLDR windowsZones) or an IANA name behind a
// vendor prefix such as "/mozilla.org/20050126_1/Europe/Berlin".
func staticZone(tzid string) (*time.Location, bool) {
	name := strings.TrimSpace(strings.Trim(strings.TrimSpace(tzid), `"`))
	// LoadLocation maps "" to UTC and "Local" to the host's zone; neither
	// is what a calendar means.
	if name == "" || name == "Local" {
		return nil, false
	}
	if loc, err := time.LoadLocation(name); err == nil {
		return loc, true
	}
	if iana, ok := windowsZones[name]; ok {
		if loc, err := time.LoadLocation(iana); err == nil {
			return loc, true
		}
	}
	if !strings.Contains(name, "/") {
		return nil, false
	}
	// Vendor prefixes put the IANA name last. Only a leading "/" marks a
	// prefix for sure, so a one-part suffix ("UTC") is tried only then.
	parts := strings.Split(strings.Trim(name, "/"), "/")
	minParts := 2
	if strings.HasPrefix(name, "/") {
		minParts = 1
	}
	for n := 3; n >= minParts; n-- {
		if len(parts) <= n {
			continue
		}
		if loc, err := time.LoadLocation(strings.Join(parts[len(parts)-n:], "/")); err == nil {
			return loc, true
		}
	}
	return nil, false
}

// tzCache resolves the TZIDs of one stream. VTIMEZONE definitions belong to
// their VCALENDAR object, so those results are cached per object.
type tzCache struct {
	static map[string]*time.Location // nil value: not an IANA or Windows name
	// defs holds every VCALENDAR object's VTIMEZONE components by TZID.
	defs  []map[string]*ical.Component
	built []map[string]tzBuilt
}

type tzBuilt struct {
	loc *time.Location
	err error
}

func newTZCache() *tzCache {
	return &tzCache{static: map[string]*time.Location{}}
}

// addCalendar registers the VTIMEZONEs of the next VCALENDAR object and
// returns its index.
func (c *tzCache) addCalendar(defs map[string]*ical.Component) int {
	c.defs = append(c.defs, defs)
	c.built = append(c.built, map[string]tzBuilt{})
	return len(c.defs) - 1
}

// resolve maps tzid as seen in VCALENDAR object cal (-1: any object).
func (c *tzCache) resolve(tzid string, cal int) (*time.Location, error) {
	loc, seen := c.static[tzid]
	if !seen {
		loc, _ = staticZone(tzid)
		c.static[tzid] = loc
	}
	if loc != nil {
		return loc, nil
	}
	if cal >= 0 {
		if loc, err, ok := c.fromDefs(tzid, cal); ok {
			return loc, err
		}
	}
	// A stream of several VCALENDAR objects (merged feeds) may define a
	// zone once for all of them.
	for i := range c.defs {
		if i == cal {
			continue
		}
		if loc, err, ok := c.fromDefs(tzid, i); ok {
			return loc, err
		}
	}
	return nil, fmt.Errorf("%w %q: not an IANA or Windows zone and no VTIMEZONE defines it", ErrUnknownTZID, tzid)
}

func (c *tzCache) fromDefs(tzid string, cal int) (*time.Location, error, bool) {
	comp := c.defs[cal][tzid]
	if comp == nil {
		return nil, nil, false
	}
	b, ok := c.built[cal][tzid]
	if !ok {
		b.loc, b.err = vtimezoneLocation(tzid, comp)
		if b.err != nil {
			b.err = fmt.Errorf("VTIMEZONE %q: %w", tzid, b.err)
		}
		c.built[cal][tzid] = b
	}
	return b.loc, b.err, true
}

// wallResolver turns wall clock readings into instants in one location,
// following RFC 5545 3.3.5: a wall time that occurs twice means the first
// occurrence, and one skipped by a DST gap is read with the offset in
// force before the gap (02:30 on 2026-03-29 in Europe/Copenhagen is 03:30
// CEST). time.Date does not promise either: it returns the second
// occurrence in Europe and 01:30 EST for a New York gap. It caches the
// zone period it last used, so a series inside one period costs no lookups.
type wallResolver struct {
	loc             *time.Location
	start, end, off int64
	cached          bool
}

// resolverMargin keeps the fast path away from transitions: no two zone
// periods differ by two days of offset, so a wall time mapped to an instant
// this far inside a period cannot belong to any other period.
const resolverMargin = 2 * secondsPerDay

func newWallResolver(loc *time.Location) *wallResolver {
	return &wallResolver{loc: loc}
}

func (r *wallResolver) instant(wall int64) int64 {
	if r.loc == time.UTC {
		return wall
	}
	if r.cached {
		u := wall - r.off
		if u-resolverMargin >= r.start && u+resolverMargin < r.end {
			return u
		}
	}
	return r.slow(wall)
}

type zonePeriod struct{ start, end, off int64 }

func (r *wallResolver) period(u int64) zonePeriod {
	t := time.Unix(u, 0).In(r.loc)
	_, off := t.Zone()
	s, e := t.ZoneBounds()
	p := zonePeriod{start: math.MinInt64, end: math.MaxInt64, off: int64(off)}
	if !s.IsZero() {
		p.start = s.Unix()
	}
	if !e.IsZero() {
		p.end = e.Unix()
	}
	return p
}

func (r *wallResolver) slow(wall int64) int64 {
	const span = 3 * secondsPerDay
	first := r.period(wall)
	first = r.period(wall - first.off)
	periods := []zonePeriod{first}
	for len(periods) < 8 && periods[0].start != math.MinInt64 && periods[0].start > wall-span {
		periods = append([]zonePeriod{r.period(periods[0].start - 1)}, periods...)
	}
	for len(periods) < 16 {
		last := periods[len(periods)-1]
		if last.end == math.MaxInt64 || last.end > wall+span {
			break
		}
		periods = append(periods, r.period(last.end))
	}
	best, found := int64(0), false
	var bestP zonePeriod
	for _, p := range periods {
		u := wall - p.off
		if p.start <= u && u < p.end && (!found || u < best) {
			best, found, bestP = u, true, p
		}
	}
	if found {
		r.start, r.end, r.off, r.cached = bestP.start, bestP.end, bestP.off, true
		return best
	}
	// The wall time falls in a gap between two periods.
	for i := 0; i+1 < len(periods); i++ {
		a, b := periods[i], periods[i+1]
		if a.end+a.off <= wall && wall < a.end+b.off {
			return wall - a.off
		}
	}
	return wall - first.off
}

// timeOf converts a value to an instant; floating values and dates are read
// in floating.
func timeOf(d dateTime, floating *time.Location) time.Time {
	if d.kind == kindUTC {
		return time.Unix(d.wall, 0).UTC()
	}
	loc := d.zone(floating)
	return time.Unix(newWallResolver(loc).instant(d.wall), 0).In(loc)
}
