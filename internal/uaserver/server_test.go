package uaserver

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
)

// gateway stands in for the engine's side of the write path: it takes
// the supervisor's writes, refuses values outside 0..3 as the engine
// would (control.ErrOutOfRange), and records the rest.
type gateway struct {
	mu  sync.Mutex
	got []WriteRequest
}

func runGateway(t *testing.T, s *Supervisor) *gateway {
	g := &gateway{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case w := <-s.Writes():
				if w.Value < 0 || w.Value > 3 {
					w.Respond(control.ErrOutOfRange)
					continue
				}
				g.mu.Lock()
				g.got = append(g.got, w)
				g.mu.Unlock()
				w.Respond(nil)
			case <-done:
				return
			}
		}
	})
	t.Cleanup(func() { close(done); wg.Wait() })
	return g
}

func (g *gateway) writes() []WriteRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]WriteRequest(nil), g.got...)
}

// TestNodeOPCUAClient is the check: a third-party client
// (node-opcua) browses, reads, subscribes and sees a window start, and
// writes an override where allowed and is refused where not.
func TestNodeOPCUAClient(t *testing.T) {
	s := startSupervisor(t, testOptions("normal"))
	g := runGateway(t, s)
	s.Publish(snapshot(false))
	nc := startNodeClient(t)
	nc.do(map[string]any{"op": "connect", "endpoint": s.State().Endpoint})
	require.EqualValues(t, 1, nc.do(map[string]any{"op": "namespace", "uri": NamespaceURI})["index"])

	// The first snapshot reaches the child asynchronously.
	for range 200 {
		if r := nc.do(map[string]any{"op": "read", "node": "ns=1;s=valby/gym/NextStart"}); r["status"] == "Good" {
			break
		}
	}

	browse := func(node string) map[string]string {
		r := nc.do(map[string]any{"op": "browse", "node": node})
		require.Equal(t, "Good", r["status"], node)
		out := map[string]string{}
		for _, ref := range r["refs"].([]any) {
			m := ref.(map[string]any)
			out[m["browseName"].(string)] = m["nodeId"].(string)
		}
		return out
	}
	objects := browse("i=85")
	require.Equal(t, "ns=1;s=Gateway", objects["Gateway"], "the gateway's folder under Objects")
	require.Equal(t, map[string]string{"SnapshotTime": "ns=1;s=SnapshotTime", "Feeds": "ns=1;s=Feeds", "valby": "ns=1;s=valby"}, browse("ns=1;s=Gateway"))
	require.Equal(t, map[string]string{"leisure": "ns=1;s=Feeds/leisure", "sports": "ns=1;s=Feeds/sports"}, browse("ns=1;s=Feeds"))
	site := browse("ns=1;s=valby")
	require.Equal(t, "ns=1;s=valby/gym", site["gym"])
	require.Equal(t, "ns=1;s=valby/room12", site["room12"])
	require.Equal(t, "ns=1;s=valby/heartbeat", site["heartbeat"])
	require.Equal(t, "ns=1;s=valby/Devices", site["Devices"])
	gym := browse("ns=1;s=valby/gym")
	for _, name := range []string{"Occupied", "CurrentStart", "CurrentEnd", "NextStart", "NextEnd", "Organiser", "Source", "Events", "gym.ahu.mode", "gym.lights"} {
		require.Equal(t, "ns=1;s=valby/gym/"+name, gym[name])
	}
	require.Equal(t, "ns=1;s=valby/gym/gym.ahu.mode/Desired", browse("ns=1;s=valby/gym/gym.ahu.mode")["Desired"])
	require.Equal(t, "ns=1;s=valby/gym/Events/1/Kind", browse("ns=1;s=valby/gym/Events/1")["Kind"])
	require.Equal(t, "ns=1;s=valby/Devices/bms/plc1/Up", browse("ns=1;s=valby/Devices/bms/plc1")["Up"])

	read := func(node string) map[string]any { return nc.do(map[string]any{"op": "read", "node": node}) }
	r := read("ns=1;s=valby/gym/gym.ahu.mode/Desired")
	require.Equal(t, "Good", r["status"])
	require.Equal(t, "Double", r["dataType"])
	require.EqualValues(t, 0, r["value"])
	require.Equal(t, true, read("ns=1;s=valby/Devices/bms/plc1/Up")["value"])
	require.Equal(t, "door_closed", read("ns=1;s=valby/gym/Events/1/Kind")["value"])
	require.Equal(t, "valby-volley", read("ns=1;s=valby/gym/Organiser")["value"])
	require.Equal(t, "2026-11-26T18:00:00.000Z", read("ns=1;s=valby/gym/NextStart")["value"])
	require.Equal(t, "GoodNoData", read("ns=1;s=valby/gym/CurrentStart")["status"], "vacant: no current window")
	// A failing booking feed: the plans stand on its last good copy.
	require.Equal(t, false, read("ns=1;s=Feeds/sports/OK")["value"])
	require.Equal(t, true, read("ns=1;s=Feeds/sports/FromCache")["value"])
	r = read("ns=1;s=Feeds/sports/ConsecutiveFailures")
	require.Equal(t, "Int32", r["dataType"])
	require.EqualValues(t, 3, r["value"])
	require.Contains(t, read("ns=1;s=Feeds/sports/LastError")["value"], "503")
	require.Equal(t, "2026-11-26T09:00:00.000Z", read("ns=1;s=Feeds/sports/FetchedAt")["value"])
	require.Equal(t, true, read("ns=1;s=Feeds/leisure/OK")["value"])
	require.EqualValues(t, 41, read("ns=1;s=Feeds/leisure/Bookings")["value"])
	require.Equal(t, "GoodNoData", read("ns=1;s=Feeds/leisure/FetchedAt")["status"], "not from the cache")

	// Subscribe, then the gym's window starts.
	nc.do(map[string]any{"op": "subscribe", "node": "ns=1;s=valby/gym/Occupied"})
	nc.do(map[string]any{"op": "subscribe", "node": "ns=1;s=valby/gym/gym.ahu.mode/Desired"})
	nc.expectChange("ns=1;s=valby/gym/Occupied", func(m map[string]any) bool { return m["value"] == false })
	s.Publish(snapshot(true))
	nc.expectChange("ns=1;s=valby/gym/Occupied", func(m map[string]any) bool { return m["value"] == true })
	nc.expectChange("ns=1;s=valby/gym/gym.ahu.mode/Desired", func(m map[string]any) bool { return m["value"] == 2.0 })
	require.Equal(t, "booking", read("ns=1;s=valby/gym/Source")["value"])
	require.Equal(t, "2026-11-26T18:00:00.000Z", read("ns=1;s=valby/gym/CurrentStart")["value"])

	// Writes.
	write := func(node, typ string, v any) string {
		return nc.do(map[string]any{"op": "write", "node": node, "type": typ, "value": v})["status"].(string)
	}
	require.Equal(t, "Good", write("ns=1;s=valby/gym/gym.ahu.mode/Override", "Double", 3))
	require.Equal(t, "Good", write("ns=1;s=valby/gym/gym.lights/Override", "Boolean", true))
	require.Equal(t, "BadTypeMismatch", write("ns=1;s=valby/gym/gym.ahu.mode/Override", "Int32", 3), "wrong type")
	require.Equal(t, "BadTypeMismatch", write("ns=1;s=valby/gym/gym.lights/Override", "Double", 1), "wrong type")
	require.Equal(t, "BadNotWritable", write("ns=1;s=valby/gym/gym.ahu.mode/Desired", "Double", 3), "read-only node")
	require.Equal(t, "BadNotWritable", write("ns=1;s=valby/heartbeat/Override", "Double", 3), "point not listed writable")
	require.Equal(t, "BadNotWritable", write("ns=1;s=valby/gym/Occupied", "Boolean", false))
	require.Equal(t, "BadOutOfRange", write("ns=1;s=valby/gym/gym.ahu.mode/Override", "Double", 7), "the gateway refused it")
	require.Equal(t, "BadNodeIdUnknown", write("ns=1;s=valby/gym/nope/Override", "Double", 1))
	require.Equal(t, "BadNodeIdUnknown", write("ns=9;s=valby/gym/gym.ahu.mode/Override", "Double", 1), "missing namespace: refused, no crash")
	require.Equal(t, "BadNotWritable", write("i=2258", "DateTime", "2026-01-01T00:00:00Z"))
	// A null value releases the override.
	require.Equal(t, "Good", write("ns=1;s=valby/gym/gym.ahu.mode/Override", "Null", nil))
	require.Equal(t, "BadNotWritable", write("ns=1;s=valby/heartbeat/Override", "Null", nil), "a release needs a writable point too")

	got := g.writes()
	require.Len(t, got, 3)
	require.True(t, got[2].Clear, "the release reaches the gateway as one")
	require.Equal(t, "gym.ahu.mode", got[2].Point)
	require.False(t, got[0].Clear)
	require.Equal(t, "valby", got[0].Site)
	require.Equal(t, "gym.ahu.mode", got[0].Point)
	require.Equal(t, 3.0, got[0].Value)
	require.Contains(t, got[0].Peer, "127.0.0.1:")
	require.Equal(t, "gym.lights", got[1].Point)
	require.Equal(t, 1.0, got[1].Value)
	require.Equal(t, 1, s.State().Starts, "no restart along the way")
	nc.do(map[string]any{"op": "close"})
}
