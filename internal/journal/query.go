package journal

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/store"
)

// Filter selects journal entries. The zero Filter selects every entry.
type Filter struct {
	// Since is the earliest time, inclusive; zero for no bound.
	Since time.Time
	// Until is the latest time, exclusive; zero for no bound.
	Until time.Time
	// Site and Point, when set, select entries of that site and point.
	// Device and event entries have no point.
	Site  string
	Point string
	// Kinds selects entries of these kinds; empty for all.
	Kinds []Kind
	// Limit, when positive, keeps only the latest Limit entries.
	Limit int
}

// Query returns the entries of db that match f, oldest first (by time,
// then id). db may be read-only, so a tool can read the journal while the
// gateway writes it.
func Query(ctx context.Context, db *store.DB, f Filter) ([]Entry, error) {
	var (
		where []string
		args  []any
	)
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, f.Until.UnixNano())
	}
	if f.Site != "" {
		where, args = append(where, "site = ?"), append(args, f.Site)
	}
	if f.Point != "" {
		where, args = append(where, "point = ?"), append(args, f.Point)
	}
	if len(f.Kinds) > 0 {
		for _, k := range f.Kinds {
			if !k.Valid() {
				return nil, fmt.Errorf("query journal: unknown kind %q", k)
			}
			args = append(args, string(k))
		}
		where = append(where, "kind IN (?"+strings.Repeat(", ?", len(f.Kinds)-1)+")")
	}
	q := "SELECT id, time, kind, site, point, data FROM journal"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit > 0 {
		q += " ORDER BY time DESC, id DESC LIMIT ?"
		args = append(args, f.Limit)
	} else {
		q += " ORDER BY time, id"
	}
	rows, err := db.SQL().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query journal: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var (
			id   int64
			r    row
			kind string
		)
		if err := rows.Scan(&id, &r.time, &kind, &r.site, &r.point, &r.data); err != nil {
			return nil, fmt.Errorf("query journal: %w", err)
		}
		r.kind = Kind(kind)
		e, err := decode(id, r)
		if err != nil {
			return nil, fmt.Errorf("query journal: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query journal: %w", err)
	}
	if f.Limit > 0 {
		slices.Reverse(out)
	}
	return out, nil
}

// Query returns the journal's entries that match f, oldest first.
func (j *Journal) Query(ctx context.Context, f Filter) ([]Entry, error) {
	return Query(ctx, j.db, f)
}

// pruneChunk is how many entries one pruning transaction deletes at
// most, so that appends wait for a short transaction, not a long one.
// A variable for tests.
var pruneChunk = 5000

// Prune deletes the entries older than before, of the given kinds or, with
// none given, of every kind, and returns how many it deleted. It deletes
// in short transactions, so appends go on meanwhile.
func (j *Journal) Prune(ctx context.Context, before time.Time, kinds ...Kind) (int64, error) {
	q := "DELETE FROM journal WHERE id IN (SELECT id FROM journal WHERE time < ?"
	args := []any{before.UnixNano()}
	if len(kinds) > 0 {
		for _, k := range kinds {
			if !k.Valid() {
				return 0, fmt.Errorf("prune journal: unknown kind %q", k)
			}
			args = append(args, string(k))
		}
		q += " AND kind IN (?" + strings.Repeat(", ?", len(kinds)-1) + ")"
	}
	q += " LIMIT ?)"
	args = append(args, pruneChunk)
	var total int64
	for {
		n, err := j.pruneOnce(ctx, q, args)
		total += n
		if err != nil {
			return total, fmt.Errorf("prune journal: %w", err)
		}
		if n < int64(pruneChunk) {
			return total, nil
		}
	}
}

func (j *Journal) pruneOnce(ctx context.Context, q string, args []any) (int64, error) {
	// An explicit transaction begins with the write lock (BEGIN
	// IMMEDIATE) and so waits for the writer; a bare DELETE would read
	// first and could fail at once with SQLITE_BUSY when a batch commits
	// between its read and its write.
	tx, err := j.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		_ = tx.Rollback()
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		_ = tx.Rollback()
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// prunes reports whether any retention is set.
func (j *Journal) prunes() bool {
	if j.opts.Retention > 0 {
		return true
	}
	for _, d := range j.opts.KindRetention {
		if d > 0 {
			return true
		}
	}
	return false
}

// pruneLoop deletes expired entries now and every PruneInterval until ctx
// is done.
func (j *Journal) pruneLoop(ctx context.Context) {
	t := time.NewTicker(j.opts.PruneInterval)
	defer t.Stop()
	for {
		j.pruneExpired(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneExpired deletes the entries of each kind older than the kind's
// retention.
func (j *Journal) pruneExpired(ctx context.Context) {
	now := j.opts.Now()
	for _, k := range Kinds {
		d := j.opts.retention(k)
		if d <= 0 {
			continue
		}
		before := now.Add(-d)
		n, err := j.Prune(ctx, before, k)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			j.log.Warn("journal pruning failed", "kind", k, "err", err)
			continue
		}
		if n > 0 {
			j.log.Info("journal pruned", "kind", k, "entries", n, "before", before.UTC())
		}
	}
}
