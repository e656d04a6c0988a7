// Package store opens the gateway's embedded SQLite database and brings
// its schema up to date with ordered, transactional migrations.
//
// The database runs in WAL mode with synchronous=FULL: every commit is
// fsynced to the write-ahead log before it returns, so a committed
// transaction survives both a killed process and a power cut (on a disk
// that honours fsync). WAL with synchronous=NORMAL would also survive a
// killed process, since the commit is in the OS page cache, but could
// lose the last commits in a power cut. The journal is an audit record
// and its group commit shares one fsync among many entries, so FULL costs
// little. WAL also lets readers (bmsgw journal) run while the gateway
// writes.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // The pure-Go driver keeps the build cgo-free.
)

// BusyTimeout is how long a statement waits for another connection's
// write lock before it fails with SQLITE_BUSY.
const BusyTimeout = 5 * time.Second

// ErrNewerSchema is returned when the database was migrated by a newer
// bmsgw than this one: its tables may have changed in ways this binary
// does not understand, so it is not touched.
var ErrNewerSchema = errors.New("database schema is newer than this bmsgw")

// ErrOldSchema is returned by OpenReadOnly when the database has not been
// migrated to this binary's schema yet; running the gateway once migrates
// it.
var ErrOldSchema = errors.New("database schema is older than this bmsgw")

// DB is an open database. It is safe for concurrent use; SQLite in WAL
// mode allows one writer and any number of readers at a time, and writers
// wait up to BusyTimeout for each other.
type DB struct {
	sql      *sql.DB
	path     string
	readOnly bool
}

// Open opens the database file at path read-write, creating the file
// and its directory if missing, and applies the migrations it lacks. It
// fails with ErrNewerSchema when a newer bmsgw has migrated the file.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, migrations)
}

func open(ctx context.Context, path string, ms []migration) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Take the write lock when a transaction begins, not at its first
	// write: a deferred transaction that reads and then writes fails at
	// once with SQLITE_BUSY when another connection wrote meanwhile,
	// whereas BEGIN IMMEDIATE waits for busy_timeout.
	q.Set("_txlock", "immediate")
	db, err := connect(ctx, abs, q)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := migrate(ctx, db.sql, ms); err != nil {
		_ = db.sql.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	return db, nil
}

// OpenReadOnly opens an existing database for reading, for tools that
// inspect it while the gateway may be running. It neither creates nor
// migrates the file: a missing file is an error that matches
// fs.ErrNotExist, and a schema other than this binary's fails with
// ErrOldSchema or ErrNewerSchema.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	return openReadOnly(ctx, path, migrations)
}

func openReadOnly(ctx context.Context, path string, ms []migration) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// SQLite's own error for a missing file in mode=ro is a bare
	// "unable to open database file"; stat first so callers can tell.
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	db, err := connect(ctx, abs, q)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.readOnly = true
	v, err := version(ctx, db.sql)
	if err == nil {
		switch {
		case v > len(ms):
			err = fmt.Errorf("version %d, this bmsgw knows %d: %w", v, len(ms), ErrNewerSchema)
		case v < len(ms):
			err = fmt.Errorf("version %d, this bmsgw needs %d: %w", v, len(ms), ErrOldSchema)
		}
	}
	if err != nil {
		_ = db.sql.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// connect opens the pool and checks that a connection can be made, so
// that a bad file or pragma fails Open rather than the first query.
func connect(ctx context.Context, abs string, q url.Values) (*DB, error) {
	// A file: URI, so that SQLite sees mode=ro and a path with ? or #
	// in it is escaped rather than cut.
	u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	s, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	if err := s.PingContext(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return &DB{sql: s, path: abs}, nil
}

// SQL returns the connection pool for the packages that own tables in
// the database. A transaction begun on it takes the write lock at once
// (BEGIN IMMEDIATE).
func (db *DB) SQL() *sql.DB { return db.sql }

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// ReadOnly reports whether the database was opened with OpenReadOnly.
func (db *DB) ReadOnly() bool { return db.readOnly }

// Version returns the number of migrations applied to the database.
func (db *DB) Version(ctx context.Context) (int, error) {
	return version(ctx, db.sql)
}

// Close closes the database. The last connection to close checkpoints
// the write-ahead log into the database file. Callers must first stop
// everything that uses the pool (journal.Close).
func (db *DB) Close() error {
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// CheckIntegrity runs PRAGMA integrity_check and returns an error that
// lists the problems found, or nil when the database is intact.
func (db *DB) CheckIntegrity(ctx context.Context) error {
	rows, err := db.sql.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("check integrity of %s: %w", db.path, err)
	}
	defer rows.Close()
	var problems []error
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("check integrity of %s: %w", db.path, err)
		}
		if s != "ok" {
			problems = append(problems, errors.New(s))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check integrity of %s: %w", db.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("database %s is damaged: %w", db.path, errors.Join(problems...))
	}
	return nil
}
