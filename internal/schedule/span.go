package schedule

import (
	"cmp"
	"slices"
	"sort"
)

// span is an interval [start, end) in Unix nanoseconds with its reasons.
// Spans are the compiler's internal form of windows: two int64 instead of
// two time.Time keep a season of point windows small. The reasons slice is
// shared between spans and must never be modified.
type span struct {
	start, end int64
	reasons    []Reason
}

func compareSpans(a, b span) int {
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	return cmp.Compare(a.end, b.end)
}

// sortSpans orders spans by start, then end. Spans with equal bounds may
// end up in any order; a merge makes the union of their reasons, so the
// result does not depend on it.
func sortSpans(s []span) {
	slices.SortFunc(s, compareSpans)
}

func equalSpans(a, b []span) bool {
	return slices.EqualFunc(a, b, func(x, y span) bool {
		return x.start == y.start && x.end == y.end && slices.Equal(x.reasons, y.reasons)
	})
}

// run is one sorted input of a merge: a schedule's periods, a space's
// bookings, a child's windows (with the child as their reason), or a
// space's windows widened by a binding's lead and lag.
type run struct {
	spans     []span
	lead, lag int64
	// as replaces the reasons of the spans when set.
	as []Reason
}

func (r *run) head() span {
	s := r.spans[0]
	s.start -= r.lead
	s.end += r.lag
	if r.as != nil {
		s.reasons = r.as
	}
	return s
}

// seek drops the spans that start before from.
func (r *run) seek(from int64) {
	i := sort.Search(len(r.spans), func(i int) bool { return r.spans[i].start-r.lead >= from })
	r.spans = r.spans[i:]
}

// next removes and returns the first span of all runs, in (start, end)
// order; a merge has a handful of runs, so a linear scan beats a heap.
func next(runs []run) (span, bool) {
	best := -1
	var bs span
	for i := range runs {
		if len(runs[i].spans) == 0 {
			continue
		}
		if h := runs[i].head(); best < 0 || compareSpans(h, bs) < 0 {
			best, bs = i, h
		}
	}
	if best < 0 {
		return span{}, false
	}
	runs[best].spans = runs[best].spans[1:]
	return bs, true
}

// merger joins sorted runs into windows. Its buffers are reused between
// calls, so one merger serves a whole compile.
type merger struct {
	out     []span
	group   []span
	reasons []Reason
	// recent are the last distinct reason sets made by this merge.
	recent [][]Reason
	// distinct is scratch space for unionReasons.
	distinct [][]Reason
}

// splice updates windows old (in place where it can), merged from the
// spans of runs, after the
// spans changed within [a, b] (minTime and maxTime for everything). Spans
// that overlap or touch a window, or start less than gap after its end,
// join it; a window shorter than minLen is extended at its end to minLen
// as it is built, so a span starting inside the extension joins it too.
//
// Only the windows near the change are merged again: from the first old
// window a change can reach, until the merge starts a window exactly where
// an old window started after b. From there on the inputs and the state
// of the merge (a fresh window) are those of the old merge, so the rest
// of old is kept as it is. splice returns the new windows and the range
// that changed, or old and an empty range (lo > hi) when nothing did. It
// consumes runs.
func (m *merger) splice(old []span, runs []run, a, b, gap, minLen int64) (out []span, lo, hi int64) {
	i0 := 0
	if a != minTime {
		// A change at a reaches back to a window ending gap plus the
		// minimum window before it.
		reach := a - gap - minLen
		i0 = sort.Search(len(old), func(i int) bool { return old[i].end >= reach })
	}
	from := a
	if i0 < len(old) {
		from = min(from, old[i0].start)
	}
	for i := range runs {
		runs[i].seek(from)
	}
	clear(m.recent)
	m.recent = m.recent[:0]
	mid := m.out[:0]
	k := i0
	resynced := false
	x, ok := next(runs)
	for ok {
		if x.start > b {
			for k < len(old) && old[k].start < x.start {
				k++
			}
			if k < len(old) && old[k].start == x.start {
				resynced = true
				break
			}
		}
		start, end := x.start, x.end
		effEnd := max(end, start+minLen)
		group := append(m.group[:0], x)
		for {
			x, ok = next(runs)
			if !ok || (x.start > effEnd && x.start-effEnd >= gap) {
				break
			}
			end = max(end, x.end)
			effEnd = max(end, start+minLen)
			group = append(group, x)
		}
		m.group = group
		mid = append(mid, span{start: start, end: effEnd, reasons: m.unionReasons(group)})
	}
	clear(m.group)
	m.out = mid
	if !resynced {
		k = len(old)
	}
	replaced := old[i0:k]
	if equalSpans(replaced, mid) {
		return old, maxTime, minTime
	}
	lo, hi = maxTime, minTime
	if len(replaced) > 0 {
		lo, hi = replaced[0].start, replaced[len(replaced)-1].end
	}
	if len(mid) > 0 {
		lo, hi = min(lo, mid[0].start), max(hi, mid[len(mid)-1].end)
	}
	// Updated in place: the compiler rebuilds everything that shares old
	// (the points bound to the space) in the same Apply, and readers get
	// copies. Moving the tail is much cheaper than a fresh season.
	n := len(old) - (k - i0) + len(mid)
	switch {
	case n == 0:
		return nil, lo, hi
	case n <= cap(old):
		return slices.Replace(old, i0, k, mid...), lo, hi
	}
	// A season of windows is kept for long: no spare capacity.
	out = make([]span, 0, n)
	return append(append(append(out, old[:i0]...), mid...), old[k:]...), lo, hi
}
