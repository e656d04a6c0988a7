package modbussim

import (
	"context"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/site"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { s.Close() })
	return s
}

// dial opens a bare library client on the simulator.
func dial(t *testing.T, s *Server, timeout time.Duration) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: s.URL(), Timeout: timeout})
	require.NoError(t, err)
	require.NoError(t, c.Open())
	t.Cleanup(func() { c.Close() })
	return c
}

func point(typ site.DataType, table site.ModbusTable, addr uint16, byteO, word site.ByteOrder) *site.Point {
	return &site.Point{ID: "p", Type: typ, Scale: 1, Access: site.AccessWrite,
		Modbus: &site.ModbusAddress{Table: table, Address: addr, Bit: -1, UnitID: 1, ByteOrder: byteO, WordOrder: word}}
}

// TestSetPointAsTheLibraryDecodes checks the simulator's codec against
// the library client's own decoding of each type, byte and word order.
func TestSetPointAsTheLibraryDecodes(t *testing.T) {
	s := start(t, Config{})
	c := dial(t, s, time.Second)
	endian := map[site.ByteOrder]modbus.Endianness{site.BigEndian: modbus.BIG_ENDIAN, site.LittleEndian: modbus.LITTLE_ENDIAN}
	words := map[site.ByteOrder]modbus.WordOrder{site.BigEndian: modbus.HIGH_WORD_FIRST, site.LittleEndian: modbus.LOW_WORD_FIRST}
	for _, bo := range []site.ByteOrder{site.BigEndian, site.LittleEndian} {
		for _, wo := range []site.ByteOrder{site.BigEndian, site.LittleEndian} {
			require.NoError(t, c.SetEncoding(endian[bo], words[wo]))
			name := fmt.Sprintf("bytes %s words %s", bo, wo)
			t.Run(name, func(t *testing.T) {
				p := point(site.TypeInt16, site.HoldingRegister, 0, bo, wo)
				require.NoError(t, s.SetPoint(p, -2))
				r, err := c.ReadRegister(0, modbus.HOLDING_REGISTER)
				require.NoError(t, err)
				require.Equal(t, uint16(0xFFFE), r)

				p = point(site.TypeUint32, site.InputRegister, 10, bo, wo)
				require.NoError(t, s.SetPoint(p, 0x01020304))
				u, err := c.ReadUint32(10, modbus.INPUT_REGISTER)
				require.NoError(t, err)
				require.Equal(t, uint32(0x01020304), u)

				p = point(site.TypeInt32, site.HoldingRegister, 20, bo, wo)
				require.NoError(t, s.SetPoint(p, -7))
				u, err = c.ReadUint32(20, modbus.HOLDING_REGISTER)
				require.NoError(t, err)
				require.Equal(t, int32(-7), int32(u))

				p = point(site.TypeFloat32, site.HoldingRegister, 30, bo, wo)
				require.NoError(t, s.SetPoint(p, 21.5))
				f, err := c.ReadFloat32(30, modbus.HOLDING_REGISTER)
				require.NoError(t, err)
				require.Equal(t, float32(21.5), f)

				p = point(site.TypeFloat64, site.HoldingRegister, 40, bo, wo)
				require.NoError(t, s.SetPoint(p, math.Pi))
				d, err := c.ReadFloat64(40, modbus.HOLDING_REGISTER)
				require.NoError(t, err)
				require.Equal(t, math.Pi, d)

				// And back: what the library writes, PointValue reads.
				require.NoError(t, c.WriteFloat64(40, -math.E))
				v, err := s.PointValue(p)
				require.NoError(t, err)
				require.Equal(t, -math.E, v)
			})
		}
	}
}

func TestSetPointScaleBitsAndRange(t *testing.T) {
	s := start(t, Config{})
	p := point(site.TypeInt16, site.HoldingRegister, 5, site.BigEndian, site.BigEndian)
	p.Scale, p.Offset = 0.1, 10
	require.NoError(t, s.SetPoint(p, 31.5))
	raw, err := s.Get(1, site.HoldingRegister, 5, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{215}, raw)
	v, err := s.PointValue(p)
	require.NoError(t, err)
	require.InDelta(t, 31.5, v, 1e-9)

	require.ErrorContains(t, s.SetPoint(p, 10000), "does not fit")

	b := point(site.TypeBool, site.HoldingRegister, 6, site.LittleEndian, site.BigEndian)
	b.Modbus.Bit = 9
	require.NoError(t, s.Set(1, site.HoldingRegister, 6, 0x0100)) // bit 0 of the value
	require.NoError(t, s.SetPoint(b, 1))
	raw, err = s.Get(1, site.HoldingRegister, 6, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{0x0102}, raw)
	v, err = s.PointValue(b)
	require.NoError(t, err)
	require.Equal(t, 1.0, v)

	c := point(site.TypeBool, site.Coil, 3, site.BigEndian, site.BigEndian)
	require.NoError(t, s.SetPoint(c, 1))
	v, err = s.PointValue(c)
	require.NoError(t, err)
	require.Equal(t, 1.0, v)
	require.Error(t, s.SetPoint(c, 2))
	require.Error(t, s.SetPoint(point(site.TypeUint16, site.Coil, 3, "", ""), 1))
	require.Error(t, s.Set(1, "register", 0, 1))
	_, err = s.Get(1, site.Coil, 65535, 2)
	require.Error(t, err)
}

func TestTablesAndCounts(t *testing.T) {
	s := start(t, Config{})
	c := dial(t, s, time.Second)
	require.NoError(t, c.SetUnitId(4))
	require.NoError(t, c.WriteRegisters(0, []uint16{1, 2, 3}))
	require.NoError(t, c.WriteRegister(9, 9))
	require.NoError(t, c.WriteCoils(0, []bool{true, false, true}))
	require.NoError(t, c.WriteCoil(9, true))
	regs, err := c.ReadRegisters(0, 3, modbus.HOLDING_REGISTER)
	require.NoError(t, err)
	require.Equal(t, []uint16{1, 2, 3}, regs)
	bits, err := c.ReadCoils(0, 3)
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true}, bits)
	require.NoError(t, s.Set(4, site.InputRegister, 100, 7))
	require.NoError(t, s.Set(4, site.DiscreteInput, 100, 1))
	r, err := c.ReadRegister(100, modbus.INPUT_REGISTER)
	require.NoError(t, err)
	require.Equal(t, uint16(7), r)
	b, err := c.ReadDiscreteInput(100)
	require.NoError(t, err)
	require.True(t, b)

	got, err := s.Get(4, site.HoldingRegister, 9, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{9}, got)
	got, err = s.Get(4, site.Coil, 0, 4)
	require.NoError(t, err)
	require.Equal(t, []uint16{1, 0, 1, 0}, got)

	want := Counts{16: 1, 6: 1, 15: 1, 5: 1, 3: 1, 1: 1, 4: 1, 2: 1}
	require.Equal(t, want, s.UnitCounts(4))
	require.Equal(t, want, s.Counts())
	require.Equal(t, 8, s.Counts().Total())
	require.Empty(t, s.UnitCounts(1))
	s.ResetCounts()
	require.Zero(t, s.Counts().Total())
}

func TestFaults(t *testing.T) {
	s := start(t, Config{Units: []uint8{1, 2}})
	c := dial(t, s, 200*time.Millisecond)

	require.NoError(t, s.SetFault(1, Fault{Exception: 0x06, Count: 2}))
	for range 2 {
		_, err := c.ReadRegister(0, modbus.HOLDING_REGISTER)
		require.ErrorIs(t, err, modbus.ErrServerDeviceBusy)
	}
	_, err := c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.NoError(t, err, "the fault ends after Count requests")

	require.NoError(t, s.SetFault(1, Fault{Exception: 0x0B}))
	_, err = c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.ErrorIs(t, err, modbus.ErrGWTargetFailedToRespond)
	s.ClearFault(1)
	require.Error(t, s.SetFault(1, Fault{Exception: 0x42}))

	require.NoError(t, c.SetUnitId(3))
	_, err = c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.ErrorIs(t, err, modbus.ErrGWTargetFailedToRespond, "a unit not served")

	require.NoError(t, c.SetUnitId(2))
	s.SetDelay(50 * time.Millisecond)
	start := time.Now()
	_, err = c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	s.SetDelay(0)

	require.NoError(t, s.SetFault(2, Fault{Silent: true}))
	_, err = c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.ErrorIs(t, err, modbus.ErrRequestTimedOut)
}

func TestStrict(t *testing.T) {
	s := start(t, Config{Strict: true})
	c := dial(t, s, time.Second)
	require.NoError(t, s.Set(1, site.HoldingRegister, 10, 1, 2))
	_, err := c.ReadRegisters(10, 2, modbus.HOLDING_REGISTER)
	require.NoError(t, err)
	_, err = c.ReadRegisters(10, 3, modbus.HOLDING_REGISTER)
	require.ErrorIs(t, err, modbus.ErrIllegalDataAddress)
	require.ErrorIs(t, c.WriteRegister(12, 1), modbus.ErrIllegalDataAddress)
	_, err = c.ReadCoil(0)
	require.ErrorIs(t, err, modbus.ErrIllegalDataAddress)
}

func TestStopStartAndDrop(t *testing.T) {
	s := start(t, Config{})
	addr := s.Addr()
	require.NotContains(t, addr, ":0")
	c := dial(t, s, 200*time.Millisecond)
	require.NoError(t, s.Set(1, site.HoldingRegister, 0, 5))

	require.NoError(t, s.DropConnections())
	require.Equal(t, addr, s.Addr(), "same port after a restart")
	_, err := c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.Error(t, err, "the connection was dropped")
	require.NoError(t, c.Close())
	require.NoError(t, c.Open())
	r, err := c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.NoError(t, err)
	require.Equal(t, uint16(5), r, "values survive a restart")

	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "stop twice")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err)
	require.NoError(t, s.Start())
	require.NoError(t, s.Start(), "start twice")
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	conn.Close()
}

// TestStopReleasesHeldRequests stops a server while a silent unit holds a
// request: the handler must return, so no goroutine outlives the test.
func TestStopReleasesHeldRequests(t *testing.T) {
	s := start(t, Config{})
	require.NoError(t, s.SetFault(1, Fault{Silent: true}))
	c := dial(t, s, 100*time.Millisecond)
	_, err := c.ReadRegister(0, modbus.HOLDING_REGISTER)
	require.ErrorIs(t, err, modbus.ErrRequestTimedOut)
	require.Equal(t, 1, s.Counts().Total())
	require.NoError(t, s.Close())
}

func TestRun(t *testing.T) {
	s, err := New(Config{}, nil)
	require.NoError(t, err)
	require.Empty(t, s.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = s.Run(ctx) })
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr := s.Addr(); addr != "" {
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "not listening")
		<-tick.C
	}
	cancel()
	wg.Wait()
	require.NoError(t, runErr)
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "rtu:///dev/ttyS0"},
		{URL: "127.0.0.1:502"},
		{URL: "tcp://127.0.0.1"},
		{URL: "tcp+tls://127.0.0.1:0"},
		{MaxClients: -1},
	} {
		_, err := New(cfg, nil)
		require.Error(t, err, cfg.URL)
	}
}

func TestForSite(t *testing.T) {
	minimum := 16.0
	st := &site.Site{ID: "valby-skole", Points: map[string]*site.Point{
		"gym.mode": {ID: "gym.mode", Connection: "gym-plc", Type: site.TypeUint16, Scale: 1,
			Labels: map[string]float64{"economy": 1, "comfort": 2},
			Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: 10, Bit: -1, UnitID: 1}},
		"gym.setpoint": {ID: "gym.setpoint", Connection: "gym-plc", Type: site.TypeFloat32, Scale: 1, Min: &minimum,
			Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: 11, Bit: -1, UnitID: 1, WordOrder: site.LittleEndian}},
		"pitch.lights": {ID: "pitch.lights", Connection: "pitch-io", Type: site.TypeBool,
			Modbus: &site.ModbusAddress{Table: site.Coil, Address: 0, Bit: -1, UnitID: 3}},
		"room12.mode": {ID: "room12.mode", Connection: "opcua", Type: site.TypeUint16,
			OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=x"}},
	}}
	sims, err := ForSite(st, Config{Strict: true}, nil)
	require.NoError(t, err)
	require.Len(t, sims, 2)
	for _, s := range sims {
		require.NoError(t, s.Start())
		t.Cleanup(func() { s.Close() })
	}
	require.NotEqual(t, sims["gym-plc"].Addr(), sims["pitch-io"].Addr())

	v, err := sims["gym-plc"].PointValue(st.Points["gym.mode"])
	require.NoError(t, err)
	require.Equal(t, 1.0, v, "the lowest label")
	v, err = sims["gym-plc"].PointValue(st.Points["gym.setpoint"])
	require.NoError(t, err)
	require.Equal(t, 16.0, v, "0 moved up to min")

	// Strict: the points' registers exist, others do not.
	c := dial(t, sims["gym-plc"], time.Second)
	_, err = c.ReadRegisters(10, 3, modbus.HOLDING_REGISTER)
	require.NoError(t, err)
	_, err = c.ReadRegisters(10, 4, modbus.HOLDING_REGISTER)
	require.ErrorIs(t, err, modbus.ErrIllegalDataAddress)
}

func TestOnWrite(t *testing.T) {
	s := start(t, Config{})
	type write struct {
		unit   uint8
		table  site.ModbusTable
		addr   uint16
		values []uint16
	}
	var mu sync.Mutex // the hook runs on the server's goroutine
	var got []write
	s.OnWrite(func(unitID uint8, table site.ModbusTable, addr uint16, values []uint16) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, write{unitID, table, addr, slices.Clone(values)})
	})
	c := dial(t, s, time.Second)
	require.NoError(t, c.SetUnitId(4))
	require.NoError(t, c.WriteRegisters(10, []uint16{1, 2}))
	require.NoError(t, c.WriteCoils(3, []bool{true, false}))
	_, err := c.ReadRegisters(10, 2, modbus.HOLDING_REGISTER)
	require.NoError(t, err)
	require.NoError(t, s.Set(4, site.HoldingRegister, 20, 5)) // not a client's write
	s.OnWrite(nil)
	require.NoError(t, c.WriteRegister(11, 9))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []write{
		{4, site.HoldingRegister, 10, []uint16{1, 2}},
		{4, site.Coil, 3, []uint16{1, 0}},
	}, got, "client writes only, in order, until removed")
}
