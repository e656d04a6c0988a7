package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/httpapi"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/store"
	"github.com/bmsgw/bmsgw/internal/webui"
)

// apiBackend is the running gateway as the HTTP API sees it.
type apiBackend struct {
	gw    *gateway
	ready atomic.Bool
}

var _ httpapi.Backend = (*apiBackend)(nil)

func (b *apiBackend) Sites() []*site.Site {
	b.gw.mu.Lock()
	defer b.gw.mu.Unlock()
	return b.gw.g.Sites
}

func (b *apiBackend) Ready(context.Context) error {
	if !b.ready.Load() {
		return fmt.Errorf("%w: the gateway is starting", httpapi.ErrUnavailable)
	}
	return nil
}

func (b *apiBackend) site(id string) (*site.Site, error) {
	if s := b.gw.site(id); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("%w: no site %q", httpapi.ErrNotFound, id)
}

// compile compiles a site's plan over [from, to) from the bookings the
// gateway holds now.
func (b *apiBackend) compile(s *site.Site, from, to time.Time) (*schedule.Compiler, []booking.Booking) {
	b.gw.mu.Lock()
	merged := booking.MergeForSite(s, b.gw.bySource)
	b.gw.mu.Unlock()
	c := schedule.NewCompiler(s, from, to)
	c.SetBookings(merged.Bookings)
	return c, merged.Bookings
}

func (b *apiBackend) Plan(_ context.Context, siteID string, from, to time.Time) ([]schedule.Change, error) {
	s, err := b.site(siteID)
	if err != nil {
		return nil, err
	}
	c, _ := b.compile(s, from, to)
	return c.Changes(), nil
}

func (b *apiBackend) Windows(_ context.Context, siteID, spaceID string, from, to time.Time) ([]schedule.Window, error) {
	s, err := b.site(siteID)
	if err != nil {
		return nil, err
	}
	if s.Space(spaceID) == nil {
		return nil, fmt.Errorf("%w: site %s has no space %q", httpapi.ErrNotFound, siteID, spaceID)
	}
	c, _ := b.compile(s, from, to)
	return c.Windows(spaceID), nil
}

func (b *apiBackend) Status(ctx context.Context) (control.Status, error) { return b.gw.Status(ctx) }

func (b *apiBackend) Feeds() []control.FeedStatus { return b.gw.feedStatuses() }

func (b *apiBackend) SetOverride(ctx context.Context, o control.Override) error {
	return b.gw.eng.SetOverride(ctx, o)
}

func (b *apiBackend) ClearOverride(ctx context.Context, siteID, point, who string) error {
	return b.gw.eng.ClearOverride(ctx, siteID, point, who)
}

func (b *apiBackend) Events() *events.Bus { return b.gw.bus }

func (b *apiBackend) Round(ctx context.Context, siteID string) (security.RoundReport, error) {
	if _, err := b.site(siteID); err != nil {
		return security.RoundReport{}, err
	}
	rep, err := b.gw.Round(ctx, siteID)
	if errors.Is(err, errNoRound) {
		return rep, fmt.Errorf("%w: %v", httpapi.ErrNotFound, err)
	}
	return rep, err
}

func (b *apiBackend) NoShowReport(ctx context.Context, from, to time.Time, siteID string) (httpapi.NoShowReport, error) {
	b.gw.mu.Lock()
	g := b.gw.g
	b.gw.mu.Unlock()
	sites := g.Sites
	if siteID != "" {
		s, err := b.site(siteID)
		if err != nil {
			return httpapi.NoShowReport{}, err
		}
		sites = []*site.Site{s}
	}
	db, err := store.OpenReadOnly(ctx, journalFile(g))
	if err != nil {
		return httpapi.NoShowReport{}, fmt.Errorf("%w: journal: %v", httpapi.ErrUnavailable, err)
	}
	defer db.Close()
	end := earlier(to, b.gw.clock.Now())
	rows, good, err := noShowReport(ctx, g, db, sites, siteID, from, end, io.Discard)
	if err != nil {
		return httpapi.NoShowReport{}, err
	}
	rep := httpapi.NoShowReport{Since: from, Until: end, Site: siteID, Complete: good, Organisers: []httpapi.NoShowCount{}}
	for _, r := range rows {
		rep.Organisers = append(rep.Organisers, httpapi.NoShowCount{Organiser: r.Organiser, Bookings: r.Bookings, NoShows: r.NoShows, Late: r.Late, Rate: r.Rate})
	}
	return rep, nil
}

func (b *apiBackend) EnergyReport(ctx context.Context, siteID string, week httpapi.Week) (httpapi.EnergyReport, error) {
	s, err := b.site(siteID)
	if err != nil {
		return httpapi.EnergyReport{}, err
	}
	spec := energy.SpecOf(s)
	if spec == nil {
		return httpapi.EnergyReport{}, fmt.Errorf("%w: site %s declares no energy: section", httpapi.ErrNotFound, siteID)
	}
	from, to := week.Start(s.Location), week.End(s.Location)
	_, bookings := b.compile(s, from, to)
	db, err := store.OpenReadOnly(ctx, journalFile(b.gw.config()))
	if errors.Is(err, os.ErrNotExist) {
		db = nil
	} else if err != nil {
		return httpapi.EnergyReport{}, err
	}
	if db != nil {
		defer db.Close()
	}
	sp, err := planOf(ctx, s, from, to, bookings, db)
	if err != nil {
		return httpapi.EnergyReport{}, err
	}
	rows, err := energy.WeekReport(spec, sp.plan, from, to)
	if err != nil {
		return httpapi.EnergyReport{}, err
	}
	return httpapi.EnergyReportOf(s.ID, week, from, to, rows), nil
}

// startHTTP serves the API (and the web page) when the config has http:.
func (gw *gateway) startHTTP(ctx context.Context, wg *sync.WaitGroup) (*apiBackend, error) {
	h := gw.g.HTTP
	if h == nil {
		return nil, nil
	}
	entries, files := httpTokens(h)
	gw.demoTokens = nil
	if len(entries) == 0 && len(files) == 0 && gw.g.Simulate != nil {
		// A demo without tokens: a fresh operator token for this run, in
		// a file only this user can read; never a default password.
		token, hash, err := httpapi.GenerateToken()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(gw.g.StateDir, "demo-token")
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return nil, err
		}
		entries = append(entries, httpapi.TokenEntry{Name: "demo", Role: "operator", TokenSHA256: hash})
		gw.demoTokens = entries
		gw.log.Info("demo: an operator token for the web page and API is in "+path, "file", path)
	}
	tokens, err := httpapi.LoadTokens(entries, files...)
	if err != nil {
		return nil, err
	}
	b := &apiBackend{gw: gw}
	srv, err := httpapi.New(httpapi.Options{Backend: b, Tokens: tokens, Logger: gw.log, Now: gw.clock.Now, Metrics: gw.metrics, Page: webui.Handler()})
	if err != nil {
		return nil, err
	}
	gw.api = srv
	l := httpapi.Listen{Addr: h.Listen}
	if h.TLS != nil {
		l.CertFile, l.KeyFile = h.TLS.CertificateFile, h.TLS.PrivateKeyFile
	}
	ln, err := srv.Bind(l)
	if err != nil {
		return nil, err
	}
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			gw.log.Error("http api stopped", "err", err)
		}
	})
	gw.log.Info("http api listening", "addr", ln.Addr().String(), "tls", h.TLS != nil)
	return b, nil
}

// meteredJournal counts the engine's writes and device changes for
// /metrics as it journals them.
type meteredJournal struct {
	control.Journal
	m *httpapi.Metrics
}

func (j meteredJournal) Writes(ctx context.Context, rs []control.WriteRecord) error {
	err := j.Journal.Writes(ctx, rs)
	for _, r := range rs {
		if !r.DryRun {
			j.m.WriteDone(r.Site, r.Err == "")
		}
	}
	return err
}

func (j meteredJournal) Device(ctx context.Context, r control.DeviceRecord) error {
	err := j.Journal.Device(ctx, r)
	j.m.DeviceUp(r.Site, r.Connection, r.Up)
	return err
}

// reloadTokens gives the running API the tokens of a reloaded config, so
// that a revoked token stops working without a restart. The listen
// address and certificate need a restart.
func (gw *gateway) reloadTokens(ng *config.Gateway) error {
	if gw.api == nil || ng.HTTP == nil {
		return nil
	}
	entries, files := httpTokens(ng.HTTP)
	if len(entries) == 0 && len(files) == 0 {
		entries = gw.demoTokens
	}
	tokens, err := httpapi.LoadTokens(entries, files...)
	if err != nil {
		return err
	}
	gw.api.SetTokens(tokens)
	return nil
}

var (
	_ httpapi.BookingLister    = (*apiBackend)(nil)
	_ httpapi.SecurityReporter = (*apiBackend)(nil)
	_ httpapi.OpenDataSource   = (*apiBackend)(nil)
)

// Bookings lists the site's merged bookings that overlap [from, to).
func (b *apiBackend) Bookings(_ context.Context, siteID string, from, to time.Time) ([]booking.Booking, error) {
	s, err := b.site(siteID)
	if err != nil {
		return nil, err
	}
	b.gw.mu.Lock()
	merged := booking.MergeForSite(s, b.gw.bySource)
	b.gw.mu.Unlock()
	var out []booking.Booking
	for _, bk := range merged.Bookings {
		if bk.End.After(from) && bk.Start.Before(to) {
			out = append(out, bk)
		}
	}
	return out, nil
}

// Security is the status window: the site monitor's doors, areas and
// detectors.
func (b *apiBackend) Security(ctx context.Context, siteID string) (httpapi.SiteSecurity, error) {
	if _, err := b.site(siteID); err != nil {
		return httpapi.SiteSecurity{}, err
	}
	b.gw.monMu.RLock()
	mr := b.gw.monitors[siteID]
	b.gw.monMu.RUnlock()
	if mr == nil {
		return httpapi.SiteSecurity{}, nil // no doors or areas
	}
	st, err := mr.m.Security(ctx)
	return httpapi.SiteSecurity{Doors: st.Doors, Areas: st.Areas, Detectors: st.Detectors}, err
}

// OpenData is the open data export of a site ("" for every site that
// declares energy:), with the no-shows the journal recorded.
func (b *apiBackend) OpenData(ctx context.Context, siteID string, from, to time.Time) ([]energy.SpaceDay, error) {
	sites := b.Sites()
	if siteID != "" {
		s, err := b.site(siteID)
		if err != nil {
			return nil, err
		}
		sites = []*site.Site{s}
	}
	db, err := store.OpenReadOnly(ctx, journalFile(b.gw.config()))
	if errors.Is(err, os.ErrNotExist) {
		db = nil
	} else if err != nil {
		return nil, err
	}
	if db != nil {
		defer db.Close()
	}
	var out []energy.SpaceDay
	for _, s := range sites {
		spec := energy.SpecOf(s)
		if spec == nil {
			continue
		}
		_, bookings := b.compile(s, from, to)
		sp, err := planOf(ctx, s, from, to, bookings, db)
		if err != nil {
			return nil, err
		}
		days, err := energy.DailyOpenData(spec, sp.plan, sp.bookings, sp.noShows, sp.inUse, from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, days...)
	}
	return out, nil
}

// httpTokens are the API tokens a config declares: its entries and its
// token file.
func httpTokens(h *config.HTTPServer) ([]httpapi.TokenEntry, []string) {
	var entries []httpapi.TokenEntry
	for _, t := range h.Tokens {
		entries = append(entries, httpapi.TokenEntry{Name: t.Name, Role: string(t.Role), TokenSHA256: t.TokenSHA256})
	}
	var files []string
	if h.TokensFile != "" {
		files = append(files, h.TokensFile)
	}
	return entries, files
}
