package journal

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/store"
)

// forced is a door-forced event with every field set.
func forced(at time.Time, holder string) Entry {
	return Entry{Time: at, Event: &EventEntry{
		Site: "valby-skole", Space: "gym", Kind: "door_forced", Severity: SeverityAlarm, Subject: "gym_side_door",
		Points: []string{"gym_side_door.contact", "gym_side_door.bolt"}, Booking: "central:4711", Organiser: "org-12",
		Message: "gym side door opened while locked, no grant", CardHolder: holder,
	}}
}

func countRows(t *testing.T, db *store.DB, q string) int {
	t.Helper()
	var n int
	require.NoError(t, db.SQL().QueryRowContext(t.Context(), q).Scan(&n))
	return n
}

func TestEventFieldsRoundTripAndCardHolderStaysInUnlessAsked(t *testing.T) {
	j, db := open(t, Options{KeepPersonal: true, PersonalRetention: 30 * 24 * time.Hour})
	ctx := t.Context()
	in := forced(t0, "Jens Jensen")
	id, err := j.Append(ctx, in)
	require.NoError(t, err)
	require.Equal(t, "Jens Jensen", in.Event.CardHolder, "the caller's entry is not changed")

	got, err := j.Query(ctx, Filter{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	want := *in.Event
	want.CardHolder = ""
	require.Equal(t, &want, got[0].Event, "without Filter.Personal no card holder leaves the database")
	require.Equal(t, id, got[0].ID)

	got, err = j.Query(ctx, Filter{Personal: true})
	require.NoError(t, err)
	require.Equal(t, in.Event, got[0].Event)
	// Stored apart from the event, not in its JSON.
	require.Equal(t, 0, countRows(t, db, "SELECT count(*) FROM journal WHERE data LIKE '%Jens%'"))
	require.Equal(t, 1, countRows(t, db, "SELECT count(*) FROM journal_personal"))
}

func TestCardHolderDroppedWhenNotKept(t *testing.T) {
	j, db := open(t, Options{})
	ctx := t.Context()
	in := forced(t0, "Jens Jensen")
	_, err := j.Append(ctx, in)
	require.NoError(t, err)
	require.Equal(t, "Jens Jensen", in.Event.CardHolder, "the caller's entry is not changed")
	got, err := j.Query(ctx, Filter{Personal: true})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Empty(t, got[0].Event.CardHolder)
	require.Equal(t, "gym_side_door", got[0].Event.Subject, "the event itself is kept")
	require.Equal(t, 0, countRows(t, db, "SELECT count(*) FROM journal_personal"))
	require.Equal(t, 0, countRows(t, db, "SELECT count(*) FROM journal WHERE data LIKE '%Jens%'"))
}

func TestOpenRefusesPersonalDataWithoutRetention(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	defer db.Close()
	_, err = Open(t.Context(), db, Options{KeepPersonal: true})
	require.ErrorContains(t, err, "no retention is declared")
	_, err = Open(t.Context(), db, Options{KeepPersonal: true, PersonalRetention: -time.Hour})
	require.ErrorContains(t, err, "negative personal-data retention")
}

func TestPersonalRetentionPrunesCardHoldersNotEvents(t *testing.T) {
	now := t0.Add(90 * 24 * time.Hour)
	j, db := open(t, Options{
		KeepPersonal: true, PersonalRetention: 30 * 24 * time.Hour, Retention: 60 * 24 * time.Hour,
		PruneInterval: 5 * time.Millisecond, Now: func() time.Time { return now },
	})
	ctx := t.Context()
	for _, age := range []time.Duration{70, 40, 10} { // days: event pruned; card holder pruned; both kept
		_, err := j.Append(ctx, forced(now.Add(-age*24*time.Hour), fmt.Sprintf("holder %d", age)))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return countRows(t, db, "SELECT count(*) FROM journal") == 2 && countRows(t, db, "SELECT count(*) FROM journal_personal") == 1
	}, 5*time.Second, 5*time.Millisecond)
	got, err := j.Query(ctx, Filter{Personal: true})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, []string{"", "holder 10"}, []string{got[0].Event.CardHolder, got[1].Event.CardHolder})
	require.Equal(t, 40*24*time.Hour, now.Sub(got[0].Time), "the event outlives its card holder")
}

func TestPruningAnEventDeletesItsCardHolder(t *testing.T) {
	j, db := open(t, Options{KeepPersonal: true, PersonalRetention: time.Hour})
	ctx := t.Context()
	_, err := j.Append(ctx, forced(t0, "a"))
	require.NoError(t, err)
	_, err = j.Append(ctx, forced(t0.Add(time.Hour), "b"))
	require.NoError(t, err)
	n, err := j.Prune(ctx, t0.Add(time.Minute), KindEvent)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Equal(t, 1, countRows(t, db, "SELECT count(*) FROM journal_personal"))
	require.Equal(t, 1, countRows(t, db, "SELECT count(*) FROM journal_personal WHERE card_holder = 'b'"))
}

func TestReopenWithoutKeepPersonalForgetsCardHolders(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	defer db.Close()
	quiet := slog.New(slog.DiscardHandler)
	j, err := Open(ctx, db, Options{KeepPersonal: true, PersonalRetention: time.Hour, Logger: quiet})
	require.NoError(t, err)
	for i := range 3 {
		_, err := j.Append(ctx, forced(time.Now(), fmt.Sprint("holder ", i)))
		require.NoError(t, err)
	}
	require.NoError(t, j.Close(ctx))
	require.Equal(t, 3, countRows(t, db, "SELECT count(*) FROM journal_personal"))

	j, err = Open(ctx, db, Options{Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, j.Close(ctx))
	require.Equal(t, 0, countRows(t, db, "SELECT count(*) FROM journal_personal"), "the mapping no longer keeps personal data")
	require.Equal(t, 3, countRows(t, db, "SELECT count(*) FROM journal"), "the events stay")
}

// TestExistingDatabaseMigrates builds a database as the first released
// schema left it, with an event in the old form, and opens it with this
// binary: the old event reads back, and a new one keeps its card holder.
func TestExistingDatabaseMigrates(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "journal.db")
	u := url.URL{Scheme: "file", Path: path}
	raw, err := sql.Open("sqlite", u.String())
	require.NoError(t, err)
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
		`CREATE TABLE journal (
			id    INTEGER PRIMARY KEY AUTOINCREMENT,
			time  INTEGER NOT NULL,
			kind  TEXT    NOT NULL,
			site  TEXT    NOT NULL DEFAULT '',
			point TEXT    NOT NULL DEFAULT '',
			data  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data))
		) STRICT`,
		`CREATE INDEX journal_time ON journal (time)`,
		`CREATE INDEX journal_kind_time ON journal (kind, time)`,
		`CREATE INDEX journal_point_time ON journal (point, time)`,
		`INSERT INTO schema_migrations VALUES (1, 'journal', '2026-11-01T00:00:00Z')`,
		`PRAGMA user_version = 1`,
		fmt.Sprintf(`INSERT INTO journal (time, kind, site, data) VALUES (%d, 'event', 'valby-skole',
			'{"space":"gym","event":"external_change","severity":"info","message":"gym_ahu.mode changed at the BMS"}')`, t0.UnixNano()),
	} {
		_, err := raw.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, raw.Close())

	_, err = store.OpenReadOnly(ctx, path)
	require.ErrorIs(t, err, store.ErrOldSchema, "a reader does not migrate")

	db, err := store.Open(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	v, err := db.Version(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, v, 2)
	j, err := Open(ctx, db, Options{KeepPersonal: true, PersonalRetention: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer j.Close(context.Background())
	id, err := j.Append(ctx, forced(t0.Add(time.Minute), "Jens Jensen"))
	require.NoError(t, err)
	require.Equal(t, int64(2), id, "ids go on from the old entries")
	got, err := j.Query(ctx, Filter{Personal: true})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, &EventEntry{Site: "valby-skole", Space: "gym", Kind: "external_change", Severity: SeverityInfo,
		Message: "gym_ahu.mode changed at the BMS"}, got[0].Event)
	require.Equal(t, "Jens Jensen", got[1].Event.CardHolder)
	require.NoError(t, db.CheckIntegrity(ctx))
}

func TestQueryEventFilters(t *testing.T) {
	j, _ := open(t, Options{})
	ctx := t.Context()
	add := func(e Entry) int64 {
		id, err := j.Append(ctx, e)
		require.NoError(t, err)
		return id
	}
	ev := func(i int, space, kind string, sev Severity) Entry {
		return Entry{Time: t0.Add(time.Duration(i) * time.Second), Event: &EventEntry{Site: "s", Space: space, Kind: kind, Severity: sev, Message: "m"}}
	}
	w := add(Entry{Time: t0, Write: &WriteEntry{Site: "s", Point: "p", Source: SourceBooking}})
	a := add(ev(1, "gym", "door_forced", SeverityAlarm))
	b := add(ev(2, "hall", "door_held_open", SeverityWarning))
	c := add(ev(3, "gym", "panic", SeverityCritical))
	d := add(ev(4, "gym", "door_opened", SeverityInfo))
	ids := func(f Filter) []int64 {
		t.Helper()
		es, err := j.Query(ctx, f)
		require.NoError(t, err)
		var out []int64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	require.Equal(t, []int64{a, c, d}, ids(Filter{Space: "gym"}))
	require.Equal(t, []int64{a, b}, ids(Filter{Events: []string{"door_forced", "door_held_open"}}))
	require.Equal(t, []int64{a, c}, ids(Filter{Severities: []Severity{SeverityAlarm, SeverityCritical}}))
	require.Equal(t, []int64{c, d}, ids(Filter{AfterID: b}))
	require.Equal(t, []int64{w, a}, ids(Filter{First: 2}))
	require.Equal(t, []int64{c}, ids(Filter{AfterID: b, First: 1}))
	require.Equal(t, []int64{c, d}, ids(Filter{Space: "gym", Limit: 2}))
	_, err := j.Query(ctx, Filter{First: 1, Limit: 1})
	require.ErrorContains(t, err, "cannot be combined")
}

func TestOnCommitSeesEveryEntryInIDOrderBeforeAppendReturns(t *testing.T) {
	j, _ := open(t, Options{})
	ctx := t.Context()
	var (
		mu   sync.Mutex
		seen []int64
		kind []Kind
	)
	j.OnCommit(func(e Entry) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e.ID)
		kind = append(kind, e.Kind)
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				id, err := j.Append(ctx, Entry{Event: &EventEntry{Site: "s", Kind: "door_opened", Severity: SeverityInfo, Message: fmt.Sprint(w, i)}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok := slices.Contains(seen, id)
				mu.Unlock()
				if !ok {
					t.Errorf("append %d returned before the hook saw it", id)
				}
			}
		})
	}
	wg.Wait()
	// A bad entry is never committed and never seen.
	_, err := j.Append(ctx, Entry{Event: &EventEntry{Site: "s"}})
	require.ErrorIs(t, err, ErrInvalidEntry)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 160)
	require.True(t, slices.IsSorted(seen), "in id order")
	require.Equal(t, KindEvent, kind[0])
}
