package control_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus"
	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// TestBoundaryWhileAFirstReadHangs: the engine works out its first
// timetable once the first writes are out, or after a short wait when a
// device's first read hangs; a window boundary shortly after the start
// is still acted on within a second on the other devices.
func TestBoundaryWhileAFirstReadHangs(t *testing.T) {
	f := smallFleet(t, 2)
	sims := f.sims
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

// TestFirstReadDecidedWhenItIsIn: a driver's first read works out its
// points' values from the plan while the request is on the wire; when a
// window ends, or the plan changes, before the reading is in, the points
// are decided by the plan in force when the reading came in, not by
// what held when the read started. Here the device answers after 300 ms
// and already holds the vacant value, so nothing is written (values
// worked out at the start would write the occupied one): once when the
// booking ends 100 ms after the start, once when it is cancelled (a new
// plan) while the read is on the wire.
func TestFirstReadDecidedWhenItIsIn(t *testing.T) {
	t.Run("window ends", func(t *testing.T) { testFirstReadDecidedWhenItIsIn(t, false) })
	t.Run("plan changes", func(t *testing.T) { testFirstReadDecidedWhenItIsIn(t, true) })
}

func testFirstReadDecidedWhenItIsIn(t *testing.T, cancelled bool) {
	f := smallFleet(t, 1)
	sim, pts := f.sims[0], f.points[0]
	f.reset(t) // the device holds 0, the vacant value
	sim.SetDelay(300 * time.Millisecond)
	end := time.Now().Add(100 * time.Millisecond)
	if cancelled {
		end = end.Add(time.Hour)
	}
	sites, plans := f.sites(end.Add(-2*time.Hour), end)

	eng := control.New(control.Config{})
	c, err := modbus.New(modbus.Options{URL: sim.URL(), WriteRate: -1}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, eng.AddSite(control.SiteRuntime{Site: sites[0], Drivers: map[string]control.Driver{"plc": c}}, plans[0]))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	if cancelled {
		time.Sleep(50 * time.Millisecond) // the first read is on the wire
		now := time.Now()
		plan := schedule.NewCompiler(sites[0], now.Add(-24*time.Hour), now.Add(24*time.Hour))
		require.NoError(t, eng.SetPlan(ctx, sites[0].ID, plan))
	}

	// The first read is in after 300 ms; the engine then has every
	// point's actual value.
	require.Eventually(t, func() bool {
		st, err := eng.Status(ctx)
		if err != nil || len(st.Points) != len(pts) {
			return false
		}
		for _, p := range st.Points {
			if p.Actual == nil {
				return false
			}
		}
		return true
	}, 3*time.Second, 10*time.Millisecond, "the first read is in")
	time.Sleep(300 * time.Millisecond) // a write it decided would have landed
	require.Zero(t, sim.Counts()[16]+sim.Counts()[6], "nothing written: the device holds the vacant value")
	st, err := eng.Status(ctx)
	require.NoError(t, err)
	for _, p := range st.Points {
		require.NotNil(t, p.Desired)
		require.Zero(t, *p.Desired, "%s: vacant after the booking", p.Point)
		require.True(t, p.InSync, "%s", p.Point)
	}
}

// smallFleet is a fleet of a few simulated devices of four holding
// registers each, their writes noted as in the benchmarks' fleet.
func smallFleet(t *testing.T, devices int) *benchFleet {
	t.Helper()
	f := &benchFleet{}
	for d := range devices {
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
		sim.OnWrite(func(unitID uint8, table site.ModbusTable, addr uint16, values []uint16) {
			f.wrote(d, unitID, table, addr, values)
		})
		f.sims, f.points = append(f.sims, sim), append(f.points, pts)
	}
	return f
}
