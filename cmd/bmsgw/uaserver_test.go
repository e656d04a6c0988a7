package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/localapi"
)

// TestRunOPCUAServer runs the gateway with its OPC UA server (a child
// process) and talks to it as a BMS head-end would: the gym setpoint's
// desired value is readable; a write of the Override node of the one
// writable point becomes an operator override of the engine, journalled
// as opcua:<peer>; a write outside the point's limits and one to a point
// not listed writable are refused.
func TestRunOPCUAServer(t *testing.T) {
	e := newE2E(t)
	addr := freePort(t)
	b, err := os.ReadFile(e.cfg)
	require.NoError(t, err)
	cfg := string(b) + fmt.Sprintf("opcua_server:\n  endpoint: opc.tcp://%s\n  writable: [e2e/gym_setpoint]\n  allowed_peers: [127.0.0.1/32]\n", addr)
	require.NoError(t, os.WriteFile(e.cfg, []byte(cfg), 0o644))
	e.g, err = config.Load(e.cfg)
	require.NoError(t, err)
	e.vacant()
	// 60x: the booking lasts two real minutes, so the checks below all
	// happen inside it and inside the override even on a loaded machine.
	e.speed = 60
	_, stop := e.run(cet("19:00"))
	defer stop()
	e.eventually(5*time.Second, "20 °C for the booking", func() bool { return e.value("gym_setpoint") == 20 })

	ctx := context.Background()
	dial := func() *opcua.Client { // nil while the server does not answer
		cl, err := opcua.NewClient("opc.tcp://"+addr, opcua.SecurityMode(ua.MessageSecurityModeNone))
		if err != nil {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := cl.Connect(cctx); err != nil {
			return nil
		}
		return cl
	}
	var c *opcua.Client
	e.eventually(45*time.Second, "the OPC UA server answers", func() bool { c = dial(); return c != nil })
	// Closed before the server restarts below: gopcua's reconnect
	// goroutine races with Close.
	closeClient := sync.OnceFunc(func() { _ = c.Close(ctx) })
	defer closeClient()
	node := func(s string) *ua.NodeID { return ua.MustParseNodeID("ns=1;s=e2e/gym/" + s) }
	read := func(s string) *ua.DataValue {
		res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: node(s), AttributeID: ua.AttributeIDValue}}})
		require.NoError(t, err)
		return res.Results[0]
	}
	var last *ua.DataValue
	// The child (the test binary under the race detector) loads gopcua's
	// whole standard node set before it takes the first snapshot: slow on
	// a loaded machine.
	deadline := time.Now().Add(45 * time.Second)
	for {
		last = read("gym_setpoint/Desired")
		if last.Status == ua.StatusOK && last.Value != nil && last.Value.Value() == 20.0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the snapshot shows the desired setpoint 20; last read: status %v value %v", last.Status, last.Value)
		time.Sleep(50 * time.Millisecond)
	}
	// Device health shows too (the engine collects it every 2 s).
	e.eventually(20*time.Second, "the Modbus unit shown up", func() bool {
		res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.MustParseNodeID("ns=1;s=e2e/Devices/plc/unit 1/Up"), AttributeID: ua.AttributeIDValue}}})
		require.NoError(t, err)
		v := res.Results[0]
		return v.Status == ua.StatusOK && v.Value != nil && v.Value.Value() == true
	})
	// So does the booking feed the plans come from.
	feed := func(s string) *ua.DataValue {
		res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.MustParseNodeID("ns=1;s=Feeds/feed/" + s), AttributeID: ua.AttributeIDValue}}})
		require.NoError(t, err)
		return res.Results[0]
	}
	require.Equal(t, true, feed("OK").Value.Value(), "the feed is read")
	require.EqualValues(t, 1, feed("Bookings").Value.Value(), "its one booking")
	write := func(s string, v any) ua.StatusCode {
		res, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: node(s), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}}})
		require.NoError(t, err)
		return res.Results[0]
	}
	require.Equal(t, ua.StatusOK, write("gym_setpoint/Override", 22.5))
	e.eventually(5*time.Second, "the head-end's override written", func() bool { return e.value("gym_setpoint") == 22.5 })
	api, err := localapi.Dial(e.g.StateDir)
	require.NoError(t, err)
	st, err := api.Status(ctx)
	require.NoError(t, err)
	var who string
	for _, p := range st.Points {
		if p.Point == "gym_setpoint" && p.Override != nil {
			who = p.Override.Who
		}
	}
	require.True(t, strings.HasPrefix(who, "opcua:127.0.0.1:"), "override by %q", who)

	require.Equal(t, ua.StatusBadOutOfRange, write("gym_setpoint/Override", 30.0), "outside the point's limits (14-24)")
	require.NotEqual(t, ua.StatusOK, write("gym_mode/Override", 1.0), "not listed writable")
	require.NotEqual(t, ua.StatusOK, write("gym_setpoint/Desired", 18.0), "only Override nodes take writes")
	require.Equal(t, 22.5, e.value("gym_setpoint"))

	// The head-end releases its override with a null value, as it would
	// relinquish a BACnet priority; releasing again is Good too.
	release := func() ua.StatusCode {
		res, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: node("gym_setpoint/Override"), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: &ua.Variant{}}}}})
		require.NoError(t, err)
		return res.Results[0]
	}
	require.Equal(t, ua.StatusOK, release())
	st, err = api.Status(ctx)
	require.NoError(t, err)
	for _, p := range st.Points {
		if p.Point == "gym_setpoint" {
			require.Nil(t, p.Override, "released")
		}
	}
	require.Equal(t, ua.StatusOK, release(), "releasing what is not there")

	// A reload that makes the hall's mode writable too restarts the
	// server with the new list; a head-end reconnects and may write it.
	closeClient()
	require.NoError(t, os.WriteFile(e.cfg, []byte(strings.Replace(cfg, "writable: [e2e/gym_setpoint]", "writable: [e2e/gym_setpoint, e2e/gym_mode]", 1)), 0o644))
	code, _, errOut := bmsgw(t, "reload", "-c", e.cfg)
	require.Equal(t, 0, code, errOut)
	e.eventually(45*time.Second, "the mode's override taken after the reload", func() bool {
		cl := dial()
		if cl == nil {
			return false
		}
		defer cl.Close(ctx)
		res, err := cl.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: node("gym_mode/Override"), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)}}}})
		return err == nil && res.Results[0] == ua.StatusOK
	})
	e.eventually(5*time.Second, "the mode's override written", func() bool { return e.value("gym_mode") == 1 })
}
