package modbus

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/site"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pt builds a writable point; opts adjust it.
func pt(id string, table site.ModbusTable, unit uint8, addr uint16, typ site.DataType, opts ...func(*site.Point)) *site.Point {
	p := &site.Point{
		ID: id, Connection: "plc", Type: typ, Access: site.AccessWrite, Scale: 1,
		Modbus: &site.ModbusAddress{Table: table, Address: addr, Bit: -1, UnitID: unit,
			ByteOrder: site.BigEndian, WordOrder: site.BigEndian},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func hr(id string, addr uint16, typ site.DataType, opts ...func(*site.Point)) *site.Point {
	return pt(id, site.HoldingRegister, 1, addr, typ, opts...)
}

func bit(b int) func(*site.Point) { return func(p *site.Point) { p.Modbus.Bit = b } }

func orders(byteOrder, wordOrder site.ByteOrder) func(*site.Point) {
	return func(p *site.Point) { p.Modbus.ByteOrder, p.Modbus.WordOrder = byteOrder, wordOrder }
}

func readOnly(p *site.Point) { p.Access = site.AccessRead }

func unit(u uint8) func(*site.Point) { return func(p *site.Point) { p.Modbus.UnitID = u } }

// seq builds n points of one type at consecutive addresses from addr.
func seq(prefix string, table site.ModbusTable, u uint8, addr uint16, n int, typ site.DataType) []*site.Point {
	out := make([]*site.Point, n)
	w := typ.Registers()
	if typ == site.TypeBool {
		w = 1
	}
	for i := range out {
		out[i] = pt(fmt.Sprintf("%s%d", prefix, i), table, u, addr+uint16(i*w), typ)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a logger used from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// startSim starts a simulator on a free loopback port for the test.
func startSim(t testing.TB, cfg modbussim.Config) *modbussim.Server {
	t.Helper()
	sim, err := modbussim.New(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, sim.Start())
	t.Cleanup(func() { sim.Close() })
	return sim
}

// newClient builds a client for the test with fast test defaults: no
// write pacing, short timeouts and backoffs.
func newClient(t testing.TB, o Options) (*Client, *syncBuffer) {
	t.Helper()
	if o.WriteRate == 0 {
		o.WriteRate = -1
	}
	if o.Timeout == 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = 20 * time.Millisecond
	}
	logger, buf := testLogger()
	c, err := New(o, logger)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, buf
}

// ctx returns a context that ends with the test or after 30 s.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ptrBool(b bool) *bool { return &b }

func ptrFloat(f float64) *float64 { return &f }
