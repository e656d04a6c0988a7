package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/store"
)

// TestRunOPCUAWriteRate: write requests to an OPC UA server are paced by
// the connection's write_rate, a guard rail for head-ends that choke on
// bursts.
func TestRunOPCUAWriteRate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mapping := strings.ReplaceAll(`
site: {id: rate, time_zone: Europe/Copenhagen}
connections:
  - id: bms
    opcua: {endpoint: "opc.tcp://ADDR", security_policy: none, write_rate: 2}
points:
  - {id: a, connection: bms, opcua: {node_id: "ns=2;s=A"}, type: float32, access: write, min: 10, max: 30}
  - {id: b, connection: bms, opcua: {node_id: "ns=2;s=B"}, type: float32, access: write, min: 10, max: 30}
`, "ADDR", freePort(t))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(mapping), 0o644))
	cfg := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state_dir: state\nsites: [site.yaml]\nsimulate: {devices: true}\n"), 0o644))
	g, c, stop := startGateway(t, cfg, control.RealClock{})
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	until := time.Now().Add(time.Hour)
	for i, p := range []string{"a", "b", "a", "b"} {
		require.NoError(t, c.SetOverride(ctx, control.Override{Site: "rate", Point: p, Value: float64(12 + i), Until: until, Who: "t", Why: "rate"}))
		time.Sleep(10 * time.Millisecond) // one request each, not one batch
	}
	var es []journal.Entry
	for time.Now().Before(deadline) {
		db, err := store.OpenReadOnly(ctx, journalFile(g))
		if err == nil {
			es, err = journal.Query(ctx, db, journal.Filter{Kinds: []journal.Kind{journal.KindWrite}})
			db.Close()
			if err == nil && len(es) >= 3 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	require.GreaterOrEqual(t, len(es), 3)
	// The writes of one request share its time: when both overrides are
	// in before the first read of the server is (the connect can take
	// longer than the test), a and b go in one batched write request,
	// which is what the rate limits.
	var requests []time.Time
	for _, e := range es {
		if len(requests) == 0 || !e.Time.Equal(requests[len(requests)-1]) {
			requests = append(requests, e.Time)
		}
	}
	require.GreaterOrEqual(t, len(requests), 2, "writes in more than one request")
	for i := 1; i < len(requests); i++ {
		gap := requests[i].Sub(requests[i-1])
		require.GreaterOrEqual(t, gap, 450*time.Millisecond, "write request %d came %s after the previous one; write_rate 2 allows one per 500 ms", i, gap)
	}
}

// startGateway runs the gateway of the config file on clock until the
// returned stop, and returns the config and a client of its local API
// once that answers.
func startGateway(t *testing.T, cfg string, clock control.Clock) (*config.Gateway, *localapi.Client, func()) {
	t.Helper()
	g, err := config.Load(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGateway(ctx, g, runFlags{cfg: cfg}, clock, slog.New(slog.DiscardHandler)) }()
	var c *localapi.Client
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("gateway did not come up: %v", err)
		}
		if c, err = localapi.Dial(g.StateDir); err == nil {
			if _, err = c.Status(ctx); err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g, c, sync.OnceFunc(func() {
		cancel()
		require.NoError(t, <-done)
	})
}
