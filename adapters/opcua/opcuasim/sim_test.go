package opcuasim

import (
	"context"
	"errors"
	"io"
	"log"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/site"
)

func TestMain(m *testing.M) {
	// gopcua prints start-up chatter with the standard log package.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}

// points returns one point of each data type in namespace 2.
func points() []*site.Point {
	types := []site.DataType{site.TypeBool, site.TypeInt16, site.TypeUint16, site.TypeInt32, site.TypeUint32, site.TypeFloat32, site.TypeFloat64}
	var ps []*site.Point
	for _, t := range types {
		ps = append(ps, &site.Point{
			ID: "p." + string(t), Type: t, Access: site.AccessWrite, Scale: 1,
			OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=Sim." + string(t)},
		})
	}
	return ps
}

// start starts a simulator for the test and closes it at the end.
func start(t *testing.T, pts []*site.Point, opts Options) *Server {
	t.Helper()
	sim, err := New(pts, opts, nil)
	require.NoError(t, err)
	require.NoError(t, sim.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, sim.Close()) })
	return sim
}

// connect connects a plain gopcua client, retrying until the server
// answers or the deadline passes.
func connect(t *testing.T, endpoint string) *opcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		c, err := opcua.NewClient(endpoint, opcua.AutoReconnect(false), opcua.RequestTimeout(5*time.Second))
		require.NoError(t, err)
		if err = c.Connect(ctx); err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c.Close(ctx)
			})
			return c
		}
		c.Close(ctx)
		require.NoError(t, ctx.Err(), "server never answered: %v", err)
	}
}

func write(t *testing.T, c *opcua.Client, node string, v any) ua.StatusCode {
	t.Helper()
	res, err := c.Write(t.Context(), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      ua.MustParseNodeID(node),
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
	}}})
	require.NoError(t, err)
	require.Len(t, res.Results, 1)
	return res.Results[0]
}

func read(t *testing.T, c *opcua.Client, nodes ...string) []*ua.DataValue {
	t.Helper()
	req := &ua.ReadRequest{}
	for _, n := range nodes {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.MustParseNodeID(n), AttributeID: ua.AttributeIDValue})
	}
	res, err := c.Read(t.Context(), req)
	require.NoError(t, err)
	require.Len(t, res.Results, len(nodes))
	return res.Results
}

func TestWriteChecksTypes(t *testing.T) {
	sim := start(t, points(), Options{})
	c := connect(t, sim.Endpoint())

	tests := []struct {
		node  string
		value any
		want  ua.StatusCode
	}{
		{"ns=2;s=Sim.bool", true, ua.StatusOK},
		{"ns=2;s=Sim.int16", int16(-12), ua.StatusOK},
		{"ns=2;s=Sim.uint16", uint16(65000), ua.StatusOK},
		{"ns=2;s=Sim.int32", int32(-100000), ua.StatusOK},
		{"ns=2;s=Sim.uint32", uint32(4000000000), ua.StatusOK},
		{"ns=2;s=Sim.float32", float32(21.5), ua.StatusOK},
		{"ns=2;s=Sim.float64", 19.25, ua.StatusOK},
		{"ns=2;s=Sim.int16", int32(5), ua.StatusBadTypeMismatch},
		{"ns=2;s=Sim.float32", 21.5, ua.StatusBadTypeMismatch},
		{"ns=2;s=Sim.bool", "on", ua.StatusBadTypeMismatch},
		{"ns=2;s=Sim.nope", 1.0, ua.StatusBadNodeIDUnknown},
		// gopcua's own handler crashes the server on a namespace that
		// does not exist.
		{"ns=9;s=Sim.float64", 1.0, ua.StatusBadNodeIDUnknown},
		{"i=2258", 1.0, ua.StatusBadNotWritable},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			before, _ := sim.Get(tt.node)
			require.Equal(t, tt.want, write(t, c, tt.node, tt.value))
			got, err := sim.Get(tt.node)
			if errors.Is(err, ErrUnknownNode) || err != nil {
				return
			}
			if tt.want == ua.StatusOK {
				require.Equal(t, tt.value, got)
			} else {
				require.Equal(t, before, got)
			}
		})
	}
	dv := read(t, c, "ns=2;s=Sim.float32", "ns=2;s=Sim.missing", "ns=7;i=1")
	require.Equal(t, float32(21.5), dv[0].Value.Value())
	require.Equal(t, ua.StatusBadNodeIDUnknown, dv[1].Status)
	require.Equal(t, ua.StatusBadNodeIDUnknown, dv[2].Status)
}

func TestSetRemoveRestart(t *testing.T) {
	sim := start(t, points(), Options{})
	endpoint := sim.Endpoint()
	require.NoError(t, sim.Set("ns=2;s=Sim.int32", -7))
	require.Error(t, sim.Set("ns=2;s=Sim.int16", 1e6), "out of range")
	require.Error(t, sim.Set("ns=2;s=Sim.int16", 1.5), "not an integer")
	require.ErrorIs(t, sim.Set("ns=2;s=Sim.none", 1), ErrUnknownNode)

	c := connect(t, endpoint)
	require.Equal(t, int32(-7), read(t, c, "ns=2;s=Sim.int32")[0].Value.Value())

	require.NoError(t, sim.Stop())
	require.False(t, sim.Running())
	require.NoError(t, sim.Remove("ns=2;s=Sim.int32"))
	require.NoError(t, sim.Set("ns=2;s=Sim.float64", 3.25))
	require.NoError(t, sim.Start(t.Context()))
	require.Equal(t, endpoint, sim.Endpoint(), "same port after a restart")

	c = connect(t, endpoint)
	dv := read(t, c, "ns=2;s=Sim.int32", "ns=2;s=Sim.float64")
	require.Equal(t, ua.StatusBadNodeIDUnknown, dv[0].Status)
	require.Equal(t, 3.25, dv[1].Value.Value())
	require.Equal(t, ua.StatusBadNodeIDUnknown, write(t, c, "ns=2;s=Sim.int32", int32(1)))

	require.NoError(t, sim.Restore("ns=2;s=Sim.int32"))
	require.Equal(t, int32(-7), read(t, c, "ns=2;s=Sim.int32")[0].Value.Value())
}

func TestOperationLimits(t *testing.T) {
	sim := start(t, points(), Options{MaxNodesPerRead: 2, MaxNodesPerWrite: 3, MaxMonitoredItemsPerCall: 4})
	c := connect(t, sim.Endpoint())

	dv := read(t, c, "i=11705", "i=11707")
	require.Equal(t, uint32(2), dv[0].Value.Value())
	require.Equal(t, uint32(3), dv[1].Value.Value())

	_, err := c.Read(t.Context(), &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.MustParseNodeID("ns=2;s=Sim.bool")},
		{NodeID: ua.MustParseNodeID("ns=2;s=Sim.int16")},
		{NodeID: ua.MustParseNodeID("ns=2;s=Sim.uint16")},
	}})
	require.ErrorIs(t, err, ua.StatusBadTooManyOperations)
}

func TestSubscriptionSeesSetAndRemove(t *testing.T) {
	sim := start(t, points(), Options{})
	c := connect(t, sim.Endpoint())
	ch := make(chan *opcua.PublishNotificationData, 16)
	sub, err := c.Subscribe(t.Context(), &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
	require.NoError(t, err)
	res, err := sub.Monitor(t.Context(), ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.MustParseNodeID("ns=2;s=Sim.float64"), ua.AttributeIDValue, 1),
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.MustParseNodeID("ns=2;s=Sim.gone"), ua.AttributeIDValue, 2),
	)
	require.NoError(t, err)
	require.Equal(t, ua.StatusOK, res.Results[0].StatusCode)
	require.Equal(t, ua.StatusBadNodeIDUnknown, res.Results[1].StatusCode)

	next := func() *ua.DataValue {
		t.Helper()
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		for {
			select {
			case n := <-ch:
				require.NoError(t, n.Error)
				dcn, ok := n.Value.(*ua.DataChangeNotification)
				if !ok || len(dcn.MonitoredItems) == 0 {
					continue
				}
				return dcn.MonitoredItems[len(dcn.MonitoredItems)-1].Value
			case <-timer.C:
				t.Fatal("no notification")
			}
		}
	}
	require.Equal(t, 0.0, next().Value.Value(), "initial value")
	require.NoError(t, sim.Set("ns=2;s=Sim.float64", 42))
	require.Equal(t, 42.0, next().Value.Value())
	require.NoError(t, sim.Remove("ns=2;s=Sim.float64"))
	require.Equal(t, ua.StatusBadNodeIDUnknown, next().Status)
	require.NoError(t, sub.Cancel(t.Context()))
}

func TestForSite(t *testing.T) {
	s := &site.Site{ID: "valby", Points: map[string]*site.Point{}}
	for i, p := range points() {
		p.Connection = []string{"bms", "lights"}[i%2]
		s.Points[p.ID] = p
	}
	s.Points["modbus"] = &site.Point{ID: "modbus", Connection: "plc", Type: site.TypeInt16, Modbus: &site.ModbusAddress{}}
	sims, err := ForSite(t.Context(), s, Options{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, sim := range sims {
			require.NoError(t, sim.Close())
		}
	})
	require.Len(t, sims, 2)
	require.Len(t, sims["bms"].Nodes(), 4)
	require.Len(t, sims["lights"].Nodes(), 3)
	require.NotEqual(t, sims["bms"].Endpoint(), sims["lights"].Endpoint())
	connect(t, sims["lights"].Endpoint())
}

func TestNewRejectsBadNodes(t *testing.T) {
	_, err := New([]*site.Point{
		{ID: "a", Type: site.TypeInt16, OPCUA: &site.OPCUAAddress{NodeID: "ns=0;i=85"}},
		{ID: "b", Type: site.TypeInt16, OPCUA: &site.OPCUAAddress{NodeID: "ns=x;s=y"}},
		{ID: "c", Type: site.TypeInt16, OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=Z"}},
		{ID: "d", Type: site.TypeFloat32, OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=Z"}},
	}, Options{}, nil)
	require.ErrorContains(t, err, "namespace 0")
	require.ErrorContains(t, err, `node id "ns=x;s=y"`)
	require.ErrorContains(t, err, "also mapped as int16")
}

func TestDroppedConnectionEndsItsSubscriptions(t *testing.T) {
	sim := start(t, points(), Options{})
	c := connect(t, sim.Endpoint())
	ch := make(chan *opcua.PublishNotificationData, 16)
	_, err := c.Subscribe(t.Context(), &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
	require.NoError(t, err)
	subs := func() int {
		sim.mu.Lock()
		ss := sim.run.srv.SubscriptionService
		sim.mu.Unlock()
		ss.Mu.Lock()
		defer ss.Mu.Unlock()
		return len(ss.Subs)
	}
	require.Equal(t, 1, subs())
	sim.DropConnections()
	require.Eventually(t, func() bool { return subs() == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestBrowse(t *testing.T) {
	sim := start(t, points(), Options{})
	c := connect(t, sim.Endpoint())
	browse := func(node string) []*ua.ReferenceDescription {
		t.Helper()
		res, err := c.Browse(t.Context(), &ua.BrowseRequest{
			NodesToBrowse: []*ua.BrowseDescription{{
				NodeID:          ua.MustParseNodeID(node),
				BrowseDirection: ua.BrowseDirectionForward,
				ReferenceTypeID: ua.NewNumericNodeID(0, 0),
				IncludeSubtypes: true,
				ResultMask:      uint32(ua.BrowseResultMaskAll),
			}},
		})
		require.NoError(t, err)
		require.Len(t, res.Results, 1)
		require.Equal(t, ua.StatusOK, res.Results[0].StatusCode)
		return res.Results[0].References
	}
	var found bool
	for _, r := range browse("i=85") {
		found = found || r.NodeID.NodeID.String() == "ns=2;i=85"
	}
	require.True(t, found, "the simulator's folder is under Objects")
	require.Len(t, browse("ns=2;i=85"), len(points()))

	dv := read(t, c, "ns=2;s=Sim.float32")
	require.NotNil(t, dv[0].Value)
	res, err := c.Read(t.Context(), &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.MustParseNodeID("ns=2;s=Sim.float32"), AttributeID: ua.AttributeIDDataType},
	}})
	require.NoError(t, err)
	require.Equal(t, "i=10", res.Results[0].Value.Value().(*ua.NodeID).String(), "DataType Float")
}
