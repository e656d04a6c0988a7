package schedule

import (
	"runtime"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Plan compiles several sites from shared booking feeds: it routes each
// booking to the compilers of the sites that have its resource. As with
// Compiler, reads may run concurrently with each other, but SetBookings
// and Apply must not run concurrently with anything.
type Plan struct {
	compilers  []*Compiler
	bySite     map[string]*Compiler
	byResource map[string][]*Compiler
}

// NewPlan prepares one compiler per site over [from, to).
func NewPlan(sites []*site.Site, from, to time.Time) *Plan {
	p := &Plan{
		compilers:  make([]*Compiler, len(sites)),
		bySite:     make(map[string]*Compiler, len(sites)),
		byResource: make(map[string][]*Compiler),
	}
	p.each(func(i int) { p.compilers[i] = NewCompiler(sites[i], from, to) })
	for _, c := range p.compilers {
		p.bySite[c.site.ID] = c
		// Each list is in site order, whatever the map's order.
		for r := range c.byResource {
			p.byResource[r] = append(p.byResource[r], c)
		}
	}
	return p
}

// Compilers returns the compilers in the order of the sites given to
// NewPlan. The slice is shared; do not modify it.
func (p *Plan) Compilers() []*Compiler { return p.compilers }

// Compiler returns the compiler of a site, or nil.
func (p *Plan) Compiler(siteID string) *Compiler { return p.bySite[siteID] }

// SetBookings replaces the bookings of every site with all and compiles
// everything, as Compiler.SetBookings does.
func (p *Plan) SetBookings(all []booking.Booking) {
	// Route first, in input order so the later of two bookings with one
	// key still wins; then the sites, which share nothing, take their
	// bookings and build in parallel.
	index := make(map[*Compiler]int, len(p.compilers))
	for i, c := range p.compilers {
		index[c] = i
	}
	routed := make([][]int32, len(p.compilers))
	for i := range all {
		for _, c := range p.byResource[all[i].Resource] {
			routed[index[c]] = append(routed[index[c]], int32(i))
		}
	}
	p.each(func(i int) {
		c := p.compilers[i]
		c.initial.Do(func() {})
		c.resetBookings(len(routed[i]))
		c.reserve(all, routed[i])
		for _, j := range routed[i] {
			c.upsert(&all[j])
		}
		c.rebuildAll()
	})
}

// Apply changes some bookings, as Compiler.Apply does, and recompiles only
// what they touch in each site. A booking moved to a resource of another
// site leaves the site that held it.
func (p *Plan) Apply(upserts []booking.Booking, removals []BookingKey) {
	ups := make(map[*Compiler][]booking.Booking)
	rems := make(map[*Compiler][]BookingKey)
	for _, k := range removals {
		for _, c := range p.compilers {
			if c.has(k) {
				rems[c] = append(rems[c], k)
			}
		}
	}
	for _, b := range upserts {
		targets := p.byResource[b.Resource]
		for _, c := range targets {
			ups[c] = append(ups[c], b)
		}
		k := KeyOf(b)
		for _, c := range p.compilers {
			if c.has(k) && !containsCompiler(targets, c) {
				rems[c] = append(rems[c], k)
			}
		}
	}
	// Iterate the compilers, not the maps, so the work is done in a fixed
	// order.
	for _, c := range p.compilers {
		if len(ups[c]) > 0 || len(rems[c]) > 0 {
			c.Apply(ups[c], rems[c])
		}
	}
}

func containsCompiler(l []*Compiler, c *Compiler) bool {
	for _, x := range l {
		if x == c {
			return true
		}
	}
	return false
}

// Changes returns the changes of every site, sorted by time, then site,
// then point id.
func (p *Plan) Changes() []Change {
	var out []Change
	for _, c := range p.compilers {
		c.ensureBuilt()
		for _, ps := range c.points {
			out = c.timeline(ps, out)
		}
	}
	SortChanges(out)
	return out
}

// Stats sums the counts of all sites.
func (p *Plan) Stats() Stats {
	var s Stats
	for _, c := range p.compilers {
		s = s.Add(c.Stats())
	}
	return s
}

// each runs f for every compiler index on as many goroutines as there are
// processors, and returns when all calls have returned.
func (p *Plan) each(f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(p.compilers)) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range p.compilers {
		next <- i
	}
	close(next)
	wg.Wait()
}
