package store

import (
	"context"
	"io/fs"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// database/sql starts a goroutine per pool; a DB left open leaks it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pragma(t *testing.T, db *DB, name string) string {
	t.Helper()
	var v string
	require.NoError(t, db.SQL().QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v))
	return v
}

func count(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.SQL().QueryRowContext(t.Context(), query, args...).Scan(&n))
	return n
}

func TestOpenSetsPragmasAndMigrates(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state", "sub", "journal.db") // directories are created
	db, err := Open(ctx, path)
	require.NoError(t, err)
	defer db.Close()

	require.Equal(t, path, db.Path())
	require.False(t, db.ReadOnly())
	require.Equal(t, "wal", pragma(t, db, "journal_mode"))
	require.Equal(t, "2", pragma(t, db, "synchronous"), "FULL")
	require.Equal(t, "1", pragma(t, db, "foreign_keys"))
	require.Equal(t, "5000", pragma(t, db, "busy_timeout"))
	v, err := db.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, len(migrations), v)
	require.Equal(t, len(migrations), count(t, db, "SELECT count(*) FROM schema_migrations"))
	require.Equal(t, strconv.Itoa(len(migrations)), pragma(t, db, "user_version"))
	require.NoError(t, db.CheckIntegrity(ctx))
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := Open(ctx, path)
	require.NoError(t, err)
	_, err = db.SQL().ExecContext(ctx, "INSERT INTO journal (time, kind, site, point, data) VALUES (1, 'write', 's', 'p', '{}')")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	for range 3 {
		db, err = Open(ctx, path)
		require.NoError(t, err)
		require.Equal(t, 1, count(t, db, "SELECT count(*) FROM journal"))
		require.Equal(t, len(migrations), count(t, db, "SELECT count(*) FROM schema_migrations"))
		require.NoError(t, db.Close())
	}
}

func TestMigrateIsIdempotentAndIncremental(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	v1 := []migration{
		{Name: "a", SQL: "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
		{Name: "b", SQL: "CREATE TABLE b (y TEXT)"},
	}
	for range 3 {
		db, err := open(ctx, path, v1)
		require.NoError(t, err)
		require.NoError(t, migrate(ctx, db.SQL(), v1)) // and again on the open pool
		require.Equal(t, 1, count(t, db, "SELECT count(*) FROM a"), "a step runs once")
		require.Equal(t, 2, count(t, db, "SELECT count(*) FROM schema_migrations"))
		require.NoError(t, db.Close())
	}

	v2 := append(v1[:len(v1):len(v1)], migration{Name: "c", SQL: "INSERT INTO a VALUES (2)"})
	db, err := open(ctx, path, v2)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, 2, count(t, db, "SELECT count(*) FROM a"), "only the new step runs")
	v, err := db.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, v)
	require.Equal(t, "3", pragma(t, db, "user_version"))
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM schema_migrations WHERE version = 3 AND name = 'c'"))
}

func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	ms := []migration{
		{Name: "ok", SQL: "CREATE TABLE a (x INTEGER)"},
		{Name: "bad", SQL: "CREATE TABLE b (y INTEGER); INSERT INTO nosuch VALUES (1);"},
	}
	_, err := open(ctx, path, ms)
	require.ErrorContains(t, err, "migration 2 (bad)")
	require.ErrorContains(t, err, "nosuch")

	db, err := open(ctx, path, ms[:1])
	require.NoError(t, err)
	defer db.Close()
	v, err := db.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, v, "step 1 stays applied")
	require.Equal(t, 0, count(t, db, "SELECT count(*) FROM sqlite_schema WHERE name = 'b'"), "step 2 left nothing behind")
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	ms := []migration{{Name: "a", SQL: "CREATE TABLE a (x)"}, {Name: "b", SQL: "CREATE TABLE b (x)"}}
	db, err := open(ctx, path, ms)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	_, err = open(ctx, path, ms[:1])
	require.ErrorIs(t, err, ErrNewerSchema)
	_, err = openReadOnly(ctx, path, ms[:1])
	require.ErrorIs(t, err, ErrNewerSchema)
	_, err = openReadOnly(ctx, path, append(ms[:2:2], migration{Name: "c", SQL: "SELECT 1"}))
	require.ErrorIs(t, err, ErrOldSchema)
}

func TestOpenReadOnly(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")

	_, err := OpenReadOnly(ctx, path)
	require.ErrorIs(t, err, fs.ErrNotExist)
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	require.Empty(t, files, "a read-only open creates nothing")

	// While a writer has the database open, as the running gateway does.
	w, err := Open(ctx, path)
	require.NoError(t, err)
	defer w.Close()
	r, err := OpenReadOnly(ctx, path)
	require.NoError(t, err)
	require.True(t, r.ReadOnly())
	_, err = w.SQL().ExecContext(ctx, "INSERT INTO journal (time, kind) VALUES (1, 'write')")
	require.NoError(t, err)
	require.Equal(t, 1, count(t, r, "SELECT count(*) FROM journal"), "the reader sees the committed row")
	_, err = r.SQL().ExecContext(ctx, "INSERT INTO journal (time, kind) VALUES (2, 'write')")
	require.Error(t, err, "read-only")
	require.NoError(t, r.Close())
	require.NoError(t, w.Close())

	// After the writer closed: the WAL was checkpointed and removed.
	r, err = OpenReadOnly(ctx, path)
	require.NoError(t, err)
	defer r.Close()
	require.Equal(t, 1, count(t, r, "SELECT count(*) FROM journal"))
	require.NoError(t, r.CheckIntegrity(ctx))
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	require.ErrorIs(t, err, context.Canceled)
}
