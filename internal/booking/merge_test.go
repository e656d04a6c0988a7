package booking

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var day = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// bk builds a booking of resource res from hour h1 to hour h2 of day.
func bk(id, res string, h1, h2 int, st Status) Booking {
	return Booking{
		ID: id, Resource: res, Status: st,
		Start: day.Add(time.Duration(h1) * time.Hour),
		End:   day.Add(time.Duration(h2) * time.Hour),
	}
}

func hr(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }

func TestMerge(t *testing.T) {
	type conflict struct {
		kind          ConflictKind
		winner, loser string // Booking.String()
		start, end    int
	}
	tests := []struct {
		name      string
		inputs    []Input
		statuses  map[string]Status // Booking.String() -> status after merge
		conflicts []conflict
	}{
		{
			name: "higher precedence supersedes lower",
			inputs: []Input{
				{Source: "low", Precedence: 1, Bookings: []Booking{bk("a", "gym", 18, 20, Confirmed)}},
				{Source: "high", Precedence: 2, Bookings: []Booking{bk("b", "gym", 19, 21, Tentative)}},
			},
			statuses:  map[string]Status{"low:a": Superseded, "high:b": Tentative},
			conflicts: []conflict{{ConflictSuperseded, "high:b", "low:a", 19, 20}},
		},
		{
			name: "different resources do not conflict",
			inputs: []Input{
				{Source: "low", Precedence: 1, Bookings: []Booking{bk("a", "gym", 18, 20, Confirmed)}},
				{Source: "high", Precedence: 2, Bookings: []Booking{bk("b", "pitch", 18, 20, Confirmed)}},
			},
			statuses: map[string]Status{"low:a": Confirmed, "high:b": Confirmed},
		},
		{
			name: "touching bookings do not overlap",
			inputs: []Input{
				{Source: "low", Precedence: 1, Bookings: []Booking{bk("a", "gym", 18, 20, Confirmed)}},
				{Source: "high", Precedence: 2, Bookings: []Booking{bk("b", "gym", 20, 22, Confirmed)}},
			},
			statuses: map[string]Status{"low:a": Confirmed, "high:b": Confirmed},
		},
		{
			name: "cancelled higher booking does not supersede",
			inputs: []Input{
				{Source: "low", Precedence: 1, Bookings: []Booking{bk("a", "gym", 18, 20, Confirmed)}},
				{Source: "high", Precedence: 2, Bookings: []Booking{bk("b", "gym", 18, 20, Cancelled)}},
			},
			statuses: map[string]Status{"low:a": Confirmed, "high:b": Cancelled},
		},
		{
			name: "double booking within one source keeps both",
			inputs: []Input{
				{Source: "s", Precedence: 1, Bookings: []Booking{
					bk("b", "gym", 19, 21, Confirmed), bk("a", "gym", 18, 20, Confirmed),
				}},
			},
			statuses:  map[string]Status{"s:a": Confirmed, "s:b": Confirmed},
			conflicts: []conflict{{ConflictDoubleBooked, "s:a", "s:b", 19, 20}},
		},
		{
			name: "equal precedence keeps both",
			inputs: []Input{
				{Source: "x", Precedence: 5, Bookings: []Booking{bk("a", "gym", 18, 20, Confirmed)}},
				{Source: "w", Precedence: 5, Bookings: []Booking{bk("b", "gym", 18, 19, Confirmed)}},
			},
			statuses:  map[string]Status{"x:a": Confirmed, "w:b": Confirmed},
			conflicts: []conflict{{ConflictEqualPrecedence, "w:b", "x:a", 18, 19}},
		},
		{
			name: "a superseded booking supersedes nothing",
			inputs: []Input{
				{Source: "top", Precedence: 3, Bookings: []Booking{bk("a", "gym", 17, 19, Confirmed)}},
				{Source: "mid", Precedence: 2, Bookings: []Booking{bk("b", "gym", 18, 20, Confirmed)}},
				{Source: "low", Precedence: 1, Bookings: []Booking{bk("c", "gym", 19, 21, Confirmed)}},
			},
			statuses:  map[string]Status{"top:a": Confirmed, "mid:b": Superseded, "low:c": Confirmed},
			conflicts: []conflict{{ConflictSuperseded, "top:a", "mid:b", 18, 19}},
		},
		{
			name: "one loser against two winners",
			inputs: []Input{
				{Source: "high", Precedence: 2, Bookings: []Booking{
					bk("a", "gym", 17, 18, Confirmed), bk("b", "gym", 20, 22, Confirmed),
				}},
				{Source: "low", Precedence: 1, Bookings: []Booking{bk("c", "gym", 17, 21, Confirmed)}},
			},
			statuses: map[string]Status{"high:a": Confirmed, "high:b": Confirmed, "low:c": Superseded},
			conflicts: []conflict{
				{ConflictSuperseded, "high:a", "low:c", 17, 18},
				{ConflictSuperseded, "high:b", "low:c", 20, 21},
			},
		},
		{
			name: "long booking overlaps a later one past a short one",
			inputs: []Input{
				{Source: "s", Precedence: 1, Bookings: []Booking{
					bk("long", "hall", 8, 22, Confirmed), bk("short", "hall", 9, 10, Confirmed),
					bk("late", "hall", 20, 21, Confirmed),
				}},
			},
			statuses: map[string]Status{"s:long": Confirmed, "s:short": Confirmed, "s:late": Confirmed},
			conflicts: []conflict{
				{ConflictDoubleBooked, "s:long", "s:short", 9, 10},
				{ConflictDoubleBooked, "s:long", "s:late", 20, 21},
			},
		},
		{
			name: "superseded input passes through",
			inputs: []Input{
				{Source: "low", Precedence: 1, Bookings: []Booking{bk("a", "gym", 18, 20, Superseded)}},
				{Source: "high", Precedence: 2, Bookings: []Booking{bk("b", "gym", 18, 20, Confirmed)}},
			},
			statuses: map[string]Status{"low:a": Superseded, "high:b": Confirmed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Merge(tt.inputs)
			require.Len(t, res.Bookings, len(tt.statuses))
			for _, b := range res.Bookings {
				want, ok := tt.statuses[b.String()]
				require.True(t, ok, "unexpected booking %s", b)
				require.Equal(t, want, b.Status, "status of %s", b)
			}
			var got []conflict
			for _, c := range res.Conflicts {
				require.Equal(t, c.Winner.Resource, c.Resource)
				got = append(got, conflict{
					c.Kind, c.Winner.String(), c.Loser.String(),
					int(c.Start.Sub(day).Hours()), int(c.End.Sub(day).Hours()),
				})
			}
			require.Equal(t, tt.conflicts, got)
		})
	}
}

func TestMergeLoserKeepsOriginalStatusInConflict(t *testing.T) {
	res := Merge([]Input{
		{Source: "low", Precedence: 1, Bookings: []Booking{bk("a", "gym", 18, 20, Tentative)}},
		{Source: "high", Precedence: 2, Bookings: []Booking{bk("b", "gym", 18, 20, Confirmed)}},
	})
	require.Len(t, res.Conflicts, 1)
	require.Equal(t, Tentative, res.Conflicts[0].Loser.Status)
	require.Equal(t, hr(18), res.Conflicts[0].Start)
	require.Equal(t, hr(20), res.Conflicts[0].End)
}

func TestMergeDoesNotModifyInputs(t *testing.T) {
	low := []Booking{bk("a", "gym", 18, 20, Confirmed)}
	Merge([]Input{
		{Source: "low", Precedence: 1, Bookings: low},
		{Source: "high", Precedence: 2, Bookings: []Booking{bk("b", "gym", 18, 20, Confirmed)}},
	})
	require.Equal(t, Confirmed, low[0].Status)
	require.Empty(t, low[0].Source)
}

func TestMergeDeterministicOrder(t *testing.T) {
	inputs := []Input{
		{Source: "b", Precedence: 1, Bookings: []Booking{
			bk("2", "pitch", 18, 20, Confirmed), bk("1", "gym", 18, 20, Confirmed), bk("3", "gym", 8, 9, Cancelled),
		}},
		{Source: "a", Precedence: 1, Bookings: []Booking{
			bk("9", "gym", 18, 20, Confirmed), bk("8", "gym", 19, 20, Confirmed),
		}},
	}
	first := Merge(inputs)
	var order []string
	for _, b := range first.Bookings {
		order = append(order, b.String())
	}
	require.Equal(t, []string{"b:3", "a:9", "b:1", "b:2", "a:8"}, order)
	for range 20 {
		// Map iteration order varies between runs; the result must not.
		require.Equal(t, first, Merge(inputs))
	}
}

func TestDiff(t *testing.T) {
	src := func(b Booking) Booking { b.Source = "s"; return b }
	a := src(bk("a", "gym", 18, 20, Confirmed))
	b := src(bk("b", "gym", 20, 21, Confirmed))
	c := src(bk("c", "pitch", 18, 20, Confirmed))
	bCancelled := b
	bCancelled.Status = Cancelled
	// Same instant in another zone is not a change.
	aElsewhere := a
	cph, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)
	aElsewhere.Start = a.Start.In(cph)

	tests := []struct {
		name     string
		old, new []Booking
		upserts  []Booking
		removed  []Key
	}{
		{name: "empty"},
		{name: "all new", new: []Booking{c, a}, upserts: []Booking{a, c}},
		{name: "all removed", old: []Booking{c, a}, removed: []Key{{"s", "a"}, {"s", "c"}}},
		{name: "unchanged", old: []Booking{a, b}, new: []Booking{b, aElsewhere}},
		{
			name: "changed, added and removed",
			old:  []Booking{a, b}, new: []Booking{bCancelled, c},
			upserts: []Booking{c, bCancelled}, removed: []Key{{"s", "a"}},
		},
		{
			name: "same id in another source is another booking",
			old:  []Booking{a}, new: []Booking{func() Booking { x := a; x.Source = "t"; return x }()},
			upserts: []Booking{func() Booking { x := a; x.Source = "t"; return x }()},
			removed: []Key{{"s", "a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, rm := Diff(tt.old, tt.new)
			require.Equal(t, tt.upserts, up)
			require.Equal(t, tt.removed, rm)
		})
	}
}

func TestKeyString(t *testing.T) {
	b := Booking{Source: "cbs", ID: "uid-1/20261126T180000Z"}
	require.Equal(t, b.String(), b.Key().String())
}
