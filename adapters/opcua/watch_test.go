package opcua

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/opcua/opcuasim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

func watchPoints() []*site.Point {
	return []*site.Point{
		point("ahu.mode", site.TypeUint16, "ns=2;s=Valby.Gym.AHU.Mode"),
		point("ahu.setpoint", site.TypeFloat32, "ns=2;s=Valby.Gym.AHU.Setpoint"),
		point("lights", site.TypeBool, "ns=2;s=Valby.Gym.Lights"),
	}
}

func TestWatchDeliversChanges(t *testing.T) {
	pts := watchPoints()
	sim := startSim(t, pts, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), newTestLogger(t).Logger)
	out := watch(t, c, pts)
	expectInitial(t, out, pts, 0)

	before := time.Now()
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Setpoint", 21.5))
	r := expect(t, out, "setpoint 21.5", valueOf("ahu.setpoint", 21.5))
	require.WithinDuration(t, before, r.Time, time.Second, "source timestamp")
	require.False(t, r.Time.Before(before.Add(-time.Millisecond)))

	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.Lights", 1))
	expect(t, out, "lights on", valueOf("lights", 1))

	// A write by the gateway comes back as a change too.
	require.NoError(t, c.Write(t.Context(), []control.Write{{Point: pts[0], Value: 2}})[0])
	expect(t, out, "mode 2", valueOf("ahu.mode", 2))
}

func TestWatchResubscribesAfterRestart(t *testing.T) {
	pts := watchPoints()
	sim := startSim(t, pts, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), newTestLogger(t).Logger)
	out := watch(t, c, pts)
	expectInitial(t, out, pts, 0)
	monitors := sim.Stats().MonitorRequests

	require.NoError(t, sim.Stop())
	require.Eventually(t, func() bool { return !c.States()[0].Up }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Mode", 3))
	require.NoError(t, sim.Start(t.Context()))

	expect(t, out, "mode set while down", valueOf("ahu.mode", 3))
	require.True(t, c.States()[0].Up)
	require.Greater(t, sim.Stats().MonitorRequests, monitors, "monitored items created again")

	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Setpoint", 19))
	expect(t, out, "change after the restart", valueOf("ahu.setpoint", 19))

	// A dropped connection, with the server still up, is the same.
	sim.DropConnections()
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.Lights", 1))
	expect(t, out, "lights after a dropped connection", valueOf("lights", 1))
}

func TestWatchReportsNodeRemovedWhileDisconnected(t *testing.T) {
	pts := watchPoints()
	sim := startSim(t, pts, opcuasim.Options{})
	log := newTestLogger(t)
	c := newClient(t, simOptions(sim.Endpoint()), log.Logger)
	out := watch(t, c, pts)
	expectInitial(t, out, pts, 0)

	require.NoError(t, sim.Stop())
	require.NoError(t, sim.Remove("ns=2;s=Valby.Gym.AHU.Setpoint"))
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Mode", 1))
	require.NoError(t, sim.Start(t.Context()))

	r := expect(t, out, "setpoint reported invalid", func(r control.Reading) bool {
		return r.Point == "ahu.setpoint" && r.Err != nil
	})
	require.ErrorIs(t, r.Err, ErrInvalidNode)
	expect(t, out, "mode still watched", valueOf("ahu.mode", 1))
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.Lights", 1))
	expect(t, out, "lights still watched", valueOf("lights", 1))

	// Reconnecting reports the node again but logs it only once.
	sim.DropConnections()
	expect(t, out, "setpoint reported again", func(r control.Reading) bool {
		return r.Point == "ahu.setpoint" && errors.Is(r.Err, ErrInvalidNode)
	})
	require.Equal(t, 1, log.count("opc ua point unusable"))

	// A node that comes back is picked up on the next subscription.
	require.NoError(t, sim.Restore("ns=2;s=Valby.Gym.AHU.Setpoint"))
	sim.DropConnections()
	expect(t, out, "setpoint back", valueOf("ahu.setpoint", 0))
}

func TestWatchReportsNodeRemovedWhileWatched(t *testing.T) {
	pts := watchPoints()
	sim := startSim(t, pts, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), nil)
	out := watch(t, c, pts)
	expectInitial(t, out, pts, 0)
	require.NoError(t, sim.Remove("ns=2;s=Valby.Gym.Lights"))
	r := expect(t, out, "lights invalid", func(r control.Reading) bool { return r.Point == "lights" && r.Err != nil })
	require.ErrorIs(t, r.Err, ErrInvalidNode)
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Mode", 2))
	expect(t, out, "mode still watched", valueOf("ahu.mode", 2))
}

func TestWatchMarksStale(t *testing.T) {
	pts := watchPoints()
	sim := startSim(t, pts, opcuasim.Options{})
	opts := simOptions(sim.Endpoint())
	opts.StaleAfter = 400 * time.Millisecond
	opts.RequestTimeout = time.Second
	c := newClient(t, opts, newTestLogger(t).Logger)
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Setpoint", 20.5))
	out := watch(t, c, pts)
	expect(t, out, "initial setpoint", valueOf("ahu.setpoint", 20.5))

	// A quiet but healthy server is asked again, and nothing turns stale.
	quiet := time.NewTimer(4 * opts.StaleAfter)
	defer quiet.Stop()
	before := sim.Stats().ReadRequests
	for done := false; !done; {
		select {
		case r := <-out:
			require.NoError(t, r.Err, "no error from a healthy server: %s", r.Point)
		case <-quiet.C:
			done = true
		}
	}
	require.Greater(t, sim.Stats().ReadRequests, before, "quiet points were read to confirm them")

	// A server that stops answering: every point turns stale, with its
	// last value.
	sim.SetDelay(time.Hour)
	stale := map[string]control.Reading{}
	for len(stale) < len(pts) {
		r := expect(t, out, "stale", func(r control.Reading) bool { return errors.Is(r.Err, control.ErrStale) })
		stale[r.Point] = r
	}
	require.Equal(t, 20.5, stale["ahu.setpoint"].Value)

	// When it answers again, the values come back without error.
	sim.SetDelay(0)
	expect(t, out, "fresh setpoint", valueOf("ahu.setpoint", 20.5))
}

func TestWatchRebuildsSilentSubscription(t *testing.T) {
	pts := watchPoints()
	sim := startSim(t, pts, opcuasim.Options{})
	opts := simOptions(sim.Endpoint())
	opts.RequestTimeout = 300 * time.Millisecond
	opts.StaleAfter = 200 * time.Millisecond // reads points quiet for 100ms
	log := newTestLogger(t)
	c := newClient(t, opts, log.Logger)
	sim.Mute(true)
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.Lights", 1))
	out := watch(t, c, pts)

	// No first values: the subscription is taken for broken and rebuilt,
	// while reads keep the values coming.
	expect(t, out, "lights read while the subscription is silent", valueOf("lights", 1))
	require.Eventually(t, func() bool { return log.count("opc ua subscription silent; rebuilding the session") > 0 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return sim.Stats().MonitorRequests >= 2 }, 10*time.Second, 5*time.Millisecond)

	// A change the subscription does not report is found by the reads.
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Mode", 4))
	expect(t, out, "missed change read", valueOf("ahu.mode", 4))

	sim.Mute(false)
	require.NoError(t, sim.Set("ns=2;s=Valby.Gym.AHU.Setpoint", 18.5))
	expect(t, out, "delivered after the server speaks again", valueOf("ahu.setpoint", 18.5))
}
