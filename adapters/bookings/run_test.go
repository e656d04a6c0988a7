package bookings

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runSource starts s.Run and returns the channel it sends on, and a stop
// function that cancels it and returns Run's result.
func runSource(t *testing.T, s *Source, out chan Snapshot) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, Around(0, 7*24*time.Hour), out) }()
	stopped := false
	stop = func() error {
		cancel()
		if stopped {
			return nil
		}
		stopped = true
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// receive waits for the next snapshot, failing the test after a generous
// deadline.
func receive(t *testing.T, out <-chan Snapshot) Snapshot {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	select {
	case snap := <-out:
		return snap
	case <-deadline.C:
		t.Fatal("no snapshot within 10s")
		return Snapshot{}
	}
}

func TestRunSendsChanges(t *testing.T) {
	b1, b2 := csvRow("b1", "gym", 0, 19, 21), csvRow("b2", "hall", 1, 19, 21)
	feed := newFeedServer(t, csvFeed(b1))
	s, _ := newTestSource(t, Options{
		Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client(),
		Interval: 5 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond,
	})
	out := make(chan Snapshot)
	stop := runSource(t, s, out)

	snap := receive(t, out)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	require.True(t, snap.Changed)
	require.True(t, snap.Status.Healthy())

	feed.set(func(f *feedServer) { f.body = csvFeed(b1, b2) })
	snap = receive(t, out)
	require.Equal(t, []string{"b1", "b2"}, ids(snap.Bookings))
	require.True(t, snap.Changed)

	// A failure changes the status, not the bookings; every further
	// failure is another status change.
	feed.set(func(f *feedServer) { f.status = http.StatusInternalServerError })
	snap = receive(t, out)
	require.False(t, snap.Changed)
	require.Equal(t, []string{"b1", "b2"}, ids(snap.Bookings))
	require.Equal(t, 1, snap.Status.ConsecutiveFailures)
	require.True(t, snap.Status.FromCache)
	snap = receive(t, out)
	require.Equal(t, 2, snap.Status.ConsecutiveFailures)

	feed.set(func(f *feedServer) { f.status = 0 })
	for snap.Status.ConsecutiveFailures > 0 {
		snap = receive(t, out)
	}
	require.True(t, snap.Status.Healthy())
	require.False(t, snap.Changed)

	require.NoError(t, stop())
}

func TestRunSendsRestoredFeedFirst(t *testing.T) {
	dir := t.TempDir()
	feed := newFeedServer(t, csvFeed(csvRow("b1", "gym", 0, 19, 21)))
	opts := Options{
		Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client(), StateDir: dir,
		Interval: time.Hour, Timeout: 50 * time.Millisecond,
	}
	s1, _ := newTestSource(t, opts)
	_, err := s1.Poll(context.Background(), thursday, winTo)
	require.NoError(t, err)
	feed.set(func(f *feedServer) { f.block = true }) // the first fetch will time out

	s2, _ := newTestSource(t, opts)
	out := make(chan Snapshot)
	stop := runSource(t, s2, out)
	snap := receive(t, out)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	require.True(t, snap.Status.FromCache)
	require.Equal(t, 0, snap.Status.ConsecutiveFailures, "sent before the first fetch")

	snap = receive(t, out)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	require.False(t, snap.Changed)
	require.Equal(t, 1, snap.Status.ConsecutiveFailures)
	require.Contains(t, snap.Status.LastError, "no complete reply within 50ms")
	require.NoError(t, stop())
}

func TestRunStops(t *testing.T) {
	tests := []struct {
		name  string
		block bool
	}{
		{name: "while nobody reads its snapshot"},
		{name: "during a blocked poll", block: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := newFeedServer(t, csvFeed(csvRow("b1", "gym", 0, 19, 21)))
			feed.set(func(f *feedServer) { f.block = tt.block })
			s, _ := newTestSource(t, Options{Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client(), Timeout: time.Minute})
			stop := runSource(t, s, make(chan Snapshot))
			// Once the poll reached the server, Run is inside it or past it.
			feed.waitRequest(t)
			require.NoError(t, stop())
			require.Equal(t, 0, s.Status().ConsecutiveFailures, "a poll cut short by shutdown is no failure")
		})
	}
}
