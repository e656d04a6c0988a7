package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	// AfterID, when positive, selects the entries with a larger id: those
	// a reader that has seen AfterID has not.
	AfterID int64
	// Site and Point, when set, select entries of that site and point.
	// Device and event entries have no point.
	Site  string
	Point string
	// Kinds selects entries of these kinds; empty for all.
	Kinds []Kind
	// Events, Space and Severities select event entries: of these event
	// kinds, of this space, of these severities. Setting any of them
	// selects only event entries.
	Events     []string
	Space      string
	Severities []Severity
	// Limit, when positive, keeps only the latest Limit entries.
	Limit int
	// First, when positive, keeps only the First entries with the lowest
	// ids and returns them in id order, for reading the journal page by
	// page with AfterID. It cannot be combined with Limit.
	First int
	// Personal fills in the card holders of events where they are kept.
	// Without it no card holder leaves the database.
	Personal bool
}

// in appends "col IN (?, ...)" for vals to where and args.
func in[T ~string](where []string, args []any, col string, vals []T) ([]string, []any) {
	for _, v := range vals {
		args = append(args, string(v))
	}
	return append(where, col+" IN (?"+strings.Repeat(", ?", len(vals)-1)+")"), args
}

// Query returns the entries of db that match f, oldest first (by time,
// then id; by id with First). db may be read-only, so a tool can read the
// journal while the gateway writes it.
func Query(ctx context.Context, db *store.DB, f Filter) ([]Entry, error) {
	var (
		where []string
		args  []any
	)
	if f.Limit > 0 && f.First > 0 {
		return nil, errors.New("query journal: limit and first cannot be combined")
	}
	if !f.Since.IsZero() {
		where, args = append(where, "j.time >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "j.time < ?"), append(args, f.Until.UnixNano())
	}
	if f.AfterID > 0 {
		where, args = append(where, "j.id > ?"), append(args, f.AfterID)
	}
	if f.Site != "" {
		where, args = append(where, "j.site = ?"), append(args, f.Site)
	}
	if f.Point != "" {
		where, args = append(where, "j.point = ?"), append(args, f.Point)
	}
	if len(f.Kinds) > 0 {
		for _, k := range f.Kinds {
			if !k.Valid() {
				return nil, fmt.Errorf("query journal: unknown kind %q", k)
			}
		}
		where, args = in(where, args, "j.kind", f.Kinds)
	}
	if len(f.Events) > 0 || f.Space != "" || len(f.Severities) > 0 {
		where, args = append(where, "j.kind = ?"), append(args, string(KindEvent))
		if len(f.Events) > 0 {
			where, args = in(where, args, "j.data ->> '$.event'", f.Events)
		}
		if f.Space != "" {
			where, args = append(where, "j.data ->> '$.space' = ?"), append(args, f.Space)
		}
		if len(f.Severities) > 0 {
			where, args = in(where, args, "j.data ->> '$.severity'", f.Severities)
		}
	}
	personal := "''"
	q := " FROM journal j"
	if f.Personal {
		personal = "coalesce(p.card_holder, '')"
		q += " LEFT JOIN journal_personal p ON p.id = j.id"
	}
	q = "SELECT j.id, j.time, j.kind, j.site, j.point, j.data, " + personal + q
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	switch {
	case f.Limit > 0:
		q += " ORDER BY j.time DESC, j.id DESC LIMIT ?"
		args = append(args, f.Limit)
	case f.First > 0:
		q += " ORDER BY j.id LIMIT ?"
		args = append(args, f.First)
	default:
		q += " ORDER BY j.time, j.id"
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
		if err := rows.Scan(&id, &r.time, &kind, &r.site, &r.point, &r.data, &r.personal); err != nil {
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
		n, err := pruneOnce(ctx, j.db, q, args)
		total += n
		if err != nil {
			return total, fmt.Errorf("prune journal: %w", err)
		}
		if n < int64(pruneChunk) {
			return total, nil
		}
	}
}

func pruneOnce(ctx context.Context, db *store.DB, q string, args []any) (int64, error) {
	// An explicit transaction begins with the write lock (BEGIN
	// IMMEDIATE) and so waits for the writer; a bare DELETE would read
	// first and could fail at once with SQLITE_BUSY when a batch commits
	// between its read and its write.
	tx, err := db.SQL().BeginTx(ctx, nil)
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

// PrunePersonal deletes the card holders of the events older than
// before, keeping the events, and returns how many it deleted.
func (j *Journal) PrunePersonal(ctx context.Context, before time.Time) (int64, error) {
	n, err := prunePersonal(ctx, j.db, before)
	if err != nil {
		return n, fmt.Errorf("prune card holders: %w", err)
	}
	return n, nil
}

func prunePersonal(ctx context.Context, db *store.DB, before time.Time) (int64, error) {
	q := "DELETE FROM journal_personal WHERE id IN (SELECT id FROM journal_personal WHERE time < ? LIMIT ?)"
	var total int64
	for {
		n, err := pruneOnce(ctx, db, q, []any{before.UnixNano(), pruneChunk})
		total += n
		if err != nil || n < int64(pruneChunk) {
			return total, err
		}
	}
}

// forgetPersonal deletes every card holder, for a journal opened without
// KeepPersonal.
func forgetPersonal(ctx context.Context, db *store.DB, log *slog.Logger) error {
	var found int
	if err := db.SQL().QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM journal_personal)").Scan(&found); err != nil {
		return err
	}
	if found == 0 {
		return nil
	}
	n, err := prunePersonal(ctx, db, time.Unix(0, math.MaxInt64))
	if err != nil {
		return fmt.Errorf("delete card holders: %w", err)
	}
	log.Info("journal: card holders deleted, personal data is no longer kept", "component", "journal", "card_holders", n)
	return nil
}

// prunes reports whether any retention is set.
func (j *Journal) prunes() bool {
	if j.opts.Retention > 0 || j.opts.KeepPersonal {
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
	if j.opts.KeepPersonal {
		before := now.Add(-j.opts.PersonalRetention)
		n, err := j.PrunePersonal(ctx, before)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			j.log.Warn("journal pruning failed", "kind", "card holders", "err", err)
		case n > 0:
			j.log.Info("journal pruned", "kind", "card holders", "entries", n, "before", before.UTC())
		}
	}
}
