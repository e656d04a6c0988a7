package modbus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// The benchmarks read 10,000 points spread over 72 simulated devices, one
// simulator (one TCP link) per school as in the municipality's 72
// schools, each device read by its own goroutine. BenchmarkReadCoalesced
// uses the Client; BenchmarkBareLoop is the baseline, a bare simonvetter
// client per device sending one request per point; BenchmarkBareCoalesced
// sends the planned requests with bare clients, to show what the Client's
// queue and decoding cost on top. BenchmarkReadVsBare runs the last two in
// turn within each iteration, so that both see the same load on a shared
// machine, and reports their ratio.
const (
	fleetDevices = 72
	fleetPoints  = 10000
)

// devicePoints lays out n points of one device like a BMS controller's
// register map: 40 temperatures in input registers, 10 float32 meters
// further up, 50 setpoints and modes in holding registers in blocks of
// ten with two unused registers between blocks, 25 coils and the rest
// discrete inputs.
func devicePoints(dev, n int) []*site.Point {
	var out []*site.Point
	add := func(table site.ModbusTable, addr int, typ site.DataType) {
		if len(out) < n {
			out = append(out, pt(fmt.Sprintf("d%02d.p%03d", dev, len(out)), table, 1, uint16(addr), typ, readOnly))
		}
	}
	for i := range 40 {
		add(site.InputRegister, i, site.TypeInt16)
	}
	for i := range 10 {
		add(site.InputRegister, 100+2*i, site.TypeFloat32)
	}
	for i := range 50 {
		add(site.HoldingRegister, i+i/10*2, site.TypeUint16)
	}
	for i := range 25 {
		add(site.Coil, i, site.TypeBool)
	}
	for i := 0; len(out) < n; i++ {
		add(site.DiscreteInput, i, site.TypeBool)
	}
	return out
}

type fleet struct {
	sims   []*modbussim.Server
	points [][]*site.Point
}

func newFleet(b *testing.B) *fleet {
	f := &fleet{}
	for d := range fleetDevices {
		n := fleetPoints / fleetDevices
		if d < fleetPoints%fleetDevices {
			n++
		}
		sim := startSim(b, modbussim.Config{})
		pts := devicePoints(d, n)
		for i, p := range pts {
			require.NoError(b, sim.SetPoint(p, float64(i%2)))
		}
		f.sims = append(f.sims, sim)
		f.points = append(f.points, pts)
	}
	return f
}

func (f *fleet) requests() int {
	n := 0
	for _, s := range f.sims {
		n += s.Counts().Total()
		s.ResetCounts()
	}
	return n
}

func (f *fleet) total() int {
	n := 0
	for _, ps := range f.points {
		n += len(ps)
	}
	return n
}

// run runs one op: every device read by its own goroutine.
func (f *fleet) run(b *testing.B, read func(dev int) error) {
	var wg sync.WaitGroup
	var failed atomic.Value
	for d := range f.sims {
		wg.Go(func() {
			if err := read(d); err != nil {
				failed.Store(err)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
}

func (f *fleet) report(b *testing.B) {
	b.StopTimer()
	require.Equal(b, fleetPoints, f.total())
	b.ReportMetric(float64(f.requests())/float64(b.N), "requests/op")
	b.ReportMetric(float64(fleetPoints*b.N)/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkReadCoalesced(b *testing.B) {
	f := newFleet(b)
	ctx := context.Background()
	clients := make([]*Client, fleetDevices)
	for d, s := range f.sims {
		clients[d], _ = newClient(b, Options{URL: s.URL()})
		for _, r := range clients[d].Read(ctx, f.points[d][:1]) {
			require.NoError(b, r.Err)
		}
	}
	f.requests()
	b.ResetTimer()
	for range b.N {
		f.run(b, func(d int) error {
			for _, r := range clients[d].Read(ctx, f.points[d]) {
				if r.Err != nil {
					return r.Err
				}
			}
			return nil
		})
	}
	f.report(b)
}

// bareClients opens one library client per simulator.
func bareClients(b *testing.B, f *fleet) []*modbus.ModbusClient {
	out := make([]*modbus.ModbusClient, len(f.sims))
	for d, s := range f.sims {
		c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: s.URL(), Timeout: DefaultTimeout})
		require.NoError(b, err)
		require.NoError(b, c.Open())
		b.Cleanup(func() { c.Close() })
		out[d] = c
	}
	return out
}

// bareRead sends one request with a library client.
func bareRead(c *modbus.ModbusClient, table site.ModbusTable, start, qty uint16) error {
	var err error
	switch table {
	case site.Coil:
		_, err = c.ReadCoils(start, qty)
	case site.DiscreteInput:
		_, err = c.ReadDiscreteInputs(start, qty)
	case site.HoldingRegister:
		_, err = c.ReadRegisters(start, qty, modbus.HOLDING_REGISTER)
	case site.InputRegister:
		_, err = c.ReadRegisters(start, qty, modbus.INPUT_REGISTER)
	}
	return err
}

func BenchmarkBareLoop(b *testing.B) {
	f := newFleet(b)
	clients := bareClients(b, f)
	b.ResetTimer()
	for range b.N {
		f.run(b, func(d int) error {
			for _, p := range f.points[d] {
				if err := bareRead(clients[d], p.Modbus.Table, p.Modbus.Address, uint16(width(p))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	f.report(b)
}

func BenchmarkBareCoalesced(b *testing.B) {
	f := newFleet(b)
	clients := bareClients(b, f)
	plans := make([][]Request, len(f.points))
	for d, ps := range f.points {
		plans[d] = PlanReads(ps, Limits{ReadThroughGaps: true, MaxGap: DefaultMaxGap})
	}
	b.ResetTimer()
	for range b.N {
		f.run(b, func(d int) error {
			for _, r := range plans[d] {
				if err := bareRead(clients[d], r.Table, r.Start, r.Quantity); err != nil {
					return err
				}
			}
			return nil
		})
	}
	f.report(b)
}

// BenchmarkReadVsBare reads the fleet three ways in each iteration, in
// turn (the order rotates), so that all see the same load on a shared
// machine:
//
//   - client: the Client's Read, returning a Reading per point;
//   - bare: bare library clients sending the same requests, replies
//     dropped (the baseline);
//   - bare+decode: the same, and decoding every point into a Reading as
//     a hand-written loop would; what no client that returns readings can
//     beat.
//
// It reports each one's wall time per op, the process's CPU time per op
// (simulators included), and the ratios. All keep their connections open
// from before the timed part. Run it with many iterations (-benchtime
// 100x): one op takes milliseconds.
func BenchmarkReadVsBare(b *testing.B) {
	f := newFleet(b)
	// Cancellable, as the engine's: the client must be able to give up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := make([]*Client, fleetDevices)
	plans := make([][]readBatch, len(f.points))
	for d, s := range f.sims {
		clients[d], _ = newClient(b, Options{URL: s.URL()})
		plans[d] = planReads(f.points[d], clients[d].s.limits(), nil)
		require.Equal(b, clients[d].Requests(f.points[d]), requests(plans[d]))
		for _, r := range clients[d].Read(ctx, f.points[d][:1]) {
			require.NoError(b, r.Err)
		}
	}
	bare := bareClients(b, f)
	sides := []side{
		{"client", func(d int) error {
			for _, r := range clients[d].Read(ctx, f.points[d]) {
				if r.Err != nil {
					return r.Err
				}
			}
			return nil
		}},
		{"bare", func(d int) error {
			for _, r := range plans[d] {
				if err := bareRead(bare[d], r.Table, r.Start, r.Quantity); err != nil {
					return err
				}
			}
			return nil
		}},
		{"bare+decode", func(d int) error {
			out := make([]control.Reading, len(f.points[d]))
			for _, r := range plans[d] {
				c := bare[d]
				var regs []uint16
				var bits []bool
				var err error
				switch r.Table {
				case site.Coil:
					bits, err = c.ReadCoils(r.Start, r.Quantity)
				case site.DiscreteInput:
					bits, err = c.ReadDiscreteInputs(r.Start, r.Quantity)
				case site.HoldingRegister:
					regs, err = c.ReadRegisters(r.Start, r.Quantity, modbus.HOLDING_REGISTER)
				case site.InputRegister:
					regs, err = c.ReadRegisters(r.Start, r.Quantity, modbus.INPUT_REGISTER)
				}
				if err != nil {
					return err
				}
				now := time.Now()
				for k, p := range r.points {
					off := int(p.Modbus.Address) - int(r.Start)
					var v float64
					if bits != nil {
						v = decodeBit(bits[off])
					} else {
						v = decodeRegisters(p, regs[off:off+width(p)])
					}
					out[r.idx[k]] = control.Reading{Point: p.ID, Value: v, Time: now}
				}
			}
			return nil
		}},
	}
	wall, cpu := f.rotate(b, sides, nil)
	perOp := 0
	for _, p := range plans {
		perOp += len(p)
	}
	require.Equal(b, len(sides)*perOp*b.N, f.requests(), "every side sends the planned requests and no more")
	b.ReportMetric(float64(perOp), "requests/op")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	for s, sd := range sides {
		b.ReportMetric(ms(wall[s]), sd.name+"-ms/op")
		b.ReportMetric(ms(cpu[s]), sd.name+"-cpu-ms/op")
	}
	b.ReportMetric(float64(wall[0])/float64(wall[1]), "ratio")
	b.ReportMetric(float64(wall[0])/float64(wall[2]), "ratio-to-decode")
	b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "cpu-ratio")
}

// side is one way of doing a benchmark's op: op does it for device d.
type side struct {
	name string
	op   func(d int) error
}

// rotate runs every side once per iteration, in turn (the order rotates
// so that all see the same load on a shared machine), with each device
// in its own goroutine, and returns each side's wall and process CPU
// time (simulators included); before, if set, runs before each op with
// the iteration. The request counts start from zero.
func (f *fleet) rotate(b *testing.B, sides []side, before func(i int)) (wall, cpu []time.Duration) {
	wall = make([]time.Duration, len(sides))
	cpu = make([]time.Duration, len(sides))
	f.requests()
	b.ResetTimer()
	for i := range b.N {
		for k := range sides {
			s := (i + k) % len(sides)
			if before != nil {
				before(i)
			}
			c0 := cpuTime(b)
			start := time.Now()
			f.run(b, sides[s].op)
			wall[s] += time.Since(start)
			cpu[s] += cpuTime(b) - c0
		}
	}
	b.StopTimer()
	return wall, cpu
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteFC6VsBare writes 10,000 holding registers on 72 devices
// (139 each), one FC6 per register, in turn (the order alternates) with
// the Client (WriteMultiple off, no pacing) and with bare library
// clients, each device in its own goroutine and every link connected
// before the timed part; it reports each side's wall and CPU time per op
// (simulators included) and the ratios: the client's own cost per write
// request, which is what an engine pays on devices that take one
// register per write.
func BenchmarkWriteFC6VsBare(b *testing.B) {
	const perDevice = 139
	var sims []*modbussim.Server
	var pts [][]*site.Point
	for d := range fleetDevices {
		sims = append(sims, startSim(b, modbussim.Config{}))
		var ps []*site.Point
		for i := range perDevice {
			ps = append(ps, pt(fmt.Sprintf("d%02d.r%03d", d, i), site.HoldingRegister, 1, uint16(i), site.TypeUint16))
		}
		pts = append(pts, ps)
	}
	f := &fleet{sims: sims, points: pts}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	no := false
	clients := make([]*Client, fleetDevices)
	for d, s := range sims {
		// No logger, as a gateway at its Info level: the test logger's
		// Debug lines for every write are not the client's cost.
		c, err := New(Options{URL: s.URL(), WriteRate: -1, WriteMultiple: &no}, nil)
		require.NoError(b, err)
		b.Cleanup(func() { c.Close() })
		clients[d] = c
		for _, r := range clients[d].Read(ctx, pts[d][:1]) {
			require.NoError(b, r.Err)
		}
	}
	bare := bareClients(b, f)
	value := 0.0
	sides := []side{
		{"client", func(d int) error {
			ws := make([]control.Write, len(pts[d]))
			for i, p := range pts[d] {
				ws[i] = control.Write{Point: p, Value: value}
			}
			for _, err := range clients[d].Write(ctx, ws) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"bare", func(d int) error {
			for i := range pts[d] {
				if err := bare[d].WriteRegister(uint16(i), uint16(value)); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	// A new value every op, as the engine writes only what differs.
	wall, cpu := f.rotate(b, sides, func(i int) { value = float64(i%100 + 1) })
	require.Equal(b, len(sides)*fleetDevices*perDevice*b.N, f.requests(), "one FC6 per register and side, no more")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	for s, sd := range sides {
		b.ReportMetric(ms(wall[s]), sd.name+"-ms/op")
		b.ReportMetric(ms(cpu[s]), sd.name+"-cpu-ms/op")
	}
	b.ReportMetric(float64(wall[0])/float64(wall[1]), "wall-ratio")
	b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "cpu-ratio")
}
