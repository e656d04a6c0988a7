package journal

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open opens a journal on a new database; both are closed when the test
// ends.
func open(t *testing.T, opts Options) (*Journal, *store.DB) {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	j, err := Open(t.Context(), db, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	})
	return j, db
}

var t0 = time.Date(2026, 11, 26, 17, 0, 0, 123456789, time.UTC)

func sampleEntries() []Entry {
	return []Entry{
		{Time: t0, Write: &WriteEntry{
			Site: "valby-skole", Point: "gym.mode", Old: &site.Value{Num: 1, Label: "economy"}, New: site.Value{Num: 2, Label: "comfort"},
			Reason: "booking 4711 Badminton (org 12) 18:00–20:00", Source: SourceBooking, Attempt: 1,
		}},
		{Time: t0.Add(time.Second), Write: &WriteEntry{
			Site: "valby-skole", Point: "gym.setpoint", Old: &site.Value{Num: math.NaN()}, New: site.Value{Num: 21.5},
			Source: SourceSchedule, Err: "modbus: exception 6 (server device busy)", Attempt: 3, DryRun: true,
		}},
		{Time: t0.Add(2 * time.Second), Override: &OverrideEntry{
			Site: "valby-skole", Point: "gym.mode", Action: OverrideSet, Value: site.Value{Num: 0, Label: "off"},
			Until: t0.Add(3 * time.Hour), Who: "alice", Why: "floor being varnished",
		}},
		{Time: t0.Add(3 * time.Second), Override: &OverrideEntry{Site: "valby-skole", Point: "gym.mode", Action: OverrideExpired}},
		{Time: t0.Add(4 * time.Second), Device: &DeviceEntry{Site: "oerestad-skole", Connection: "rooms", Device: "unit 12", Err: "i/o timeout"}},
		{Time: t0.Add(5 * time.Second), Device: &DeviceEntry{Site: "oerestad-skole", Connection: "rooms", Up: true}},
		{Time: t0.Add(6 * time.Second), Event: &EventEntry{Site: "oerestad-skole", Space: "hall", Kind: "door_held", Severity: SeverityWarning, Message: "door held open 5m"}},
	}
}

func TestAppendAndQueryRoundTrip(t *testing.T) {
	j, _ := open(t, Options{})
	ctx := t.Context()
	want := sampleEntries()
	var last int64
	for i := range want {
		id, err := j.Append(ctx, want[i])
		require.NoError(t, err)
		require.Greater(t, id, last, "ids increase")
		last = id
		want[i].ID = id
		want[i].Kind = []Kind{KindWrite, KindWrite, KindOverride, KindOverride, KindDevice, KindDevice, KindEvent}[i]
	}
	got, err := j.Query(ctx, Filter{})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	// NaN never equals itself; compare it apart.
	require.True(t, math.IsNaN(got[1].Write.Old.Num))
	got[1].Write.Old.Num, want[1].Write.Old.Num = 0, 0
	require.Equal(t, want, got)
}

func TestAppendDefaultsTimeAndAttempt(t *testing.T) {
	now := time.Date(2026, 3, 29, 1, 30, 0, 7, time.FixedZone("CET", 3600))
	j, _ := open(t, Options{Now: func() time.Time { return now }})
	require.NoError(t, j.Write(t.Context(), WriteEntry{Site: "s", Point: "p", Source: SourceDefault}))
	got, err := j.Query(t.Context(), Filter{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, now.UTC(), got[0].Time)
	require.Equal(t, time.UTC, got[0].Time.Location())
	require.Equal(t, 1, got[0].Write.Attempt)
	require.True(t, got[0].Write.OK())
	require.Nil(t, got[0].Write.Old)
}

func TestAppendRejectsInvalidEntries(t *testing.T) {
	j, _ := open(t, Options{})
	w := func(f func(*WriteEntry)) Entry {
		e := WriteEntry{Site: "s", Point: "p", Source: SourceBooking}
		f(&e)
		return Entry{Write: &e}
	}
	for _, tc := range []struct {
		name  string
		entry Entry
		msg   string
	}{
		{"no kind", Entry{}, "0 of write"},
		{"two kinds", Entry{Write: &WriteEntry{Site: "s", Point: "p", Source: SourceBooking}, Device: &DeviceEntry{Site: "s", Connection: "c"}}, "2 of write"},
		{"kind mismatch", Entry{Kind: KindDevice, Write: &WriteEntry{Site: "s", Point: "p", Source: SourceBooking}}, `kind "device" but the write field`},
		{"no site", w(func(e *WriteEntry) { e.Site = "" }), "no site"},
		{"no point", w(func(e *WriteEntry) { e.Point = "" }), "write without a point"},
		{"no source", w(func(e *WriteEntry) { e.Source = "" }), "write without a source"},
		{"negative attempt", w(func(e *WriteEntry) { e.Attempt = -1 }), "attempt -1"},
		{"override without point", Entry{Override: &OverrideEntry{Site: "s", Action: OverrideSet, Who: "bob"}}, "override without a point"},
		{"bad action", Entry{Override: &OverrideEntry{Site: "s", Point: "p", Action: "extend", Who: "bob"}}, `override action "extend"`},
		{"device without connection", Entry{Device: &DeviceEntry{Site: "s"}}, "without a connection"},
		{"event without kind", Entry{Event: &EventEntry{Site: "s", Severity: SeverityInfo}}, "event without a kind"},
		{"no severity", Entry{Event: &EventEntry{Site: "s", Kind: "x"}}, "event without a severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := j.Append(t.Context(), tc.entry)
			require.ErrorIs(t, err, ErrInvalidEntry)
			require.ErrorContains(t, err, tc.msg)
		})
	}
	got, err := j.Query(t.Context(), Filter{})
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestQueryFilters(t *testing.T) {
	j, _ := open(t, Options{})
	ctx := t.Context()
	// Appended out of time order: Query sorts by time.
	entries := sampleEntries()
	for _, i := range []int{6, 0, 5, 1, 4, 2, 3} {
		_, err := j.Append(ctx, entries[i])
		require.NoError(t, err)
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name   string
		filter Filter
		want   []int // offsets in seconds from t0, that is indexes of sampleEntries
	}{
		{"all", Filter{}, []int{0, 1, 2, 3, 4, 5, 6}},
		{"since inclusive", Filter{Since: at(4)}, []int{4, 5, 6}},
		{"until exclusive", Filter{Until: at(2)}, []int{0, 1}},
		{"window", Filter{Since: at(1), Until: at(4)}, []int{1, 2, 3}},
		{"site", Filter{Site: "oerestad-skole"}, []int{4, 5, 6}},
		{"point", Filter{Point: "gym.mode"}, []int{0, 2, 3}},
		{"site and point", Filter{Site: "oerestad-skole", Point: "gym.mode"}, nil},
		{"one kind", Filter{Kinds: []Kind{KindOverride}}, []int{2, 3}},
		{"kinds", Filter{Kinds: []Kind{KindDevice, KindEvent}}, []int{4, 5, 6}},
		{"limit keeps the latest", Filter{Limit: 2}, []int{5, 6}},
		{"limit with filter", Filter{Kinds: []Kind{KindWrite, KindOverride}, Limit: 3}, []int{1, 2, 3}},
		{"limit above count", Filter{Limit: 100}, []int{0, 1, 2, 3, 4, 5, 6}},
		{"nothing", Filter{Since: at(7)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := j.Query(ctx, tc.filter)
			require.NoError(t, err)
			var secs []int
			for _, e := range got {
				secs = append(secs, int(e.Time.Sub(t0)/time.Second))
			}
			require.Equal(t, tc.want, secs)
		})
	}
	_, err := j.Query(ctx, Filter{Kinds: []Kind{"writes"}})
	require.ErrorContains(t, err, `unknown kind "writes"`)
}

func TestConcurrentAppendsAreGroupCommitted(t *testing.T) {
	j, db := open(t, Options{})
	ctx := t.Context()
	// A reader on its own connection, as bmsgw journal is: an id Append
	// returned must be visible to it at once.
	r, err := store.OpenReadOnly(ctx, db.Path())
	require.NoError(t, err)
	defer r.Close()

	const workers, each = 8, 100
	ids := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id, err := j.Append(ctx, Entry{Write: &WriteEntry{Site: "s", Point: "p", Source: SourceBooking, Attempt: w*each + i + 1}})
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], id)
			}
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, l := range ids {
		require.Len(t, l, each)
		for _, id := range l {
			require.False(t, seen[id], "id %d twice", id)
			seen[id] = true
		}
	}
	got, err := Query(ctx, r, Filter{})
	require.NoError(t, err)
	require.Len(t, got, workers*each)
	for _, e := range got {
		require.True(t, seen[e.ID])
	}
	commits, committed := j.commits.Load(), j.committed.Load()
	require.Equal(t, int64(workers*each), committed)
	require.Less(t, commits, committed, "concurrent appends share transactions")
	t.Logf("%d entries in %d commits", committed, commits)
}

func TestLoneAppendDoesNotWaitForABatch(t *testing.T) {
	j, _ := open(t, Options{MaxDelay: time.Minute})
	start := time.Now()
	for range 10 {
		require.NoError(t, j.Device(t.Context(), DeviceEntry{Site: "s", Connection: "c"}))
	}
	require.Less(t, time.Since(start), 30*time.Second, "no append waited MaxDelay")
	require.Equal(t, int64(10), j.commits.Load())
}

func TestAppendIsVisibleWhenItReturns(t *testing.T) {
	j, db := open(t, Options{})
	ctx := t.Context()
	r, err := store.OpenReadOnly(ctx, db.Path())
	require.NoError(t, err)
	defer r.Close()
	for i := range 20 {
		id, err := j.Append(ctx, Entry{Device: &DeviceEntry{Site: "s", Connection: "c", Up: i%2 == 0}})
		require.NoError(t, err)
		var n int
		require.NoError(t, r.SQL().QueryRowContext(ctx, "SELECT count(*) FROM journal WHERE id = ?", id).Scan(&n))
		require.Equal(t, 1, n)
	}
}

func TestCloseDrainsAndRefusesMore(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	defer db.Close()
	j, err := Open(t.Context(), db, Options{})
	require.NoError(t, err)

	ctx := t.Context()
	var (
		mu        sync.Mutex
		committed []int64
		wg        sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				id, err := j.Append(ctx, Entry{Event: &EventEntry{Site: "s", Kind: "k", Severity: SeverityInfo}})
				mu.Lock()
				if err != nil {
					mu.Unlock()
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
				committed = append(committed, id)
				mu.Unlock()
			}
		})
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(committed) > 50 }, 5*time.Second, time.Millisecond)
	require.NoError(t, j.Close(ctx))
	wg.Wait()
	require.NoError(t, j.Close(ctx), "twice")

	_, err = j.Append(ctx, Entry{Event: &EventEntry{Site: "s", Kind: "k", Severity: SeverityInfo}})
	require.ErrorIs(t, err, ErrClosed)

	got, err := Query(ctx, db, Filter{})
	require.NoError(t, err)
	require.Len(t, got, len(committed), "every acknowledged entry is there, and only those")
}

func TestCloseDeadlineAbortsAStuckCommit(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := store.Open(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	j, err := Open(ctx, db, Options{})
	require.NoError(t, err)

	// Another process holds the write lock, so the writer waits in BEGIN
	// for up to store.BusyTimeout.
	other, err := store.Open(ctx, path)
	require.NoError(t, err)
	defer other.Close()
	lock, err := other.SQL().BeginTx(ctx, nil)
	require.NoError(t, err)
	defer lock.Rollback()

	errc := make(chan error, 1)
	go func() {
		_, err := j.Append(ctx, Entry{Device: &DeviceEntry{Site: "s", Connection: "c"}})
		errc <- err
	}()
	require.Eventually(t, func() bool { return j.taken.Load() == 1 }, time.Second, time.Millisecond, "the writer took the entry")

	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = j.Close(cctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), store.BusyTimeout/2, "Close did not wait for the busy timeout")
	require.Error(t, <-errc, "the abandoned append fails")
}

func TestAppendHonoursContext(t *testing.T) {
	j, _ := open(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := j.Append(ctx, Entry{Device: &DeviceEntry{Site: "s", Connection: "c"}})
	require.ErrorIs(t, err, context.Canceled)
}

func TestOpenRefusesReadOnlyDatabase(t *testing.T) {
	_, db := open(t, Options{})
	r, err := store.OpenReadOnly(t.Context(), db.Path())
	require.NoError(t, err)
	defer r.Close()
	_, err = Open(t.Context(), r, Options{})
	require.ErrorContains(t, err, "read-only")
}

func TestPrune(t *testing.T) {
	j, _ := open(t, Options{})
	ctx := t.Context()
	entries := sampleEntries()
	var last int64
	for _, e := range entries {
		id, err := j.Append(ctx, e)
		require.NoError(t, err)
		last = id
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	n, err := j.Prune(ctx, at(5), KindDevice)
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "only the device entry before 5s")
	n, err = j.Prune(ctx, at(3))
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	got, err := j.Query(ctx, Filter{})
	require.NoError(t, err)
	var kinds []Kind
	for _, e := range got {
		kinds = append(kinds, e.Kind)
	}
	require.Equal(t, []Kind{KindOverride, KindDevice, KindEvent}, kinds)

	// Pruning the newest entry does not free its id.
	n, err = j.Prune(ctx, at(100))
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	id, err := j.Append(ctx, entries[0])
	require.NoError(t, err)
	require.Greater(t, id, last)

	_, err = j.Prune(ctx, at(100), "bogus")
	require.ErrorContains(t, err, `unknown kind "bogus"`)
}

func TestPruneManyChunks(t *testing.T) {
	j, db := open(t, Options{})
	ctx := t.Context()
	defer func(c int) { pruneChunk = c }(pruneChunk)
	pruneChunk = 100
	// Inserted directly in one transaction: this is about pruning.
	n := pruneChunk*2 + 10
	tx, err := db.SQL().BeginTx(ctx, nil)
	require.NoError(t, err)
	for i := range n {
		_, err := tx.ExecContext(ctx, insertSQL, t0.Add(time.Duration(i)*time.Millisecond).UnixNano(), "device", "s", "", `{"connection":"c","state":"up"}`)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	deleted, err := j.Prune(ctx, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(n), deleted)
}

func TestPeriodicPruningPerKind(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	j, _ := open(t, Options{
		Retention: 12 * time.Hour,
		KindRetention: map[Kind]time.Duration{
			KindOverride: time.Hour, // names people: kept briefly
			KindDevice:   0,         // kept forever
		},
		PruneInterval: 5 * time.Millisecond,
		Now:           func() time.Time { return now },
	})
	ctx := t.Context()
	add := func(age time.Duration, e Entry) {
		e.Time = now.Add(-age)
		_, err := j.Append(ctx, e)
		require.NoError(t, err)
	}
	w := Entry{Write: &WriteEntry{Site: "s", Point: "p", Source: SourceBooking}}
	o := Entry{Override: &OverrideEntry{Site: "s", Point: "p", Action: OverrideExpired}}
	d := Entry{Device: &DeviceEntry{Site: "s", Connection: "c"}}
	add(13*time.Hour, w) // pruned
	add(11*time.Hour, w)
	add(2*time.Hour, o) // pruned
	add(30*time.Minute, o)
	add(1000*time.Hour, d)

	type kindAge struct {
		Kind Kind
		Age  time.Duration
	}
	want := []kindAge{{KindDevice, 1000 * time.Hour}, {KindWrite, 11 * time.Hour}, {KindOverride, 30 * time.Minute}}
	var got []kindAge
	require.Eventually(t, func() bool {
		es, err := j.Query(ctx, Filter{})
		if err != nil {
			return false
		}
		got = got[:0]
		for _, e := range es {
			got = append(got, kindAge{e.Kind, now.Sub(e.Time)})
		}
		return len(got) == len(want)
	}, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, want, got)
}

func TestOpenRejectsBadRetention(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	defer db.Close()
	_, err = Open(t.Context(), db, Options{KindRetention: map[Kind]time.Duration{"writes": time.Hour}})
	require.ErrorContains(t, err, `kind "writes"`)
	_, err = Open(t.Context(), db, Options{Retention: -time.Hour})
	require.ErrorContains(t, err, "negative retention")
}
