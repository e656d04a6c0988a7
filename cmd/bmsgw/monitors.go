package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/sitemon"
)

// This file joins the access and alarm side to the daemon: one
// sitemon.Monitor per site with doors, areas, detectors, evidence,
// card-enabled lights, a round or door-schedule points, and one loop that
// pushes access rights to the gateway's access outputs.

// monitorRun is a running site monitor.
type monitorRun struct {
	m      *sitemon.Monitor
	cancel context.CancelFunc
	done   chan struct{}
}

// observe hands the engine's readings to the site's monitor; it runs on
// the engine's goroutine and never blocks.
func (gw *gateway) observe(siteID string, r control.Reading) {
	gw.monMu.RLock()
	mr := gw.monitors[siteID]
	gw.monMu.RUnlock()
	if mr != nil {
		mr.m.Observe(r)
	}
}

// newMonitor builds the monitor of a site, nil if it needs none.
func (gw *gateway) newMonitor(s *site.Site) (*sitemon.Monitor, error) {
	return sitemon.New(sitemon.Config{
		Site: s, Clock: gw.clock, StateDir: gw.g.StateDir, Logger: gw.log,
		Publish: func(ctx context.Context, es []events.Event) error {
			_, err := gw.bus.PublishAll(ctx, es)
			return err
		},
		SetPlan: func(ctx context.Context, p control.Plan) error { return gw.eng.SetPlan(ctx, s.ID, p) },
		Points: func(ctx context.Context) ([]control.PointStatus, error) {
			st, err := gw.eng.Status(ctx)
			return st.Points, err
		},
	})
}

// runMonitor runs a site's monitor until it is stopped.
func (gw *gateway) runMonitor(ctx context.Context, siteID string, m *sitemon.Monitor) {
	mctx, cancel := context.WithCancel(ctx)
	mr := &monitorRun{m: m, cancel: cancel, done: make(chan struct{})}
	go func() { // owned: stopMonitors waits on done
		defer close(mr.done)
		_ = m.Run(mctx)
	}()
	gw.monMu.Lock()
	gw.monitors[siteID] = mr
	gw.monMu.Unlock()
}

// startMonitor starts the monitor of a running site, if it needs one,
// with its plan.
func (gw *gateway) startMonitor(ctx context.Context, s *site.Site, c *schedule.Compiler, bs []booking.Booking) error {
	m, err := gw.newMonitor(s)
	if err != nil || m == nil {
		return err
	}
	gw.runMonitor(ctx, s.ID, m)
	return m.SetPlan(ctx, c, bs)
}

// stopMonitor stops a site's monitor and waits for it (it saves its
// occupancy state on the way out).
func (gw *gateway) stopMonitor(siteID string) {
	gw.monMu.Lock()
	mr := gw.monitors[siteID]
	delete(gw.monitors, siteID)
	gw.monMu.Unlock()
	if mr != nil {
		mr.cancel()
		<-mr.done
	}
}

func (gw *gateway) stopMonitors() {
	gw.monMu.RLock()
	ids := make([]string, 0, len(gw.monitors))
	for id := range gw.monitors {
		ids = append(ids, id)
	}
	gw.monMu.RUnlock()
	for _, id := range ids {
		gw.stopMonitor(id)
	}
}

// setPlan hands a site's new plan to its monitor, which overlays it, or
// straight to the engine.
func (gw *gateway) setPlan(ctx context.Context, s *site.Site, c *schedule.Compiler, bs []booking.Booking) error {
	gw.monMu.RLock()
	mr := gw.monitors[s.ID]
	gw.monMu.RUnlock()
	gw.kickAccess()
	if mr != nil {
		// A reload may stop the monitor meanwhile (its successor plans
		// afresh): the plan is then not waited for, or feed following
		// would hang on a monitor that is gone.
		mctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { // owned: ends with mctx, cancelled on return
			select {
			case <-mr.done:
				cancel()
			case <-mctx.Done():
			}
		}()
		err := mr.m.SetPlan(mctx, c, bs)
		if err != nil && ctx.Err() == nil {
			return nil // the monitor stopped
		}
		return err
	}
	return gw.eng.SetPlan(ctx, s.ID, c)
}

// Events serves the local API's event endpoints.
func (gw *gateway) Events() *events.Bus { return gw.bus }

// errNoRound is returned for a site without a monitor.
var errNoRound = errors.New("this site has no doors, alarm areas or points to check")

// Round runs the virtual patrol round of a site now.
func (gw *gateway) Round(ctx context.Context, siteID string) (security.RoundReport, error) {
	gw.monMu.RLock()
	mr := gw.monitors[siteID]
	gw.monMu.RUnlock()
	if mr == nil {
		if gw.site(siteID) == nil {
			return security.RoundReport{}, fmt.Errorf("no site %q", siteID)
		}
		return security.RoundReport{}, fmt.Errorf("site %s: %w", siteID, errNoRound)
	}
	return mr.m.Round(ctx)
}

func (gw *gateway) site(id string) *site.Site {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	return gw.g.Site(id)
}

// kickAccess asks the access loop to push again.
func (gw *gateway) kickAccess() {
	select {
	case gw.accessKick <- struct{}{}:
	default:
	}
}

// accessRetry is how soon failed pushes are tried again.
const accessRetry = time.Minute

// accessLoop keeps every access output in line with the grants of the
// sites that use it: after every plan change, and again a minute after a
// push that failed.
func (gw *gateway) accessLoop(ctx context.Context) {
	outputs := map[string]access.Output{}
	built := map[string]config.ResolvedAccessOutput{} // the config each output was made from
	closeOutput := func(id string) {
		if h, ok := outputs[id].(*access.HTTP); ok {
			_ = h.Close()
		}
		delete(outputs, id)
		delete(built, id)
	}
	defer func() {
		for id := range outputs {
			closeOutput(id)
		}
	}()
	retry := gw.clock.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gw.accessKick:
		case <-retry.C():
		}
		gw.mu.Lock()
		g := gw.g
		gw.mu.Unlock()
		failed := false
		// A reload may have changed or removed outputs: they are made
		// again from the new config (an HTTP output keeps its references
		// in the state directory) or closed.
		for id, was := range built {
			if o := g.AccessOutput(id); o == nil || !reflect.DeepEqual(*o, was) {
				closeOutput(id)
			}
		}
		for _, o := range g.AccessOutputs {
			var sites []*site.Site
			for _, s := range g.Sites {
				if s.Access != nil && slices.Contains(s.Access.Outputs, o.ID) {
					sites = append(sites, s)
				}
			}
			if len(sites) == 0 {
				continue
			}
			out := outputs[o.ID]
			if out == nil {
				var err error
				if out, err = gw.newAccessOutput(g, o); err != nil {
					gw.log.Error("access output not started", "output", o.ID, "err", err)
					failed = true
					continue
				}
				outputs[o.ID], built[o.ID] = out, *o
			}
			var grants []access.Grant
			doorSite := map[string]string{}
			from, to := gw.horizon()
			for _, s := range sites {
				spec, _ := sitemon.AccessSpec(s, o.MaxPerGroupDoor)
				gw.mu.Lock()
				merged := booking.MergeForSite(s, gw.bySource)
				gw.mu.Unlock()
				grants = append(grants, access.Grants(spec, merged.Bookings, from, to)...)
				for _, d := range s.Doors {
					doorSite[d.ID] = s.ID
				}
			}
			access.SortGrants(grants)
			res, err := out.Push(ctx, grants)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				gw.log.Error("access push failed", "output", o.ID, "err", err)
				gw.metrics.Error("access")
				failed = true
			}
			if res.Changed() || len(res.Failures()) > 0 {
				gw.log.Info("access rights pushed", "output", o.ID, "result", res.String())
			}
			if len(res.Failures()) > 0 {
				gw.metrics.Error("access")
				failed = true
				now := gw.clock.Now()
				for _, s := range sites {
					sub := access.Result{Output: res.Output}
					for _, op := range res.Failures() {
						if doorSite[op.Grant.Door] == s.ID {
							sub.Ops = append(sub.Ops, op)
						}
					}
					for _, e := range sub.Events(s.ID, now) {
						if _, err := gw.bus.Publish(ctx, e); err != nil && ctx.Err() == nil {
							gw.log.Error("event not stored", "kind", e.Kind, "err", err)
						}
					}
				}
			}
		}
		if failed {
			retry.Reset(accessRetry)
		}
	}
}

// newAccessOutput builds an output from the config.
func (gw *gateway) newAccessOutput(g *config.Gateway, o *config.ResolvedAccessOutput) (access.Output, error) {
	id := o.ID
	log := gw.log.With("output", id)
	if o.URL != "" {
		headers := map[string]string{}
		for k, v := range o.Headers {
			headers[k] = v.Value()
		}
		return access.NewHTTP(access.HTTPOptions{ID: id, URL: o.URL, Headers: headers, Timeout: o.Timeout,
			MaxPerGroupDoor: o.MaxPerGroupDoor, StateDir: g.StateDir, Now: gw.clock.Now}, log)
	}
	return access.NewFile(access.FileOptions{ID: id, Path: o.Path, Format: access.Format(o.Format), Now: gw.clock.Now}, log)
}
