package access

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/calendar"
)

// SkipReason says why an active booking got no grant.
type SkipReason string

// Skip reasons.
const (
	// SkipNoOrganiser: the booking has no organiser, so there is no group
	// to give the doors to.
	SkipNoOrganiser SkipReason = "no_organiser"
	// SkipNoDoors: no space with doors lists the booked resource. This is
	// the normal case for pitches and rooms without access control.
	SkipNoDoors SkipReason = "no_doors"
	// SkipBadTimes: the booking does not end after it starts.
	SkipBadTimes SkipReason = "bad_times"
)

// Skip is an active booking that got no grant, and why.
type Skip struct {
	Booking booking.Key
	Reason  SkipReason
}

// Computation is the outcome of Compute.
type Computation struct {
	// Grants in the order of SortGrants.
	Grants []Grant
	// Skipped lists the active bookings that got no grant, sorted by
	// booking key.
	Skipped []Skip
}

// Grants returns the grants that the bookings call for and that overlap
// [from, to); see Compute.
func Grants(spec Spec, bookings []booking.Booking, from, to time.Time) []Grant {
	return Compute(spec, bookings, from, to).Grants
}

// Compute derives the grants for the active (confirmed or tentative)
// bookings: for each door of each space that lists the booked resource,
// the organiser's group gets [Start-MarginBefore, End+MarginAfter), split
// into card and card_pin grants at the boundaries of the PIN schedule.
// With a MaxPerGroupDoor limit, windows of one group at one door are
// merged where more than that many would overlap or touch, so the limit
// is never exceeded. Grants that overlap [from, to) are returned, whole;
// windows are merged and split over all the bookings given, so a grant's
// key and bounds do not depend on the range. Compute is deterministic
// and does not modify its inputs.
func Compute(spec Spec, bookings []booking.Booking, from, to time.Time) Computation {
	loc := spec.Location
	if loc == nil {
		loc = time.UTC
	}
	doors := doorsByResource(spec.Spaces)

	var out Computation
	byPair := map[pair][]window{}
	for _, b := range bookings {
		if !b.Status.Active() {
			continue
		}
		key := b.Key()
		switch {
		case !b.End.After(b.Start):
			out.Skipped = append(out.Skipped, Skip{key, SkipBadTimes})
			continue
		case b.Organiser == "":
			out.Skipped = append(out.Skipped, Skip{key, SkipNoOrganiser})
			continue
		case len(doors[b.Resource]) == 0:
			out.Skipped = append(out.Skipped, Skip{key, SkipNoDoors})
			continue
		}
		w := window{
			start:      b.Start.Add(-spec.MarginBefore).In(loc),
			end:        b.End.Add(spec.MarginAfter).In(loc),
			bookings:   []booking.Key{key},
			organisers: []string{b.Organiser},
		}
		group := spec.GroupOf(b.Organiser)
		for _, d := range doors[b.Resource] {
			p := pair{group, d}
			byPair[p] = append(byPair[p], w)
		}
	}
	slices.SortFunc(out.Skipped, func(a, b Skip) int { return compareKeys(a.Booking, b.Booking) })

	for p, ws := range byPair {
		for _, w := range mergeWindows(ws, spec.MaxPerGroupDoor) {
			for _, g := range split(spec, loc, p, w) {
				if g.From.Before(to) && g.To.After(from) {
					out.Grants = append(out.Grants, g)
				}
			}
		}
	}
	SortGrants(out.Grants)
	return out
}

// pair is a group at a door: the unit of the target's limit.
type pair struct{ group, door string }

// window is a span of access of one group at one door, before the split
// into modes.
type window struct {
	start, end time.Time
	bookings   []booking.Key // sorted
	organisers []string      // sorted, unique
}

// anchor is the booking whose key names the window's grants: the
// smallest key, so that moving bookings or merging in others leaves it.
func (w window) anchor() booking.Key { return w.bookings[0] }

func compareKeys(a, b booking.Key) int {
	if c := cmp.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// doorsByResource maps each resource to the sorted, unique doors of the
// spaces listing it.
func doorsByResource(spaces []SpaceDoors) map[string][]string {
	m := map[string][]string{}
	for _, sp := range spaces {
		for _, r := range sp.Resources {
			for _, d := range sp.Doors {
				if d != "" {
					m[r] = append(m[r], d)
				}
			}
		}
	}
	for r, ds := range m {
		slices.Sort(ds)
		m[r] = slices.Compact(ds)
	}
	return m
}

// mergeWindows merges the windows of one group at one door so that no
// more than limit of them overlap or touch at any instant; limit 0 means
// no limit and no merging.
//
// The sweep goes by start. The open windows are those still running (or
// ending exactly) where the next one starts; while fewer than limit are
// open, the next window stays on its own, otherwise it joins the open
// window that ends last. Starts never move, and every later window starts
// after the current one, so the count of windows over any instant never
// grows past limit.
func mergeWindows(ws []window, limit int) []window {
	slices.SortFunc(ws, func(a, b window) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		if c := a.end.Compare(b.end); c != 0 {
			return c
		}
		return compareKeys(a.anchor(), b.anchor())
	})
	if limit <= 0 {
		return ws
	}
	var out []window
	var open []int // indexes into out
	for _, w := range ws {
		open = slices.DeleteFunc(open, func(i int) bool { return out[i].end.Before(w.start) })
		if len(open) < limit {
			out = append(out, window{start: w.start, end: w.end,
				bookings: slices.Clone(w.bookings), organisers: slices.Clone(w.organisers)})
			open = append(open, len(out)-1)
			continue
		}
		last := open[0]
		for _, i := range open[1:] {
			if out[i].end.After(out[last].end) {
				last = i
			}
		}
		m := &out[last]
		if w.end.After(m.end) {
			m.end = w.end
		}
		m.bookings = append(m.bookings, w.bookings...)
		slices.SortFunc(m.bookings, compareKeys)
		m.bookings = slices.Compact(m.bookings)
		m.organisers = append(m.organisers, w.organisers...)
		slices.Sort(m.organisers)
		m.organisers = slices.Compact(m.organisers)
	}
	return out
}

// split cuts a window into grants at the boundaries of the PIN schedule.
func split(spec Spec, loc *time.Location, p pair, w window) []Grant {
	type seg struct {
		from, to time.Time
		mode     Mode
	}
	var segs []seg
	add := func(from, to time.Time, m Mode) {
		if !to.After(from) {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].mode == m && segs[n-1].to.Equal(from) {
			segs[n-1].to = to
			return
		}
		segs = append(segs, seg{from, to, m})
	}
	cur := w.start
	if spec.PinSchedule != nil {
		for _, per := range calendar.Expand(spec.PinSchedule, loc, w.start, w.end) {
			ps, pe := maxTime(per.Start, w.start), minTime(per.End, w.end)
			if !pe.After(cur) {
				continue // inside a period already covered
			}
			ps = maxTime(ps, cur)
			add(cur, ps, ModeCard)
			add(ps, pe, ModeCardPIN)
			cur = pe
		}
	}
	add(cur, w.end, ModeCard)

	grants := make([]Grant, 0, len(segs))
	ordinal := map[Mode]int{}
	for _, s := range segs {
		grants = append(grants, Grant{
			Key:        grantKey(p, w.anchor(), s.mode, ordinal[s.mode]),
			Group:      p.group,
			Door:       p.door,
			From:       s.from.In(loc),
			To:         s.to.In(loc),
			Mode:       s.mode,
			Bookings:   slices.Clone(w.bookings),
			Organisers: slices.Clone(w.organisers),
		})
		ordinal[s.mode]++
	}
	return grants
}

// grantKey hashes what identifies a grant, so the key that goes to the
// ACS carries no booking id in clear.
func grantKey(p pair, anchor booking.Key, m Mode, ordinal int) string {
	h := sha256.New()
	for _, s := range []string{p.group, p.door, anchor.Source, anchor.ID, string(m), strconv.Itoa(ordinal)} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return "g-" + hex.EncodeToString(h.Sum(nil)[:12])
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
