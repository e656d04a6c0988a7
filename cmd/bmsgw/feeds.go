package main

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

// sourceOptions turns a config source into adapter options.
func sourceOptions(g *config.Gateway, s *config.Source, stateDir string) bookings.Options {
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

// feedResult is what one look at all feeds found.
type feedResult struct {
	// bySource holds each source's bookings.
	bySource map[string][]booking.Booking
	status   map[string]bookings.Status
	failed   map[string]error
}

// readFeeds polls every source once for [from, to). It works on a copy of
// the gateway's saved feed state, so a source that fails falls back to the
// last good feed exactly as the running gateway would, while the
// gateway's own disappearance counters are left untouched.
func readFeeds(ctx context.Context, g *config.Gateway, from, to time.Time, logger *slog.Logger) (*feedResult, error) {
	scratch, err := os.MkdirTemp("", "bmsgw-feeds-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	res := &feedResult{bySource: map[string][]booking.Booking{}, status: map[string]bookings.Status{}, failed: map[string]error{}}
	for _, s := range g.Sources {
		if b, err := os.ReadFile(filepath.Join(g.StateDir, s.ID+".json")); err == nil {
			if err := os.WriteFile(filepath.Join(scratch, s.ID+".json"), b, 0o600); err != nil {
				return nil, err
			}
		}
		src, err := bookings.New(sourceOptions(g, s, scratch), logger)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.ID, err)
		}
		snap, err := src.Poll(ctx, from, to)
		if err != nil {
			res.failed[s.ID] = err
		}
		res.bySource[s.ID] = snap.Bookings
		res.status[s.ID] = snap.Status
	}
	return res, nil
}

// siteBookings merges the bookings of a site's sources by precedence.
func (r *feedResult) siteBookings(s *site.Site) booking.Result {
	return booking.MergeForSite(s, r.bySource)
}

// reportFeeds writes the failures of the feeds to w; it returns whether
// all feeds were good.
func (r *feedResult) reportFeeds(w io.Writer) bool {
	ok := true
	for id, err := range r.failed {
		ok = false
		st := r.status[id]
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
