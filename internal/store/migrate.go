package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema. Migrations are applied in order,
// each in its own transaction together with its row in
// schema_migrations, so a step is either applied completely or not at
// all. A released migration is never edited or reordered: a change of
// schema is a new migration at the end of the list.
type migration struct {
	// Name says what the step does; it is recorded with the version.
	Name string
	// SQL is one or more statements separated by semicolons.
	SQL string
}

// migrations is the schema of the gateway's database; version N is
// migrations[N-1]. Every package that keeps tables in the database adds
// its steps here, so there is one linear history to reason about.
var migrations = []migration{
	{
		Name: "journal",
		// id is AUTOINCREMENT so that ids are never reused, even after the
		// newest entries were pruned: an id seen once names one entry
		// forever. time is Unix nanoseconds (UTC). The kind's own fields are
		// a JSON object, so a new field or kind needs no migration; site
		// and point are columns because queries filter on them.
		SQL: `
CREATE TABLE journal (
	id    INTEGER PRIMARY KEY AUTOINCREMENT,
	time  INTEGER NOT NULL,
	kind  TEXT    NOT NULL,
	site  TEXT    NOT NULL DEFAULT '',
	point TEXT    NOT NULL DEFAULT '',
	data  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data))
) STRICT;
CREATE INDEX journal_time ON journal (time);
CREATE INDEX journal_kind_time ON journal (kind, time);
CREATE INDEX journal_point_time ON journal (point, time);
`,
	},
	{
		Name: "journal personal data",
		// Who held a card is personal data with a retention of its own,
		// shorter than the event's: it lives apart from the event so
		// that it can be deleted while the event stays. time copies the
		// event's, for pruning by age; deleting the event deletes it.
		SQL: `
CREATE TABLE journal_personal (
	id          INTEGER PRIMARY KEY REFERENCES journal (id) ON DELETE CASCADE,
	time        INTEGER NOT NULL,
	card_holder TEXT    NOT NULL
) STRICT;
CREATE INDEX journal_personal_time ON journal_personal (time);
`,
	},
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
) STRICT`

// migrate applies the migrations the database lacks. It is idempotent
// and safe against another process migrating the same file at the same
// time: each step re-checks its version inside its write transaction.
func migrate(ctx context.Context, db *sql.DB, ms []migration) error {
	if _, err := db.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	v, err := version(ctx, db)
	if err != nil {
		return err
	}
	if v > len(ms) {
		return fmt.Errorf("version %d, this bmsgw knows %d: %w", v, len(ms), ErrNewerSchema)
	}
	for i := v; i < len(ms); i++ {
		if err := apply(ctx, db, i+1, ms[i]); err != nil {
			return fmt.Errorf("migration %d (%s): %w", i+1, ms[i].Name, err)
		}
	}
	return nil
}

// apply runs migration number n in one transaction, unless it is already
// recorded.
func apply(ctx context.Context, db *sql.DB, n int, m migration) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var done int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", n).Scan(&done); err != nil {
		return err
	}
	if done > 0 {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		n, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	// user_version mirrors the version for the sqlite3 shell; it is part
	// of the database header and so of this transaction.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
		return err
	}
	return tx.Commit()
}

// version returns the highest applied migration, 0 for a new database.
func version(ctx context.Context, db *sql.DB) (int, error) {
	var tables int
	if err := db.QueryRowContext(ctx,
		"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&tables); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if tables == 0 {
		return 0, nil
	}
	var v int
	if err := db.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
