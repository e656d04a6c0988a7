package sitemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/store"
)

// doorSite is a site with n doors that have only a contact each: every
// change of a contact is a door_opened or door_closed event.
func doorSite(n int) *site.Site {
	loc, _ := time.LoadLocation("Europe/Copenhagen")
	s := &site.Site{ID: "bench", Location: loc, Points: map[string]*site.Point{}}
	hall := &site.Space{ID: "hall", Kind: site.KindHall, Resources: []string{"hall"}}
	s.Spaces = []*site.Space{hall}
	for i := range n {
		p := &site.Point{ID: fmt.Sprintf("door%05d_contact", i), Type: site.TypeBool, Access: site.AccessRead, Scale: 1}
		s.Points[p.ID] = p
		d := &site.Door{ID: fmt.Sprintf("door%05d", i), Space: hall, Contact: &site.Input{Point: p},
			HeldOpenAfter: time.Hour, GrantValid: 10 * time.Second, LeftUnlockedAfter: time.Hour}
		hall.Doors = append(hall.Doors, d)
		s.Doors = append(s.Doors, d)
	}
	return s
}

// pipeline is a monitor publishing to a bus on a real journal.
type pipeline struct {
	m      *Monitor
	cancel context.CancelFunc
	done   chan struct{}
	close  func()

	mu        sync.Mutex
	injected  map[string]time.Time
	latencies []time.Duration
	events    int
}

// newPipeline starts a monitor of s whose events go to a bus on a fresh
// journal; batched publishes a burst in one call (the gateway's way),
// else one event per call.
func newPipeline(b *testing.B, s *site.Site, batched bool) *pipeline {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "journal.db"))
	require.NoError(b, err)
	j, err := journal.Open(ctx, db, journal.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	bus, err := events.NewBus(ctx, j, events.Options{})
	require.NoError(b, err)
	p := &pipeline{injected: map[string]time.Time{}, done: make(chan struct{})}
	record := func(es []events.Event) {
		now := time.Now()
		p.mu.Lock()
		for _, e := range es {
			p.latencies = append(p.latencies, now.Sub(p.injected[e.Points[0]]))
		}
		p.events += len(es)
		p.mu.Unlock()
	}
	publish := func(ctx context.Context, es []events.Event) error {
		if batched {
			if _, err := bus.PublishAll(ctx, es); err != nil {
				return err
			}
			record(es)
			return nil
		}
		for _, e := range es {
			if _, err := bus.Publish(ctx, e); err != nil {
				return err
			}
			record([]events.Event{e})
		}
		return nil
	}
	m, err := New(Config{Site: s, Clock: control.RealClock{}, Publish: publish,
		SetPlan: func(context.Context, control.Plan) error { return nil }, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(p.done)
		_ = m.Run(rctx)
	}()
	p.m, p.cancel = m, cancel
	p.close = func() {
		cancel()
		<-p.done
		bus.Close()
		require.NoError(b, j.Close(ctx))
		require.NoError(b, db.Close())
	}
	return p
}

// load changes every contact once a second, evenly spread, for secs
// seconds. It returns how many readings were dropped because the monitor
// was behind.
func (p *pipeline) load(s *site.Site, secs int, value float64) int {
	ids := s.PointIDs()
	d0 := p.m.dropped
	start := time.Now()
	const tick = time.Millisecond
	perTick := len(ids) / int(time.Second/tick)
	for sec := range secs {
		v := value
		if sec%2 == 1 {
			v = 1 - value
		}
		for i := 0; i < len(ids); i += perTick {
			at := start.Add(time.Duration(sec)*time.Second + time.Duration(i/perTick)*tick)
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			for _, id := range ids[i:min(i+perTick, len(ids))] {
				p.mu.Lock()
				p.injected[id] = time.Now()
				p.mu.Unlock()
				p.m.Observe(control.Reading{Point: id, Value: v, Time: time.Now()})
			}
		}
	}
	return p.m.dropped - d0
}

// settle waits until the monitor has judged every queued reading and
// stored every event: the queue is empty and no event came for 300 ms.
func (p *pipeline) settle() {
	last, since := -1, time.Now()
	for time.Since(since) < 300*time.Millisecond {
		p.mu.Lock()
		n := p.events
		p.mu.Unlock()
		if n != last || len(p.m.readings) > 0 {
			last, since = n, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkEventsFromPointChanges10k: 10,000 door contacts change at
// 1 Hz; every change is judged by the door logic and stored as an event
// in the journal (durable) and streamed. It reports events per second
// from point change to durable journal and the latency percentiles, for
// the gateway's way (a burst of events stored in one call) beside the
// baseline of one call per event, in the same run.
func BenchmarkEventsFromPointChanges10k(b *testing.B) {
	s := doorSite(10_000)
	const secs = 3
	for _, mode := range []struct {
		name    string
		batched bool
	}{{"batched", true}, {"per-event", false}} {
		b.Run(mode.name, func(b *testing.B) {
			var rates, p50s, p99s []float64
			drops := 0
			for range b.N {
				p := newPipeline(b, s, mode.batched)
				// The first second opens every door from the initial
				// unknown state; it is not measured.
				p.load(s, 1, 1)
				p.settle()
				p.mu.Lock()
				p.latencies, p.events = nil, 0
				p.mu.Unlock()
				start := time.Now()
				dropped := p.load(s, secs, 0)
				p.settle()
				took := time.Since(start) - 300*time.Millisecond
				p.close()
				p.mu.Lock()
				lat := slices.Clone(p.latencies)
				n := p.events
				p.mu.Unlock()
				slices.Sort(lat)
				rates = append(rates, float64(n)/took.Seconds())
				if len(lat) > 0 {
					p50s = append(p50s, lat[len(lat)/2].Seconds()*1000)
					p99s = append(p99s, lat[len(lat)*99/100].Seconds()*1000)
				}
				drops += dropped
			}
			b.ReportMetric(median(rates), "events/s")
			b.ReportMetric(median(p50s), "p50-ms")
			b.ReportMetric(median(p99s), "p99-ms")
			b.ReportMetric(float64(drops)/float64(b.N), "dropped/op")
		})
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
