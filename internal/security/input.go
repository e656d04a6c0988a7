package security

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// boolIn is the latest state of one boolean input: a value other than 0
// is true (as the mapping documents bool inputs). A reading that cannot
// be used (unreadable, or NaN or infinite) leaves the last good value in place
// and marks the input, so that edges are always judged against the last
// value known to be true.
type boolIn struct {
	point   string
	invert  bool
	present bool
	have    bool // a good value has been read
	val     bool // the last good value, inversion applied
	// unreadable: the latest reading failed. invalid: the latest reading
	// was not a number (raw holds it).
	unreadable, invalid bool
	raw                 float64
	since               time.Time // when the latest problem began
}

func newBoolIn(in *Input) boolIn {
	if in == nil {
		return boolIn{}
	}
	return boolIn{point: in.Point, invert: in.Invert, present: true}
}

// set applies a reading and reports whether the good value changed.
func (b *boolIn) set(v float64, ok bool, at time.Time) (changed bool) {
	if !ok {
		if !b.unreadable {
			b.unreadable, b.since = true, at
		}
		b.invalid = false
		return false
	}
	b.unreadable = false
	if math.IsNaN(v) || math.IsInf(v, 0) {
		if !b.invalid {
			b.invalid, b.since = true, at
		}
		b.raw = v
		return false
	}
	b.invalid = false
	nv := (v != 0) != b.invert
	changed = b.have && nv != b.val
	b.have, b.val = true, nv
	return changed
}

// usable reports whether the input is absent or has a good current value.
func (b *boolIn) usable() bool {
	return !b.present || (b.have && !b.unreadable && !b.invalid)
}

// on is the input's value; an absent input is off.
func (b *boolIn) on() bool { return b.present && b.val }

// problem describes why the input is not usable, "" if it is.
func (b *boolIn) problem(field string) string {
	switch {
	case !b.present:
		return ""
	case b.unreadable:
		return fmt.Sprintf("%s %s is unreadable", field, b.point)
	case b.invalid:
		return fmt.Sprintf("%s %s reads %s", field, b.point, fmtNum(b.raw))
	case !b.have:
		return fmt.Sprintf("%s %s has not been read yet", field, b.point)
	}
	return ""
}

// numIn is the latest state of a numeric input (a reader's grant counter,
// a water flow meter).
type numIn struct {
	point      string
	present    bool
	have       bool
	val        float64
	unreadable bool
	invalid    bool
	raw        float64
	since      time.Time
}

// set applies a reading and returns the previous good value and whether
// there was one.
func (n *numIn) set(v float64, ok bool, at time.Time) (prev float64, hadPrev, good bool) {
	if !ok {
		if !n.unreadable {
			n.unreadable, n.since = true, at
		}
		n.invalid = false
		return 0, false, false
	}
	n.unreadable = false
	if math.IsNaN(v) || math.IsInf(v, 0) {
		if !n.invalid {
			n.invalid, n.since = true, at
		}
		n.raw = v
		return 0, false, false
	}
	n.invalid = false
	prev, hadPrev = n.val, n.have
	n.have, n.val = true, v
	return prev, hadPrev, true
}

// usable reports whether the input has a good current value.
func (n *numIn) usable() bool { return n.have && !n.unreadable && !n.invalid }

func (n *numIn) problem(field string) string {
	switch {
	case !n.present:
		return ""
	case n.unreadable:
		return fmt.Sprintf("%s %s is unreadable", field, n.point)
	case n.invalid:
		return fmt.Sprintf("%s %s reads %s", field, n.point, fmtNum(n.raw))
	case !n.have:
		return fmt.Sprintf("%s %s has not been read yet", field, n.point)
	}
	return ""
}

func fmtNum(v float64) string { return fmt.Sprintf("%g", v) }

// fmtDur formats a duration for people: 3m, 1h30m, 10s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
