// Package sources reads the booking sources of a gateway config with the
// bookings adapter: the options each source's config makes, and one look
// at every feed for commands that plan offline (plan, bookings list,
// reports) and for tests that need a season's bookings as the gateway
// reads them.
package sources

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Options turns a config source into the adapter's options, its last
// good feed kept in stateDir.
func Options(s *config.Source, stateDir string) bookings.Options {
	o := bookings.Options{
		ID:            s.ID,
		Interval:      s.PollInterval,
		Timeout:       s.Timeout,
		MissingPolls:  s.MissingPolls,
		EmptyFraction: s.EmptyFraction,
		AllowEmpty:    s.AllowEmpty,
		StateDir:      stateDir,
		Location:      s.TimeZone.Location,
	}
	if len(s.Headers) > 0 {
		o.Headers = map[string]string{}
		for k, v := range s.Headers {
			o.Headers[k] = v.Value()
		}
	}
	table := func(t *config.TableSource) {
		o.Path, o.URL, o.ArrayKey = t.File, t.URL, t.ArrayKey
		if c := t.Columns; c != nil {
			o.Fields = bookings.Fields{ID: c.ID, Resource: c.Resource, Organiser: c.Organiser, Start: c.Start, End: c.End, Status: c.Status}
		}
	}
	switch {
	case s.ICal != nil:
		o.Format = bookings.FormatICal
		o.Path, o.URL = s.ICal.File, s.ICal.URL
		o.ResourceProperty, o.OrganiserProperty = s.ICal.ResourceProperty, s.ICal.OrganiserProperty
		if s.ICal.PseudonymKey != nil {
			o.PseudonymKey = []byte(s.ICal.PseudonymKey.Value())
		}
	case s.CSV != nil:
		o.Format = bookings.FormatCSV
		table(s.CSV)
	case s.JSON != nil:
		o.Format = bookings.FormatJSON
		table(s.JSON)
	}
	return o
}

// Result is what one look at all feeds found.
type Result struct {
	// BySource holds each source's bookings.
	BySource map[string][]booking.Booking
	// Status is each source's status after the look.
	Status map[string]bookings.Status
	// Failed holds the error of each source whose poll failed.
	Failed map[string]error
}

// Read polls every source once for [from, to). It works on a copy of
// the gateway's saved feed state, so a source that fails falls back to the
// last good feed exactly as the running gateway would, while the
// gateway's own disappearance counters are left untouched.
func Read(ctx context.Context, g *config.Gateway, from, to time.Time, logger *slog.Logger) (*Result, error) {
	scratch, err := os.MkdirTemp("", "bmsgw-feeds-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	res := &Result{BySource: map[string][]booking.Booking{}, Status: map[string]bookings.Status{}, Failed: map[string]error{}}
	for _, s := range g.Sources {
		if b, err := os.ReadFile(filepath.Join(g.StateDir, s.ID+".json")); err == nil {
			if err := os.WriteFile(filepath.Join(scratch, s.ID+".json"), b, 0o600); err != nil {
				return nil, err
			}
		}
		src, err := bookings.New(Options(s, scratch), logger)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.ID, err)
		}
		snap, err := src.Poll(ctx, from, to)
		if err != nil {
			res.Failed[s.ID] = err
		}
		res.BySource[s.ID] = snap.Bookings
		res.Status[s.ID] = snap.Status
	}
	return res, nil
}

// Site merges the bookings of a site's sources by precedence.
func (r *Result) Site(s *site.Site) booking.Result {
	return booking.MergeForSite(s, r.BySource)
}

// Report writes the failures of the feeds to w; it returns whether all
// feeds were good.
func (r *Result) Report(w io.Writer) bool {
	ok := true
	for id, err := range r.Failed {
		ok = false
		st := r.Status[id]
		what := "no earlier good feed is saved, so it contributes no bookings"
		switch {
		case st.FromCache && !st.FetchedAt.IsZero():
			what = fmt.Sprintf("using the last good feed fetched %s (%d bookings)", st.FetchedAt.Format(time.RFC3339), st.Bookings)
		case st.FromCache:
			what = fmt.Sprintf("using the last good feed (%d bookings)", st.Bookings)
		}
		fmt.Fprintf(w, "warning: booking source %s failed: %v; %s\n", id, err, what)
	}
	return ok
}
