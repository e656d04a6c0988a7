package events

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/store"
)

const (
	// benchPoints input points change once a second each, evenly
	// spread: an offered load of benchPoints events per second.
	benchPoints = 10_000
	benchPeriod = time.Second
)

// benchDir is where the benchmark databases live: $BMSGW_BENCH_DIR, to
// measure a particular disk (fsync cost is the whole point), else the
// test's temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("BMSGW_BENCH_DIR"); d != "" {
		d, err := os.MkdirTemp(d, "events-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

// benchMode is one way of making an event durable, with what was
// measured of it.
type benchMode struct {
	name    string
	publish func(context.Context, Event) error
	n       int
	elapsed time.Duration
	lat     []time.Duration
	late    []time.Duration
}

// BenchmarkPublish10kPointsAt1Hz offers the load of 10,000 input points
// changing at 1 Hz: one op is one second of it, 10,000 point changes
// spread evenly (one every 100 µs), each published as an event by a
// goroutine of its own, as drivers report changes concurrently. The
// load is open: a change is published at its time whether or not the
// earlier ones are durable yet, so a mode that cannot keep up falls
// behind, and its rate and latency show it. Modes, each on its own
// database, in turn within every op so they meet the same disk weather
// (each op starting with the next mode):
//
//   - bus: events.Bus on a journal with its defaults (group commit), with
//     one live subscriber draining the stream;
//   - journal: the raw journal Append of the same entries, group commit,
//     no bus: the bus's own cost;
//   - tx-per-event, the baseline: the journal with MaxBatch 1, one
//     transaction (one fsync) per event.
//
// Metrics per mode: events/s from the first change to the last durable
// one; p50 and p99 latency from the publish call to durable; p99 lateness
// from the change's due time to durable (adds the pacing and scheduling
// delay); and the bus's speed-up over each baseline.
func BenchmarkPublish10kPointsAt1Hz(b *testing.B) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	open := func(name string, opts journal.Options) *journal.Journal {
		db, err := store.Open(ctx, filepath.Join(benchDir(b), name+".db"))
		if err != nil {
			b.Fatal(err)
		}
		opts.Logger = quiet
		j, err := journal.Open(ctx, db, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			j.Close(ctx)
			db.Close()
		})
		return j
	}
	bus, err := NewBus(ctx, open("bus", journal.Options{}), Options{Buffer: benchPoints})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := bus.Subscribe(Filter{})
	if err != nil {
		b.Fatal(err)
	}
	var streamed int
	var drained sync.WaitGroup
	drained.Go(func() {
		for range sub.C {
			streamed++
		}
	})
	b.Cleanup(func() {
		bus.Close()
		drained.Wait()
	})
	appendTo := func(j *journal.Journal) func(context.Context, Event) error {
		return func(ctx context.Context, e Event) error {
			_, err := j.Append(ctx, entry(e))
			return err
		}
	}
	modes := []*benchMode{
		{name: "bus", publish: func(ctx context.Context, e Event) error {
			_, err := bus.Publish(ctx, e)
			return err
		}},
		{name: "journal", publish: appendTo(open("journal", journal.Options{}))},
		{name: "tx-per-event", publish: appendTo(open("tx-per-event", journal.Options{MaxBatch: 1}))},
	}
	changes := make([]Event, benchPoints)
	for i := range changes {
		kind, state := DoorOpened, "opened"
		if i%2 == 1 {
			kind, state = DoorClosed, "closed"
		}
		door := fmt.Sprintf("door_%04d", i)
		changes[i] = Event{Site: fmt.Sprintf("school-%02d", i%72), Space: fmt.Sprintf("space_%03d", i%139), Kind: kind, Severity: Info,
			Subject: door, Points: []string{door + ".contact"}, Message: fmt.Sprintf("%s %s", door, state)}
	}

	for op := 0; b.Loop(); op++ {
		// Each op starts with another mode, so that none always follows
		// the backlog of the slow baseline's checkpoints.
		for i := range modes {
			modes[(op+i)%len(modes)].round(ctx, b, changes)
		}
	}
	b.StopTimer()

	rate := map[string]float64{}
	for _, m := range modes {
		slices.Sort(m.lat)
		slices.Sort(m.late)
		rate[m.name] = float64(m.n) / m.elapsed.Seconds()
		b.ReportMetric(rate[m.name], m.name+"_events/s")
		b.ReportMetric(float64(percentile(m.lat, 0.50).Microseconds()), m.name+"_p50_µs")
		b.ReportMetric(float64(percentile(m.lat, 0.99).Microseconds()), m.name+"_p99_µs")
		b.ReportMetric(float64(percentile(m.late, 0.99).Microseconds()), m.name+"_late_p99_µs")
	}
	for _, base := range []string{"tx-per-event", "journal"} {
		b.ReportMetric(rate["bus"]/rate[base], "bus_x_"+base)
	}
	bus.Close()
	drained.Wait()
	if want := modes[0].n; streamed != want {
		b.Errorf("the subscriber got %d of %d events", streamed, want)
	}
}

// round publishes one period of changes at their due times and waits
// until all are durable.
func (m *benchMode) round(ctx context.Context, b *testing.B, changes []Event) {
	step := benchPeriod / time.Duration(len(changes))
	lat := make([]time.Duration, len(changes))
	late := make([]time.Duration, len(changes))
	var wg sync.WaitGroup
	start := time.Now()
	for i, e := range changes {
		due := start.Add(time.Duration(i) * step)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			t := time.Now()
			e.Time = t
			if err := m.publish(ctx, e); err != nil {
				b.Error(err)
				return
			}
			done := time.Now()
			lat[i], late[i] = done.Sub(t), done.Sub(due)
		})
	}
	wg.Wait()
	m.elapsed += time.Since(start)
	m.n += len(changes)
	m.lat = append(m.lat, lat...)
	m.late = append(m.late, late...)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}
