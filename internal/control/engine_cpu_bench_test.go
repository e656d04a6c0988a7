package control_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// memDriver is a device held in memory: reads and writes cost nothing
// but the engine's own work. It stands in for the wire only in
// BenchmarkEngineOwnCost, which measures what the engine adds per point.
type memDriver struct {
	mu      sync.Mutex
	values  map[string]float64
	written *atomic.Int64
	done    chan struct{}
	total   int64
}

func (m *memDriver) Read(_ context.Context, pts []*site.Point) []control.Reading {
	out := make([]control.Reading, len(pts))
	now := time.Now()
	m.mu.Lock()
	for i, p := range pts {
		out[i] = control.Reading{Point: p.ID, Value: m.values[p.ID], Time: now}
	}
	m.mu.Unlock()
	return out
}

func (m *memDriver) Write(_ context.Context, ws []control.Write) []error {
	m.mu.Lock()
	for _, w := range ws {
		m.values[w.Point.ID] = w.Value
	}
	m.mu.Unlock()
	if m.written.Add(int64(len(ws))) == m.total {
		close(m.done)
	}
	return make([]error, len(ws))
}

func (m *memDriver) Watch(ctx context.Context, _ []*site.Point, _ chan<- control.Reading) error {
	<-ctx.Done()
	return nil
}

func (m *memDriver) States() []control.DeviceState { return nil }
func (m *memDriver) Close() error                  { return nil }

// BenchmarkEngineOwnCost measures the engine's own work for the 10,000
// points of the reconcile benchmarks with devices in memory: from Run
// until every point has been written once (first read, deciding, the
// writers' batches, read-back). It is what the engine adds to the wire
// time of BenchmarkReconcileVsBare, without the noise of the wire.
func BenchmarkEngineOwnCost(b *testing.B) {
	f := newBenchFleet(b)
	for range b.N {
		b.StopTimer()
		now := time.Now()
		sites, plans := f.sites(now.Add(-time.Hour), now.Add(time.Hour))
		var written atomic.Int64
		done := make(chan struct{})
		eng := control.New(control.Config{})
		for i, st := range sites {
			d := &memDriver{values: map[string]float64{}, written: &written, done: done, total: benchPoints}
			require.NoError(b, eng.AddSite(control.SiteRuntime{Site: st, Drivers: map[string]control.Driver{"plc": d}}, plans[i]))
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		b.StartTimer()
		go func() { errc <- eng.Run(ctx) }()
		select {
		case <-done:
		case <-time.After(reconcileLimit):
			b.Fatal("not every point written")
		}
		b.StopTimer()
		cancel()
		require.NoError(b, <-errc)
		b.StartTimer()
	}
}
