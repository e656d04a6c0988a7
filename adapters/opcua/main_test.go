package opcua

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/adapters/opcua/opcuasim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

func TestMain(m *testing.M) {
	// gopcua prints start-up chatter with the standard log package.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}

// point returns a writable point with an OPC UA address.
func point(id string, typ site.DataType, node string) *site.Point {
	return &site.Point{ID: id, Type: typ, Access: site.AccessWrite, Scale: 1, OPCUA: &site.OPCUAAddress{NodeID: node}}
}

// floatPoints returns n float64 points in namespace 2.
func floatPoints(n int) []*site.Point {
	ps := make([]*site.Point, n)
	for i := range ps {
		ps[i] = point(fmt.Sprintf("p%04d", i), site.TypeFloat64, fmt.Sprintf("ns=2;s=Bench.P%04d", i))
	}
	return ps
}

// testLogger logs to the test's output and counts messages.
type testLogger struct {
	*slog.Logger
	mu     sync.Mutex
	counts map[string]int
}

type countHandler struct {
	slog.Handler
	tl *testLogger
}

func (h countHandler) Handle(ctx context.Context, r slog.Record) error {
	h.tl.mu.Lock()
	h.tl.counts[r.Message]++
	h.tl.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h countHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countHandler{h.Handler.WithAttrs(as), h.tl}
}

func (h countHandler) WithGroup(name string) slog.Handler {
	return countHandler{h.Handler.WithGroup(name), h.tl}
}

func newTestLogger(t *testing.T) *testLogger {
	tl := &testLogger{counts: map[string]int{}}
	h := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})
	tl.Logger = slog.New(countHandler{h, tl})
	return tl
}

func (tl *testLogger) count(msg string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.counts[msg]
}

// startSim starts a simulator serving pts for the test.
func startSim(t testing.TB, pts []*site.Point, opts opcuasim.Options) *opcuasim.Server {
	t.Helper()
	sim, err := opcuasim.New(pts, opts, nil)
	require.NoError(t, err)
	require.NoError(t, sim.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, sim.Close()) })
	return sim
}

// simOptions are client options for a simulator: no security, and
// timings short enough for tests.
func simOptions(endpoint string) Options {
	return Options{
		Name:               "sim",
		Endpoint:           endpoint,
		SecurityPolicy:     PolicyNone,
		RequestTimeout:     2 * time.Second,
		BackoffMin:         20 * time.Millisecond,
		BackoffMax:         200 * time.Millisecond,
		PublishingInterval: 20 * time.Millisecond,
		StaleAfter:         time.Hour,
	}
}

// newClient builds a client that is closed when the test ends.
func newClient(t testing.TB, opts Options, logger *slog.Logger) *Client {
	t.Helper()
	c, err := New(opts, logger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// waitReadable retries reading p until it works: the readiness check.
func waitReadable(t *testing.T, c *Client, p *site.Point) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		r := c.Read(t.Context(), []*site.Point{p})
		assert.NoError(ct, r[0].Err)
	}, 10*time.Second, 10*time.Millisecond)
}

// watch runs Watch in the background until the test ends and returns its
// readings.
func watch(t *testing.T, c *Client, pts []*site.Point) <-chan control.Reading {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan control.Reading, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Watch(ctx, pts, out); err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return out
}

// expect waits for a reading that satisfies ok and returns it.
func expect(t *testing.T, ch <-chan control.Reading, what string, ok func(control.Reading) bool) control.Reading {
	t.Helper()
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case r := <-ch:
			if ok(r) {
				return r
			}
			seen = append(seen, fmt.Sprintf("%s=%v err=%v", r.Point, r.Value, r.Err))
		case <-timer.C:
			t.Fatalf("no reading %s; saw %s", what, strings.Join(seen, "; "))
			return control.Reading{}
		}
	}
}

// expectInitial waits for one error-free reading of each point with
// value v, in any order.
func expectInitial(t *testing.T, ch <-chan control.Reading, pts []*site.Point, v float64) {
	t.Helper()
	want := map[string]bool{}
	for _, p := range pts {
		want[p.ID] = true
	}
	for len(want) > 0 {
		r := expect(t, ch, fmt.Sprintf("initial values of %d more points", len(want)), func(r control.Reading) bool {
			return want[r.Point] && r.Err == nil && r.Value == v
		})
		delete(want, r.Point)
	}
}

// valueOf matches a reading of point id with value v and no error.
func valueOf(id string, v float64) func(control.Reading) bool {
	return func(r control.Reading) bool { return r.Point == id && r.Err == nil && r.Value == v }
}
