package control_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus"
	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// TestBoundaryWhileAFirstReadHangs: the engine works out its first
// timetable once the first writes are out, or after a short wait when a
// device's first read hangs; a window boundary shortly after the start
// is still acted on within a second on the other devices.
func TestBoundaryWhileAFirstReadHangs(t *testing.T) {
	var sims []*modbussim.Server
	var points [][]*site.Point
	for range 2 {
		sim, err := modbussim.New(modbussim.Config{URL: "tcp://127.0.0.1:0"}, nil)
		require.NoError(t, err)
		require.NoError(t, sim.Start())
		t.Cleanup(func() { _ = sim.Close() })
		var pts []*site.Point
		for i := range 4 {
			pts = append(pts, &site.Point{ID: "p" + string(rune('0'+i)), Connection: "plc", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1,
				Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: uint16(i), Bit: -1, UnitID: benchUnit,
					ByteOrder: site.BigEndian, WordOrder: site.BigEndian}})
		}
		sims, points = append(sims, sim), append(points, pts)
	}
	f := &benchFleet{sims: sims, points: points}
	for d, sim := range sims {
		sim.OnWrite(func(unitID uint8, table site.ModbusTable, addr uint16, values []uint16) {
			f.wrote(d, unitID, table, addr, values)
		})
	}
	require.NoError(t, sims[0].SetFault(benchUnit, modbussim.Fault{Silent: true}))
	f.reset(t)
	boundary := time.Now().Add(100 * time.Millisecond)
	sites, plans := f.sites(boundary, boundary.Add(time.Hour))

	eng := control.New(control.Config{})
	for i, st := range sites {
		c, err := modbus.New(modbus.Options{URL: st.Connections["plc"].Modbus.URL, WriteRate: -1, Timeout: 1500 * time.Millisecond, Retries: 1}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, eng.AddSite(control.SiteRuntime{Site: st, Drivers: map[string]control.Driver{"plc": c}}, plans[i]))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	// The silent device's first read is still waiting for its answer
	// (1.5 s timeout); the other device's points take the booking's value
	// at the boundary, not before and not later than a second after.
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, at := range f.watch.seen[1] {
			if at.IsZero() {
				return false
			}
		}
		return true
	}, 3*time.Second, 5*time.Millisecond, "the healthy device's points written")
	f.mu.Lock()
	seen := f.watch.seen[1]
	f.mu.Unlock()
	for i, at := range seen {
		require.False(t, at.Before(boundary), "point %d written %s before the boundary", i, boundary.Sub(at))
		require.Less(t, at.Sub(boundary), time.Second, "point %d written late", i)
	}
	require.Zero(t, sims[0].Counts()[16]+sims[0].Counts()[6], "nothing written to the silent device")
}
