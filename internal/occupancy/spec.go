// Package occupancy turns evidence of people (cards, water, motion, CO2)
// and booking windows into no-show decisions, card-enabled lights and the
// plan adjustments that follow from them; it is pure logic with the time
// passed in.
package occupancy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Defaults of the optional durations of a Spec.
const (
	// DefaultBefore is how long before a booking's start evidence counts
	// for it (people arriving early).
	DefaultBefore = 15 * time.Minute
	// DefaultEarly is how long before a booking's start a card enables
	// its lights.
	DefaultEarly = 10 * time.Minute
)

// Spec is the occupancy part of a site mapping: one entry per space that
// has evidence, no-show detection or card-enabled lights. Its fields map
// one to one onto the mapping's YAML keys (see docs/occupancy.md).
type Spec struct {
	Spaces []SpaceSpec `yaml:"spaces"`
}

// SpaceSpec is what one space declares.
type SpaceSpec struct {
	// ID is the space id of the site mapping.
	ID string `yaml:"id"`
	// Evidence lists the sources that show people are in the space; any
	// one of them is enough.
	Evidence []EvidenceSpec `yaml:"evidence"`
	// NoShow turns on no-show detection; it needs at least one evidence
	// source.
	NoShow *NoShowSpec `yaml:"no_show"`
	// LightsByCard gates some of the space's lights on a card or button
	// inside a booking.
	LightsByCard *LightsSpec `yaml:"lights_by_card"`
}

// EvidenceSpec is one evidence source: exactly one of Door and Point; with
// a Point, at most one of Above and Rise.
type EvidenceSpec struct {
	// Door: a card granted at this door (events.AccessGranted whose
	// Subject is the door id).
	Door string `yaml:"door"`
	// Point: a point reading. Bare, it is a bool (PIR): true (non-zero)
	// is evidence.
	Point string `yaml:"point"`
	// Above: the point's value strictly above this (water flow, level).
	Above *float64 `yaml:"above"`
	// Rise: the point's value at least this much above its value at the
	// booking's start minus no_show.before, or above the lowest value
	// since then if it fell (a counter reset, a room airing out). For
	// pulse counters and CO2 (ppm). Must be positive.
	Rise *float64 `yaml:"rise"`
}

// EvidenceKind names how a source shows people.
type EvidenceKind string

// Evidence kinds.
const (
	KindCard  EvidenceKind = "card"  // a card granted at a door
	KindAbove EvidenceKind = "above" // a value above a threshold
	KindRise  EvidenceKind = "rise"  // a value risen by a threshold
	KindOn    EvidenceKind = "on"    // a bool point true
)

// Kind says which kind of evidence the source gives.
func (e EvidenceSpec) Kind() EvidenceKind {
	switch {
	case e.Door != "":
		return KindCard
	case e.Above != nil:
		return KindAbove
	case e.Rise != nil:
		return KindRise
	}
	return KindOn
}

// NoShowSpec declares no-show detection for a space.
type NoShowSpec struct {
	// Grace: a booking with no evidence within this long after its start
	// is a no-show. Must be positive.
	Grace time.Duration `yaml:"grace"`
	// Before: evidence this long before the start counts. Default 15m
	// (nil); 0 counts only evidence from the start on.
	Before *time.Duration `yaml:"before"`
}

// LightsSpec declares lights that are enabled only inside a booking and
// only after a card or a button.
type LightsSpec struct {
	// Doors: a card granted at one of these doors enables the lights.
	Doors []string `yaml:"doors"`
	// Buttons: a bool point going from false to true enables them.
	Buttons []string `yaml:"buttons"`
	// Points are the gated bindings of the space (point ids); the
	// space's other bindings are not gated. At least one.
	Points []string `yaml:"points"`
	// Early: a card this long before the booking's start counts for it;
	// the lights still come on only at the start. Default 10m (nil).
	Early *time.Duration `yaml:"early"`
	// Warning: blink before switching off; none when nil.
	Warning *WarningSpec `yaml:"warning"`
}

// WarningSpec is the blink before card-enabled lights go off.
type WarningSpec struct {
	// Before: the blink starts this long before the booking's end.
	Before time.Duration `yaml:"before"`
	// Blink: the lights are off this long, then on again until the end.
	// Must be positive and shorter than Before.
	Blink time.Duration `yaml:"blink"`
}

// source is one compiled evidence source.
type source struct {
	kind      EvidenceKind
	door      string
	point     string
	threshold float64
}

// name is the door or point id.
func (s source) name() string {
	if s.kind == KindCard {
		return s.door
	}
	return s.point
}

type lights struct {
	doors, buttons, points []string
	early                  time.Duration
	warnBefore, blink      time.Duration // 0: no warning
}

// space is one compiled SpaceSpec with its booking windows.
type space struct {
	id      string
	sources []source
	noShow  bool
	grace   time.Duration
	before  time.Duration
	lights  *lights
	// windows are sorted by start, then booking.
	windows []Window
}

// compile checks a spec and builds the spaces; the error joins every
// problem, each naming its space.
func compile(spec Spec) ([]*space, error) {
	var errs []error
	seen := map[string]bool{}
	var out []*space
	for i, ss := range spec.Spaces {
		name := fmt.Sprintf("space %q", ss.ID)
		if ss.ID == "" {
			name = fmt.Sprintf("spaces[%d]", i)
			errs = append(errs, fmt.Errorf("%s: id is empty", name))
		} else if seen[ss.ID] {
			errs = append(errs, fmt.Errorf("%s: declared twice", name))
		}
		seen[ss.ID] = true
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
		}
		sp := &space{id: ss.ID, before: DefaultBefore}
		if len(ss.Evidence) == 0 && ss.NoShow == nil && ss.LightsByCard == nil {
			fail("declares no evidence, no_show or lights_by_card")
		}
		dup := map[source]bool{}
		for j, e := range ss.Evidence {
			where := fmt.Sprintf("evidence[%d]", j)
			switch {
			case e.Door == "" && e.Point == "":
				fail("%s: give door or point", where)
				continue
			case e.Door != "" && e.Point != "":
				fail("%s: give door or point, not both", where)
				continue
			case e.Door != "" && (e.Above != nil || e.Rise != nil):
				fail("%s: door %q takes no above or rise", where, e.Door)
				continue
			case e.Above != nil && e.Rise != nil:
				fail("%s: point %q takes above or rise, not both", where, e.Point)
				continue
			}
			src := source{kind: e.Kind(), door: e.Door, point: e.Point}
			switch src.kind {
			case KindAbove:
				if !finite(*e.Above) {
					fail("%s: above of point %q is not a number", where, e.Point)
					continue
				}
				src.threshold = *e.Above
			case KindRise:
				if !finite(*e.Rise) || *e.Rise <= 0 {
					fail("%s: rise of point %q must be a positive number, got %v", where, e.Point, *e.Rise)
					continue
				}
				src.threshold = *e.Rise
			}
			if dup[src] {
				fail("%s: %s %q listed twice", where, src.kind, src.name())
				continue
			}
			dup[src] = true
			sp.sources = append(sp.sources, src)
		}
		if ns := ss.NoShow; ns != nil {
			sp.noShow = true
			sp.grace = ns.Grace
			if ns.Grace <= 0 {
				fail("no_show: grace must be positive, got %v", ns.Grace)
			}
			if ns.Before != nil {
				sp.before = *ns.Before
				if sp.before < 0 {
					fail("no_show: before must not be negative, got %v", sp.before)
				}
			}
			if len(ss.Evidence) == 0 {
				fail("no_show needs at least one evidence source, or every booking is a no-show")
			}
		}
		if lc := ss.LightsByCard; lc != nil {
			l := &lights{early: DefaultEarly}
			if len(lc.Doors) == 0 && len(lc.Buttons) == 0 {
				fail("lights_by_card: give doors or buttons, or the lights never come on")
			}
			if len(lc.Points) == 0 {
				fail("lights_by_card: points lists no gated point")
			}
			for _, list := range []struct {
				key string
				ids []string
			}{{"doors", lc.Doors}, {"buttons", lc.Buttons}, {"points", lc.Points}} {
				for k, id := range list.ids {
					if id == "" {
						fail("lights_by_card: %s[%d] is empty", list.key, k)
					} else if slices.Index(list.ids, id) < k {
						fail("lights_by_card: %s lists %q twice", list.key, id)
					}
				}
			}
			for _, p := range lc.Points {
				if slices.Contains(lc.Buttons, p) {
					fail("lights_by_card: point %q is both a button and gated", p)
				}
				for _, s := range sp.sources {
					if s.point == p {
						fail("lights_by_card: gated point %q is also evidence; the lights would enable themselves", p)
					}
				}
			}
			l.doors, l.buttons, l.points = lc.Doors, lc.Buttons, lc.Points
			if lc.Early != nil {
				l.early = *lc.Early
				if l.early < 0 {
					fail("lights_by_card: early must not be negative, got %v", l.early)
				}
			}
			if w := lc.Warning; w != nil {
				l.warnBefore, l.blink = w.Before, w.Blink
				if w.Before <= 0 || w.Blink <= 0 {
					fail("lights_by_card: warning before and blink must be positive, got %v and %v", w.Before, w.Blink)
				} else if w.Blink >= w.Before {
					fail("lights_by_card: warning blink %v must be shorter than before %v, so the lights come back on until the end", w.Blink, w.Before)
				}
			}
			sp.lights = l
		}
		out = append(out, sp)
	}
	return out, errors.Join(errs...)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
