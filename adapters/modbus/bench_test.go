package modbus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
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

// BenchmarkReadVsBare reads the fleet with the Client and, in the same
// iteration, sends the same requests with bare library clients (the
// order alternates), and reports the time of each and their ratio. Both
// sides keep their connections open from before the timed part. Run it
// with many iterations (-benchtime 100x): one op takes milliseconds.
func BenchmarkReadVsBare(b *testing.B) {
	f := newFleet(b)
	ctx := context.Background()
	clients := make([]*Client, fleetDevices)
	plans := make([][]Request, len(f.points))
	for d, s := range f.sims {
		clients[d], _ = newClient(b, Options{URL: s.URL()})
		plans[d] = clients[d].Requests(f.points[d])
		for _, r := range clients[d].Read(ctx, f.points[d][:1]) {
			require.NoError(b, r.Err)
		}
	}
	bare := bareClients(b, f)
	ours := func() {
		f.run(b, func(d int) error {
			for _, r := range clients[d].Read(ctx, f.points[d]) {
				if r.Err != nil {
					return r.Err
				}
			}
			return nil
		})
	}
	theirs := func() {
		f.run(b, func(d int) error {
			for _, r := range plans[d] {
				if err := bareRead(bare[d], r.Table, r.Start, r.Quantity); err != nil {
					return err
				}
			}
			return nil
		})
	}
	timed := func(op func()) time.Duration {
		start := time.Now()
		op()
		return time.Since(start)
	}
	f.requests()
	var tOurs, tBare time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			tOurs += timed(ours)
			tBare += timed(theirs)
		} else {
			tBare += timed(theirs)
			tOurs += timed(ours)
		}
	}
	b.StopTimer()
	perOp := 0
	for _, p := range plans {
		perOp += len(p)
	}
	require.Equal(b, 2*perOp*b.N, f.requests(), "both sides send the planned requests and no more")
	b.ReportMetric(float64(perOp), "requests/op")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(tOurs), "client-ms/op")
	b.ReportMetric(ms(tBare), "bare-ms/op")
	b.ReportMetric(float64(tOurs)/float64(tBare), "ratio")
}
