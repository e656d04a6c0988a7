package schedule

import (
	"cmp"
	"slices"
)

// ReasonKind says what made a space or point occupied.
type ReasonKind string

// Reason kinds, in the order reasons are listed.
const (
	// ReasonBooking is a booking of one of the space's resources.
	ReasonBooking ReasonKind = "booking"
	// ReasonSchedule is a weekly period of a base schedule.
	ReasonSchedule ReasonKind = "schedule"
	// ReasonException is an exception day with its own hours.
	ReasonException ReasonKind = "exception"
	// ReasonChild is a child space that was occupied.
	ReasonChild ReasonKind = "child"
)

func (k ReasonKind) rank() int {
	switch k {
	case ReasonBooking:
		return 0
	case ReasonSchedule:
		return 1
	case ReasonException:
		return 2
	case ReasonChild:
		return 3
	}
	return 4
}

// Reason is one cause of an occupancy window or a point change.
type Reason struct {
	Kind ReasonKind
	// Ref identifies the cause: "source:id" of a booking, the id of a
	// schedule, the id of an exception calendar, or the id of a child
	// space.
	Ref string
	// Day is the name of the exception day (exceptions only).
	Day string
	// Organiser is the booking's pseudonymous organiser (bookings only).
	Organiser string
}

// String describes the reason for people, e.g.
// "booking leisure:abc/20261126T180000Z (org valby-volley)",
// "schedule school_day" or "exception public_holidays: Juleaftensdag".
func (r Reason) String() string {
	switch r.Kind {
	case ReasonBooking:
		if r.Organiser != "" {
			return "booking " + r.Ref + " (org " + r.Organiser + ")"
		}
	case ReasonException:
		return "exception " + r.Ref + ": " + r.Day
	}
	return string(r.Kind) + " " + r.Ref
}

func compareReasons(a, b Reason) int {
	if c := cmp.Compare(a.Kind.rank(), b.Kind.rank()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Ref, b.Ref); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Day, b.Day); c != 0 {
		return c
	}
	return cmp.Compare(a.Organiser, b.Organiser)
}

// maxRecent is how many distinct reason sets a merge remembers.
const maxRecent = 8

// unionReasons returns the sorted, duplicate-free union of the reasons of
// spans. It returns a slice it returned before in the same merge, or one
// of the spans' own, when that already is the union: a wing's windows on
// school days all have the same children as reasons, and sharing the
// slice keeps a season of them small.
func (m *merger) unionReasons(spans []span) []Reason {
	if len(spans) == 1 {
		return spans[0].reasons
	}
	// Spans of one source share its reasons slice (a child's windows, a
	// schedule's periods): take each slice once.
	distinct := m.distinct[:0]
	for _, s := range spans {
		if !slices.ContainsFunc(distinct, func(r []Reason) bool { return sameSlice(r, s.reasons) }) {
			distinct = append(distinct, s.reasons)
		}
	}
	m.distinct = distinct
	if len(distinct) == 1 {
		return distinct[0]
	}
	buf := m.reasons[:0]
	for _, r := range distinct {
		buf = append(buf, r...)
	}
	slices.SortFunc(buf, compareReasons)
	buf = slices.Compact(buf)
	m.reasons = buf
	for _, r := range distinct {
		if slices.Equal(r, buf) {
			return r
		}
	}
	for _, r := range m.recent {
		if slices.Equal(r, buf) {
			return r
		}
	}
	u := slices.Clone(buf)
	if len(m.recent) == maxRecent {
		copy(m.recent, m.recent[1:])
		m.recent = m.recent[:maxRecent-1]
	}
	m.recent = append(m.recent, u)
	return u
}

// sameSlice reports whether a and b are the same slice: same elements in
// the same memory.
func sameSlice(a, b []Reason) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
