package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/store"
)

// eventsDaemon is the gateway as far as the event stream goes: the real
// bus on the real journal, behind the real local API.
type eventsDaemon struct{ bus *events.Bus }

func (d eventsDaemon) Events() *events.Bus { return d.bus }
func (eventsDaemon) Status(context.Context) (control.Status, error) {
	return control.Status{}, errors.New("not in this test")
}
func (eventsDaemon) SetOverride(context.Context, control.Override) error {
	return errors.New("not in this test")
}
func (eventsDaemon) ClearOverride(context.Context, string, string, string) error {
	return errors.New("not in this test")
}
func (eventsDaemon) Reload(context.Context, bool) ([]string, error) {
	return nil, errors.New("not in this test")
}

// seedEvents opens the journal of the state directory as the gateway
// does, keeping card holders, publishes an evening's events at
// valby-skole and returns the bus; it is closed when the test ends.
func seedEvents(t *testing.T, state string, now time.Time) (*events.Bus, []events.Event) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(state, "journal.db"))
	require.NoError(t, err)
	j, err := journal.Open(ctx, db, journal.Options{KeepPersonal: true, PersonalRetention: 30 * 24 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	bus, err := events.NewBus(ctx, j, events.Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		bus.Close()
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	})
	var out []events.Event
	for _, e := range []events.Event{
		{Time: now.Add(-30 * time.Hour), Kind: events.DoorOpened, Severity: events.Info, Space: "gym", Subject: "gym_entrance", Message: "yesterday"},
		{Time: now.Add(-3 * time.Hour), Kind: events.DoorForced, Severity: events.Alarm, Space: "gym", Subject: "gym_side_door",
			Points: []string{"gym_side_door.contact", "gym_side_door.bolt"}, Message: "gym side door opened while locked, no grant", CardHolder: "Jens Jensen"},
		{Time: now.Add(-2 * time.Hour), Kind: events.DoorHeldOpen, Severity: events.Warning, Space: "gym", Subject: "gym_side_door",
			Booking: "central:4711", Organiser: "org-12", Message: "held open 5 min,\nby a bin"},
		{Time: now.Add(-50 * time.Minute), Kind: events.Panic, Severity: events.Critical, Space: "hall", Subject: "hall_panic", Message: "panic button in the hall"},
		{Time: now.Add(-10 * time.Minute), Kind: events.AccessGranted, Severity: events.Info, Space: "gym", Subject: "gym_entrance",
			Booking: "central:4711", Organiser: "org-12", Message: "card granted at the gym entrance", CardHolder: "Karen Hansen"},
	} {
		e.Site = "valby-skole"
		p, err := bus.Publish(ctx, e)
		require.NoError(t, err)
		out = append(out, p)
	}
	return bus, out
}

func runEvents(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(ctx, append([]string{"events"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestEventsCommand(t *testing.T) {
	// At the very end, after the cleanups that close the journal.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	cfg, state := journalConfig(t)
	ctx := t.Context()

	code, out, errOut := runEvents(ctx, "-c", cfg)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "no journal at "+filepath.Join(state, "journal.db"))

	now := time.Now()
	_, seeded := seedEvents(t, state, now)
	cph, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)

	t.Run("table", func(t *testing.T) {
		code, out, errOut := runEvents(ctx, "-c", cfg)
		require.Equal(t, 0, code, errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 5, out) // header and the 4 events of the last 24h
		require.Regexp(t, `^TIME\s+SEVERITY\s+KIND\s+SITE\s+SPACE\s+SUBJECT\s+MESSAGE$`, lines[0])
		stamp := now.Add(-3 * time.Hour).In(cph).Format("2006-01-02 15:04:05 MST")
		require.Regexp(t, `^`+stamp+`\s+alarm\s+door_forced\s+valby-skole\s+gym\s+gym_side_door\s+gym side door opened while locked, no grant$`, lines[1])
		require.Regexp(t, `warning\s+door_held_open\s+.*held open 5 min, by a bin$`, lines[2], "one line per event")
		require.NotContains(t, out, "Jens")
		require.NotContains(t, out, "Karen")
	})

	t.Run("personal table", func(t *testing.T) {
		code, out, errOut := runEvents(ctx, "-c", cfg, "--personal", "--kind", "door_forced,access_granted")
		require.Equal(t, 0, code, errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 3, out)
		require.Regexp(t, `MESSAGE\s+CARD HOLDER$`, lines[0])
		require.Regexp(t, `door_forced\s+.*no grant\s+Jens Jensen$`, lines[1])
		require.Regexp(t, `access_granted\s+.*gym entrance\s+Karen Hansen$`, lines[2])
	})

	t.Run("json", func(t *testing.T) {
		code, out, errOut := runEvents(ctx, "-c", cfg, "--format", "json", "--severity", "warning", "--space", "gym")
		require.Equal(t, 0, code, errOut)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		require.Len(t, rows, 2)
		require.Equal(t, "door_forced", rows[0]["kind"])
		require.Equal(t, float64(seeded[1].ID), rows[0]["id"])
		require.Equal(t, []any{"gym_side_door.contact", "gym_side_door.bolt"}, rows[0]["points"])
		require.Equal(t, "central:4711", rows[1]["booking"])
		require.Equal(t, "org-12", rows[1]["organiser"])
		require.NotContains(t, out, "Jens")
		for _, r := range rows {
			for k := range r {
				require.NotContains(t, strings.ToLower(k), "holder")
			}
		}
	})

	t.Run("csv", func(t *testing.T) {
		code, out, errOut := runEvents(ctx, "-c", cfg, "--format", "csv", "--since", "7d", "--limit", "3")
		require.Equal(t, 0, code, errOut)
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Len(t, recs, 4) // header and the latest 3
		require.Equal(t, eventsCSVHeader, recs[0])
		require.NotContains(t, strings.Join(recs[0], ","), "holder")
		require.Equal(t, []string{fmt.Sprint(seeded[2].ID), seeded[2].Time.UTC().Format(time.RFC3339Nano), "valby-skole", "gym", "door_held_open", "warning",
			"gym_side_door", "", "central:4711", "org-12", "held open 5 min,\nby a bin"}, recs[1])
		require.NotContains(t, out, "Karen")
	})

	t.Run("since and until", func(t *testing.T) {
		code, out, errOut := runEvents(ctx, "-c", cfg, "--since", "2d", "--until", "150m", "--format", "json")
		require.Equal(t, 0, code, errOut)
		var rows []events.Event
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		require.Len(t, rows, 2)
		require.Equal(t, seeded[0].ID, rows[0].ID)
		require.Equal(t, seeded[1].ID, rows[1].ID)
		code, out, _ = runEvents(ctx, "-c", cfg, "--since-id", fmt.Sprint(seeded[3].ID))
		require.Equal(t, 0, code)
		require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2, out)
		code, out, _ = runEvents(ctx, "-c", cfg, "--since", "5m")
		require.Equal(t, 0, code)
		require.Contains(t, out, "no events between")
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--personal", "--format", "json"}, "--personal cannot be used with --format json: card holders are personal data and never go into exports"},
			{[]string{"--personal", "--format", "csv"}, "--personal cannot be used with --format csv"},
			{[]string{"--personal", "--follow"}, "the gateway never streams card holders"},
			{[]string{"--kind", "door_held"}, `--kind: unknown event kind "door_held"; kinds are door_opened,`},
			{[]string{"--severity", "high"}, `--severity: unknown severity "high"`},
			{[]string{"--format", "xml"}, `--format "xml"`},
			{[]string{"--since", "last week"}, "--since:"},
			{[]string{"--since", "1h", "--until", "2h"}, "is not after"},
			{[]string{"--limit", "-2"}, "--limit -2"},
			{[]string{"--follow", "--limit", "5"}, "--limit does not apply to --follow"},
			{[]string{"extra"}, "usage: bmsgw events"},
		} {
			code, out, errOut := runEvents(ctx, append([]string{"-c", cfg}, tc.args...)...)
			require.Equal(t, 2, code, "%v: %s", tc.args, errOut)
			require.Empty(t, out)
			require.Contains(t, errOut, tc.want, tc.args)
		}
	})

	t.Run("follow without a gateway", func(t *testing.T) {
		code, _, errOut := runEvents(ctx, "-c", cfg, "--follow")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "no gateway is running")
	})
}

// syncBuf is an output buffer the test reads while the command writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEventsFollowStreamsFromTheGateway(t *testing.T) {
	// At the very end, after the cleanups that close the journal.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	cfg, state := journalConfig(t)
	now := time.Now()
	bus, seeded := seedEvents(t, state, now)

	srv, err := localapi.Listen(state, eventsDaemon{bus: bus}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	sctx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() {
		stopServer()
		require.NoError(t, <-served)
	}()

	ctx, interrupt := context.WithCancel(t.Context())
	var out, errOut syncBuf
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"events", "-c", cfg, "--follow", "--format", "json", "--since", "1h"}, &out, &errOut)
	}()
	lines := func() []events.Event {
		var evs []events.Event
		for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
			if l == "" {
				continue
			}
			var e events.Event
			require.NoError(t, json.Unmarshal([]byte(l), &e), "one JSON object a line: %q", l)
			evs = append(evs, e)
		}
		return evs
	}
	// The last hour from the journal first: the panic and the grant.
	require.Eventually(t, func() bool { return len(lines()) == 2 }, 10*time.Second, 5*time.Millisecond, errOut.String())
	require.Equal(t, []int64{seeded[3].ID, seeded[4].ID}, []int64{lines()[0].ID, lines()[1].ID})

	// Then live.
	live, err := bus.Publish(t.Context(), events.Event{Site: "valby-skole", Space: "gym", Kind: events.DoorForced, Severity: events.Alarm,
		Subject: "gym_side_door", Message: "forced again", CardHolder: "Jens Jensen"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(lines()) == 3 }, 10*time.Second, 5*time.Millisecond, errOut.String())
	require.Equal(t, live.ID, lines()[2].ID)
	require.Equal(t, "forced again", lines()[2].Message)
	require.NotContains(t, out.String(), "Jens")
	require.NotContains(t, out.String(), "Karen")

	interrupt() // Ctrl-C
	require.Equal(t, 0, <-code, errOut.String())

	// The gateway stopping ends a follow with the id to resume from.
	ctx, interrupt = context.WithCancel(t.Context())
	defer interrupt()
	out, errOut = syncBuf{}, syncBuf{}
	go func() {
		code <- run(ctx, []string{"events", "-c", cfg, "--follow", "--since", "1h"}, &out, &errOut)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "forced again") }, 10*time.Second, 5*time.Millisecond)
	require.Regexp(t, `^TIME  SEVERITY  KIND  SITE  SPACE  SUBJECT  MESSAGE\n`, out.String())
	stopServer()
	require.Equal(t, 1, <-code)
	require.Contains(t, errOut.String(), "shutting down")
	require.Contains(t, errOut.String(), fmt.Sprintf("resume with --since-id %d", live.ID))
}
