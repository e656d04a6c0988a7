package opcua

import (
	"testing"
	"time"

	"github.com/bmsgw/bmsgw/adapters/opcua/opcuasim"
	"github.com/bmsgw/bmsgw/internal/control"
)

// BenchmarkWrite1000 writes 1,000 float64 points to the simulator over
// loopback in each iteration, twice: batched (one Write call, which sends
// one WriteRequest) and, as the baseline in the same run, one point per
// Write call (1,000 WriteRequests). It reports the time of each and their
// ratio; ns/op is the sum of both.
func BenchmarkWrite1000(b *testing.B) {
	pts := floatPoints(1000)
	sim := startSim(b, pts, opcuasim.Options{})
	c := newClient(b, simOptions(sim.Endpoint()), nil)
	for r := c.Read(b.Context(), pts[:1]); r[0].Err != nil; r = c.Read(b.Context(), pts[:1]) {
		if b.Context().Err() != nil {
			b.Fatal(r[0].Err)
		}
	}
	ws := make([]control.Write, len(pts))
	for i, p := range pts {
		ws[i] = control.Write{Point: p, Value: float64(i)}
	}
	check := func(errs []error) {
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}

	var batched, single time.Duration
	before := sim.Stats()
	for b.Loop() {
		t0 := time.Now()
		check(c.Write(b.Context(), ws))
		batched += time.Since(t0)

		t0 = time.Now()
		for i := range ws {
			check(c.Write(b.Context(), ws[i:i+1]))
		}
		single += time.Since(t0)
	}
	after := sim.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(batched.Nanoseconds())/n, "batched-ns/op")
	b.ReportMetric(float64(single.Nanoseconds())/n, "one-by-one-ns/op")
	b.ReportMetric(float64(single)/float64(batched), "one-by-one/batched")
	b.ReportMetric(float64(after.WriteRequests-before.WriteRequests)/n, "requests/op")
}
