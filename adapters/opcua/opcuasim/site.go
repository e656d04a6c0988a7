package opcuasim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/bmsgw/bmsgw/internal/site"
)

// ForSite starts one simulator per OPC UA connection of the site, each
// serving the points of that connection, and returns them by connection
// id. Every simulator listens on its own OS-chosen loopback port (opts.Addr
// is ignored); point the connections' endpoints at Endpoint(). If one fails
// to start, the ones already started are closed.
func ForSite(ctx context.Context, s *site.Site, opts Options, logger *slog.Logger) (map[string]*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	byConn := make(map[string][]*site.Point)
	for _, p := range s.Points {
		if p.OPCUA != nil {
			byConn[p.Connection] = append(byConn[p.Connection], p)
		}
	}
	conns := make([]string, 0, len(byConn))
	for c := range byConn {
		conns = append(conns, c)
	}
	sort.Strings(conns)

	opts.Addr = ""
	sims := make(map[string]*Server, len(conns))
	closeAll := func() error {
		var errs []error
		for _, sim := range sims {
			errs = append(errs, sim.Close())
		}
		return errors.Join(errs...)
	}
	for _, c := range conns {
		pts := byConn[c]
		sort.Slice(pts, func(i, j int) bool { return pts[i].ID < pts[j].ID })
		sim, err := New(pts, opts, logger.With("site", s.ID, "conn", c))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("simulate connection %s of site %s: %w", c, s.ID, err), closeAll())
		}
		if err := sim.Start(ctx); err != nil {
			return nil, errors.Join(fmt.Errorf("start simulator for connection %s of site %s: %w", c, s.ID, err), closeAll())
		}
		sims[c] = sim
	}
	return sims, nil
}
