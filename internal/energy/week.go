package energy

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bmsgw/bmsgw/internal/calendar"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// SpaceWeek is one space's line of the energy report for one ISO week.
// Hours are real elapsed hours, rounded to 4 decimals; kWh to 3.
//
// Comfort is counted from the plan: the space is in comfort while any of
// its heating points is at its occupied value, lit while any of its
// lighting points is. The old practice (the baseline) is the same plan's
// base schedules without bookings (the school day, with its pre-heat,
// which the BMS ran before the gateway too) together with the whole
// lending period. A space without heating (lighting) points has zero
// heating (lighting) columns.
type SpaceWeek struct {
	Site  string `json:"site"`
	Space string `json:"space"`
	Name  string `json:"name"`
	// Year and Week are the ISO 8601 week (Monday to Sunday, local).
	Year int `json:"iso_year"`
	Week int `json:"iso_week"`
	// From and To bound the part of the week counted: the whole week
	// unless the report's range cuts it.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Hours is the length of [From, To): 168 for a whole week, 167 or
	// 169 for one with a daylight saving change.
	Hours float64 `json:"hours"`
	// LendingHours is the lending period within the week.
	LendingHours float64 `json:"lending_hours"`
	// BaselineHours is the comfort of the old practice: the base
	// schedules' comfort joined with the lending period.
	BaselineHours float64 `json:"baseline_hours"`
	// ComfortHours is the comfort under the gateway.
	ComfortHours float64 `json:"comfort_hours"`
	// SavedHours is BaselineHours - ComfortHours; negative when bookings
	// outside the lending period cost more than the gateway saved.
	SavedHours float64 `json:"saved_hours"`
	// LightingBaselineHours, LightingHours and LightingSavedHours are the
	// same for the lighting points.
	LightingBaselineHours float64 `json:"lighting_baseline_hours"`
	LightingHours         float64 `json:"lighting_hours"`
	LightingSavedHours    float64 `json:"lighting_saved_hours"`
	// HeatingKW and LightingKW are the declared powers.
	HeatingKW  float64 `json:"heating_kw"`
	LightingKW float64 `json:"lighting_kw"`
	// HeatingKWhSaved is SavedHours × HeatingKW, LightingKWhSaved is
	// LightingSavedHours × LightingKW, KWhSaved their sum.
	HeatingKWhSaved  float64 `json:"heating_kwh_saved"`
	LightingKWhSaved float64 `json:"lighting_kwh_saved"`
	KWhSaved         float64 `json:"kwh_saved"`
}

// Totals sums the hour and kWh columns of report lines (space-hours).
type Totals struct {
	LendingHours          float64 `json:"lending_hours"`
	BaselineHours         float64 `json:"baseline_hours"`
	ComfortHours          float64 `json:"comfort_hours"`
	SavedHours            float64 `json:"saved_hours"`
	LightingBaselineHours float64 `json:"lighting_baseline_hours"`
	LightingHours         float64 `json:"lighting_hours"`
	LightingSavedHours    float64 `json:"lighting_saved_hours"`
	HeatingKWhSaved       float64 `json:"heating_kwh_saved"`
	LightingKWhSaved      float64 `json:"lighting_kwh_saved"`
	KWhSaved              float64 `json:"kwh_saved"`
}

// Total sums the lines.
func Total(rows []SpaceWeek) Totals {
	var t Totals
	for _, r := range rows {
		t.LendingHours += r.LendingHours
		t.BaselineHours += r.BaselineHours
		t.ComfortHours += r.ComfortHours
		t.SavedHours += r.SavedHours
		t.LightingBaselineHours += r.LightingBaselineHours
		t.LightingHours += r.LightingHours
		t.LightingSavedHours += r.LightingSavedHours
		t.HeatingKWhSaved += r.HeatingKWhSaved
		t.LightingKWhSaved += r.LightingKWhSaved
		t.KWhSaved += r.KWhSaved
	}
	for _, p := range []*float64{&t.LendingHours, &t.BaselineHours, &t.ComfortHours, &t.SavedHours,
		&t.LightingBaselineHours, &t.LightingHours, &t.LightingSavedHours} {
		*p = round(*p, 4)
	}
	for _, p := range []*float64{&t.HeatingKWhSaved, &t.LightingKWhSaved, &t.KWhSaved} {
		*p = round(*p, 3)
	}
	return t
}

// WeekTotal sums one site's lines of one ISO week: the bars of a chart
// of comfort against baseline week by week.
type WeekTotal struct {
	Site string    `json:"site"`
	Year int       `json:"iso_year"`
	Week int       `json:"iso_week"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Totals
}

// ByWeek sums the lines of each site and week, in the order the weeks
// first appear.
func ByWeek(rows []SpaceWeek) []WeekTotal {
	type key struct {
		site       string
		year, week int
	}
	var out []WeekTotal
	index := map[key]int{}
	var lines [][]SpaceWeek
	for _, r := range rows {
		k := key{r.Site, r.Year, r.Week}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, WeekTotal{Site: r.Site, Year: r.Year, Week: r.Week, From: r.From, To: r.To})
			lines = append(lines, nil)
		}
		lines[i] = append(lines[i], r)
	}
	for i := range out {
		out[i].Totals = Total(lines[i])
	}
	return out
}

// MaxRange is the longest range a report covers: a season and some.
const MaxRange = 400 * 24 * time.Hour

// ErrRange reports a report range that is empty or too long.
var ErrRange = errors.New("bad report range")

// WeekReport computes the energy report of spec's site over [from, to):
// one line per space of the spec per ISO week (local Monday 00:00 to the
// next) that overlaps the range, by week and then in spec order. plan is
// the site's compiled plan, a *schedule.Compiler, or better the
// *schedule.Overlay the gateway runs, so that no-show releases and lights
// waiting for a card count; it must cover [from, to).
func WeekReport(spec *Spec, plan schedule.PlanSource, from, to time.Time) ([]SpaceWeek, error) {
	c, err := newCounter(spec, plan, from, to)
	if err != nil {
		return nil, err
	}
	loc := spec.location()
	var out []SpaceWeek
	// The Monday of from's week.
	d := site.DateOf(from.In(loc))
	d = d.AddDays(-((int(d.Weekday()) + 6) % 7))
	for ; ; d = d.AddDays(7) {
		ws, we := midnight(d, loc), midnight(d.AddDays(7), loc)
		if !ws.Before(to) {
			break
		}
		a, b := later(ws, from), earlier(we, to)
		year, week := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).ISOWeek()
		for i, ss := range spec.Spaces {
			sc := &c.spaces[i]
			lo, hi := a.UnixNano(), b.UnixNano()
			r := SpaceWeek{
				Site: spec.Site.ID, Space: ss.Space, Name: spec.Site.Space(ss.Space).Name,
				Year: year, Week: week, From: a.In(loc), To: b.In(loc), Hours: hours(b.Sub(a)),
				LendingHours: hours(c.lending.within(lo, hi)),
				HeatingKW:    ss.HeatingKW, LightingKW: ss.LightingKW,
			}
			if len(ss.Heating) > 0 {
				base, comfort := sc.heatBaseline.within(lo, hi), sc.heat.within(lo, hi)
				r.BaselineHours, r.ComfortHours, r.SavedHours = hours(base), hours(comfort), hours(base-comfort)
				r.HeatingKWhSaved = kwh(base-comfort, ss.HeatingKW)
			}
			if len(ss.Lighting) > 0 {
				base, lit := sc.lightBaseline.within(lo, hi), sc.light.within(lo, hi)
				r.LightingBaselineHours, r.LightingHours, r.LightingSavedHours = hours(base), hours(lit), hours(base-lit)
				r.LightingKWhSaved = kwh(base-lit, ss.LightingKW)
			}
			r.KWhSaved = round(r.HeatingKWhSaved+r.LightingKWhSaved, 3)
			out = append(out, r)
		}
	}
	return out, nil
}

// counter holds the sets of instants a report counts in.
type counter struct {
	lending spans
	spaces  []spaceSets
}

type spaceSets struct {
	// heat and light are the comfort under the gateway; the baselines
	// are the old practice's.
	heat, light                 spans
	heatBaseline, lightBaseline spans
}

// newCounter validates the inputs and builds the sets of instants within
// [from, to).
func newCounter(spec *Spec, plan schedule.PlanSource, from, to time.Time) (*counter, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if plan == nil {
		return nil, errors.New("energy: no plan")
	}
	switch {
	case !from.Before(to):
		return nil, fmt.Errorf("%w: from %s is not before to %s", ErrRange, from.Format(time.RFC3339), to.Format(time.RFC3339))
	case from.Year() < 1900 || to.Year() > 2200:
		// Instants are counted in Unix nanoseconds, which end in 2262.
		return nil, fmt.Errorf("%w: %s to %s is not between the years 1900 and 2200", ErrRange, from.Format(time.RFC3339), to.Format(time.RFC3339))
	case to.Sub(from) > MaxRange:
		return nil, fmt.Errorf("%w: %s to %s is longer than %d days", ErrRange, from.Format(time.RFC3339), to.Format(time.RFC3339), MaxRange/(24*time.Hour))
	}
	loc := spec.location()
	lo, hi := from.UnixNano(), to.UnixNano()
	var lending spans
	for _, p := range calendar.Expand(spec.Lending, loc, from, to) {
		lending = append(lending, span{p.Start.UnixNano(), p.End.UnixNano()})
	}
	c := &counter{lending: union(lending).clip(lo, hi)}
	// The old practice's school day: the same site's base schedules,
	// compiled without bookings.
	base := schedule.NewCompiler(spec.Site, from, to)
	sets := func(src schedule.PlanSource, points []string) (spans, error) {
		var all []spans
		for _, id := range points {
			s, err := occupied(src, id, from, to)
			if err != nil {
				return nil, err
			}
			all = append(all, s)
		}
		return union(all...), nil
	}
	for _, ss := range spec.Spaces {
		var sc spaceSets
		var err error
		if sc.heat, err = sets(plan, ss.Heating); err != nil {
			return nil, err
		}
		if sc.light, err = sets(plan, ss.Lighting); err != nil {
			return nil, err
		}
		heat0, err := sets(base, ss.Heating)
		if err != nil {
			return nil, err
		}
		light0, err := sets(base, ss.Lighting)
		if err != nil {
			return nil, err
		}
		sc.heatBaseline, sc.lightBaseline = union(heat0, c.lending), union(light0, c.lending)
		c.spaces = append(c.spaces, sc)
	}
	return c, nil
}

// occupied returns the instants within [from, to) at which the plan holds
// the point at its occupied value.
func occupied(plan schedule.PlanSource, pointID string, from, to time.Time) (spans, error) {
	for _, t := range []time.Time{from, to.Add(-1)} {
		if _, ok := plan.ValueAt(pointID, t); !ok {
			return nil, fmt.Errorf("energy: the plan has no value for point %q at %s: it does not bind the point or does not cover the report's range", pointID, t.Format(time.RFC3339))
		}
	}
	tl := plan.Timeline(pointID)
	var out spans
	for i, ch := range tl {
		if !ch.Occupied {
			continue
		}
		end := to
		if i+1 < len(tl) {
			end = tl[i+1].At
		}
		out = append(out, span{ch.At.UnixNano(), end.UnixNano()})
	}
	return union(out).clip(from.UnixNano(), to.UnixNano()), nil
}

// midnight is the start of date d in loc.
func midnight(d site.Date, loc *time.Location) time.Time { return site.Clock(0).On(d, loc) }

func hours(d time.Duration) float64 { return round(d.Hours(), 4) }

func kwh(d time.Duration, kw float64) float64 { return round(d.Hours()*kw, 3) }

// round rounds x to n decimals, without a negative zero.
func round(x float64, n int) float64 {
	p := math.Pow10(n)
	r := math.Round(x*p) / p
	if r == 0 {
		return 0
	}
	return r
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
