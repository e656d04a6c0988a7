package booking

import (
	"cmp"
	"slices"
	"time"
)

// Input is the bookings of one source of a site, with the source's
// precedence: when bookings of two sources overlap on one resource, the
// source with the higher Precedence wins.
type Input struct {
	// Source is the id of the booking source.
	Source string
	// Precedence orders sources; higher wins.
	Precedence int
	// Bookings are the source's bookings, any status.
	Bookings []Booking
}

// ConflictKind says how an overlap between two active bookings of one
// resource was resolved.
type ConflictKind string

// Conflict kinds.
const (
	// ConflictSuperseded means the Loser came from a source with lower precedence
	// than the Winner's and was marked Superseded.
	ConflictSuperseded ConflictKind = "superseded"
	// ConflictDoubleBooked means both bookings came from the same source; both are
	// kept, since the gateway cannot know which one the booking office meant.
	ConflictDoubleBooked ConflictKind = "double_booked"
	// ConflictEqualPrecedence means the bookings came from different sources of
	// equal precedence; both are kept.
	ConflictEqualPrecedence ConflictKind = "equal_precedence"
)

// Conflict is an overlap of two active bookings of the same resource.
type Conflict struct {
	// Kind says how the conflict was resolved.
	Kind ConflictKind `json:"kind"`
	// Resource is the booked resource both bookings claim.
	Resource string `json:"resource"`
	// Winner is the booking that was kept. For kinds that keep both
	// bookings, Winner is the one that sorts first (earlier start, then
	// source, then id).
	Winner Booking `json:"winner"`
	// Loser is the booking that was superseded, or for kinds that keep
	// both, the one that sorts second. Its Status is as it was before the
	// merge.
	Loser Booking `json:"loser"`
	// Start and End bound the overlap: [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Result is the outcome of Merge.
type Result struct {
	// Bookings holds every input booking, with the losers of precedence
	// conflicts marked Superseded, ordered by start, resource, source, id.
	Bookings []Booking
	// Conflicts holds every overlap found, ordered by overlap start,
	// resource, winner and loser.
	Conflicts []Conflict
}

// Merge combines the bookings of the sources of one site.
//
// When an active booking overlaps an active booking of the same resource
// from a source with higher precedence, it is marked Superseded and a
// ConflictSuperseded is reported. Precedence is resolved from the highest
// level down, so a booking that lost to a higher source no longer
// supersedes anything itself. Among the surviving active bookings, overlaps
// within one source (ConflictDoubleBooked) and between different sources of
// equal precedence (ConflictEqualPrecedence) are reported and both bookings
// kept. Cancelled and superseded input bookings are passed through and never
// conflict.
//
// Merge sets each booking's Source to its Input's Source, does not modify
// its inputs, and is deterministic.
func Merge(inputs []Input) Result {
	type entry struct {
		b    Booking
		prec int
	}
	var all []entry
	for _, in := range inputs {
		for _, b := range in.Bookings {
			b.Source = in.Source
			all = append(all, entry{b: b, prec: in.Precedence})
		}
	}

	// Group the active bookings by resource, as indexes into all.
	byResource := map[string][]int{}
	for i, e := range all {
		if e.b.Status.Active() {
			byResource[e.b.Resource] = append(byResource[e.b.Resource], i)
		}
	}

	var conflicts []Conflict
	for resource, idx := range byResource {
		// Highest precedence first, then by start, so that winners of a
		// level are final before the next level is checked against them.
		slices.SortFunc(idx, func(a, b int) int {
			if c := cmp.Compare(all[b].prec, all[a].prec); c != 0 {
				return c
			}
			return compareBookings(all[a].b, all[b].b)
		})
		var winners []int // sorted by start; all with precedence > current level
		var level []int   // survivors of the current precedence level
		flush := func() {
			winners = append(winners, level...)
			slices.SortFunc(winners, func(a, b int) int { return compareBookings(all[a].b, all[b].b) })
			level = level[:0]
		}
		for n, i := range idx {
			if n > 0 && all[i].prec != all[idx[n-1]].prec {
				flush()
			}
			lost := false
			for _, w := range winners {
				wb := all[w].b
				if !wb.Start.Before(all[i].b.End) {
					break // winners are sorted by start: no later one overlaps
				}
				if start, end, ok := overlap(wb, all[i].b); ok {
					conflicts = append(conflicts, Conflict{
						Kind: ConflictSuperseded, Resource: resource,
						Winner: wb, Loser: all[i].b, Start: start, End: end,
					})
					lost = true
				}
			}
			if lost {
				all[i].b.Status = Superseded
				continue
			}
			level = append(level, i)
		}
		flush()

		// winners now holds every surviving active booking of the resource,
		// sorted by start: report the overlaps among them.
		for n, i := range winners {
			for _, j := range winners[n+1:] {
				if !all[j].b.Start.Before(all[i].b.End) {
					break
				}
				start, end, ok := overlap(all[i].b, all[j].b)
				if !ok {
					continue
				}
				kind := ConflictEqualPrecedence
				if all[i].b.Source == all[j].b.Source {
					kind = ConflictDoubleBooked
				}
				conflicts = append(conflicts, Conflict{
					Kind: kind, Resource: resource,
					Winner: all[i].b, Loser: all[j].b, Start: start, End: end,
				})
			}
		}
	}

	out := make([]Booking, len(all))
	for i, e := range all {
		out[i] = e.b
	}
	SortBookings(out)
	slices.SortFunc(conflicts, func(a, b Conflict) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Resource, b.Resource); c != 0 {
			return c
		}
		if c := compareBookings(a.Winner, b.Winner); c != 0 {
			return c
		}
		return compareBookings(a.Loser, b.Loser)
	})
	return Result{Bookings: out, Conflicts: conflicts}
}

// SortBookings orders bookings by start, resource, source and id, the order
// every list of bookings in bmsgw is shown and compared in.
func SortBookings(bs []Booking) {
	slices.SortStableFunc(bs, compareBookings)
}

func compareBookings(a, b Booking) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Resource, b.Resource); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	return a.End.Compare(b.End)
}

// overlap returns the common part of two bookings, if they have one.
func overlap(a, b Booking) (start, end time.Time, ok bool) {
	start, end = a.Start, a.End
	if b.Start.After(start) {
		start = b.Start
	}
	if b.End.Before(end) {
		end = b.End
	}
	return start, end, start.Before(end)
}

// Key identifies a booking across polls and merges.
type Key struct {
	Source string `json:"source"`
	ID     string `json:"id"`
}

// String renders the key as "source:id", like Booking.String.
func (k Key) String() string { return k.Source + ":" + k.ID }

// Key returns the key that identifies b.
func (b Booking) Key() Key { return Key{Source: b.Source, ID: b.ID} }

// Same reports whether a and b are the same booking in the same state.
// Unlike ==, it compares times with Equal, so a booking decoded again in
// another time zone is the same booking.
func (b Booking) Same(o Booking) bool {
	return b.Source == o.Source && b.ID == o.ID && b.Resource == o.Resource &&
		b.Organiser == o.Organiser && b.Status == o.Status &&
		b.Start.Equal(o.Start) && b.End.Equal(o.End)
}

// Diff compares two lists of bookings for incremental recompilation:
// upserts holds the bookings of next that are new or changed, ordered like
// SortBookings; removed holds the keys of old that are not in next, ordered
// by source and id. Keys are expected to be unique within each list; if one
// is repeated, its last booking counts.
func Diff(old, next []Booking) (upserts []Booking, removed []Key) {
	before := make(map[Key]Booking, len(old))
	for _, b := range old {
		before[b.Key()] = b
	}
	after := make(map[Key]Booking, len(next))
	for _, b := range next {
		after[b.Key()] = b
	}
	for k, b := range after {
		if o, ok := before[k]; !ok || !o.Same(b) {
			upserts = append(upserts, b)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	SortBookings(upserts)
	slices.SortFunc(removed, func(a, b Key) int {
		if c := cmp.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return upserts, removed
}
