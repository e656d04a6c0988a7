package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings/bookingsim"
	"github.com/bmsgw/bmsgw/adapters/modbus"
	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/adapters/serial"
	"github.com/bmsgw/bmsgw/internal/access/acssim"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/httpapi"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/uaserver"
)

// newDriver builds the driver of one connection; registration is this one
// switch (STYLE.md 13).
func newDriver(stateDir string, s *site.Site, c *site.Connection, logger *slog.Logger) (control.Driver, error) {
	switch {
	case c.Modbus != nil:
		m := c.Modbus
		return modbus.New(modbus.Options{
			URL: m.URL, BaudRate: m.BaudRate, DataBits: m.DataBits, Parity: modbus.Parity(m.Parity), StopBits: m.StopBits,
			CertificateFile: m.CertificateFile, PrivateKeyFile: m.PrivateKeyFile, CAFile: m.CAFile,
			Timeout: m.Timeout, Retries: deref(m.Retries, 0), BackoffMin: m.BackoffMin, BackoffMax: m.BackoffMax,
			InterFrameDelay: m.InterFrameDelay, MaxRegisters: m.MaxRegisters, MaxBits: m.MaxBits,
			ReadThroughGaps: m.ReadThroughGaps, MaxGap: deref(m.MaxGap, 0), WriteMultiple: m.WriteMultiple,
			WriteRate: m.WriteRate, PollInterval: m.PollInterval,
		}, logger)
	case c.OPCUA != nil:
		return newOPCUADriver(stateDir, s, c, logger)
	case c.Serial != nil:
		return serial.New(serialOptions(s, c), logger)
	}
	return nil, fmt.Errorf("connection %s has no protocol", c.ID)
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// simulators are the demo's simulated devices and booking system.
type simulators struct {
	mu      sync.Mutex
	closers []func() error
	sites   map[string][]func() error // the device simulators of each site
	ctx     context.Context
	clock   control.Clock
	log     *slog.Logger
}

func (s *simulators) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(s.sites)) {
		s.closeSiteLocked(id)
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	s.closers = nil
}

// startSimulators starts what the config's simulate: section asks for:
// a simulator on the address of every Modbus TCP and OPC UA connection,
// and a booking system serving the reference evening from now on.
func startSimulators(ctx context.Context, g *config.Gateway, clock control.Clock, logger *slog.Logger) (*simulators, error) {
	sims := &simulators{sites: map[string][]func() error{}, ctx: ctx, clock: clock, log: logger}
	if g.Simulate == nil {
		return sims, nil
	}
	fail := func(err error) (*simulators, error) {
		sims.Close()
		return nil, err
	}
	if g.Simulate.Devices {
		for _, s := range g.Sites {
			if err := sims.StartSite(s); err != nil {
				return fail(err)
			}
		}
	}
	if addr := g.Simulate.BookingSystem; addr != "" {
		closer, err := serveHTTP(addr, bookingsim.Handler(clock.Now(), bookingsim.Evening), logger)
		if err != nil {
			return fail(fmt.Errorf("simulated booking system: %w", err))
		}
		sims.closers = append(sims.closers, closer)
		logger.Info("simulated booking system started", "url", "http://"+addr+"/", "bookings", len(bookingsim.Evening))
	}
	if addr := g.Simulate.AccessSystem; addr != "" {
		// The strictest target the access outputs of the demo name.
		limit := 0
		for _, o := range g.AccessOutputs {
			if o.URL != "" && o.MaxPerGroupDoor > 0 && (limit == 0 || o.MaxPerGroupDoor < limit) {
				limit = o.MaxPerGroupDoor
			}
		}
		closer, err := serveHTTP(addr, acssim.New(acssim.Options{MaxPerGroupDoor: limit, KeepRequests: demoKeptRequests}), logger)
		if err != nil {
			return fail(fmt.Errorf("simulated access system: %w", err))
		}
		sims.closers = append(sims.closers, closer)
		logger.Info("simulated access system started", "url", "http://"+addr+"/api/grants", "max_per_group_door", limit)
	}
	return sims, nil
}

// demoKeptRequests is how many requests the demo's access system keeps
// for inspection: the demo may run for days.
const demoKeptRequests = 1000

// StartSite starts a simulator on the address of every Modbus TCP and
// OPC UA connection of a site (a site added by a reload gets its own).
func (sims *simulators) StartSite(s *site.Site) error {
	sims.mu.Lock()
	defer sims.mu.Unlock()
	ctx, clock, logger := sims.ctx, sims.clock, sims.log
	var closers []func() error
	fail := func(err error) error {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
		return err
	}
	for _, c := range s.SortedConnections() {
		switch {
		case c.Modbus != nil:
			if !strings.HasPrefix(c.Modbus.URL, "tcp://") {
				logger.Warn("no simulator for this connection: only Modbus TCP and OPC UA are simulated", "site", s.ID, "conn", c.ID, "url", c.Modbus.URL)
				continue
			}
			if err := loopbackURL(c.Modbus.URL); err != nil {
				return fail(fmt.Errorf("simulate site %s connection %s: %w", s.ID, c.ID, err))
			}
			only := &site.Site{ID: s.ID, Points: map[string]*site.Point{}}
			for id, p := range s.Points {
				if p.Connection == c.ID {
					only.Points[id] = p
				}
			}
			srvs, err := modbussim.ForSite(only, modbussim.Config{URL: c.Modbus.URL}, logger.With("sim", s.ID+"/"+c.ID))
			if err != nil {
				return fail(err)
			}
			for _, srv := range srvs {
				if err := srv.Start(); err != nil {
					return fail(fmt.Errorf("simulate site %s connection %s on %s: %w", s.ID, c.ID, c.Modbus.URL, err))
				}
				startSimPanel(ctx, s, c, srv, clock, logger.With("sim", s.ID+"/"+c.ID))
				closers = append(closers, srv.Close)
			}
			logger.Info("simulator started", "site", s.ID, "conn", c.ID, "url", c.Modbus.URL)
		case c.OPCUA != nil:
			closer, err := startOPCUASim(ctx, s, c, logger)
			if err != nil {
				return fail(fmt.Errorf("simulate site %s connection %s: %w", s.ID, c.ID, err))
			}
			closers = append(closers, closer)
		}
	}
	sims.sites[s.ID] = closers
	return nil
}

// CloseSite stops the simulators of a site (one a reload removed).
func (sims *simulators) CloseSite(id string) {
	sims.mu.Lock()
	defer sims.mu.Unlock()
	sims.closeSiteLocked(id)
}

func (sims *simulators) closeSiteLocked(id string) {
	closers := sims.sites[id]
	for i := len(closers) - 1; i >= 0; i-- {
		_ = closers[i]()
	}
	delete(sims.sites, id)
}

// serveHTTP serves a simulator's handler on a loopback address until the
// returned function closes it.
func serveHTTP(addr string, h http.Handler, logger *slog.Logger) (func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("simulator stopped", "addr", addr, "err", err)
		}
	}()
	return func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-done
		return err
	}, nil
}

// loopbackURL refuses simulator addresses off the loopback interface:
// simulators never listen on the network.
func loopbackURL(u string) error {
	hostport := u[strings.Index(u, "://")+3:]
	if i := strings.IndexByte(hostport, '/'); i >= 0 {
		hostport = hostport[:i]
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("simulators listen on loopback only, not %s", host)
	}
	return nil
}

// serialOptions builds the serial adapter's options for a connection of
// s: every point of the connection, with how the writable ones are
// written.
func serialOptions(s *site.Site, c *site.Connection) serial.Options {
	sc := c.Serial
	o := serial.Options{Name: s.ID + "/" + c.ID, Device: sc.Device, BaudRate: sc.BaudRate, DataBits: sc.DataBits, Parity: serial.Parity(sc.Parity),
		StopBits: sc.StopBits, RS485: sc.RS485, InterFrameDelay: sc.InterFrameDelay, Terminator: sc.Terminator, MaxLine: sc.MaxLine,
		ReplyTimeout: sc.ReplyTimeout, BackoffMin: sc.BackoffMin, BackoffMax: sc.BackoffMax, Ack: sc.Ack, Nak: sc.Nak,
		StaleAfter: sc.StaleAfter, Points: map[string]serial.PointSpec{}, Retries: deref(sc.Retries, 2)}
	for _, e := range sc.Events {
		ep := serial.EventPattern{Pattern: e.Pattern}
		for _, a := range e.Set {
			ep.Set = append(ep.Set, serial.Assign{Point: a.Point, Value: a.Value, Map: a.Map, Pulse: a.Pulse})
		}
		o.Events = append(o.Events, ep)
	}
	if p := sc.Poll; p != nil {
		o.Poll = &serial.Poll{Command: p.Command, Interval: p.Interval, Ack: p.Ack, Nak: p.Nak}
	}
	for id, p := range s.Points {
		if p.Connection != c.ID {
			continue
		}
		var ps serial.PointSpec
		if sp := p.Serial; sp != nil {
			ps = serial.PointSpec{Command: sp.Command, Commands: sp.Commands, Vars: sp.Vars, Ack: sp.Ack, Nak: sp.Nak,
				ReadBack: serial.ReadBack(sp.ReadBack), ConfirmTimeout: sp.ConfirmTimeout}
		}
		o.Points[id] = ps
	}
	return o
}

// checkDrivers builds the driver options that only the adapters can check
// fully (serial patterns against the points they name) and reports what
// they refuse, naming the mapping file and connection. It opens nothing.
func checkDrivers(g *config.Gateway) []string {
	var out []string
	if h := g.HTTP; h != nil {
		entries, files := httpTokens(h)
		if _, err := httpapi.LoadTokens(entries, files...); err != nil {
			out = append(out, fmt.Sprintf("%s: http tokens: %v", g.File, err))
		}
	}
	if o := g.OPCUAServer; o != nil {
		if _, err := uaserver.New(uaOptions(o)); err != nil {
			out = append(out, fmt.Sprintf("%s: opcua_server: %v", g.File, err))
		}
	}
	for _, s := range g.Sites {
		for _, c := range s.SortedConnections() {
			if c.Serial == nil {
				continue
			}
			if _, err := serial.New(serialOptions(s, c), nil); err != nil {
				out = append(out, fmt.Sprintf("%s: connection %q: %v", s.File, c.ID, err))
			}
		}
	}
	return out
}
