package control_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus"
	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// recordingJournal keeps the write and device records.
type recordingJournal struct {
	mu      sync.Mutex
	writes  []control.WriteRecord
	devices []control.DeviceRecord
}

func (j *recordingJournal) Writes(_ context.Context, rs []control.WriteRecord) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.writes = append(j.writes, rs...)
	return nil
}

func (j *recordingJournal) Device(_ context.Context, r control.DeviceRecord) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.devices = append(j.devices, r)
	return nil
}

func (*recordingJournal) Override(context.Context, control.OverrideRecord) error { return nil }
func (*recordingJournal) Event(context.Context, control.EventRecord) error       { return nil }

func (j *recordingJournal) counts() (failed, ok, down, up int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, w := range j.writes {
		if w.Err != "" {
			failed++
		} else {
			ok++
		}
	}
	for _, d := range j.devices {
		if d.Up {
			up++
		} else {
			down++
		}
	}
	return
}

// TestNoWritesToADeviceThatIsDown: while every device of a connection is
// down the engine writes nothing to it (each write would fail at once,
// and retrying every point on its backoff filled the journal during a
// long outage); the outage is journalled as the device going down, and
// once the device is back every point gets its value.
func TestNoWritesToADeviceThatIsDown(t *testing.T) {
	sim, err := modbussim.New(modbussim.Config{URL: "tcp://127.0.0.1:0"}, nil)
	require.NoError(t, err)
	require.NoError(t, sim.Start())
	defer sim.Close()
	var pts []*site.Point
	for i := range 10 {
		pts = append(pts, &site.Point{ID: "p" + string(rune('0'+i)), Connection: "plc", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1,
			Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: uint16(i), Bit: -1, UnitID: 1,
				ByteOrder: site.BigEndian, WordOrder: site.BigEndian}})
	}
	f := &benchFleet{sims: []*modbussim.Server{sim}, points: [][]*site.Point{pts}}
	sim.OnWrite(func(unitID uint8, table site.ModbusTable, addr uint16, values []uint16) {
		f.wrote(0, unitID, table, addr, values)
	})
	f.reset(t)
	now := time.Now()
	sites, plans := f.sites(now.Add(-time.Hour), now.Add(time.Hour))
	c, err := modbus.New(modbus.Options{URL: sim.URL(), WriteRate: -1, Timeout: 200 * time.Millisecond, Retries: 0,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond}, nil)
	require.NoError(t, err)
	defer c.Close()
	j := &recordingJournal{}
	eng := control.New(control.Config{Journal: j, RetryMin: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		Resync: 50 * time.Millisecond, HealthEvery: 20 * time.Millisecond})
	require.NoError(t, eng.AddSite(control.SiteRuntime{Site: sites[0], Drivers: map[string]control.Driver{"plc": c}}, plans[0]))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	_, err = f.await(1, 10*time.Second)
	require.NoError(t, err, "every point written while the device is up")
	require.Eventually(t, func() bool { _, ok, _, _ := j.counts(); return ok == 10 }, 10*time.Second, 10*time.Millisecond,
		"and read back and journalled")

	// The device goes away and the points are wanted otherwise (an
	// operator's override is the quickest way to want a new value).
	require.NoError(t, sim.Stop())
	require.Eventually(t, func() bool { _, _, down, _ := j.counts(); return down > 0 }, 10*time.Second, 10*time.Millisecond, "device down journalled")
	for _, p := range pts {
		require.NoError(t, eng.SetOverride(ctx, control.Override{Site: sites[0].ID, Point: p.ID, Value: 2, Until: time.Now().Add(time.Hour), Who: "test"}))
	}
	// Writes sent before the outage was seen end within a timeout.
	time.Sleep(300 * time.Millisecond)
	failedBefore, _, _, _ := j.counts()
	time.Sleep(500 * time.Millisecond) // 25 retry periods, 10 resyncs
	failed, _, _, _ := j.counts()
	require.Equal(t, failedBefore, failed, "no write is tried while the device is down")
	st, err := eng.Status(ctx)
	require.NoError(t, err)
	for _, p := range st.Points {
		require.True(t, p.DeviceDown, "status says why %s waits", p.Point)
		require.False(t, p.InSync)
	}

	// Back: every point gets the override.
	f.reset(t) // the device came back empty: writes of 2 are what count now
	require.NoError(t, sim.Start())
	require.Eventually(t, func() bool {
		regs, err := sim.Get(1, site.HoldingRegister, 0, 10)
		require.NoError(t, err)
		for _, v := range regs {
			if v != 2 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "caught up once the device is back")
	_, _, _, up := j.counts()
	require.Positive(t, up, "device up journalled")
	st, err = eng.Status(ctx)
	require.NoError(t, err)
	require.False(t, st.Points[0].DeviceDown)
}
