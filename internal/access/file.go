package access

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/statefile"
)

// Format is the format of an export file.
type Format string

// Export formats.
const (
	// FormatCSV is a CSV file with the header key,group,door,from,to,mode.
	FormatCSV Format = "csv"
	// FormatJSON is a JSON array of objects with those fields.
	FormatJSON Format = "json"
)

// csvHeader is the first line of a CSV export; the columns are the fields
// of the HTTP body, in the same order.
var csvHeader = []string{"key", "group", "door", "from", "to", "mode"}

// FileOptions configure a file output (gateway config access_outputs[]
// with file:).
type FileOptions struct {
	// ID is the output's id.
	ID string
	// Path is the export file. Its directory is created if missing.
	Path string
	// Format is csv or json.
	Format Format
	// Now tells the time: grants that have ended are left out. Nil means
	// time.Now.
	Now func() time.Time
}

// File is an output that writes the current grants to a file for access
// systems that import files. It rewrites the file, atomically, only when
// its content changes. It is safe for concurrent use.
type File struct {
	opts FileOptions
	log  *slog.Logger
	mu   sync.Mutex
}

// NewFile checks the options and creates the file's directory.
func NewFile(o FileOptions, log *slog.Logger) (*File, error) {
	var errs []error
	if !idPattern.MatchString(o.ID) {
		errs = append(errs, fmt.Errorf("access output id %q must be letters, digits, '_', '.' or '-'", o.ID))
	}
	if o.Path == "" {
		errs = append(errs, fmt.Errorf("access output %s: no file path", o.ID))
	}
	if o.Format != FormatCSV && o.Format != FormatJSON {
		errs = append(errs, fmt.Errorf("access output %s: format %q is not csv or json", o.ID, o.Format))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return nil, fmt.Errorf("access output %s: %w", o.ID, err)
	}
	return &File{opts: o, log: log.With("output", o.ID)}, nil
}

// ID returns the output's id.
func (f *File) ID() string { return f.opts.ID }

// Push writes the desired grants that have not ended, in the order of
// SortGrants, if that changes the file. The Result's ops compare the new
// list with the file as it was, by key (no references: a file has none).
// Malformed grants and repeated keys are left out and reported as failed.
func (f *File) Push(ctx context.Context, desired []Grant) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := Result{Output: f.opts.ID}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("access output %s: %w", f.opts.ID, err)
	}
	now := f.opts.Now()
	seen := map[string]bool{}
	var list []Grant
	for _, g := range desired {
		if !g.To.After(now) {
			continue
		}
		if err := checkGrant(g); err != nil {
			res.Ops = append(res.Ops, Op{Action: Create, Grant: g, Err: err, Permanent: true})
			continue
		}
		if seen[g.Key] {
			res.Ops = append(res.Ops, Op{Action: Create, Grant: g, Err: fmt.Errorf("%w: key %s is not unique", ErrInvalidGrant, g.Key), Permanent: true})
			continue
		}
		seen[g.Key] = true
		list = append(list, g)
	}
	SortGrants(list)
	data, err := render(f.opts.Format, list)
	if err != nil {
		return res, fmt.Errorf("access output %s: %w", f.opts.ID, err)
	}

	old, err := os.ReadFile(f.opts.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("access output %s: read %s: %w", f.opts.ID, f.opts.Path, err)
	}
	if err == nil && bytes.Equal(old, data) {
		res.Unchanged = len(list)
		return res, nil
	}
	before, perr := parseExport(f.opts.Format, old)
	if perr != nil {
		// The diff is only for the journal; the file is replaced anyway.
		f.log.Warn("access export file not readable; reporting every grant as created", "path", f.opts.Path, "error", perr)
		before = nil
	}
	res.Ops = append(res.Ops, diffExport(before, list, now, &res.Unchanged)...)
	if err := statefile.WriteAtomic(f.opts.Path, data, 0o640); err != nil {
		return res, fmt.Errorf("access output %s: %w", f.opts.ID, err)
	}
	res.Written = true
	f.log.Info("access export written", "path", f.opts.Path, "grants", len(list),
		"created", res.Count(Create), "updated", res.Count(Update), "revoked", res.Count(Revoke))
	return res, nil
}

// render encodes the grants in the format: only pseudonymous ids, times,
// modes and keys.
func render(format Format, list []Grant) ([]byte, error) {
	var buf bytes.Buffer
	switch format {
	case FormatCSV:
		w := csv.NewWriter(&buf)
		if err := w.Write(csvHeader); err != nil {
			return nil, err
		}
		for _, g := range list {
			wg := toWire(g)
			if err := w.Write([]string{wg.Key, wg.Group, wg.Door, wg.From, wg.To, string(wg.Mode)}); err != nil {
				return nil, err
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return nil, err
		}
	case FormatJSON:
		wire := make([]wireGrant, len(list))
		for i, g := range list {
			wire[i] = toWire(g)
		}
		data, err := json.MarshalIndent(wire, "", "  ")
		if err != nil {
			return nil, err
		}
		buf.Write(data)
		buf.WriteByte('\n')
	default:
		return nil, fmt.Errorf("format %q is not csv or json", format)
	}
	return buf.Bytes(), nil
}

// parseExport reads back an export file, to tell what changed. An empty
// or missing file has no grants.
func parseExport(format Format, data []byte) ([]wireGrant, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var out []wireGrant
	switch format {
	case FormatCSV:
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 || len(rows[0]) != len(csvHeader) {
			return nil, errors.New("no key,group,door,from,to,mode header")
		}
		for _, r := range rows[1:] {
			out = append(out, wireGrant{Key: r[0], Group: r[1], Door: r[2], From: r[3], To: r[4], Mode: Mode(r[5])})
		}
	case FormatJSON:
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// diffExport compares the grants of the old file with the new list by
// key, counting the unchanged ones. A grant left out because it ended is
// reported as expired, not revoked.
func diffExport(before []wireGrant, after []Grant, now time.Time, unchanged *int) []Op {
	old := make(map[string]wireGrant, len(before))
	for _, w := range before {
		old[w.Key] = w
	}
	var ops []Op
	for _, g := range after {
		w, ok := old[g.Key]
		switch {
		case !ok:
			ops = append(ops, Op{Action: Create, Grant: g})
		case w != toWire(g):
			ops = append(ops, Op{Action: Update, Grant: g})
		default:
			*unchanged++
		}
		delete(old, g.Key)
	}
	for _, w := range before {
		if _, ok := old[w.Key]; !ok {
			continue
		}
		delete(old, w.Key)
		g := Grant{Key: w.Key, Group: w.Group, Door: w.Door, Mode: w.Mode}
		g.From, _ = time.Parse(time.RFC3339, w.From)
		g.To, _ = time.Parse(time.RFC3339, w.To)
		a := Revoke
		if !g.To.IsZero() && !g.To.After(now) {
			a = Expire
		}
		ops = append(ops, Op{Action: a, Grant: g})
	}
	return ops
}

// Interface guards.
var _ Output = (*File)(nil)
