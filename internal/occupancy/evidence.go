package occupancy

import (
	"slices"
	"sort"
	"time"
)

// Evidence is one sign of people in a space.
type Evidence struct {
	// Time is when the reading or grant was. For a condition that
	// already held before the range looked at (water flowing since
	// earlier), it is the start of that range.
	Time time.Time    `json:"time"`
	Kind EvidenceKind `json:"kind"`
	// Source is the door or point id.
	Source string `json:"source"`
}

// sample is one reading of a point; a reading that is not ok (bad
// quality, device down) holds no value.
type sample struct {
	At time.Time `json:"t"`
	V  float64   `json:"v"`
	OK bool      `json:"ok"`
}

// Bounds of the history the tracker keeps.
const (
	// History is how far back readings and grants are kept: evidence for
	// a booking moved into the past, and for a restart, is looked up in
	// it. A booking whose evidence range starts earlier is not judged.
	History = 24 * time.Hour
	// maxSamples caps the readings kept per point, so a counter that
	// ticks every second cannot grow without bound; the oldest go first.
	maxSamples = 4096
)

// addSample records a reading in time order. A reading equal to the one
// before it adds nothing to any evidence or button rule and is dropped, so
// no two neighbours are equal whatever order readings come in.
func addSample(ss []sample, s sample) []sample {
	same := func(a, b sample) bool { return a.OK == b.OK && (!a.OK || a.V == b.V) }
	i := sort.Search(len(ss), func(i int) bool { return ss[i].At.After(s.At) })
	if i > 0 && same(ss[i-1], s) {
		return ss
	}
	if i < len(ss) && same(ss[i], s) {
		// A late reading equal to the next one: that one now repeats it.
		ss = slices.Delete(ss, i, i+1)
	}
	ss = slices.Insert(ss, i, s)
	if len(ss) > maxSamples {
		ss = slices.Delete(ss, 0, len(ss)-maxSamples)
	}
	return ss
}

// addTime records a grant in time order.
func addTime(ts []time.Time, t time.Time) []time.Time {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(t) })
	if i > 0 && ts[i-1].Equal(t) {
		return ts
	}
	ts = slices.Insert(ts, i, t)
	if len(ts) > maxSamples {
		ts = slices.Delete(ts, 0, len(ts)-maxSamples)
	}
	return ts
}

// pruneSamples drops readings older than cut but keeps the last one
// before it, which still says what held at cut.
func pruneSamples(ss []sample, cut time.Time) []sample {
	i := sort.Search(len(ss), func(i int) bool { return !ss[i].At.Before(cut) })
	if i <= 1 {
		return ss
	}
	return slices.Delete(ss, 0, i-1)
}

func pruneTimes(ts []time.Time, cut time.Time) []time.Time {
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(cut) })
	return slices.Delete(ts, 0, i)
}

// after is the index of the first reading after t.
func after(ss []sample, t time.Time) int {
	return sort.Search(len(ss), func(i int) bool { return ss[i].At.After(t) })
}

// span finds the first and last evidence of one source in [a, b).
func (tr *Tracker) span(src source, a, b time.Time) (first, last Evidence, ok bool) {
	hit := func(t time.Time) {
		e := Evidence{Time: t, Kind: src.kind, Source: src.name()}
		if !ok {
			first, ok = e, true
		}
		last = e
	}
	switch src.kind {
	case KindCard:
		ts := tr.grants[src.door]
		for i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(a) }); i < len(ts) && ts[i].Before(b); i++ {
			hit(ts[i])
		}
	case KindAbove, KindOn:
		cond := func(s sample) bool {
			if src.kind == KindOn {
				return s.OK && s.V != 0
			}
			return s.OK && s.V > src.threshold
		}
		ss := tr.samples[src.point]
		i := after(ss, a)
		if i > 0 && cond(ss[i-1]) && a.Before(b) {
			hit(a)
		}
		for ; i < len(ss) && ss[i].At.Before(b); i++ {
			if cond(ss[i]) {
				hit(ss[i].At)
			}
		}
	case KindRise:
		ss := tr.samples[src.point]
		i := after(ss, a)
		var base float64
		have := false
		for j := i - 1; j >= 0; j-- {
			if ss[j].OK {
				base, have = ss[j].V, true
				break
			}
		}
		for ; i < len(ss) && ss[i].At.Before(b); i++ {
			s := ss[i]
			switch {
			case !s.OK:
			case !have || s.V < base:
				base, have = s.V, true
			case s.V-base >= src.threshold:
				hit(s.At)
			}
		}
	}
	return first, last, ok
}

// evidence finds the first and last evidence of any of a space's sources
// in [a, b); ties go to the source listed first.
func (tr *Tracker) evidence(sp *space, a, b time.Time) (first, last Evidence, ok bool) {
	for _, src := range sp.sources {
		f, l, found := tr.span(src, a, b)
		if !found {
			continue
		}
		if !ok || f.Time.Before(first.Time) {
			first = f
		}
		if !ok || l.Time.After(last.Time) {
			last = l
		}
		ok = true
	}
	return first, last, ok
}

// press finds the first lights enable in [a, b): a grant at one of the
// doors or a button going from false to true. A button whose value before
// the press is unknown (nothing read yet) does not count: a button stuck
// on must not light the pitch.
func (tr *Tracker) press(l *lights, a, b time.Time) (at time.Time, by string, ok bool) {
	better := func(t time.Time, who string) {
		if !ok || t.Before(at) {
			at, by, ok = t, who, true
		}
	}
	for _, d := range l.doors {
		ts := tr.grants[d]
		if i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(a) }); i < len(ts) && ts[i].Before(b) {
			better(ts[i], d)
		}
	}
	for _, p := range l.buttons {
		ss := tr.samples[p]
		for i := sort.Search(len(ss), func(i int) bool { return !ss[i].At.Before(a) }); i < len(ss) && ss[i].At.Before(b); i++ {
			if ss[i].OK && ss[i].V != 0 && i > 0 && !(ss[i-1].OK && ss[i-1].V != 0) {
				better(ss[i].At, p)
				break
			}
		}
	}
	return at, by, ok
}
