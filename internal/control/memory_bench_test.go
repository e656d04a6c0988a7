package control_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/opcua"
	"github.com/bmsgw/bmsgw/adapters/opcua/opcuasim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sitegen"
)

// memSample is the process's memory after a forced collection that also
// returns freed pages to the OS.
type memSample struct {
	heapInuse, sys, rss uint64 // bytes; rss 0 where /proc is missing
}

func sampleMemory() memSample {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heapInuse: ms.HeapInuse, sys: ms.Sys, rss: vmRSS()}
}

// vmRSS reads VmRSS from /proc/self/status, or 0.
func vmRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "123456 kB"
		if len(f) == 2 && string(f[1]) == "kB" {
			if kb, err := strconv.ParseUint(string(f[0]), 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// mbDelta is b-a in MB, negative when memory went down.
func mbDelta(a, b uint64) float64 { return (float64(b) - float64(a)) / (1 << 20) }

// BenchmarkResidentMemory72Sites measures the memory of the gateway's
// control side for the default generated data set (72 Copenhagen schools,
// ~8,700 writable OPC UA points): every site's plan compiled for the
// gateway's horizon (a day back, eight ahead of 2026-11-26) from the whole
// data set's bookings, one OPC UA simulator and one real OPC UA client per
// school, and an engine running until every point is in sync. Memory is
// sampled after a forced GC at each stage; the simulators run in this
// process, so the final figures include them; the stage deltas separate
// the data set and its bookings, the plans, the simulators and the
// engine with its clients (the last also holds what the simulators
// allocate for the clients' sessions and subscriptions).
func BenchmarkResidentMemory72Sites(b *testing.B) {
	for b.Loop() {
		runResidentMemory(b)
	}
}

func runResidentMemory(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// gopcua's server logs through the standard logger; keep it quiet.
	defer log.SetOutput(log.Writer())
	log.SetOutput(io.Discard)

	m0 := sampleMemory()

	// Stage 1: the data set and the compiled plans.
	ds, err := sitegen.Generate(sitegen.Config{})
	require.NoError(b, err)
	require.Len(b, ds.Sites, sitegen.DefaultSchools)
	bookings := ds.Bookings()
	mData := sampleMemory()
	now := time.Date(2026, time.November, 26, 10, 0, 0, 0, ds.Location)
	from, to := now.Add(-24*time.Hour), now.Add(8*24*time.Hour) // cmd/bmsgw/run.go's horizon
	plans := make([]*schedule.Compiler, len(ds.Sites))
	points := 0
	for i, st := range ds.Sites {
		plans[i] = schedule.NewCompiler(st, from, to)
		plans[i].SetBookings(bookings)
		for _, p := range st.Points {
			if p.Writable() {
				points++
			}
		}
	}
	m1 := sampleMemory()

	// Stage 2: one OPC UA simulator per school (the generator puts every
	// point on connection "bms").
	var sims []map[string]*opcuasim.Server
	defer func() {
		for _, byConn := range sims {
			for _, s := range byConn {
				_ = s.Close()
			}
		}
	}()
	for _, st := range ds.Sites {
		byConn, err := opcuasim.ForSite(ctx, st, opcuasim.Options{}, nil)
		require.NoError(b, err)
		sims = append(sims, byConn)
	}
	m2 := sampleMemory()

	// Stage 3: an engine with a real OPC UA client per connection, run
	// until every point is in sync.
	started := time.Now()
	eng := control.New(control.Config{Clock: control.NewScaledClock(now, 1)})
	var clients []*opcua.Client
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for i, st := range ds.Sites {
		st.Connections = map[string]*site.Connection{}
		drivers := map[string]control.Driver{}
		for connID, sim := range sims[i] {
			st.Connections[connID] = &site.Connection{ID: connID, OPCUA: &site.OPCUAConnection{
				Endpoint: sim.Endpoint(), SecurityPolicy: "none", SecurityMode: "none",
			}}
			c, err := opcua.New(opcua.Options{
				Name: st.ID + "/" + connID, Endpoint: sim.Endpoint(),
				SecurityPolicy: "none", SecurityMode: "none", TrustDir: b.TempDir(),
			}, nil)
			require.NoError(b, err)
			clients = append(clients, c)
			drivers[connID] = c
		}
		require.NoError(b, eng.AddSite(control.SiteRuntime{Site: st, Drivers: drivers}, plans[i]))
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			require.NoError(b, err)
		case <-time.After(10 * time.Second):
			b.Fatal("engine did not stop within 10s")
		}
	}()

	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := eng.Status(ctx)
		require.NoError(b, err)
		inSync := 0
		for _, p := range st.Points {
			if p.InSync {
				inSync++
			}
		}
		if len(st.Points) == points && inSync == points {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d points in sync after 90s", inSync, points)
		}
		time.Sleep(100 * time.Millisecond)
	}
	synced := time.Since(started)
	m3 := sampleMemory()
	runtime.KeepAlive(bookings)
	runtime.KeepAlive(plans)

	b.ReportMetric(float64(points), "points")
	b.ReportMetric(float64(len(bookings)), "bookings")
	b.ReportMetric(synced.Seconds(), "s-to-sync")
	b.ReportMetric(mb(m0.heapInuse), "MB-heap-start")
	b.ReportMetric(mbDelta(m0.heapInuse, mData.heapInuse), "MB-heap-dataset")
	b.ReportMetric(mbDelta(mData.heapInuse, m1.heapInuse), "MB-heap-plans")
	b.ReportMetric(mbDelta(m1.heapInuse, m2.heapInuse), "MB-heap-sims")
	b.ReportMetric(mbDelta(m2.heapInuse, m3.heapInuse), "MB-heap-engine")
	b.ReportMetric(mb(m3.heapInuse), "MB-heap-total")
	b.ReportMetric(mb(m3.sys), "MB-sys-total")
	if m3.rss != 0 {
		b.ReportMetric(mb(m0.rss), "MB-rss-start")
		b.ReportMetric(mbDelta(m0.rss, mData.rss), "MB-rss-dataset")
		b.ReportMetric(mbDelta(mData.rss, m1.rss), "MB-rss-plans")
		b.ReportMetric(mbDelta(m1.rss, m2.rss), "MB-rss-sims")
		b.ReportMetric(mbDelta(m2.rss, m3.rss), "MB-rss-engine")
		b.ReportMetric(mb(m3.rss), "MB-rss-total")
	}
}
