package security

import (
	"fmt"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

type detector struct {
	spec DetectorSpec
	area *area
	// in and inB are the detector's sensors; inB only for dual_tech.
	in, inB         numIn
	active, activeB bool
	rise, riseB     time.Time // last time each sensor tripped
	leak            bool      // a leak is raised (water_flow)
	points          []string
}

func newDetector(s DetectorSpec) *detector {
	d := &detector{spec: s, in: numIn{point: s.Point, present: true}, points: []string{s.Point}}
	if s.Kind == DualTech {
		d.inB = numIn{point: s.PointB, present: true}
		d.points = append(d.points, s.PointB)
	}
	return d
}

func (d *detector) label() string {
	return fmt.Sprintf("%s %s", kindName[d.spec.Kind], d.spec.ID)
}

var kindName = map[DetectorKind]string{
	Contact: "contact", PIR: "PIR", Microwave: "microwave", DualTech: "dual-tech detector",
	GlassBreak: "glass-break detector", PanicButton: "panic button", WaterFlow: "water flow",
}

// observe applies a reading of sensor b (false: Point, true: PointB).
// Detectors are edge-triggered: a sensor must return to rest before it
// can trip again, and the first reading only sets the baseline.
func (d *detector) observe(m *Monitor, b bool, v float64, ok bool, at time.Time) {
	in, act, rise, other, otherRise := &d.in, &d.active, &d.rise, d.activeB, d.riseB
	if b {
		in, act, rise, other, otherRise = &d.inB, &d.activeB, &d.riseB, d.active, d.rise
	}
	// A reading that is not a number is shown in the status and the
	// round, and trips nothing.
	_, hadPrev, good := in.set(v, ok, at)
	if !good {
		return
	}
	now := (v != 0) != d.spec.Invert
	if d.spec.Kind == WaterFlow {
		now = v > d.spec.Above
	}
	tripped := hadPrev && now && !*act
	changed := now != *act
	*act = now
	if tripped {
		*rise = at
	}
	a := d.area
	switch d.spec.Kind {
	case WaterFlow:
		if changed || !hadPrev {
			a.eval(m, at)
		}
	case PanicButton:
		if tripped {
			m.emit(at, events.Panic, events.Critical, "", d.spec.ID, d.points,
				"panic button %s pressed in %s: a person may be in danger", d.spec.ID, a.label())
		}
	case DualTech:
		if tripped && (other || (!otherRise.IsZero() && at.Sub(otherRise) <= d.spec.Within)) {
			d.intrusion(m, at, "both sensors tripped within "+fmtDur(d.spec.Within))
		}
	default:
		if tripped {
			d.intrusion(m, at, "tripped")
		}
	}
}

func (d *detector) intrusion(m *Monitor, at time.Time, what string) {
	if armed, known := d.area.isArmed(); !known || !armed {
		return
	}
	m.emit(at, events.Intrusion, events.Alarm, "", d.spec.ID, d.points,
		"intrusion: %s %s in armed %s", d.label(), what, d.area.label())
}

// DetectorStatus is a detector's state for status pages and the round.
type DetectorStatus struct {
	ID   string
	Kind DetectorKind
	Area string
	// Active: tripped (both sensors for dual_tech), or water flowing.
	Active bool
	// Value is the last good reading of Point.
	Value float64
	// Leak: a leak is raised.
	Leak bool
	// Problem says why a sensor cannot be read, "" if both can.
	Problem string
}

func (d *detector) status() DetectorStatus {
	p := d.in.problem("point")
	if q := d.inB.problem("point_b"); q != "" {
		if p != "" {
			p += "; "
		}
		p += q
	}
	active := d.active
	if d.spec.Kind == DualTech {
		active = d.active && d.activeB
	}
	return DetectorStatus{ID: d.spec.ID, Kind: d.spec.Kind, Area: d.spec.Area, Active: active,
		Value: d.in.val, Leak: d.leak, Problem: p}
}
