package schedule

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings/icalendar"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/sitegen"
)

// season is the default generated data set: 72 schools, a season of
// weekly series. It is built once for all benchmarks and not timed.
var season = sync.OnceValues(func() (*seasonData, error) {
	ds, err := sitegen.Generate(sitegen.Config{})
	if err != nil {
		return nil, err
	}
	return &seasonData{ds: ds, bookings: ds.Bookings(), feed: ds.Feed()}, nil
})

type seasonData struct {
	ds       *sitegen.Dataset
	bookings []booking.Booking
	feed     []byte
}

func loadSeason(b *testing.B) *seasonData {
	b.Helper()
	s, err := season()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// seasonRange is the whole season in local time.
func (s *seasonData) seasonRange() (time.Time, time.Time) {
	from, to := s.ds.SeasonStart, s.ds.SeasonEnd.AddDays(1)
	return time.Date(from.Year, from.Month, from.Day, 0, 0, 0, 0, s.ds.Location),
		time.Date(to.Year, to.Month, to.Day, 0, 0, 0, 0, s.ds.Location)
}

// heapMB returns the live heap after a collection, in MB.
func heapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / 1e6
}

// BenchmarkCompileFull compiles all 72 schools over the season from the
// expanded bookings. MB-heap is what the compiled plan keeps alive.
func BenchmarkCompileFull(b *testing.B) {
	s := loadSeason(b)
	from, to := s.seasonRange()
	before := heapMB()
	var p *Plan
	for b.Loop() {
		p = nil // let the previous plan go before building the next
		p = NewPlan(s.ds.Sites, from, to)
		p.SetBookings(s.bookings)
	}
	b.StopTimer()
	after := heapMB()
	st := p.Stats()
	b.ReportMetric(float64(len(s.bookings)), "bookings/op")
	b.ReportMetric(float64(st.Windows), "windows")
	b.ReportMetric(float64(st.Changes), "changes")
	b.ReportMetric(after-before, "MB-heap")
	runtime.KeepAlive(p)
}

// BenchmarkCompileIncremental moves one active booking, chosen at random,
// half an hour (and back on the next iteration) in the compiled season and
// applies it: its space, the space's wing and their points are rebuilt.
func BenchmarkCompileIncremental(b *testing.B) {
	s := loadSeason(b)
	from, to := s.seasonRange()
	p := NewPlan(s.ds.Sites, from, to)
	p.SetBookings(s.bookings)
	var active []int
	for i, bk := range s.bookings {
		if bk.Status.Active() {
			active = append(active, i)
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	// Collect the garbage of the full compile now, not in the first
	// timed iterations.
	runtime.GC()
	// Keep the plan equal to the feed between iterations: each moved
	// booking is moved back by the next one.
	var undo []booking.Booking
	for b.Loop() {
		if undo != nil {
			p.Apply(undo, nil)
			undo = nil
			continue
		}
		orig := s.bookings[active[rng.IntN(len(active))]]
		moved := orig
		moved.Start, moved.End = orig.Start.Add(30*time.Minute), orig.End.Add(30*time.Minute)
		p.Apply([]booking.Booking{moved}, nil)
		undo = []booking.Booking{orig}
	}
	b.StopTimer()
	b.ReportMetric(1, "bookings/op")
	st := p.Stats()
	b.ReportMetric(float64(st.Windows), "windows")
	b.ReportMetric(float64(st.Changes), "changes")
}

// BenchmarkParseFeed parses the season's iCalendar feed and expands it
// over the season: the work before a full compile when bookings come
// from the booking system.
func BenchmarkParseFeed(b *testing.B) {
	s := loadSeason(b)
	from, to := s.seasonRange()
	b.SetBytes(int64(len(s.feed)))
	var n int
	for b.Loop() {
		cal, err := icalendar.Parse(bytes.NewReader(s.feed))
		if err != nil {
			b.Fatal(err)
		}
		occ, err := cal.Expand(from, to, s.ds.Location)
		if err != nil {
			b.Fatal(err)
		}
		n = len(occ)
	}
	b.StopTimer()
	if n != len(s.bookings) {
		b.Errorf("the feed expands to %d occurrences, the generator to %d bookings", n, len(s.bookings))
	}
	b.ReportMetric(float64(n), "bookings/op")
}
