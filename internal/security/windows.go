package security

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// windows is a sorted list of disjoint, non-adjacent intervals.
type windows struct {
	set bool
	w   []Interval
}

// newWindows sorts and merges ws; overlapping and touching intervals
// become one.
func newWindows(ws []Interval) (windows, error) {
	s := slices.Clone(ws)
	for _, iv := range s {
		if !iv.End.After(iv.Start) {
			return windows{}, fmt.Errorf("%w: %s to %s", ErrBadInterval, iv.Start.Format(time.RFC3339), iv.End.Format(time.RFC3339))
		}
	}
	slices.SortFunc(s, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	out := s[:0]
	for _, iv := range s {
		if n := len(out); n > 0 && !iv.Start.After(out[n-1].End) {
			if iv.End.After(out[n-1].End) {
				out[n-1].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return windows{set: true, w: out}, nil
}

// after returns the index of the first window that ends after t.
func (w *windows) after(t time.Time) int {
	return sort.Search(len(w.w), func(i int) bool { return w.w[i].End.After(t) })
}

// covering returns the window covering t.
func (w *windows) covering(t time.Time) (Interval, bool) {
	if i := w.after(t); i < len(w.w) && !w.w[i].Start.After(t) {
		return w.w[i], true
	}
	return Interval{}, false
}

func (w *windows) covered(t time.Time) bool {
	_, ok := w.covering(t)
	return ok
}

// prevEnd returns the end of the latest window that ended at or before t.
func (w *windows) prevEnd(t time.Time) time.Time {
	if i := w.after(t); i > 0 {
		return w.w[i-1].End
	}
	return time.Time{}
}

// nextStart returns the earliest start after t.
func (w *windows) nextStart(t time.Time) time.Time {
	i := sort.Search(len(w.w), func(i int) bool { return w.w[i].Start.After(t) })
	if i < len(w.w) {
		return w.w[i].Start
	}
	return time.Time{}
}

// nextBoundary returns the earliest start or end after t.
func (w *windows) nextBoundary(t time.Time) time.Time {
	i := w.after(t)
	if i == len(w.w) {
		return time.Time{}
	}
	if w.w[i].Start.After(t) {
		return w.w[i].Start
	}
	return w.w[i].End
}

// firstOutside returns the earliest time after t that lies outside every
// window and at least grace after both since and the end of the window
// before it: when a door unlocked since since is left unlocked. Zero
// means no such time lies after t: the condition already holds at t, or
// never will under the known windows.
func (w *windows) firstOutside(t, since time.Time, grace time.Duration) time.Time {
	i := w.after(t)
	var gapStart time.Time
	if i < len(w.w) && !w.w[i].Start.After(t) {
		gapStart = w.w[i].End // t is inside window i
		i++
	} else if i > 0 {
		gapStart = w.w[i-1].End
	}
	for {
		c := latest(since, gapStart).Add(grace)
		if i == len(w.w) || c.Before(w.w[i].Start) {
			if c.After(t) {
				return c
			}
			return time.Time{}
		}
		gapStart = w.w[i].End
		i++
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earliest returns the earliest of ts that lies after t; zero if none.
func earliest(t time.Time, ts ...time.Time) time.Time {
	var best time.Time
	for _, c := range ts {
		if c.After(t) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	return best
}
