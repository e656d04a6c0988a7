package control_test

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus"
	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
)

// reconcileLimit bounds one iteration of the reconcile benchmarks.
const reconcileLimit = 20 * time.Second

// BenchmarkEngineReconcile10k measures the time from Run until every one
// of the 10,000 points (all occupied from the start, all vacant on the
// devices) holds its desired value on its simulator. The engine reads
// every point first, then writes what differs through the Modbus client,
// which batches neighbouring registers into FC16 requests, and reads back.
// "unpaced" turns the client's write pacing off, like the bare baseline;
// "default" keeps the shipped WriteRate of 10 requests/s per link.
// BenchmarkBareWrite10k is the baseline.
func BenchmarkEngineReconcile10k(b *testing.B) {
	f := newBenchFleet(b)
	for _, tc := range []struct {
		name string
		opts modbus.Options
	}{
		{"unpaced", modbus.Options{WriteRate: -1}},
		{"default", modbus.Options{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var requests int
			var last time.Duration
			for range b.N {
				b.StopTimer()
				f.reset(b)
				now := time.Now()
				sites, plans := f.sites(now.Add(-time.Hour), now.Add(time.Hour))
				b.StartTimer()
				f.settle()
				start := time.Now()
				r := f.startEngine(b, sites, plans, tc.opts)
				seen, err := f.await(1, reconcileLimit)
				b.StopTimer()
				r.stop(b)
				require.NoError(b, err)
				last += latest(seen).Sub(start)
				requests += f.requests()
				b.StartTimer()
			}
			b.ReportMetric(float64(last.Microseconds())/1000/float64(b.N), "ms-last-point")
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkBareWrite10k is the baseline of BenchmarkEngineReconcile10k: a
// bare simonvetter client per device (connected inside the timed part, as
// the engine's clients are), devices in parallel goroutines, one
// WriteRegister per point, no read-back, timed until the simulators hold
// every value.
func BenchmarkBareWrite10k(b *testing.B) {
	f := newBenchFleet(b)
	var requests int
	var last time.Duration
	for range b.N {
		b.StopTimer()
		f.reset(b)
		b.StartTimer()
		f.settle()
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- f.bareWrite(1) }()
		seen, err := f.await(1, reconcileLimit)
		b.StopTimer()
		require.NoError(b, <-errc)
		require.NoError(b, err)
		last += latest(seen).Sub(start)
		requests += f.requests()
		b.StartTimer()
	}
	b.ReportMetric(float64(last.Microseconds())/1000/float64(b.N), "ms-last-point")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}

// BenchmarkBareSame10k is the same-requests baseline of the unpaced
// engine: bare clients sending, per device in parallel, the requests the
// engine sends (two reads, two FC16 writes and the read-back of 139
// registers as the client plans them, and the watcher's first poll),
// connected inside the timed part and timed until the simulators hold
// every value.
func BenchmarkBareSame10k(b *testing.B) {
	f := newBenchFleet(b)
	var requests int
	var last time.Duration
	for range b.N {
		b.StopTimer()
		f.reset(b)
		b.StartTimer()
		f.settle()
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- f.bareSame(1, false) }()
		seen, err := f.await(1, reconcileLimit)
		require.NoError(b, <-errc)
		b.StopTimer()
		require.NoError(b, err)
		last += latest(seen).Sub(start)
		requests += f.requests()
		b.StartTimer()
	}
	b.ReportMetric(float64(last.Microseconds())/1000/float64(b.N), "ms-last-point")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}

// coldStart is a setting of the cold-start comparisons: the client's
// options, whether devices take one register per write, and how long
// each device takes to answer.
type coldStart struct {
	name   string
	opts   modbus.Options
	single bool
	delay  time.Duration
}

func coldStarts() []coldStart {
	no := false
	return []coldStart{
		{"fc16", modbus.Options{WriteRate: -1}, false, 0},
		{"fc6", modbus.Options{WriteRate: -1, WriteMultiple: &no}, true, 0},
		{"fc16-2ms", modbus.Options{WriteRate: -1}, false, 2 * time.Millisecond},
		{"fc16-10ms", modbus.Options{WriteRate: -1}, false, 10 * time.Millisecond},
		{"fc16-25ms", modbus.Options{WriteRate: -1}, false, 25 * time.Millisecond},
		{"fc16-50ms", modbus.Options{WriteRate: -1}, false, 50 * time.Millisecond},
	}
}

// delayed makes every simulator answer after d until the benchmark ends.
func (f *benchFleet) delayed(b *testing.B, d time.Duration) {
	for _, s := range f.sims {
		s.SetDelay(d)
	}
	b.Cleanup(func() {
		for _, s := range f.sims {
			s.SetDelay(0)
		}
	})
}

// BenchmarkReconcileVsBare runs the unpaced engine reconcile of
// BenchmarkEngineReconcile10k and the same-requests baseline of
// BenchmarkBareSame10k in turn within each iteration (the order
// alternates), so that both see the same load on a shared machine, and
// reports each one's time to the last point, their ratio, and the
// requests each sent by function code. "fc16" devices take neighbouring
// registers in one write (two FC16 requests per device); "fc6" devices
// one register per write request (write_multiple: false in the
// mapping), so the engine sends 10,000 FC6 writes, like many older
// controllers need.
func BenchmarkReconcileVsBare(b *testing.B) {
	f := newBenchFleet(b)
	for _, tc := range coldStarts() {
		b.Run(tc.name, func(b *testing.B) {
			f.delayed(b, tc.delay)
			var engineHeap, bareHeap heapUse
			engine := func() time.Duration {
				f.reset(b)
				now := time.Now()
				sites, plans := f.sites(now.Add(-time.Hour), now.Add(time.Hour))
				f.settle()
				m := engineHeap.start()
				start := time.Now()
				r := f.startEngine(b, sites, plans, tc.opts)
				seen, err := f.await(1, reconcileLimit)
				engineHeap.stop(m)
				r.stop(b)
				require.NoError(b, err)
				return latest(seen).Sub(start)
			}
			bare := func() time.Duration {
				return f.timed(b, &bareHeap, func() error { return f.bareSame(1, tc.single) })
			}
			engineCounts, bareCounts := f.interleave(b, "engine", engine, bare)
			engineHeap.report(b, "engine")
			bareHeap.report(b, "bare")
			write := uint8(16)
			if tc.single {
				write = 6
			}
			for _, fc := range []uint8{3, write} {
				b.ReportMetric(float64(engineCounts[fc])/float64(b.N), fmt.Sprintf("engine-fc%d/op", fc))
				b.ReportMetric(float64(bareCounts[fc])/float64(b.N), fmt.Sprintf("bare-fc%d/op", fc))
			}
			require.Equal(b, bareCounts[write], engineCounts[write], "the same writes")
			require.NotZero(b, engineCounts[write])
		})
	}
}

// BenchmarkClientVsBare is BenchmarkReconcileVsBare without the engine:
// our Modbus client alone, one per device, made and connected in the
// timed part as the engine's are, makes the engine's calls for each
// device (its first read, the write of every point, the read-back, the
// watcher's first poll) against bareSame. It is the floor of the
// engine's ratio: what any engine on this client pays before deciding
// anything.
func BenchmarkClientVsBare(b *testing.B) {
	f := newBenchFleet(b)
	for _, tc := range coldStarts() {
		b.Run(tc.name, func(b *testing.B) {
			f.delayed(b, tc.delay)
			clientCounts, bareCounts := f.interleave(b, "client",
				func() time.Duration { return f.timed(b, nil, func() error { return f.clientSame(1, tc.opts) }) },
				func() time.Duration { return f.timed(b, nil, func() error { return f.bareSame(1, tc.single) }) })
			write := uint8(16)
			if tc.single {
				write = 6
			}
			require.Equal(b, bareCounts[write], clientCounts[write], "the same writes")
			require.Equal(b, bareCounts[3], clientCounts[3], "the same reads")
		})
	}
}

// timed runs a side that writes every point 1 from a reset fleet, and
// returns the time from its start to the last write landing; with h,
// it adds what the side allocated and the collections that ran.
func (f *benchFleet) timed(b *testing.B, h *heapUse, run func() error) time.Duration {
	f.reset(b)
	f.settle()
	var m runtime.MemStats
	if h != nil {
		m = h.start()
	}
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- run() }()
	seen, err := f.await(1, reconcileLimit)
	if h != nil {
		h.stop(m)
	}
	require.NoError(b, <-errc)
	require.NoError(b, err)
	return latest(seen).Sub(start)
}

// heapUse sums what timed parts allocated (the whole process: clients,
// simulators and engine) and the garbage collections that ran in them.
type heapUse struct {
	bytes uint64
	gcs   uint32
	runs  int
}

func (h *heapUse) start() runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func (h *heapUse) stop(m0 runtime.MemStats) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.bytes += m.TotalAlloc - m0.TotalAlloc
	h.gcs += m.NumGC - m0.NumGC
	h.runs++
}

// report gives the mean MB allocated and collections per timed part.
func (h *heapUse) report(b *testing.B, side string) {
	b.ReportMetric(float64(h.bytes)/1e6/float64(h.runs), side+"-MB/op")
	b.ReportMetric(float64(h.gcs)/float64(h.runs), side+"-GCs/op")
}

// interleave runs engine and bare in turn b.N times, alternating which
// goes first so both see the same load, reports their mean times (the
// first as side-ms), the difference (extra-ms) and the ratio, and
// returns the requests each side sent, by function code.
func (f *benchFleet) interleave(b *testing.B, side string, engine, bare func() time.Duration) (engineCounts, bareCounts modbussim.Counts) {
	var tEngine, tBare time.Duration
	engineCounts, bareCounts = modbussim.Counts{}, modbussim.Counts{}
	add := func(to modbussim.Counts) {
		for fc, n := range f.counts() {
			to[fc] += n
		}
	}
	for i := range b.N {
		if i%2 == 0 {
			tEngine += engine()
			add(engineCounts)
			tBare += bare()
			add(bareCounts)
		} else {
			tBare += bare()
			add(bareCounts)
			tEngine += engine()
			add(engineCounts)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(tEngine), side+"-ms")
	b.ReportMetric(ms(tBare), "bare-ms")
	b.ReportMetric(ms(tEngine-tBare), "extra-ms")
	b.ReportMetric(float64(tEngine)/float64(tBare), "ratio")
	return engineCounts, bareCounts
}

// transitionLead is how long after the start of an iteration all 10,000
// bindings switch from vacant to occupied, in real time.
const transitionLead = 3 * time.Second

// BenchmarkTransitionLateness10k measures timer precision at a window
// boundary: every space's booking starts at one instant T, a few seconds
// after the engine starts on the real clock, and each point's lateness is
// when its simulator first holds the occupied value minus T (polled in
// memory every millisecond, so the figures carry about 1 ms of
// resolution). "engine" runs the engine with the shipped client options;
// "engine-unpaced" without write pacing; "bare" is the baseline, the bare
// loop of BenchmarkBareWrite10k started by a timer at T.
func BenchmarkTransitionLateness10k(b *testing.B) {
	f := newBenchFleet(b)
	for _, tc := range []struct {
		name string
		opts *modbus.Options // nil: the bare loop
	}{
		{"engine", &modbus.Options{}},
		{"engine-unpaced", &modbus.Options{WriteRate: -1}},
		{"bare", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var late []time.Duration
			for range b.N {
				f.reset(b)
				t := time.Now().Add(transitionLead)
				var r *engineRun
				errc := make(chan error, 1)
				if tc.opts != nil {
					sites, plans := f.sites(t, t.Add(time.Hour))
					r = f.startEngine(b, sites, plans, *tc.opts)
					errc <- nil
				} else {
					go func() {
						time.Sleep(time.Until(t))
						errc <- f.bareWrite(1)
					}()
				}
				// Sleep until just before T so polling does not compete
				// with the engine's start.
				time.Sleep(time.Until(t.Add(-50 * time.Millisecond)))
				seen, err := f.await(1, transitionLead+reconcileLimit)
				if r != nil {
					r.stop(b)
				}
				require.NoError(b, <-errc)
				require.NoError(b, err)
				for _, ts := range seen {
					for _, at := range ts {
						late = append(late, at.Sub(t))
					}
				}
			}
			slices.Sort(late)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(late[0]), "min-ms")
			b.ReportMetric(ms(late[len(late)/2]), "p50-ms")
			b.ReportMetric(ms(late[len(late)*99/100]), "p99-ms")
			b.ReportMetric(ms(late[len(late)-1]), "max-ms")
		})
	}
}

// transitionAhead is how far ahead of a window boundary the running-engine
// comparison starts the engine, so that its start (connects, first reads,
// the watchers' first polls) is over by the boundary.
const transitionAhead = 400 * time.Millisecond

// BenchmarkTransitionVsBare compares a running engine's reconcile at a
// window boundary with a bare loop making the same requests: every
// space's booking starts at T, and the engine, started before T with
// its links up and its first reads done, writes all 10,000 points
// (FC16) and reads them back; the baseline is bare simonvetter clients,
// one per device, connected before T, each sending at T the same FC16
// writes and read-back. Each side is timed from T to its last write
// landing; the request counts are taken from shortly before T to the
// last write (so the engine's count misses the read-backs still on the
// wire when it is stopped). The
// watchers poll hourly here, so that no poll falls into the measured
// window by chance. Both sides run in turn within each iteration.
func BenchmarkTransitionVsBare(b *testing.B) {
	f := newBenchFleet(b)
	opts := modbus.Options{WriteRate: -1, PollInterval: time.Hour}
	untilJustBefore := func(t time.Time) {
		f.settle()
		time.Sleep(time.Until(t.Add(-30 * time.Millisecond)))
		for _, s := range f.sims {
			s.ResetCounts()
		}
	}
	engine := func() time.Duration {
		f.reset(b)
		t := time.Now().Add(transitionAhead)
		sites, plans := f.sites(t, t.Add(time.Hour))
		r := f.startEngine(b, sites, plans, opts)
		untilJustBefore(t)
		seen, err := f.await(1, transitionAhead+reconcileLimit)
		r.stop(b)
		require.NoError(b, err)
		return latest(seen).Sub(t)
	}
	bare := func() time.Duration {
		f.reset(b)
		t := time.Now().Add(transitionAhead)
		clients := f.bareClients(b)
		untilJustBefore(t)
		errc := make(chan error, 1)
		go func() { errc <- f.bareAt(clients, 1, t) }()
		seen, err := f.await(1, transitionAhead+reconcileLimit)
		require.NoError(b, <-errc)
		require.NoError(b, err)
		for _, c := range clients {
			_ = c.Close()
		}
		return latest(seen).Sub(t)
	}
	engineCounts, bareCounts := f.interleave(b, "engine", engine, bare)
	for _, fc := range []uint8{3, 16} {
		b.ReportMetric(float64(engineCounts[fc])/float64(b.N), fmt.Sprintf("engine-fc%d/op", fc))
		b.ReportMetric(float64(bareCounts[fc])/float64(b.N), fmt.Sprintf("bare-fc%d/op", fc))
	}
	// The engine stops at its last write, so a few read-backs may not
	// have been sent yet: the writes must be the same.
	require.Equal(b, bareCounts[16], engineCounts[16], "the same writes")
	require.Equal(b, benchDevices*2, engineCounts[16]/b.N, "two FC16 per device")
}
