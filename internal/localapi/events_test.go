package localapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/store"
)

// eventBackend is a backend with a real journal and event bus.
type eventBackend struct {
	backend
	bus *events.Bus
}

func (b *eventBackend) Events() *events.Bus { return b.bus }

var _ EventSource = (*eventBackend)(nil)

func newEventBackend(t *testing.T, opts events.Options) *eventBackend {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	j, err := journal.Open(t.Context(), db, journal.Options{KeepPersonal: true, PersonalRetention: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	bus, err := events.NewBus(t.Context(), j, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		bus.Close()
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	})
	return &eventBackend{bus: bus}
}

var t0 = time.Date(2026, 11, 26, 21, 20, 0, 0, time.UTC)

func (b *eventBackend) publish(t *testing.T, at time.Time, kind events.Kind, sev events.Severity, space string) events.Event {
	t.Helper()
	e, err := b.bus.Publish(t.Context(), events.Event{
		Time: at, Site: "valby-skole", Space: space, Kind: kind, Severity: sev, Subject: space + "_door",
		Points: []string{space + "_door.contact"}, Message: fmt.Sprintf("%s at %s", kind, space), CardHolder: "Jens Jensen",
	})
	require.NoError(t, err)
	require.Equal(t, "Jens Jensen", e.CardHolder, "kept in the journal")
	return e
}

// rawGet sends an authorised GET over the socket and returns the
// response; the caller closes its body.
func rawGet(t *testing.T, dir, path string, header http.Header) *http.Response {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(dir, TokenName))
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(dir, SocketName))
	}}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://bmsgw"+path, nil)
	require.NoError(t, err)
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := hc.Do(req)
	require.NoError(t, err)
	return resp
}

func ids(evs []events.Event) []int64 {
	var out []int64
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestEventsListFiltersAndNeverShowsCardHolders(t *testing.T) {
	b := newEventBackend(t, events.Options{})
	dir := serve(t, b)
	c, err := Dial(dir)
	require.NoError(t, err)
	ctx := t.Context()
	a := b.publish(t, t0, events.DoorHeldOpen, events.Warning, "gym")
	f := b.publish(t, t0.Add(time.Minute), events.DoorForced, events.Alarm, "hall")
	p := b.publish(t, t0.Add(2*time.Minute), events.Panic, events.Critical, "gym")

	all, err := c.Events(ctx, events.Filter{})
	require.NoError(t, err)
	require.Equal(t, []int64{a.ID, f.ID, p.ID}, ids(all))
	want := a
	want.CardHolder = ""
	require.Equal(t, want, all[0])

	got, err := c.Events(ctx, events.Filter{MinSeverity: events.Alarm, Space: "gym"})
	require.NoError(t, err)
	require.Equal(t, []int64{p.ID}, ids(got))
	got, err = c.Events(ctx, events.Filter{Kinds: []events.Kind{events.DoorForced, events.DoorHeldOpen}, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []int64{f.ID}, ids(got))
	got, err = c.Events(ctx, events.Filter{SinceID: a.ID, Until: t0.Add(2 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, []int64{f.ID}, ids(got))

	resp := rawGet(t, dir, "/v1/events?since=24000h", nil)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `"subject":"gym_door"`)
	require.NotContains(t, string(body), "Jens")

	for query, want := range map[string]string{
		"kind=door_forced,dorr_held_open": `unknown event kind "dorr_held_open"`,
		"severity=major":                  `unknown severity "major"`,
		"since=yesterday":                 `since "yesterday": use a time (RFC 3339`,
		"limit=20000":                     "at most 10000",
		"limit=-1":                        `limit "-1": use a whole number`,
		"sice=1h":                         `unknown parameter "sice"`,
		"since=1h&until=2h":               "is not after",
		"kind=panic&kind=leak":            "kind given 2 times",
	} {
		resp := rawGet(t, dir, "/v1/events?"+query, nil)
		var e struct{ Error string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, query)
		require.Contains(t, e.Error, want, query)
	}
}

func TestEventsNeedAnEventSource(t *testing.T) {
	dir := serve(t, &backend{})
	c, err := Dial(dir)
	require.NoError(t, err)
	_, err = c.Events(t.Context(), events.Filter{})
	require.ErrorContains(t, err, "does not record events")
	err = c.StreamEvents(t.Context(), events.Filter{}, func(events.Event) error { return nil })
	require.ErrorContains(t, err, "does not record events")
}

// sse reads server-sent events from a raw response body.
type sse struct {
	r *bufio.Reader
}

type frame struct {
	id, event, data string
	comment         bool
}

// next returns the next frame; a comment is one too.
func (s sse) next(t *testing.T) frame {
	t.Helper()
	var f frame
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && (f.data != "" || f.comment):
			return f
		case line == "":
		case strings.HasPrefix(line, ":"):
			f.comment = true
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		case strings.HasPrefix(line, "retry: "):
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func TestEventStreamReplaysFromLastEventIDThenGoesLive(t *testing.T) {
	b := newEventBackend(t, events.Options{})
	dir := serve(t, b)
	a := b.publish(t, t0, events.DoorOpened, events.Info, "gym")
	f := b.publish(t, t0.Add(time.Second), events.DoorForced, events.Alarm, "gym")
	h := b.publish(t, t0.Add(2*time.Second), events.DoorHeldOpen, events.Warning, "hall")

	// Last-Event-ID wins over the since_id of the URL, as when a browser
	// reconnects.
	resp := rawGet(t, dir, "/v1/events/stream?since_id=0&space=gym", http.Header{"Last-Event-ID": {fmt.Sprint(a.ID)}})
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := sse{bufio.NewReader(resp.Body)}
	fr := s.next(t)
	require.Equal(t, fmt.Sprint(f.ID), fr.id)
	require.Equal(t, "door_forced", fr.event)
	require.Contains(t, fr.data, `"message":"door_forced at gym"`)
	require.NotContains(t, fr.data, "Jens")
	_ = h // in the hall: filtered out

	live := b.publish(t, t0.Add(3*time.Second), events.Panic, events.Critical, "gym")
	fr = s.next(t)
	require.Equal(t, fmt.Sprint(live.ID), fr.id, "the hall event never came, the live one did")
	require.Equal(t, "panic", fr.event)
	require.NotContains(t, fr.data, "Jens")
}

func TestEventStreamClientResumesWithoutGaps(t *testing.T) {
	b := newEventBackend(t, events.Options{})
	dir := serve(t, b)
	c, err := Dial(dir)
	require.NoError(t, err)
	var stored []events.Event
	for i := range 3 {
		stored = append(stored, b.publish(t, t0.Add(time.Duration(i)*time.Second), events.DoorOpened, events.Info, "gym"))
	}

	// Live only: nothing stored before is sent.
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan events.Event, 16)
	done := make(chan error, 1)
	go func() {
		done <- c.StreamEvents(ctx, events.Filter{}, func(e events.Event) error { got <- e; return nil })
	}()
	// The stream is subscribed once the keep-alive comment or a first
	// event could arrive; publish until one arrives (a publish before the
	// subscription is simply not live).
	var first events.Event
	require.Eventually(t, func() bool {
		b.publish(t, t0.Add(time.Hour), events.DoorClosed, events.Info, "gym")
		select {
		case first = <-got:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond)
	require.Greater(t, first.ID, stored[2].ID)
	cancel()
	require.NoError(t, <-done, "ending by ctx is not an error")

	// Resume after the first live event: everything after it, then live.
	after, err := c.Events(t.Context(), events.Filter{SinceID: first.ID})
	require.NoError(t, err)
	var resumed []int64
	stop := errors.New("enough")
	next := b.publish(t, t0.Add(2*time.Hour), events.DoorForced, events.Alarm, "gym")
	want := append(ids(after), next.ID)
	err = c.StreamEvents(t.Context(), events.Filter{SinceID: first.ID}, func(e events.Event) error {
		resumed = append(resumed, e.ID)
		if len(resumed) == len(want) {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, want, resumed)
}

func TestLaggingStreamCatchesUpFromTheJournal(t *testing.T) {
	var logs syncBuffer
	b := newEventBackend(t, events.Options{Buffer: 2})
	dir := filepath.Join(t.TempDir(), "s")
	srv, err := Listen(dir, b, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-served)
	}()
	c, err := Dial(dir)
	require.NoError(t, err)

	// Big events, so that the socket fills while the client does not
	// read and the server's subscription (2 events) overflows.
	big := strings.Repeat("x", 8<<10)
	before := b.publish(t, t0, events.DoorOpened, events.Info, "gym")
	first := b.publish(t, t0, events.DoorOpened, events.Info, "gym")
	published := make(chan []int64, 1)
	release := make(chan struct{})
	var (
		mu  sync.Mutex
		got []int64
	)
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- c.StreamEvents(ctx, events.Filter{SinceID: before.ID}, func(e events.Event) error {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n == 0 {
				<-release // hold the stream while the events pile up
			}
			mu.Lock()
			got = append(got, e.ID)
			mu.Unlock()
			return nil
		})
	}()
	all := []int64{first.ID}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				e, err := b.bus.Publish(ctx, events.Event{Time: t0, Site: "valby-skole", Kind: events.DoorOpened, Severity: events.Info,
					Message: fmt.Sprintf("%d/%d %s", w, i, big)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, e.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(all)
	published <- all
	close(release)
	last := all[len(all)-1]
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "event stream fell behind") },
		10*time.Second, 5*time.Millisecond, "the stream lagged (else this test proves nothing)")
	// Wait for the last event, then end the stream.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, last)
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-streamDone)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, <-published, got, "every event once, in id order")
}

func TestEventStreamKeepAliveAndShutdown(t *testing.T) {
	old := keepAlive
	keepAlive = 10 * time.Millisecond
	defer func() { keepAlive = old }()
	b := newEventBackend(t, events.Options{})
	dir := filepath.Join(t.TempDir(), "s")
	srv, err := Listen(dir, b, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	resp := rawGet(t, dir, "/v1/events/stream", nil)
	defer resp.Body.Close()
	s := sse{bufio.NewReader(resp.Body)}
	require.True(t, s.next(t).comment, "an idle stream gets keep-alive comments")

	c, err := Dial(dir)
	require.NoError(t, err)
	streamErr := make(chan error, 1)
	got := make(chan events.Event, 100)
	go func() {
		streamErr <- c.StreamEvents(t.Context(), events.Filter{}, func(e events.Event) error { got <- e; return nil })
	}()
	require.Eventually(t, func() bool { // the client's stream is live
		b.publish(t, t0, events.DoorClosed, events.Info, "gym")
		select {
		case <-got:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond)

	// Shutdown ends the streams at once rather than waiting for them,
	// and tells the clients why.
	start := time.Now()
	cancel()
	require.NoError(t, <-served)
	require.Less(t, time.Since(start), 4*time.Second, "Shutdown did not wait for its 5 s deadline")
	err = <-streamErr
	require.ErrorIs(t, err, ErrStreamEnded)
	require.ErrorContains(t, err, "shutting down")
	for {
		fr := s.next(t)
		if fr.comment || fr.event == "door_closed" {
			continue
		}
		require.Equal(t, "error", fr.event)
		require.Contains(t, fr.data, "the gateway is shutting down")
		break
	}
}

func TestEventQueryRoundTrip(t *testing.T) {
	f := events.Filter{
		SinceID: 42, Since: t0, Until: t0.Add(time.Hour), Kinds: []events.Kind{events.DoorForced, events.Panic},
		Site: "valby-skole", Space: "gym", MinSeverity: events.Warning, Limit: 7,
	}
	got, err := ParseEventQuery(EventQuery(f), time.Now())
	require.NoError(t, err)
	require.Equal(t, f, got)

	now := t0.Add(24 * time.Hour)
	got, err = ParseEventQuery(url.Values{"since": {"90m"}}, now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-90*time.Minute), got.Since)
}

// syncBuffer is a bytes.Buffer for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
