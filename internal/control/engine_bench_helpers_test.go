package control_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	simonmodbus "github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus"
	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// The engine benchmarks drive 10,000 writable holding registers on 72
// simulated devices, one simulator (one TCP link) and one site per school
// as in the municipality's 72 schools. Each device has one space binding
// all its points, occupied 1 and vacant 0, at contiguous addresses from 0.
const (
	benchDevices = 72
	benchPoints  = 10000
	benchUnit    = 1
)

type benchFleet struct {
	sims   []*modbussim.Server
	points [][]*site.Point
	// reads are the read requests the client plans for each device's
	// points, worked out once so the bare loops only send them.
	reads [][]modbus.Request

	mu    sync.Mutex
	watch *writeWatch // armed by reset
}

// writeWatch notes when each point of the fleet is first written a value,
// from the simulators' write hooks.
type writeWatch struct {
	value uint16
	seen  [][]time.Time
	left  int
	done  chan struct{}
}

func newBenchFleet(b testing.TB) *benchFleet {
	b.Helper()
	f := &benchFleet{}
	for d := range benchDevices {
		n := benchPoints / benchDevices
		if d < benchPoints%benchDevices {
			n++
		}
		sim, err := modbussim.New(modbussim.Config{URL: "tcp://127.0.0.1:0"}, nil)
		require.NoError(b, err)
		require.NoError(b, sim.Start())
		b.Cleanup(func() { _ = sim.Close() })
		pts := make([]*site.Point, n)
		for i := range pts {
			pts[i] = &site.Point{
				ID: fmt.Sprintf("p%03d", i), Connection: "plc", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1,
				Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: uint16(i), Bit: -1, UnitID: benchUnit,
					ByteOrder: site.BigEndian, WordOrder: site.BigEndian},
			}
		}
		f.sims = append(f.sims, sim)
		f.points = append(f.points, pts)
		f.reads = append(f.reads, modbus.PlanReads(pts, modbus.Limits{ReadThroughGaps: true, MaxGap: modbus.DefaultMaxGap}))
		sim.OnWrite(func(unitID uint8, table site.ModbusTable, addr uint16, values []uint16) {
			f.wrote(d, unitID, table, addr, values)
		})
	}
	f.reset(b)
	return f
}

// wrote takes a write that landed on device d.
func (f *benchFleet) wrote(d int, unitID uint8, table site.ModbusTable, addr uint16, values []uint16) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.watch
	if w == nil || unitID != benchUnit || table != site.HoldingRegister || w.left == 0 {
		return
	}
	seen := w.seen[d]
	for i, v := range values {
		if a := int(addr) + i; a < len(seen) && v == w.value && seen[a].IsZero() {
			seen[a] = now
			if w.left--; w.left == 0 {
				close(w.done)
			}
		}
	}
}

// settle collects the garbage of the set-up (compiling 72 plans, the
// last run's leftovers) right before a timed part, so that neither side
// pays in its own time for a collection the set-up caused; what a side
// allocates itself it still pays for.
func (f *benchFleet) settle() { runtime.GC() }

// reset sets every point to its vacant value 0, clears the counts, and
// starts noting when each point is written its occupied value 1 (see
// await).
func (f *benchFleet) reset(b testing.TB) {
	b.Helper()
	w := &writeWatch{value: 1, seen: make([][]time.Time, len(f.sims)), done: make(chan struct{})}
	for d, s := range f.sims {
		require.NoError(b, s.Set(benchUnit, site.HoldingRegister, 0, make([]uint16, len(f.points[d]))...))
		s.ResetCounts()
		w.seen[d] = make([]time.Time, len(f.points[d]))
		w.left += len(f.points[d])
	}
	f.mu.Lock()
	f.watch = w
	f.mu.Unlock()
}

func (f *benchFleet) requests() int {
	n := 0
	for _, s := range f.sims {
		n += s.Counts().Total()
	}
	return n
}

// sites builds one site per device, its space booked from start to end.
func (f *benchFleet) sites(start, end time.Time) ([]*site.Site, []*schedule.Compiler) {
	var sites []*site.Site
	var plans []*schedule.Compiler
	for d, sim := range f.sims {
		st := &site.Site{
			ID: fmt.Sprintf("school%02d", d), Location: time.UTC,
			Connections: map[string]*site.Connection{"plc": {ID: "plc", Modbus: &site.ModbusConnection{URL: sim.URL()}}},
			Points:      map[string]*site.Point{},
		}
		sp := &site.Space{ID: "building", Kind: site.KindBuilding, Resources: []string{st.ID + "/building"}}
		for _, p := range f.points[d] {
			st.Points[p.ID] = p
			sp.Bindings = append(sp.Bindings, site.Binding{Point: p, Occupied: site.Value{Num: 1}, Vacant: site.Value{Num: 0}})
		}
		st.Spaces = []*site.Space{sp}
		st.KeepPointIDs() // as the config loader does
		plan := schedule.NewCompiler(st, start.Add(-24*time.Hour), start.Add(24*time.Hour))
		plan.SetBookings([]booking.Booking{{
			Source: "bench", ID: "b" + st.ID, Resource: sp.Resources[0], Start: start, End: end, Status: booking.Confirmed,
		}})
		sites = append(sites, st)
		plans = append(plans, plan)
	}
	return sites, plans
}

// engineRun is an engine running over the fleet.
type engineRun struct {
	cancel  context.CancelFunc
	done    chan error
	drivers []*modbus.Client
}

// startEngine builds a driver per device with opts (URL filled in) and
// runs an engine over the sites until stop.
func (f *benchFleet) startEngine(b testing.TB, sites []*site.Site, plans []*schedule.Compiler, opts modbus.Options) *engineRun {
	b.Helper()
	eng := control.New(control.Config{})
	r := &engineRun{done: make(chan error, 1)}
	for i, st := range sites {
		o := opts
		o.URL = st.Connections["plc"].Modbus.URL
		c, err := modbus.New(o, nil)
		require.NoError(b, err)
		r.drivers = append(r.drivers, c)
		require.NoError(b, eng.AddSite(control.SiteRuntime{Site: st, Drivers: map[string]control.Driver{"plc": c}}, plans[i]))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- eng.Run(ctx) }()
	return r
}

func (r *engineRun) stop(b testing.TB) {
	b.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(b, err)
	case <-time.After(10 * time.Second):
		b.Fatal("engine did not stop within 10s")
	}
	for _, c := range r.drivers {
		_ = c.Close()
	}
}

// bareWrite is the baseline: a bare simonvetter client per device, each
// device in its own goroutine, one WriteRegister (FC6) per point.
func (f *benchFleet) bareWrite(value uint16) error {
	return f.perDevice(func(d int, c *simonmodbus.ModbusClient) error {
		return writeEach(c, len(f.points[d]), value)
	})
}

// perDevice connects a bare simonvetter client to every device and runs
// do with it, each device in its own goroutine; it returns the first
// error.
func (f *benchFleet) perDevice(do func(d int, c *simonmodbus.ModbusClient) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.sims))
	for d, s := range f.sims {
		wg.Go(func() {
			c, err := simonmodbus.NewClient(&simonmodbus.ClientConfiguration{URL: s.URL(), Timeout: modbus.DefaultTimeout})
			if err == nil {
				err = c.Open()
			}
			if err != nil {
				errs[d] = err
				return
			}
			defer c.Close()
			if err := c.SetUnitId(benchUnit); err != nil {
				errs[d] = err
				return
			}
			errs[d] = do(d, c)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeEach writes value to registers 0 to n-1, one FC6 each.
func writeEach(c *simonmodbus.ModbusClient, n int, value uint16) error {
	for a := range n {
		if err := c.WriteRegister(uint16(a), value); err != nil {
			return err
		}
	}
	return nil
}

// writeFC16 writes value to registers 0 to n-1 in FC16 requests of up to
// fc16Registers, as the client plans them.
func writeFC16(c *simonmodbus.ModbusClient, n int, value uint16) error {
	for start := 0; start < n; start += fc16Registers {
		regs := make([]uint16, min(fc16Registers, n-start))
		for i := range regs {
			regs[i] = value
		}
		if err := c.WriteRegisters(uint16(start), regs); err != nil {
			return err
		}
	}
	return nil
}

// readPlanned reads a device's points with the requests the client plans
// for them (modbus.PlanReads with the client's default limits).
func (f *benchFleet) readPlanned(c *simonmodbus.ModbusClient, d int) error {
	for _, r := range f.reads[d] {
		if _, err := c.ReadRegisters(r.Start, r.Quantity, simonmodbus.HOLDING_REGISTER); err != nil {
			return err
		}
	}
	return nil
}

// fc16Registers is the most registers the client puts in one FC16 write
// (the protocol's limit for the request).
const fc16Registers = 123

// bareSame is the baseline that makes the requests the engine makes: a
// bare simonvetter client per device, connected here, each device in its
// own goroutine, sending what the engine sends a device that holds 0
// everywhere, in the engine's order: the engine's first read, the value
// in FC16 writes of up to 123 registers, the read-back, and the
// watcher's first poll (which starts once the first writes are done);
// with single, the value goes in one FC6 per point instead. The
// reads are the client's plan (modbus.PlanReads with the client's
// default limits).
func (f *benchFleet) bareSame(value uint16, single bool) error {
	return f.perDevice(func(d int, c *simonmodbus.ModbusClient) error {
		if err := f.readPlanned(c, d); err != nil { // the engine's first read
			return err
		}
		write := writeFC16
		if single {
			write = writeEach
		}
		if err := write(c, len(f.points[d]), value); err != nil {
			return err
		}
		if err := f.readPlanned(c, d); err != nil { // the read-back
			return err
		}
		return f.readPlanned(c, d) // the watcher's first poll, once the writes are done
	})
}

// clientSame makes the requests of bareSame through our Modbus client
// (opts, the URL filled in), one per device, made here, each device in
// its own goroutine, with the calls the engine makes: the first read,
// one Write of every point, the read-back and the watcher's first poll
// (ReadInto, as the engine reads).
func (f *benchFleet) clientSame(value float64, opts modbus.Options) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.sims))
	for d, s := range f.sims {
		wg.Go(func() { errs[d] = f.clientDevice(d, s.URL(), value, opts) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (f *benchFleet) clientDevice(d int, url string, value float64, opts modbus.Options) error {
	opts.URL = url
	c, err := modbus.New(opts, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	pts := f.points[d]
	read := func(buf []control.Reading) ([]control.Reading, error) {
		buf = c.ReadInto(ctx, pts, buf)
		for _, r := range buf {
			if r.Err != nil {
				return buf, r.Err
			}
		}
		return buf, nil
	}
	buf, err := read(nil) // the engine's first read
	if err != nil {
		return err
	}
	ws := make([]control.Write, len(pts))
	for i, p := range pts {
		ws[i] = control.Write{Point: p, Value: value}
	}
	if err := errors.Join(c.Write(ctx, ws)...); err != nil {
		return err
	}
	if buf, err = read(buf); err != nil { // the read-back
		return err
	}
	_, err = read(buf) // the watcher's first poll
	return err
}

// counts returns the requests the simulators received, by function code.
func (f *benchFleet) counts() modbussim.Counts {
	out := modbussim.Counts{}
	for _, s := range f.sims {
		for fc, n := range s.Counts() {
			out[fc] += n
		}
	}
	return out
}

// await waits until every point has been written value since the last
// reset (which notes writes of 1), and returns when each point's write
// landed on its simulator, by device and point: the simulators report
// each write as they apply it (modbussim's OnWrite), so observing costs
// the system under test nothing and is exact to the write. It fails
// after limit.
func (f *benchFleet) await(value uint16, limit time.Duration) ([][]time.Time, error) {
	f.mu.Lock()
	w := f.watch
	f.mu.Unlock()
	if w == nil || w.value != value {
		return nil, fmt.Errorf("await %d: reset notes writes of 1 only", value)
	}
	select {
	case <-w.done:
	case <-time.After(limit):
		f.mu.Lock()
		left := w.left
		f.mu.Unlock()
		return nil, fmt.Errorf("%d of %d points still not written %d after %s", left, benchPoints, value, limit)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return w.seen, nil
}

// latest returns the last time in seen.
func latest(seen [][]time.Time) time.Time {
	var last time.Time
	for _, ts := range seen {
		for _, t := range ts {
			if t.After(last) {
				last = t
			}
		}
	}
	return last
}

// bareClients connects a bare simonvetter client to every device.
func (f *benchFleet) bareClients(b testing.TB) []*simonmodbus.ModbusClient {
	b.Helper()
	var cs []*simonmodbus.ModbusClient
	for _, s := range f.sims {
		c, err := simonmodbus.NewClient(&simonmodbus.ClientConfiguration{URL: s.URL(), Timeout: modbus.DefaultTimeout})
		require.NoError(b, err)
		require.NoError(b, c.Open())
		require.NoError(b, c.SetUnitId(benchUnit))
		cs = append(cs, c)
	}
	return cs
}

// bareAt sends at t, per device in parallel over the connected clients,
// what the engine sends at a window boundary: the value in FC16 writes
// of up to 123 registers, and the read-back as the client plans it.
func (f *benchFleet) bareAt(clients []*simonmodbus.ModbusClient, value uint16, t time.Time) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.sims))
	for d, c := range clients {
		wg.Go(func() {
			time.Sleep(time.Until(t))
			if errs[d] = writeFC16(c, len(f.points[d]), value); errs[d] == nil {
				errs[d] = f.readPlanned(c, d)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
