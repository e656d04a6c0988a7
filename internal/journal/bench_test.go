package journal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmsgw/bmsgw/internal/store"
)

// benchDir is where the benchmark databases live: $BMSGW_BENCH_DIR, to
// measure a particular disk (fsync cost is the whole point), else the
// test's temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("BMSGW_BENCH_DIR"); d != "" {
		d, err := os.MkdirTemp(d, "journal-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

const (
	// benchAppenders is the number of goroutines appending at once.
	benchAppenders = 8
	// benchRound is how many appends each mode makes per round.
	benchRound = 256
)

// benchMode is one way of appending, with what was measured of it.
type benchMode struct {
	name    string
	append  func(context.Context, Entry) error
	j       *Journal
	n       int
	elapsed time.Duration
	lat     []time.Duration
}

// BenchmarkAppend8 appends write entries from 8 goroutines, each waiting
// for its entry to be committed, in three ways:
//
//   - tx-per-append, the baseline: the journal with MaxBatch 1, so the
//     same writer goroutine commits one transaction (one fsync) per
//     entry; it differs from group only in batching;
//   - direct-tx: no journal; each goroutine runs its own transaction on
//     the pool, and SQLite's busy handler serialises them;
//   - group: the journal with its defaults (group commit).
//
// One op is a round of 256 appends in each mode in turn, so that all
// three meet the same disk weather (fsync latency varies by the second on
// shared machines) and the ratios compare like with like. Metrics per
// mode: appends/s, p50 and p99 latency of one append, and for the
// journal the mean entries per commit; then group's speed-up over each
// baseline.
func BenchmarkAppend8(b *testing.B) {
	ctx := context.Background()
	open := func(name string) *store.DB {
		db, err := store.Open(ctx, filepath.Join(benchDir(b), name+".db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	journalMode := func(name string, opts Options) *benchMode {
		j, err := Open(ctx, open(name), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close(ctx) })
		return &benchMode{name: name, j: j, append: func(ctx context.Context, e Entry) error {
			_, err := j.Append(ctx, e)
			return err
		}}
	}
	direct := open("direct-tx")
	modes := []*benchMode{
		journalMode("tx-per-append", Options{MaxBatch: 1}),
		{name: "direct-tx", append: func(ctx context.Context, e Entry) error { return directAppend(ctx, direct, e) }},
		journalMode("group", Options{}),
	}

	for b.Loop() {
		for _, m := range modes {
			m.round(ctx, b)
		}
	}
	b.StopTimer()

	rate := map[string]float64{}
	for _, m := range modes {
		slices.Sort(m.lat)
		rate[m.name] = float64(m.n) / m.elapsed.Seconds()
		b.ReportMetric(rate[m.name], m.name+"_appends/s")
		b.ReportMetric(float64(percentile(m.lat, 0.50).Microseconds()), m.name+"_p50_µs")
		b.ReportMetric(float64(percentile(m.lat, 0.99).Microseconds()), m.name+"_p99_µs")
		if m.j != nil && m.j.commits.Load() > 0 {
			b.ReportMetric(float64(m.j.committed.Load())/float64(m.j.commits.Load()), m.name+"_entries/commit")
		}
	}
	for _, base := range []string{"tx-per-append", "direct-tx"} {
		b.ReportMetric(rate["group"]/rate[base], "group_x_"+base)
	}
}

// round makes benchRound appends from benchAppenders goroutines.
func (m *benchMode) round(ctx context.Context, b *testing.B) {
	var next atomic.Int64
	lat := make([][]time.Duration, benchAppenders)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range benchAppenders {
		wg.Go(func() {
			e := Entry{Write: &WriteEntry{Site: "bench", Point: fmt.Sprintf("gym.mode%d", w), Source: SourceBooking,
				Reason: "booking 4711 Badminton (org 12) 18:00–20:00", Attempt: 1}}
			for next.Add(1) <= benchRound {
				t := time.Now()
				e.Time = t
				if err := m.append(ctx, e); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	m.elapsed += time.Since(start)
	m.n += benchRound
	for _, l := range lat {
		m.lat = append(m.lat, l...)
	}
}

// directAppend commits one entry in a transaction of its own, without the
// journal's writer.
func directAppend(ctx context.Context, db *store.DB, e Entry) error {
	r, err := encode(&e)
	if err != nil {
		return err
	}
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertSQL, r.time, string(r.kind), r.site, r.point, string(r.data)); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}
