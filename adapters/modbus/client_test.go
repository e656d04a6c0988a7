package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// readOne reads one point and fails the test on an error.
func readOne(t *testing.T, c *Client, p *site.Point) float64 {
	t.Helper()
	rs := c.Read(testCtx(t), []*site.Point{p})
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	require.Equal(t, p.ID, rs[0].Point)
	return rs[0].Value
}

func writeOne(t *testing.T, c *Client, p *site.Point, v float64) error {
	t.Helper()
	errs := c.Write(testCtx(t), []control.Write{{Point: p, Value: v}})
	require.Len(t, errs, 1)
	return errs[0]
}

// TestTypesAndOrders reads and writes every data type in every byte and
// word order, with the simulator's own codec on the other side.
func TestTypesAndOrders(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	values := map[site.DataType][2]float64{
		site.TypeInt16:   {-12345, 32767},
		site.TypeUint16:  {54321, 1},
		site.TypeInt32:   {-123456789, math.MaxInt32},
		site.TypeUint32:  {3000000000, 17},
		site.TypeFloat32: {21.5, -0.125},
		site.TypeFloat64: {-1234.5678, 1e300},
	}
	orders := []site.ByteOrder{site.BigEndian, site.LittleEndian}
	addr := uint16(0)
	for _, typ := range []site.DataType{site.TypeInt16, site.TypeUint16, site.TypeInt32, site.TypeUint32, site.TypeFloat32, site.TypeFloat64} {
		for _, bo := range orders {
			for _, wo := range orders {
				for _, table := range []site.ModbusTable{site.HoldingRegister, site.InputRegister} {
					p := pt(fmt.Sprintf("%s-%s-%s-%s", table, typ, bo, wo), table, 1, addr,
						typ, func(p *site.Point) { p.Modbus.ByteOrder, p.Modbus.WordOrder = bo, wo })
					addr += uint16(typ.Registers())
					t.Run(p.ID, func(t *testing.T) {
						v := values[typ]
						require.NoError(t, sim.SetPoint(p, v[0]))
						require.Equal(t, v[0], readOne(t, c, p))
						if table == site.InputRegister {
							require.ErrorIs(t, writeOne(t, c, p, v[1]), control.ErrNotWritable)
							return
						}
						require.NoError(t, writeOne(t, c, p, v[1]))
						got, err := sim.PointValue(p)
						require.NoError(t, err)
						require.Equal(t, v[1], got)
					})
				}
			}
		}
	}
}

func TestScaleAndOffset(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	for _, tc := range []struct {
		name          string
		typ           site.DataType
		scale, offset float64
		read, write   float64
		raw           []uint16 // wire registers after the write
	}{
		{"int16 tenths", site.TypeInt16, 0.1, 0, -12.3, 21.5, []uint16{215}},
		{"uint16 with offset", site.TypeUint16, 0.5, -40, 20, 22.5, []uint16{125}},
		{"int32 hundredths", site.TypeInt32, 0.01, 0, -70000.25, 1234.56, []uint16{0x0001, 0xE240}},
		{"float32 scaled", site.TypeFloat32, 10, 1, 251, 21, []uint16{0x4000, 0x0000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := hr(tc.name, 100, tc.typ, func(p *site.Point) { p.Scale, p.Offset = tc.scale, tc.offset })
			require.NoError(t, sim.SetPoint(p, tc.read))
			require.InDelta(t, tc.read, readOne(t, c, p), 1e-9)
			require.NoError(t, writeOne(t, c, p, tc.write))
			raw, err := sim.Get(1, site.HoldingRegister, 100, len(tc.raw))
			require.NoError(t, err)
			require.Equal(t, tc.raw, raw)
		})
	}
}

func TestBitsInRegisters(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	b0 := hr("b0", 7, site.TypeBool, bit(0))
	b3 := hr("b3", 7, site.TypeBool, bit(3))
	b15 := hr("b15", 7, site.TypeBool, bit(15))
	ib := pt("ib", site.InputRegister, 1, 7, site.TypeBool, bit(2))
	require.NoError(t, sim.Set(1, site.HoldingRegister, 7, 0x8001))
	require.NoError(t, sim.Set(1, site.InputRegister, 7, 0x0004))

	rs := c.Read(testCtx(t), []*site.Point{b0, b3, b15, ib})
	for i, want := range []float64{1, 0, 1, 1} {
		require.NoError(t, rs[i].Err)
		require.Equal(t, want, rs[i].Value, rs[i].Point)
	}
	require.Equal(t, modbussim.Counts{3: 1, 4: 1}, sim.Counts(), "one read per table")

	// Setting bit 3 keeps the other bits: read-modify-write.
	sim.ResetCounts()
	require.NoError(t, writeOne(t, c, b3, 1))
	raw, err := sim.Get(1, site.HoldingRegister, 7, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{0x8009}, raw)
	require.Equal(t, modbussim.Counts{3: 1, 6: 1}, sim.Counts())

	// Two bits of one register in one call: one read, one write.
	sim.ResetCounts()
	errs := c.Write(testCtx(t), []control.Write{{Point: b0, Value: 0}, {Point: b15, Value: 0}})
	require.Equal(t, []error{nil, nil}, errs)
	raw, err = sim.Get(1, site.HoldingRegister, 7, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{0x0008}, raw)
	require.Equal(t, modbussim.Counts{3: 1, 6: 1}, sim.Counts())
}

// TestBitWritesAreSerialized runs read-modify-writes of different bits of
// one register from many goroutines: none may undo another.
func TestBitWritesAreSerialized(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 0))
	var wg sync.WaitGroup
	for b := range 16 {
		wg.Go(func() {
			p := hr(fmt.Sprintf("b%d", b), 0, site.TypeBool, bit(b))
			if err := c.Write(context.Background(), []control.Write{{Point: p, Value: 1}})[0]; err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	raw, err := sim.Get(1, site.HoldingRegister, 0, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{0xFFFF}, raw)
}

func TestCoilsAndDiscreteInputs(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	coils := seq("coil", site.Coil, 1, 10, 4, site.TypeBool)
	dis := seq("di", site.DiscreteInput, 1, 10, 4, site.TypeBool)
	require.NoError(t, sim.Set(1, site.Coil, 10, 1, 0, 1, 1))
	require.NoError(t, sim.Set(1, site.DiscreteInput, 10, 0, 1, 0, 0))

	rs := c.Read(testCtx(t), append(coils, dis...))
	var got []float64
	for _, r := range rs {
		require.NoError(t, r.Err)
		got = append(got, r.Value)
	}
	require.Equal(t, []float64{1, 0, 1, 1, 0, 1, 0, 0}, got)
	require.Equal(t, modbussim.Counts{1: 1, 2: 1}, sim.Counts())

	// One coil: FC5.
	sim.ResetCounts()
	require.NoError(t, writeOne(t, c, coils[1], 1))
	require.Equal(t, modbussim.Counts{5: 1}, sim.Counts())

	// Neighbouring coils: one FC15.
	sim.ResetCounts()
	errs := c.Write(testCtx(t), []control.Write{{Point: coils[0], Value: 0}, {Point: coils[1], Value: 0}, {Point: coils[2], Value: 0}})
	require.Equal(t, []error{nil, nil, nil}, errs)
	require.Equal(t, modbussim.Counts{15: 1}, sim.Counts())
	raw, err := sim.Get(1, site.Coil, 10, 4)
	require.NoError(t, err)
	require.Equal(t, []uint16{0, 0, 0, 1}, raw)

	require.ErrorIs(t, writeOne(t, c, dis[0], 1), control.ErrNotWritable)
}

// TestGuardRails checks that refused writes never reach the wire.
func TestGuardRails(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	limited := hr("sp", 0, site.TypeInt16, func(p *site.Point) { p.Min, p.Max = ptrFloat(15), ptrFloat(25) })
	labelled := hr("mode", 1, site.TypeUint16, func(p *site.Point) { p.Labels = map[string]float64{"off": 0, "comfort": 2} })
	sensor := hr("temp", 2, site.TypeInt16, readOnly)
	tenths := hr("tenths", 3, site.TypeInt16, func(p *site.Point) { p.Scale = 0.1 })
	coil := pt("coil", site.Coil, 1, 0, site.TypeBool)
	for _, tc := range []struct {
		name  string
		p     *site.Point
		value float64
		want  error
	}{
		{"below min", limited, 14.9, control.ErrOutOfRange},
		{"above max", limited, 25.1, control.ErrOutOfRange},
		{"not a label", labelled, 1, control.ErrOutOfRange},
		{"read-only point", sensor, 20, control.ErrNotWritable},
		{"bool not 0 or 1", coil, 2, control.ErrOutOfRange},
		{"beyond the type", tenths, 4000, ErrNotEncodable},
		{"between raw steps", tenths, 21.55, ErrNotEncodable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, writeOne(t, c, tc.p, tc.value), tc.want)
		})
	}
	require.Zero(t, sim.Counts().Total(), "refused writes reached the device")

	// A refused write in a batch does not stop the others.
	errs := c.Write(testCtx(t), []control.Write{{Point: limited, Value: 30}, {Point: labelled, Value: 2}})
	require.ErrorIs(t, errs[0], control.ErrOutOfRange)
	require.NoError(t, errs[1])
	require.Equal(t, modbussim.Counts{6: 1}, sim.Counts())
}

func TestCoalescing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int
		requests int
	}{
		{"default limit", 0, 1},
		{"max_registers 10", 10, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, modbussim.Config{})
			c, _ := newClient(t, Options{URL: sim.URL(), MaxRegisters: tc.max})
			points := seq("r", site.HoldingRegister, 1, 0, 100, site.TypeUint16)
			for i, p := range points {
				require.NoError(t, sim.SetPoint(p, float64(i*3)))
			}
			for i, r := range c.Read(testCtx(t), points) {
				require.NoError(t, r.Err)
				require.Equal(t, float64(i*3), r.Value)
			}
			require.Equal(t, modbussim.Counts{3: tc.requests}, sim.Counts())
			require.Len(t, c.Requests(points), tc.requests)
		})
	}
}

// TestReadPlanFollowsThePoints reads one slice again and again, the way
// Watch and pollers do, while the points change under it: the client
// reuses its plan only while the slice and every point's address and type
// stay the same.
func TestReadPlanFollowsThePoints(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 10, 11, 12, 13))
	require.NoError(t, sim.Set(1, site.InputRegister, 0, 20))
	a, b := hr("a", 0, site.TypeUint16), hr("b", 1, site.TypeUint16)
	points := []*site.Point{a, b}
	values := func() []float64 {
		var out []float64
		for _, r := range c.Read(testCtx(t), points) {
			require.NoError(t, r.Err)
			out = append(out, r.Value)
		}
		return out
	}
	require.Equal(t, []float64{10, 11}, values())
	require.Equal(t, []float64{10, 11}, values())

	b.Modbus.Address = 3 // edited in place
	require.Equal(t, []float64{10, 13}, values())
	b.Modbus = &site.ModbusAddress{Table: site.InputRegister, Bit: -1, UnitID: 1} // replaced
	require.Equal(t, []float64{10, 20}, values())
	b.Type = site.TypeInt32 // wider: reads input registers 0-1
	require.NoError(t, sim.Set(1, site.InputRegister, 1, 1))
	require.Equal(t, []float64{10, 20<<16 | 1}, values())
	points[1] = hr("c", 2, site.TypeUint16) // another point in the same slice
	require.Equal(t, []float64{10, 12}, values())
	a.Scale, a.Offset = 0.5, 1 // decoding follows scale and offset
	require.Equal(t, []float64{6, 12}, values())
	a.ID = "renamed"
	rs := c.Read(testCtx(t), points)
	require.Equal(t, []string{"renamed", "c"}, []string{rs[0].Point, rs[1].Point})
}

// TestReadRepeatsAndBadPoints reads a slice that lists a point twice and
// holds points that cannot be read: each listing gets its reading, the
// repeated point is read once, and the bad ones get an error, not a crash.
func TestReadRepeatsAndBadPoints(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 7, 8))
	a, b := hr("a", 0, site.TypeUint16), hr("b", 1, site.TypeUint16)
	nowhere := &site.Point{ID: "nowhere", Type: site.TypeUint16}
	badBit := hr("badbit", 0, site.TypeUint16, bit(3))
	rs := c.Read(testCtx(t), []*site.Point{a, nowhere, b, a, nil, nowhere, badBit})
	require.Len(t, rs, 7)
	for _, i := range []int{0, 2, 3} {
		require.NoError(t, rs[i].Err)
	}
	require.Equal(t, []string{"a", "b", "a"}, []string{rs[0].Point, rs[2].Point, rs[3].Point})
	require.Equal(t, []float64{7, 8, 7}, []float64{rs[0].Value, rs[2].Value, rs[3].Value})
	require.ErrorContains(t, rs[1].Err, "no modbus address")
	require.Equal(t, "nowhere", rs[5].Point)
	require.ErrorContains(t, rs[5].Err, "no modbus address")
	require.ErrorContains(t, rs[4].Err, "no point")
	require.ErrorContains(t, rs[6].Err, "bit 3 applies to bool points only")
	require.Equal(t, modbussim.Counts{3: 1}, sim.Counts(), "a and b in one request")

	// Watch sends one reading per distinct point and poll.
	ctx, cancel := context.WithCancel(testCtx(t))
	out := make(chan control.Reading, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Watch(ctx, []*site.Point{a, b, a, nowhere, nowhere}, out); err != nil {
			t.Error(err)
		}
	})
	got := map[string]int{}
	for range 3 {
		got[(<-out).Point]++
	}
	cancel()
	wg.Wait()
	require.Equal(t, map[string]int{"a": 1, "b": 1, "nowhere": 1}, got)
	require.Empty(t, out, "no more readings in the first poll")
}

// TestCoalescingCutsRequests compares the requests of a coalesced read of
// a contiguous register map with one request per point.
func TestCoalescingCutsRequests(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL()})
	points := cat(
		seq("t", site.InputRegister, 1, 0, 60, site.TypeInt16),
		seq("f", site.InputRegister, 1, 60, 40, site.TypeFloat32),
		seq("s", site.HoldingRegister, 1, 0, 150, site.TypeUint16),
		seq("c", site.Coil, 1, 0, 50, site.TypeBool),
	)
	for _, r := range c.Read(testCtx(t), points) {
		require.NoError(t, r.Err)
	}
	coalesced := sim.Counts().Total()
	sim.ResetCounts()
	for _, p := range points {
		readOne(t, c, p)
	}
	single := sim.Counts().Total()
	require.Equal(t, len(points), single)
	t.Logf("%d points: %d requests coalesced, %d one by one (%.0f×)", len(points), coalesced, single, float64(single)/float64(coalesced))
	require.GreaterOrEqual(t, single, 10*coalesced)
}

// TestGapRefusedFallsBack reads through a gap of a device that refuses
// unused addresses: the read is repeated without gaps, and later reads
// plan without them.
func TestGapRefusedFallsBack(t *testing.T) {
	sim := startSim(t, modbussim.Config{Strict: true})
	c, buf := newClient(t, Options{URL: sim.URL()})
	a, b := hr("a", 0, site.TypeUint16), hr("b", 4, site.TypeUint16)
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 11))
	require.NoError(t, sim.Set(1, site.HoldingRegister, 4, 44))
	require.Len(t, c.Requests([]*site.Point{a, b}), 1)

	rs := c.Read(testCtx(t), []*site.Point{a, b})
	require.NoError(t, rs[0].Err)
	require.NoError(t, rs[1].Err)
	require.Equal(t, []float64{11, 44}, []float64{rs[0].Value, rs[1].Value})
	require.Equal(t, modbussim.Counts{3: 3}, sim.Counts(), "one refused, two without the gap")
	require.Contains(t, buf.String(), "refused a read through unused addresses")

	sim.ResetCounts()
	rs = c.Read(testCtx(t), []*site.Point{a, b})
	require.NoError(t, rs[0].Err)
	require.Equal(t, modbussim.Counts{3: 2}, sim.Counts())
	require.Len(t, c.Requests([]*site.Point{a, b}), 2)

	// A slice planned before the refusal is planned again after it.
	other := startSim(t, modbussim.Config{Strict: true})
	c2, _ := newClient(t, Options{URL: other.URL()})
	require.NoError(t, other.Set(1, site.HoldingRegister, 0, 1))
	require.NoError(t, other.Set(1, site.HoldingRegister, 4, 4))
	both := []*site.Point{a, b}
	require.Len(t, c2.Requests(both), 1)
	require.NoError(t, c2.Read(testCtx(t), []*site.Point{b, a})[0].Err) // another slice: refused, replanned
	other.ResetCounts()
	rs = c2.Read(testCtx(t), both)
	require.NoError(t, rs[0].Err)
	require.Equal(t, modbussim.Counts{3: 2}, other.Counts(), "the earlier plan is not reused")
}

func TestExceptionIsNotRetried(t *testing.T) {
	sim := startSim(t, modbussim.Config{Strict: true})
	c, _ := newClient(t, Options{URL: sim.URL()})
	rs := c.Read(testCtx(t), []*site.Point{hr("missing", 9, site.TypeUint16)})
	require.ErrorIs(t, rs[0].Err, modbus.ErrIllegalDataAddress)
	require.Equal(t, modbussim.Counts{3: 1}, sim.Counts())
	st := c.States()
	require.Len(t, st, 1)
	require.True(t, st[0].Up, "a unit that answers with an exception is up")
	require.Equal(t, "illegal data address", st[0].LastError)
}

func TestBusyIsRetried(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL(), Retries: 2})
	p := hr("p", 0, site.TypeUint16)
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 42))

	require.NoError(t, sim.SetFault(1, modbussim.Fault{Exception: 0x06, Count: 2}))
	require.Equal(t, 42.0, readOne(t, c, p))
	require.Equal(t, modbussim.Counts{3: 3}, sim.Counts())

	sim.ResetCounts()
	require.NoError(t, sim.SetFault(1, modbussim.Fault{Exception: 0x06, Count: 3}))
	rs := c.Read(testCtx(t), []*site.Point{p})
	require.ErrorIs(t, rs[0].Err, modbus.ErrServerDeviceBusy)
	require.Equal(t, modbussim.Counts{3: 3}, sim.Counts())
	require.True(t, c.States()[0].Up, "a busy unit is up")
	require.Equal(t, 42.0, readOne(t, c, p))
}

// TestDeadUnitDoesNotStallOthers puts a silent unit and a healthy one
// behind one TCP link: reads of the healthy unit wait at most for one
// timeout of the dead one, and the dead unit fails fast once down.
func TestDeadUnitDoesNotStallOthers(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	const timeout = 300 * time.Millisecond
	c, _ := newClient(t, Options{URL: sim.URL(), Timeout: timeout, Retries: 2, BackoffMin: time.Minute})
	alive := hr("alive", 0, site.TypeUint16)
	dead := hr("dead", 0, site.TypeUint16, unit(2))
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 7))
	require.NoError(t, sim.SetFault(2, modbussim.Fault{Silent: true}))

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var wg sync.WaitGroup
	deadErrs := make(chan error, 100)
	deadDone := make(chan struct{})
	wg.Go(func() {
		defer close(deadDone)
		for ctx.Err() == nil {
			r := c.Read(ctx, []*site.Point{dead})[0]
			if ctx.Err() == nil {
				deadErrs <- r.Err
			}
			if errors.Is(r.Err, ErrUnitDown) {
				return
			}
		}
	})
	// While the dead unit burns its timeouts, the live one keeps reading.
	var slowest time.Duration
	for n := 0; n < 10 || !isClosed(deadDone); n++ {
		start := time.Now()
		require.Equal(t, 7.0, readOne(t, c, alive))
		slowest = max(slowest, time.Since(start))
	}
	wg.Wait()
	t.Logf("slowest read of the live unit: %s (timeout %s)", slowest, timeout)
	require.Less(t, slowest, 2*timeout, "a live unit waited beyond one timeout of a dead one")

	var last error
	for len(deadErrs) > 0 {
		last = <-deadErrs
		require.Error(t, last)
	}
	require.ErrorIs(t, last, ErrUnitDown)
	start := time.Now()
	r := c.Read(testCtx(t), []*site.Point{dead})[0]
	require.ErrorIs(t, r.Err, ErrUnitDown)
	require.ErrorIs(t, r.Err, modbus.ErrRequestTimedOut, "the unit's last error is wrapped")
	require.Less(t, time.Since(start), timeout/2, "a unit that is down fails fast")

	states := c.States()
	require.Len(t, states, 2)
	require.Equal(t, "127.0.0.1:"+portOf(sim.Addr())+"/unit 1", states[0].Device)
	require.True(t, states[0].Up)
	require.False(t, states[1].Up)
	require.Contains(t, states[1].LastError, "request timed out")
	require.False(t, states[1].Since.IsZero())
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}

// TestUnitComesBack probes a unit that is down after its backoff.
func TestUnitComesBack(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, buf := newClient(t, Options{URL: sim.URL(), Retries: 1, BackoffMin: 50 * time.Millisecond})
	p := hr("p", 0, site.TypeUint16)
	require.NoError(t, sim.SetFault(1, modbussim.Fault{Exception: 0x0B}))
	rs := c.Read(testCtx(t), []*site.Point{p})
	require.ErrorIs(t, rs[0].Err, modbus.ErrGWTargetFailedToRespond)
	require.Equal(t, modbussim.Counts{3: 2}, sim.Counts(), "retried once, then down")
	require.False(t, c.States()[0].Up)

	rs = c.Read(testCtx(t), []*site.Point{p})
	require.ErrorIs(t, rs[0].Err, ErrUnitDown)
	require.Equal(t, 2, sim.Counts().Total(), "no request while down")

	sim.ClearFault(1)
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 5))
	eventually(t, 5*time.Second, func() bool {
		r := c.Read(testCtx(t), []*site.Point{p})[0]
		return r.Err == nil && r.Value == 5
	})
	require.True(t, c.States()[0].Up)
	require.Contains(t, buf.String(), "modbus unit up")
}

// eventually retries cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		<-tick.C
	}
}

func TestReconnectsAfterDroppedConnection(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, buf := newClient(t, Options{URL: sim.URL()})
	p := hr("p", 0, site.TypeUint16)
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 1))
	require.Equal(t, 1.0, readOne(t, c, p))

	require.NoError(t, sim.DropConnections())
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 2))
	require.Equal(t, 2.0, readOne(t, c, p), "the same read reopens the link")
	require.Contains(t, buf.String(), "modbus link broken")

	// A device that is off for a while: reads fail, then work again.
	require.NoError(t, sim.Stop())
	rs := c.Read(testCtx(t), []*site.Point{p})
	require.Error(t, rs[0].Err)
	require.False(t, c.States()[0].Up)
	require.NoError(t, sim.Start())
	eventually(t, 5*time.Second, func() bool { return c.Read(testCtx(t), []*site.Point{p})[0].Err == nil })
	require.True(t, c.States()[0].Up)
}

func TestContextEndsWait(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL(), Timeout: 5 * time.Second})
	sim.SetDelay(2 * time.Second)
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	rs := c.Read(ctx, []*site.Point{hr("p", 0, site.TypeUint16)})
	require.ErrorIs(t, rs[0].Err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
	errs := c.Write(ctx, []control.Write{{Point: hr("p", 0, site.TypeUint16), Value: 1}})
	require.ErrorIs(t, errs[0], context.DeadlineExceeded)
}

func TestWriteRate(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL(), WriteRate: 20})
	start := time.Now()
	for i := range 5 {
		require.NoError(t, writeOne(t, c, hr("p", uint16(2*i), site.TypeUint16), 1))
	}
	// Five writes at 20/s: four gaps of 50 ms.
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)

	// One call with five separate registers: paced the same way.
	var ws []control.Write
	for i := range 5 {
		ws = append(ws, control.Write{Point: hr(fmt.Sprint(i), uint16(100+2*i), site.TypeUint16), Value: 2})
	}
	start = time.Now()
	for _, err := range c.Write(testCtx(t), ws) {
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
}

func TestWriteMultipleOff(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL(), WriteMultiple: ptrBool(false)})
	ws := []control.Write{
		{Point: hr("a", 0, site.TypeUint16), Value: 1},
		{Point: hr("b", 1, site.TypeUint16), Value: 2},
		{Point: hr("c", 2, site.TypeFloat32), Value: 3},
	}
	for _, err := range c.Write(testCtx(t), ws) {
		require.NoError(t, err)
	}
	require.Equal(t, modbussim.Counts{6: 2, 16: 1}, sim.Counts())

	multi, _ := newClient(t, Options{URL: sim.URL()})
	sim.ResetCounts()
	for _, err := range multi.Write(testCtx(t), ws) {
		require.NoError(t, err)
	}
	require.Equal(t, modbussim.Counts{16: 1}, sim.Counts())
	raw, err := sim.Get(1, site.HoldingRegister, 0, 4)
	require.NoError(t, err)
	require.Equal(t, []uint16{1, 2, 0x4040, 0}, raw)
}

func TestWatch(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	c, _ := newClient(t, Options{URL: sim.URL(), PollInterval: 10 * time.Millisecond})
	a, b := hr("a", 0, site.TypeUint16), hr("b", 1, site.TypeUint16)
	missing := &site.Point{ID: "nowhere", Type: site.TypeUint16}
	require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 1, 2))

	ctx, cancel := context.WithCancel(testCtx(t))
	out := make(chan control.Reading)
	var wg sync.WaitGroup
	var watchErr error
	wg.Go(func() { watchErr = c.Watch(ctx, []*site.Point{a, b, missing}, out) })

	seen := map[string]float64{}
	var badErr error
	for len(seen) < 2 || seen["a"] != 10 {
		r := <-out
		if r.Err != nil {
			require.Equal(t, "nowhere", r.Point)
			badErr = r.Err
			continue
		}
		seen[r.Point] = r.Value
		if seen["a"] == 1 {
			require.NoError(t, sim.Set(1, site.HoldingRegister, 0, 10))
		}
	}
	require.Equal(t, 2.0, seen["b"])
	require.ErrorContains(t, badErr, "no modbus address")
	cancel()
	wg.Wait()
	require.NoError(t, watchErr)
	select {
	case _, ok := <-out:
		require.True(t, ok, "Watch closed out")
	default:
	}
}

// TestWatchSendsLiveUnitsFirst checks that a dead unit does not hold back
// the readings of a live one within a poll.
func TestWatchSendsLiveUnitsFirst(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	const timeout = 300 * time.Millisecond
	c, _ := newClient(t, Options{URL: sim.URL(), Timeout: timeout, PollInterval: time.Hour})
	require.NoError(t, sim.SetFault(2, modbussim.Fault{Silent: true}))
	ctx, cancel := context.WithCancel(testCtx(t))
	out := make(chan control.Reading, 10)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Watch(ctx, []*site.Point{hr("dead", 0, site.TypeUint16, unit(2)), hr("alive", 0, site.TypeUint16)}, out); err != nil {
			t.Error(err)
		}
	})
	start := time.Now()
	r := <-out
	require.Equal(t, "alive", r.Point)
	require.NoError(t, r.Err)
	require.Less(t, time.Since(start), 2*timeout)
	r = <-out
	require.Equal(t, "dead", r.Point)
	require.ErrorIs(t, r.Err, modbus.ErrRequestTimedOut)
	cancel()
	wg.Wait()
}

func TestCloseIsAlwaysSafe(t *testing.T) {
	var nilClient *Client
	require.NoError(t, nilClient.Close())

	c, err := New(Options{URL: "tcp://127.0.0.1:1"}, nil)
	require.NoError(t, err)
	require.NoError(t, c.Close(), "close before any request")
	require.NoError(t, c.Close(), "close twice")
	rs := c.Read(testCtx(t), []*site.Point{hr("p", 0, site.TypeUint16)})
	require.ErrorIs(t, rs[0].Err, ErrClosed)
	require.ErrorIs(t, c.Watch(testCtx(t), []*site.Point{hr("p", 0, site.TypeUint16)}, make(chan control.Reading, 1)), ErrClosed)

	sim := startSim(t, modbussim.Config{})
	c, _ = newClient(t, Options{URL: sim.URL()})
	readOne(t, c, hr("p", 0, site.TypeUint16))
	require.NoError(t, c.Close())
	require.ErrorIs(t, writeOne(t, c, hr("p", 0, site.TypeUint16), 1), ErrClosed)
}

func TestLinkDownFailsFast(t *testing.T) {
	sim := startSim(t, modbussim.Config{})
	url := sim.URL()
	require.NoError(t, sim.Close())
	c, buf := newClient(t, Options{URL: url, BackoffMin: time.Minute})
	p := hr("p", 0, site.TypeUint16)
	rs := c.Read(testCtx(t), []*site.Point{p})
	require.ErrorContains(t, rs[0].Err, "open 127.0.0.1:")
	start := time.Now()
	rs = c.Read(testCtx(t), []*site.Point{p, hr("q", 0, site.TypeUint16, unit(3))})
	require.ErrorIs(t, rs[0].Err, ErrUnitDown)
	require.ErrorIs(t, rs[1].Err, ErrUnitDown)
	require.Less(t, time.Since(start), 100*time.Millisecond)
	require.Contains(t, buf.String(), "modbus link down")
	st := c.States()
	require.Len(t, st, 1)
	require.False(t, st[0].Up)
	require.Contains(t, st[0].LastError, "connection refused")
}

// fakeDevice is a raw Modbus/TCP server that answers every read of one
// holding register with 0x1234, the first bad requests with a malformed
// reply (a wrong byte count).
type fakeDevice struct {
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	requests int
	bad      int
}

func startFakeDevice(t *testing.T, bad int) *fakeDevice {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeDevice{ln: ln, bad: bad}
	f.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, conn)
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(conn) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeDevice) serve(conn net.Conn) {
	for {
		head := make([]byte, 7)
		if _, err := io.ReadFull(conn, head); err != nil {
			return
		}
		pdu := make([]byte, int(binary.BigEndian.Uint16(head[4:6]))-1)
		if _, err := io.ReadFull(conn, pdu); err != nil {
			return
		}
		f.mu.Lock()
		f.requests++
		bad := f.requests <= f.bad
		f.mu.Unlock()
		reply := []byte{pdu[0], 2, 0x12, 0x34}
		if bad {
			reply[1] = 4
		}
		frame := append(head[:4:4], 0, byte(len(reply)+1), head[6])
		if _, err := conn.Write(append(frame, reply...)); err != nil {
			return
		}
	}
}

func TestBadReplyIsRetried(t *testing.T) {
	f := startFakeDevice(t, 2)
	c, buf := newClient(t, Options{URL: "tcp://" + f.ln.Addr().String(), Retries: 2})
	require.Equal(t, float64(0x1234), readOne(t, c, hr("p", 0, site.TypeUint16)))
	require.Contains(t, buf.String(), "bad modbus reply")
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, 3, f.requests)
	require.Len(t, f.conns, 3, "the link is reopened after each bad reply")
}

// TestPlanForKeepsSeveralSlices: the engine reads a connection's writable
// points, reads back what it wrote and polls all points; each of those
// slices keeps its plan instead of replacing the others'.
func TestPlanForKeepsSeveralSlices(t *testing.T) {
	c, err := New(Options{URL: "tcp://127.0.0.1:1"}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	a, b := hr("a", 0, site.TypeUint16), hr("b", 1, site.TypeUint16)
	slices := [][]*site.Point{{a}, {a, b}, {b}}
	var first []*readPlan
	for _, s := range slices {
		first = append(first, c.planFor(s))
	}
	for round := range 3 {
		for i, s := range slices {
			// A new slice with the same points finds its plan too.
			require.Same(t, first[i], c.planFor(append([]*site.Point(nil), s...)), "round %d, slice %d", round, i)
		}
	}
	// More slices than the cache holds: the oldest plan makes way.
	for i := range planCache {
		c.planFor([]*site.Point{hr(fmt.Sprint("x", i), uint16(10+i), site.TypeUint16)})
	}
	require.NotSame(t, first[0], c.planFor(slices[0]))
}
