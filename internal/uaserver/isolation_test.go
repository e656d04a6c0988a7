package uaserver

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
)

// controlLoop stands in for the control engine: it ticks every 10 ms and
// publishes a snapshot on each tick, until the test ends. Its tick count
// shows whether it kept running.
type controlLoop struct {
	ticks atomic.Int64
}

func runControlLoop(t *testing.T, s *Supervisor) *controlLoop {
	cl := &controlLoop{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				s.Publish(snapshot(cl.ticks.Load()%2 == 0))
				cl.ticks.Add(1)
			case <-done:
				return
			}
		}
	})
	t.Cleanup(func() { close(done); wg.Wait() })
	return cl
}

// advances waits until the control loop has ticked n more times.
func (cl *controlLoop) advances(t *testing.T, n int64) {
	t.Helper()
	from := cl.ticks.Load()
	deadline := time.Now().Add(10 * time.Second)
	for cl.ticks.Load() < from+n {
		if time.Now().After(deadline) {
			t.Fatalf("control loop stuck at %d ticks", cl.ticks.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goClient connects gopcua's client (as a hostile peer would).
func goClient(t *testing.T, endpoint string) *opcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := opcua.NewClient(endpoint, opcua.AutoReconnect(false), opcua.RequestTimeout(3*time.Second))
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func writeMissingNamespace(ctx context.Context, c *opcua.Client) (*ua.WriteResponse, error) {
	return c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      ua.NewStringNodeID(9, "valby/gym/gym.ahu.mode/Override"),
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)},
	}}})
}

func readOccupied(t *testing.T, c *opcua.Client) *ua.DataValue {
	t.Helper()
	// A child that just started serves its first snapshot a moment after
	// it listens (the control loop publishes every 10 ms): until then the
	// node is unknown.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := c.Read(t.Context(), &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
			NodeID: ua.NewStringNodeID(1, "valby/gym/Occupied"), AttributeID: ua.AttributeIDValue,
		}}})
		require.NoError(t, err)
		if res.Results[0].Status != ua.StatusBadNodeIDUnknown || time.Now().After(deadline) {
			return res.Results[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHostileClientCrashesStockServerNotControl runs the child with
// gopcua's own Write handler, which a write to a missing namespace index
// crashes: the child dies, the supervisor restarts it on the same
// endpoint, and the control loop in this process keeps ticking and
// publishing throughout.
func TestHostileClientCrashesStockServerNotControl(t *testing.T) {
	s := startSupervisor(t, testOptions("stock"))
	cl := runControlLoop(t, s)
	first := s.State()

	c := goClient(t, first.Endpoint)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	_, err := writeMissingNamespace(ctx, c)
	cancel()
	require.Error(t, err, "gopcua's own handler crashes instead of answering")

	second := waitUp(t, s, first.PID)
	require.Equal(t, first.Endpoint, second.Endpoint, "restarted on the same endpoint")
	require.GreaterOrEqual(t, second.Restarts, 1)
	require.Contains(t, second.LastError, "exited: exit status 2", "a Go panic")
	cl.advances(t, 20)

	// The new child serves the latest snapshot.
	c2 := goClient(t, second.Endpoint)
	require.Equal(t, ua.StatusOK, readOccupied(t, c2).Status)
}

// TestHostileClientAgainstOurServer sends what crashes or blocks gopcua's
// stock server to the child as shipped: it answers and keeps serving.
func TestHostileClientAgainstOurServer(t *testing.T) {
	s := startSupervisor(t, testOptions("normal"))
	cl := runControlLoop(t, s)
	first := s.State()

	// A client that connects and never says Hello would block gopcua's
	// accept loop; the proxy in front keeps it from doing so.
	host := strings.TrimPrefix(first.Endpoint, "opc.tcp://")
	silent, err := net.Dial("tcp", host)
	require.NoError(t, err)
	defer silent.Close()

	c := goClient(t, first.Endpoint)
	res, err := writeMissingNamespace(t.Context(), c)
	require.NoError(t, err)
	require.Equal(t, ua.StatusBadNodeIDUnknown, res.Results[0])
	// Unknown monitored items and subscriptions (nil dereferences in
	// gopcua's handlers).
	_, err = c.Write(t.Context(), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: ua.NewStringNodeID(1, "valby/gym/gym.ahu.mode/Override"), AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant("three")},
	}}})
	require.NoError(t, err)
	require.Equal(t, ua.StatusOK, readOccupied(t, c).Status)
	cl.advances(t, 10)
	st := s.State()
	require.Equal(t, first.PID, st.PID, "same child")
	require.Equal(t, 1, st.Starts)
}

// TestHungChildIsReplaced freezes the child (SIGSTOP), as a deadlock
// would: it stops answering pings, the supervisor kills it and starts
// another, and the control loop never waits.
func TestHungChildIsReplaced(t *testing.T) {
	s := startSupervisor(t, testOptions("normal"))
	cl := runControlLoop(t, s)
	first := s.State()
	require.NoError(t, syscall.Kill(first.PID, syscall.SIGSTOP))
	cl.advances(t, 20)
	second := waitUp(t, s, first.PID)
	require.Contains(t, second.LastError, "stopped answering")
	require.Equal(t, first.Endpoint, second.Endpoint)
	cl.advances(t, 10)
	c := goClient(t, second.Endpoint)
	require.Equal(t, ua.StatusOK, readOccupied(t, c).Status)
}

// TestDeadServerIsReplaced: a child whose OPC UA server stopped serving
// still answers pings, so pings alone would keep it; its own probe finds
// the server dead and the supervisor replaces it, while the control loop
// never waits.
func TestDeadServerIsReplaced(t *testing.T) {
	opts := testOptions("dead")
	opts.ProbeTimeout = 300 * time.Millisecond
	s := startSupervisor(t, opts)
	cl := runControlLoop(t, s)
	first := s.State()
	second := waitUp(t, s, first.PID)
	require.Contains(t, second.LastError, "opc ua server stopped answering: 2 probes in a row failed")
	cl.advances(t, 10)

	// A serving child is never taken for dead: probes every 100 ms.
	n := startSupervisor(t, testOptions("normal"))
	ncl := runControlLoop(t, n)
	before := n.State()
	time.Sleep(time.Second)
	ncl.advances(t, 10)
	after := n.State()
	require.Equal(t, before.PID, after.PID, "the same child after ten probes")
	require.Equal(t, 1, after.Starts)
	require.Empty(t, after.LastError)
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" for valid
	}{
		{"loopback", Options{Endpoint: "opc.tcp://127.0.0.1:4840"}, ""},
		{"localhost", Options{Endpoint: "opc.tcp://localhost:4840"}, ""},
		{"ipv6 loopback", Options{Endpoint: "opc.tcp://[::1]:4840"}, ""},
		{"default", Options{}, ""},
		{"all interfaces refused", Options{Endpoint: "opc.tcp://0.0.0.0:4840"}, "is not loopback; gopcua's server offers security None only"},
		{"lan address refused", Options{Endpoint: "opc.tcp://10.1.2.3:4840"}, "set allow_insecure_network to"},
		{"host name refused", Options{Endpoint: "opc.tcp://gw.school.local:4840"}, "is not loopback"},
		{"acknowledged", Options{Endpoint: "opc.tcp://0.0.0.0:4840", AllowInsecureNetwork: InsecureAcknowledgement}, ""},
		{"wrong acknowledgement", Options{Endpoint: "opc.tcp://0.0.0.0:4840", AllowInsecureNetwork: "yes"}, "allow_insecure_network must be exactly"},
		{"bad scheme", Options{Endpoint: "http://127.0.0.1:4840"}, "want opc.tcp://host:port"},
		{"bad peer", Options{Writable: []string{"valby/p"}, AllowedPeers: []string{"10.0.0.0/33"}}, `allowed peer "10.0.0.0/33"`},
		{"writable without peers", Options{Writable: []string{"valby/p"}}, "writable points need allowed_peers"},
		{"bad writable", Options{Writable: []string{"p"}, AllowedPeers: []string{"127.0.0.1"}}, `writable "p": want site/point`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := New(Options{Endpoint: "opc.tcp://0.0.0.0:4840"})
	require.ErrorIs(t, err, ErrInsecureNetwork)
}

func TestPeerAllowed(t *testing.T) {
	peers, err := parsePeers([]string{"10.0.0.0/8", "192.168.1.7", "::1"})
	require.NoError(t, err)
	require.True(t, peerAllowed("10.20.30.40:5000", peers))
	require.True(t, peerAllowed("192.168.1.7:1", peers))
	require.False(t, peerAllowed("192.168.1.8:1", peers))
	require.True(t, peerAllowed("[::1]:4840", peers))
	require.True(t, peerAllowed("[::ffff:10.0.0.1]:4840", peers), "IPv4-mapped")
	require.False(t, peerAllowed("", peers))
	require.False(t, peerAllowed("127.0.0.1:1", nil))
}

func TestSnapshotCheck(t *testing.T) {
	s := snapshot(true)
	require.NoError(t, s.Check())

	bad := snapshot(false)
	bad.Sites[0].Points = append(bad.Sites[0].Points, Point{ID: "gym"}) // collides with the space
	bad.Sites[0].Spaces[1].ID = "a/b"
	nan := 0.0
	nan /= nan
	bad.Sites[0].Spaces[0].Points[0].Desired = &nan
	err := bad.Check()
	require.ErrorIs(t, err, ErrBadSnapshot)
	require.ErrorContains(t, err, `space id "a/b"`)
	require.ErrorContains(t, err, "gym.ahu.mode desired is NaN")

	dup := snapshot(false)
	dup.Sites[0].Points = append(dup.Sites[0].Points, Point{ID: "gym"})
	require.ErrorContains(t, dup.Check(), `node id "valby/gym" is used twice`)

	feeds := snapshot(false) // leisure and sports
	feeds.Feeds = append(feeds.Feeds, control.FeedStatus{Source: "a/b"})
	require.ErrorContains(t, feeds.Check(), `booking source id "a/b"`)
	feeds.Feeds[2].Source = "leisure"
	require.ErrorContains(t, feeds.Check(), `node id "Feeds/leisure" is used twice`)
}
