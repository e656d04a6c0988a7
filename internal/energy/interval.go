package energy

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// span is a half-open interval [a, b) in Unix nanoseconds.
type span struct{ a, b int64 }

// spans is a sorted list of disjoint, non-touching spans: a set of
// instants.
type spans []span

// union returns the set of instants in any of the lists.
func union(lists ...spans) spans {
	var all spans
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortFunc(all, func(x, y span) int { return cmp.Compare(x.a, y.a) })
	var out spans
	for _, s := range all {
		if s.b <= s.a {
			continue
		}
		if n := len(out); n > 0 && s.a <= out[n-1].b {
			out[n-1].b = max(out[n-1].b, s.b)
			continue
		}
		out = append(out, s)
	}
	return out
}

// clip returns the part of s within [a, b).
func (s spans) clip(a, b int64) spans {
	var out spans
	for _, x := range s {
		lo, hi := max(x.a, a), min(x.b, b)
		if lo < hi {
			out = append(out, span{lo, hi})
		}
	}
	return out
}

// within returns the total length of s within [a, b).
func (s spans) within(a, b int64) time.Duration {
	var d int64
	// The spans are sorted and disjoint: start at the first that ends
	// after a, stop at the first that starts at or after b.
	for _, x := range s[sort.Search(len(s), func(i int) bool { return s[i].b > a }):] {
		if x.a >= b {
			break
		}
		d += min(x.b, b) - max(x.a, a)
	}
	return time.Duration(d)
}
