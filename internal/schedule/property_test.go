package schedule

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sitegen"
)

// render lists everything a plan holds, internal padding included, as
// comparable lines.
func render(p *Plan) []string {
	var out []string
	span := func(s span) string {
		return fmt.Sprintf("%s..%s %s", time.Unix(0, s.start).UTC().Format(time.RFC3339), time.Unix(0, s.end).UTC().Format(time.RFC3339), strings.Join(reasonStrings(s.reasons), "; "))
	}
	for _, c := range p.Compilers() {
		for _, st := range c.spaces {
			for _, w := range st.windows {
				out = append(out, "space "+c.site.ID+"/"+st.space.ID+" "+span(w))
			}
		}
		for _, ps := range c.points {
			for _, w := range ps.windows {
				out = append(out, "point "+c.site.ID+"/"+ps.point.ID+" "+span(w))
			}
		}
	}
	for _, ch := range p.Changes() {
		out = append(out, fmt.Sprintf("change %s %s/%s %v %v %v %s", ch.At.Format(time.RFC3339), ch.Site.ID, ch.Point.ID, ch.Value, ch.Occupied, ch.Initial, strings.Join(reasonStrings(ch.Reasons), "; ")))
	}
	return out
}

func generate(t testing.TB, schools int, seed uint64) (*sitegen.Dataset, []booking.Booking) {
	t.Helper()
	ds, err := sitegen.Generate(sitegen.Config{Schools: schools, Seed: seed})
	require.NoError(t, err)
	return ds, ds.Bookings()
}

// testRange is six weeks around the autumn DST change, so tests stay fast
// while the bookings of the whole season are fed in.
func testRange(t *testing.T) (time.Time, time.Time) {
	return at(t, "2026-10-05 00:00"), at(t, "2026-11-16 00:00")
}

func TestDeterministic(t *testing.T) {
	ds, bookings := generate(t, 2, 11)
	from, to := testRange(t)
	p := NewPlan(ds.Sites, from, to)
	p.SetBookings(bookings)
	want := render(p)
	require.NotEmpty(t, want)

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		shuffled := slices.Clone(bookings)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		sites := slices.Clone(ds.Sites)
		rng.Shuffle(len(sites), func(i, j int) { sites[i], sites[j] = sites[j], sites[i] })
		q := NewPlan(sites, from, to)
		q.SetBookings(shuffled)
		got := render(q)
		// Compilers are listed in the order of the sites given; the
		// changes are sorted.
		slices.Sort(got)
		sorted := slices.Clone(want)
		slices.Sort(sorted)
		require.Equal(t, sorted, got, "shuffle %d", i)
		require.Equal(t, p.Stats(), q.Stats())
	}
}

// TestIncrementalEqualsFull applies random batches of changes to a plan
// and checks after each that it holds exactly what a full compile of the
// same bookings holds.
func TestIncrementalEqualsFull(t *testing.T) {
	ds, bookings := generate(t, 2, 5)
	from, to := testRange(t)
	rng := rand.New(rand.NewPCG(5, 6))

	truth := map[BookingKey]booking.Booking{}
	for _, b := range bookings {
		truth[KeyOf(b)] = b
	}
	var resources []string
	for _, s := range ds.Sites {
		for _, sp := range s.Spaces {
			resources = append(resources, sp.Resources...)
		}
	}
	resources = append(resources, "not-a-resource")
	// Work on bookings in or near the range, so that changes matter.
	var keys []BookingKey
	for _, b := range bookings {
		if b.End.After(from.Add(-48*time.Hour)) && b.Start.Before(to.Add(48*time.Hour)) {
			keys = append(keys, KeyOf(b))
		}
	}
	slices.SortFunc(keys, func(a, b BookingKey) int { return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.ID, b.ID)) })
	require.NotEmpty(t, keys)

	p := NewPlan(ds.Sites, from, to)
	p.SetBookings(bookings)
	rounds := 25
	if testing.Short() {
		rounds = 5
	}
	for round := range rounds {
		var ups []booking.Booking
		var rems []BookingKey
		for range 1 + rng.IntN(12) {
			k := keys[rng.IntN(len(keys))]
			b, exists := truth[k]
			if !exists {
				// Bring a removed booking back.
				b = booking.Booking{Source: k.Source, ID: k.ID, Resource: resources[rng.IntN(len(resources))],
					Start: from.Add(time.Duration(rng.IntN(6*7*24*4)) * 15 * time.Minute), Status: booking.Confirmed}
				b.End = b.Start.Add(time.Duration(1+rng.IntN(12)) * 15 * time.Minute)
				truth[k] = b
				ups = append(ups, b)
				continue
			}
			switch rng.IntN(7) {
			case 0: // move in time
				d := time.Duration(rng.IntN(33)-16) * 15 * time.Minute
				b.Start, b.End = b.Start.Add(d), b.End.Add(d)
			case 1: // move to another resource, perhaps of the other school
				b.Resource = resources[rng.IntN(len(resources))]
			case 2: // cancel
				b.Status = booking.Cancelled
			case 3: // make tentative or confirmed again
				b.Status = []booking.Status{booking.Tentative, booking.Confirmed}[rng.IntN(2)]
			case 4: // change its length
				b.End = b.Start.Add(time.Duration(rng.IntN(16)) * 15 * time.Minute)
			case 5: // remove
				delete(truth, k)
				rems = append(rems, k)
				continue
			case 6: // a new booking
				nb := b
				nb.ID = fmt.Sprintf("new-%d-%d", round, len(ups))
				nb.Start = nb.Start.Add(time.Duration(rng.IntN(8)) * 15 * time.Minute)
				nb.End = nb.Start.Add(45 * time.Minute)
				truth[KeyOf(nb)] = nb
				keys = append(keys, KeyOf(nb))
				ups = append(ups, nb)
				continue
			}
			truth[k] = b
			ups = append(ups, b)
		}
		// The same key twice in one batch: the later upsert wins, in the
		// truth too.
		p.Apply(ups, rems)

		all := make([]booking.Booking, 0, len(truth))
		for _, b := range truth {
			all = append(all, b)
		}
		full := NewPlan(ds.Sites, from, to)
		full.SetBookings(all)
		require.Equal(t, render(full), render(p), "round %d", round)
		require.Equal(t, full.Stats(), p.Stats(), "round %d", round)
	}
}

// TestCompilerApplyEqualsFull runs the property on a single compiler, as
// the control engine of one site uses it.
func TestCompilerApplyEqualsFull(t *testing.T) {
	ds, bookings := generate(t, 1, 9)
	s := ds.Sites[0]
	from, to := testRange(t)
	c := NewCompiler(s, from, to)
	c.SetBookings(bookings)
	rng := rand.New(rand.NewPCG(9, 10))
	cur := slices.Clone(bookings)
	for round := range 10 {
		i := rng.IntN(len(cur))
		b := cur[i]
		b.Start = from.Add(time.Duration(rng.IntN(6*7*24)) * time.Hour)
		b.End = b.Start.Add(90 * time.Minute)
		cur[i] = b
		c.Apply([]booking.Booking{b}, nil)
		full := NewCompiler(s, from, to)
		full.SetBookings(cur)
		for _, sp := range s.Spaces {
			require.Equal(t, full.Windows(sp.ID), c.Windows(sp.ID), "round %d space %s", round, sp.ID)
		}
		for _, id := range sortedPointIDs(s) {
			require.Equal(t, full.Timeline(id), c.Timeline(id), "round %d point %s", round, id)
		}
	}
}

func sortedPointIDs(s *site.Site) []string {
	var ids []string
	for id := range s.Points {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
