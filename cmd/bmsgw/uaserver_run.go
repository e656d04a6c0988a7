package main

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/uaserver"
)

// The gateway's OPC UA server for BMS vendors runs in a supervised child
// process (internal/uaserver): a crash or hang there never stops control.
// The daemon hands it a snapshot of what it knows every few seconds and
// applies the vendors' allowed writes as overrides.

// snapshotEvery is how often the OPC UA server's snapshot is refreshed
// (real time; subscriptions deliver the changes).
const snapshotEvery = 2 * time.Second

func uaOptions(o *config.OPCUAServer) uaserver.Options {
	return uaserver.Options{Endpoint: o.Endpoint, AllowInsecureNetwork: o.AllowInsecureNetwork, Writable: o.Writable, AllowedPeers: o.AllowedPeers}
}

// uaRun is the running OPC UA server: its supervisor and the goroutines
// that feed it, stopped together.
type uaRun struct {
	cfg    config.OPCUAServer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *uaRun) stop() {
	r.cancel()
	r.wg.Wait()
}

// startOPCUAServer starts the supervised server of o (nil: none).
func (gw *gateway) startOPCUAServer(ctx context.Context, o *config.OPCUAServer) (*uaRun, error) {
	if o == nil {
		return nil, nil
	}
	opts := uaOptions(o)
	opts.Logger = gw.log
	sup, err := uaserver.New(opts)
	if err != nil {
		return nil, err
	}
	run := &uaRun{cfg: *o}
	ctx, run.cancel = context.WithCancel(ctx)
	wg := &run.wg
	wg.Go(func() {
		if err := sup.Run(ctx); err != nil && ctx.Err() == nil {
			gw.log.Error("opc ua server stopped", "err", err)
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(snapshotEvery)
		defer tick.Stop()
		for {
			if snap := gw.snapshot(ctx); snap != nil {
				if err := snap.Check(); err != nil {
					// The server would refuse it and keep the last good one.
					gw.log.Warn("opc ua snapshot refused", "err", err)
				} else {
					sup.Publish(snap)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case w := <-sup.Writes():
				var err error
				if w.Clear {
					// Releasing what is not there is done: a head-end
					// that relinquishes twice gets Good both times.
					if err = gw.eng.ClearOverride(ctx, w.Site, w.Point, "opcua:"+w.Peer); errors.Is(err, control.ErrNoOverride) {
						err = nil
					}
				} else {
					err = gw.eng.SetOverride(ctx, control.Override{Site: w.Site, Point: w.Point, Value: w.Value,
						Until: gw.clock.Now().Add(o.OverrideFor), Who: "opcua:" + w.Peer, Why: "written by a BMS head-end over OPC UA"})
				}
				if err != nil {
					gw.log.Warn("opc ua write refused", "site", w.Site, "point", w.Point, "peer", w.Peer, "err", err)
				}
				w.Respond(err)
			}
		}
	})
	gw.log.Info("opc ua server supervised", "endpoint", o.Endpoint, "writable", len(o.Writable))
	return run, nil
}

// reloadOPCUAServer restarts the OPC UA server when a reload changed its
// settings (endpoint, writable nodes, peers, override time): the child
// is stopped, so the endpoint is free, and started again. Clients
// reconnect as after any restart of the server; node ids stay the same.
func (gw *gateway) reloadOPCUAServer(o *config.OPCUAServer) error {
	gw.uaMu.Lock()
	defer gw.uaMu.Unlock()
	old := gw.ua
	if old == nil && o == nil || old != nil && o != nil && reflect.DeepEqual(old.cfg, *o) {
		return nil
	}
	if old != nil {
		old.stop()
		gw.ua = nil
	}
	run, err := gw.startOPCUAServer(gw.runCtx, o)
	if err != nil {
		return err
	}
	gw.ua = run
	return nil
}

// snapshot is what the OPC UA server shows: the engine's status, the
// plans' windows and the latest events.
func (gw *gateway) snapshot(ctx context.Context) *uaserver.Snapshot {
	st, err := gw.eng.Status(ctx)
	if err != nil {
		return nil
	}
	var evs []events.Event
	if gw.bus != nil {
		evs, _ = gw.bus.Query(ctx, events.Filter{Limit: 500})
	}
	gw.mu.Lock()
	g := gw.g
	plans := make(map[string]*schedule.Compiler, len(gw.plans))
	for k, v := range gw.plans {
		plans[k] = v
	}
	gw.mu.Unlock()
	return uaserver.Build(uaserver.BuildInput{Now: gw.clock.Now(), Sites: g.Sites, Status: st, Events: evs, Feeds: gw.feedStatuses(),
		Windows: func(siteID, spaceID string) []schedule.Window {
			if c := plans[siteID]; c != nil {
				return c.Windows(spaceID)
			}
			return nil
		}})
}
