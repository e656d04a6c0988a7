package access

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// PointMap binds a group at a door to a point that is written 1 inside
// the group's grants at that door and 0 outside (gateway config
// access_outputs[].points), e.g. a door-schedule enable per group.
type PointMap struct {
	Group string
	Door  string
	// Point is the id of the point, as in the site mapping.
	Point string
}

// Interval is a period [From, To) in which a point is on.
type Interval struct {
	From, To time.Time
}

// ValidatePoints checks a point mapping and returns every problem found,
// joined: empty fields, and a group and door listed twice for one point.
// Checking that the points exist and are writable is the integrator's.
func ValidatePoints(mapping []PointMap) error {
	var errs []error
	seen := map[PointMap]bool{}
	for i, m := range mapping {
		if m.Group == "" || m.Door == "" || m.Point == "" {
			errs = append(errs, fmt.Errorf("points[%d]: group, door and point are all required", i))
			continue
		}
		if seen[m] {
			errs = append(errs, fmt.Errorf("points[%d]: group %q at door %q is mapped to point %q twice", i, m.Group, m.Door, m.Point))
		}
		seen[m] = true
	}
	return errors.Join(errs...)
}

// PointSchedule returns, for each point of the mapping, the periods in
// which it is on: the union of the grants of its groups at its doors,
// whatever their mode, with overlapping and touching periods joined,
// sorted. Every mapped point is in the map, with no periods if none of
// its grants are given, so that the integrator drives it to 0.
func PointSchedule(grants []Grant, mapping []PointMap) map[string][]Interval {
	out := make(map[string][]Interval, len(mapping))
	points := map[pair][]string{}
	for _, m := range mapping {
		out[m.Point] = nil
		p := pair{m.Group, m.Door}
		if !slices.Contains(points[p], m.Point) {
			points[p] = append(points[p], m.Point)
		}
	}
	for _, g := range grants {
		if !g.To.After(g.From) {
			continue
		}
		for _, pt := range points[pair{g.Group, g.Door}] {
			out[pt] = append(out[pt], Interval{From: g.From, To: g.To})
		}
	}
	for pt, ivs := range out {
		out[pt] = joinIntervals(ivs)
	}
	return out
}

// joinIntervals sorts intervals and joins those that overlap or touch.
func joinIntervals(ivs []Interval) []Interval {
	if len(ivs) == 0 {
		return nil
	}
	slices.SortFunc(ivs, func(a, b Interval) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return a.To.Compare(b.To)
	})
	out := ivs[:1]
	for _, iv := range ivs[1:] {
		last := &out[len(out)-1]
		if !iv.From.After(last.To) {
			if iv.To.After(last.To) {
				last.To = iv.To
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}
