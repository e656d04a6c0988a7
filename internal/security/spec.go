// Package security derives door states, alarm-area conformance and
// intrusion, panic and leak alarms from point readings, and runs the
// virtual patrol round; it is pure logic driven by the caller's clock.
//
// The gateway does not arm or disarm alarm areas on its own authority
// unless a mapping says so (Danish insurers require arming equipment
// certified to EN 50131-3): by default it compares the armed state read
// back from the certified panel with the booking-derived schedule and
// reports differences. See docs/security.md.
package security

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Defaults applied by NewMonitor to zero durations.
const (
	DefaultHeldOpenAfter     = 2 * time.Minute
	DefaultGrantValid        = 10 * time.Second
	DefaultLeftUnlockedAfter = 15 * time.Minute
	DefaultWithin            = 10 * time.Second
	DefaultMismatchAfter     = 5 * time.Minute
	DefaultPulse             = 2 * time.Second
)

// Settle is how long inputs that belong together may disagree before the
// monitor judges them. Readings of one door arrive one point at a time and
// in no guaranteed order, so a door contact may read open a moment before
// the deadbolt reads retracted, a grant counter may be read after the
// opening, and the two loops of a double-loop contact change a moment
// apart. Within Settle such combinations are waited out; after it they are
// a forced door or a wire fault.
const Settle = 2 * time.Second

// Spec is the security part of one site's mapping: doors, detectors and
// alarm areas. It mirrors the mapping YAML one to one (see docs/security.md).
type Spec struct {
	Doors     []DoorSpec
	Detectors []DetectorSpec
	Areas     []AreaSpec
}

// Input is one boolean point the monitor reads: a value other than 0 is
// true; NaN or infinity is unusable. For every input true means: deadbolt
// thrown, handle pressed, door open, unlock output on, area armed. Invert
// flips a point that reads the other way, such as a
// normally closed contact loop that reads 1 while the door is closed.
type Input struct {
	Point  string
	Invert bool
}

// Output is a point the monitor asks the caller to write (direct control).
type Output struct {
	Point string
}

// DoorSpec declares a door (a portal: door and lock) and its inputs. Only
// Contact is required; without Deadbolt the lock state is taken from the
// Unlock output (an electric strike locks unless the system unlocks it),
// and a door with neither can never be reported forced or left unlocked.
type DoorSpec struct {
	ID   string
	Name string
	// Space is the space the door serves (required).
	Space string
	// Area is the alarm area the door belongs to, "" for none.
	Area string
	// Deadbolt reads the lock's deadbolt microswitch: true when thrown.
	Deadbolt *Input
	// Handle reads the handle switch: true while pressed.
	Handle *Input
	// Contact reads the door contact: true while the door is open.
	Contact *Input
	// ContactB is the second loop of a double-loop contact; it must
	// agree with Contact, or the door reports a wire fault.
	ContactB *Input
	// Unlock reads back the access system's own unlock output.
	Unlock *Input
	// Reader reads access grants: a counter that increments, or a pulse.
	// Any rise of its value is one grant. Invert is not allowed.
	Reader *Input
	// HeldOpenAfter is how long the door may stay open; default 2m.
	HeldOpenAfter time.Duration
	// GrantValid is how long after a grant, or after the unlock output
	// was on, an opening counts as authorised; default 10s.
	GrantValid time.Duration
	// LeftUnlockedAfter is how long after the last window of its space
	// the door may stay unlocked; default 15m.
	LeftUnlockedAfter time.Duration
}

// DetectorKind is what a detector senses.
type DetectorKind string

// Detector kinds.
const (
	Contact     DetectorKind = "contact"
	PIR         DetectorKind = "pir"
	Microwave   DetectorKind = "microwave"
	DualTech    DetectorKind = "dual_tech" // PIR and microwave: both must trip within Within
	GlassBreak  DetectorKind = "glass_break"
	PanicButton DetectorKind = "panic"
	WaterFlow   DetectorKind = "water_flow" // an analogue flow reading; active above Above
)

// DetectorKinds lists every detector kind.
var DetectorKinds = []DetectorKind{Contact, PIR, Microwave, DualTech, GlassBreak, PanicButton, WaterFlow}

// DetectorSpec declares a detector. It belongs to exactly one area.
type DetectorSpec struct {
	ID   string
	Kind DetectorKind
	// Point is the detector's input: other than 0 tripped, 0 at rest;
	// for water_flow the flow in the meter's unit.
	Point string
	// Invert flips Point and PointB (a normally closed detector loop);
	// not for water_flow.
	Invert bool
	// PointB is the second sensor of a dual_tech detector (required there,
	// not allowed elsewhere).
	PointB string
	// Within is how close in time the two sensors of a dual_tech detector
	// must trip; default 10s; dual_tech only.
	Within time.Duration
	// Above is the flow above which water_flow is active; default 0;
	// water_flow only.
	Above float64
	// Area is the alarm area (required).
	Area string
}

// Control says who arms an area.
type Control string

// Controls.
const (
	// Panel: the certified panel arms and disarms from the schedule the
	// gateway hands it; the gateway only reads back and compares.
	Panel Control = "panel"
	// Direct: the gateway pulses the area's arm and disarm outputs itself
	// (an uninsured hall, a keyswitch input of the panel).
	Direct Control = "direct"
)

// Night is a nightly wall-clock period in the site's time zone; From
// after To means it spans midnight (22:00 to 06:00).
type Night struct {
	From, To site.Clock
}

// DirectSpec is how the gateway drives an area under direct control.
type DirectSpec struct {
	Arm    Output
	Disarm Output
	// Pulse is how long an output is held on; default 2s.
	Pulse time.Duration
}

// AreaSpec declares an alarm area.
type AreaSpec struct {
	ID   string
	Name string
	// Armed reads back whether the area is armed (required).
	Armed *Input
	// ExitDelay is the panel's pre-warning delay between the arm command
	// (the end of a window) and the area being armed.
	ExitDelay time.Duration
	// MismatchAfter is the grace after the area should have armed (window
	// end plus exit delay), or should have disarmed (window start), before
	// a difference is reported; default 5m.
	MismatchAfter time.Duration
	// Night limits leak alarms to the night; nil: at any time.
	Night *Night
	// Control is panel (default) or direct.
	Control Control
	// Direct is required with control direct and not allowed otherwise.
	Direct *DirectSpec
}

// Interval is a half-open period [Start, End).
type Interval struct {
	Start, End time.Time
}

// Errors returned by the monitor's setters.
var (
	ErrUnknownArea  = errors.New("unknown alarm area")
	ErrUnknownSpace = errors.New("no door serves this space")
	ErrBadInterval  = errors.New("interval does not end after it starts")
)

// role is what a point does for an object; used to find conflicting uses.
type role struct {
	what  string // "door", "detector", "area"
	id    string
	field string
	// shareable roles may be used by several objects: a double door's
	// shared reader or unlock output, a door contact that is also a
	// contact detector.
	shareable string
	output    bool
}

func (r role) String() string { return fmt.Sprintf("%s %q %s", r.what, r.id, r.field) }

// validate applies defaults to a copy of spec and returns it with every
// problem found, each naming the object's id.
func validate(spec Spec) (Spec, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	s := Spec{
		Doors:     slices.Clone(spec.Doors),
		Detectors: slices.Clone(spec.Detectors),
		Areas:     slices.Clone(spec.Areas),
	}
	ids := map[string]string{}
	checkID := func(what, id string) bool {
		if strings.TrimSpace(id) == "" {
			bad("%s without an id", what)
			return false
		}
		if prev, dup := ids[id]; dup {
			bad("%s %q: id already used by a %s", what, id, prev)
			return false
		}
		ids[id] = what
		return true
	}
	areas := map[string]bool{}
	for _, a := range s.Areas {
		if strings.TrimSpace(a.ID) != "" {
			areas[a.ID] = true
		}
	}
	uses := map[string][]role{}
	use := func(point string, r role) {
		if point == "" {
			bad("%s: point id is empty", r)
			return
		}
		uses[point] = append(uses[point], r)
	}
	duration := func(what, id, field string, d *time.Duration, def time.Duration) {
		switch {
		case *d < 0:
			bad("%s %q: %s %v is negative", what, id, field, *d)
		case *d == 0:
			*d = def
		}
	}

	for i := range s.Doors {
		d := &s.Doors[i]
		checkID("door", d.ID)
		if d.Space == "" {
			bad("door %q: space is required", d.ID)
		}
		if d.Area != "" && !areas[d.Area] {
			bad("door %q: unknown area %q", d.ID, d.Area)
		}
		if d.Contact == nil {
			bad("door %q: contact is required", d.ID)
		}
		if d.ContactB != nil && d.Contact == nil {
			bad("door %q: contact_b needs contact", d.ID)
		}
		if d.Reader != nil && d.Reader.Invert {
			bad("door %q: reader is a counter or pulse and cannot be inverted", d.ID)
		}
		for _, in := range []struct {
			field string
			in    *Input
			share string
		}{
			{"deadbolt", d.Deadbolt, ""},
			{"handle", d.Handle, ""},
			{"contact", d.Contact, "contact"},
			{"contact_b", d.ContactB, "contact"},
			{"unlock", d.Unlock, "unlock"},
			{"reader", d.Reader, "reader"},
		} {
			if in.in != nil {
				use(in.in.Point, role{what: "door", id: d.ID, field: in.field, shareable: in.share})
			}
		}
		duration("door", d.ID, "held_open_after", &d.HeldOpenAfter, DefaultHeldOpenAfter)
		duration("door", d.ID, "grant_valid", &d.GrantValid, DefaultGrantValid)
		duration("door", d.ID, "left_unlocked_after", &d.LeftUnlockedAfter, DefaultLeftUnlockedAfter)
	}

	for i := range s.Detectors {
		d := &s.Detectors[i]
		checkID("detector", d.ID)
		if !slices.Contains(DetectorKinds, d.Kind) {
			bad("detector %q: kind %q is not one of %s", d.ID, d.Kind, kindList())
		}
		switch {
		case d.Area == "":
			bad("detector %q: area is required", d.ID)
		case !areas[d.Area]:
			bad("detector %q: unknown area %q", d.ID, d.Area)
		}
		share := ""
		if d.Kind == Contact {
			share = "contact"
		}
		use(d.Point, role{what: "detector", id: d.ID, field: "point", shareable: share})
		if d.Kind == DualTech {
			if d.PointB == "" {
				bad("detector %q: dual_tech needs point_b (the second sensor)", d.ID)
			} else {
				use(d.PointB, role{what: "detector", id: d.ID, field: "point_b"})
			}
			duration("detector", d.ID, "within", &d.Within, DefaultWithin)
		} else {
			if d.PointB != "" {
				bad("detector %q: point_b is only for dual_tech", d.ID)
			}
			if d.Within != 0 {
				bad("detector %q: within is only for dual_tech", d.ID)
			}
		}
		if d.Kind == WaterFlow && d.Invert {
			bad("detector %q: invert is not for water_flow; use above", d.ID)
		}
		switch {
		case d.Kind != WaterFlow && d.Above != 0:
			bad("detector %q: above is only for water_flow", d.ID)
		case math.IsNaN(d.Above) || math.IsInf(d.Above, 0):
			bad("detector %q: above must be a number", d.ID)
		}
	}

	for i := range s.Areas {
		a := &s.Areas[i]
		checkID("area", a.ID)
		if a.Armed == nil {
			bad("area %q: armed (the armed state read back from the panel) is required", a.ID)
		} else {
			use(a.Armed.Point, role{what: "area", id: a.ID, field: "armed"})
		}
		if a.ExitDelay < 0 {
			bad("area %q: exit_delay %v is negative", a.ID, a.ExitDelay)
		}
		duration("area", a.ID, "mismatch_after", &a.MismatchAfter, DefaultMismatchAfter)
		if n := a.Night; n != nil {
			night := *n
			a.Night = &night // the monitor reads it at run time: keep its own
			switch {
			case n.From < 0 || n.From > 1440 || n.To < 0 || n.To > 1440:
				bad("area %q: night must lie between 00:00 and 24:00", a.ID)
			case n.From%1440 == n.To%1440:
				bad("area %q: night from %s and to %s must differ", a.ID, n.From, n.To)
			}
		}
		switch a.Control {
		case "":
			a.Control = Panel
			fallthrough
		case Panel:
			if a.Direct != nil {
				bad("area %q: direct outputs are only allowed with control: direct", a.ID)
			}
		case Direct:
			if a.Direct == nil {
				bad("area %q: control direct needs direct.arm and direct.disarm", a.ID)
				break
			}
			dir := *a.Direct
			use(dir.Arm.Point, role{what: "area", id: a.ID, field: "direct.arm", output: true})
			use(dir.Disarm.Point, role{what: "area", id: a.ID, field: "direct.disarm", output: true})
			duration("area", a.ID, "direct.pulse", &dir.Pulse, DefaultPulse)
			a.Direct = &dir
		default:
			bad("area %q: control %q is not panel or direct", a.ID, a.Control)
		}
	}

	points := make([]string, 0, len(uses))
	for p := range uses {
		points = append(points, p)
	}
	slices.Sort(points)
	for _, p := range points {
		rs := uses[p]
		for i := 1; i < len(rs); i++ {
			for j := range i {
				if conflict(rs[j], rs[i]) {
					bad("point %q is used as %s and as %s", p, rs[j], rs[i])
				}
			}
		}
	}
	return s, errors.Join(errs...)
}

// conflict reports whether one point may not serve both roles.
func conflict(a, b role) bool {
	if a.output || b.output {
		return true
	}
	if a.what == b.what && a.id == b.id {
		return true // one object reading a point twice is a typo
	}
	return a.shareable == "" || a.shareable != b.shareable
}

func kindList() string {
	s := make([]string, len(DetectorKinds))
	for i, k := range DetectorKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
