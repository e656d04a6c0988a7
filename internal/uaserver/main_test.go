package uaserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/testpeers"
)

// childModeEnv makes the test binary act as the child process: "normal"
// runs RunChild's code, "stock" the same with gopcua's own Write handler
// (which crashes on a missing namespace), "dead" closes its gopcua server
// once started and goes on answering pings.
const childModeEnv = "UASERVER_TEST_CHILD"

func TestMain(m *testing.M) {
	// gopcua prints start-up chatter with the standard log package.
	log.SetOutput(io.Discard)
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(testChild(mode))
	}
	goleak.VerifyTestMain(m)
}

// testChild is the child process's main in tests (cmd/bmsgw's hidden
// uaserver command does the same with RunChild).
func testChild(mode string) int {
	socket := ""
	for i, a := range os.Args {
		if a == "--socket" && i+1 < len(os.Args) {
			socket = os.Args[i+1]
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runChild(ctx, socket, os.Getenv(TokenEnv), logger, childOptions{stockWrite: mode == "stock", deadServer: mode == "dead"}); err != nil {
		fmt.Fprintln(os.Stderr, "uaserver child:", err)
		return 1
	}
	return 0
}

func f(v float64) *float64 { return &v }

// day is the reference Thursday (DOMAIN.md section 5).
var day = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// snapshot is Valby Skole before (occupied false) or after the gym's
// window starts at 18:00.
func snapshot(occupied bool) *Snapshot {
	gym := Space{
		ID: "gym", Name: "Gym", Next: &Window{Start: day.Add(18 * time.Hour), End: day.Add(21*time.Hour + 15*time.Minute)},
		Organiser: "valby-volley",
		Points: []Point{
			{ID: "gym.ahu.mode", Unit: "", Desired: f(0), Actual: f(0), Source: "default", InSync: true},
			{ID: "gym.lights", Bool: true, Desired: f(0), Actual: f(0), Source: "default", InSync: true},
		},
		Events: []Event{{Time: day.Add(17 * time.Hour), Kind: "door_closed", Severity: "info", Message: "gym side door closed"}},
	}
	if occupied {
		gym.Occupied, gym.Source = true, "booking"
		gym.Current, gym.Next = gym.Next, nil
		gym.Points[0].Desired, gym.Points[0].Source, gym.Points[0].InSync = f(2), "booking", false
	}
	return &Snapshot{Time: day.Add(18 * time.Hour), Sites: []Site{{
		ID: "valby", Name: "Valby Skole",
		Spaces:  []Space{gym, {ID: "room12", Name: "Classroom 12"}},
		Points:  []Point{{ID: "heartbeat", Desired: f(1)}},
		Devices: []Device{{Connection: "bms", Device: "plc1", Up: true, Since: day}},
	}}, Feeds: []control.FeedStatus{
		{Source: "leisure", OK: true, LastSuccess: day.Add(17*time.Hour + 55*time.Minute), Bookings: 41},
		{Source: "sports", ConsecutiveFailures: 3, LastError: "get https://booking.example/feed.ics?redacted: 503 Service Unavailable",
			FromCache: true, FetchedAt: day.Add(9 * time.Hour), LastSuccess: day.Add(9 * time.Hour), Bookings: 7},
	}}
}

// testOptions are supervisor options that run this test binary as the
// child in the given mode, with timings short enough for tests.
func testOptions(mode string) Options {
	return Options{
		Endpoint:     "opc.tcp://127.0.0.1:0",
		Writable:     []string{"valby/gym.ahu.mode", "valby/gym.lights"},
		AllowedPeers: []string{"127.0.0.0/8"},
		Executable:   os.Args[0],
		Args:         []string{},
		Env:          []string{childModeEnv + "=" + mode},
		PingInterval: 50 * time.Millisecond,
		PingTimeout:  time.Second,
		// Every test's child probes its server this often, so none may
		// be taken for dead while it serves.
		ProbeInterval: 100 * time.Millisecond,
		ProbeTimeout:  5 * time.Second,
		BackoffMin:    20 * time.Millisecond,
		BackoffMax:    200 * time.Millisecond,
		WriteTimeout:  5 * time.Second,
	}
}

// startSupervisor runs a supervisor until the test ends and waits for its
// child to serve.
func startSupervisor(t *testing.T, opts Options) *Supervisor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	waitUp(t, s, 0)
	return s
}

// waitUp waits until a child other than notPID serves, and returns it.
func waitUp(t *testing.T, s *Supervisor, notPID int) State {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := s.State()
		if st.Up && st.PID != notPID {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no child serving; state %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nodeClient is a running testdata/client.js.
type nodeClient struct {
	t      *testing.T
	stdin  io.WriteCloser
	lines  chan map[string]any
	events chan map[string]any
	nextID int
	stderr *lockedBuffer
	// backlog holds change events not yet matched by expectChange.
	backlog []map[string]any
}

// startNodeClient starts node-opcua's client driver; it stops when the
// test ends.
func startNodeClient(t *testing.T) *nodeClient {
	t.Helper()
	cmd := testpeers.NodeOPCUA(t, filepath.Join("..", ".."), filepath.Join("testdata", "client.js"))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	nc := &nodeClient{t: t, stdin: stdin, lines: make(chan map[string]any, 64), events: make(chan map[string]any, 256), stderr: &lockedBuffer{}}
	cmd.Stderr = nc.stderr
	require.NoError(t, cmd.Start())
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				nc.stderr.Write(append(sc.Bytes(), '\n'))
				continue
			}
			if _, ok := m["event"]; ok {
				select {
				case nc.events <- m:
				default:
				}
				continue
			}
			nc.lines <- m
		}
		close(nc.lines)
		io.Copy(io.Discard, stdout)
	})
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			cmd.Process.Kill()
			<-done
		}
		cmd.Wait()
	})
	return nc
}

// do sends a command and returns its answer; an "error" answer fails the
// test unless allowErr.
func (nc *nodeClient) do(cmd map[string]any) map[string]any {
	nc.t.Helper()
	nc.nextID++
	cmd["id"] = nc.nextID
	b, err := json.Marshal(cmd)
	require.NoError(nc.t, err)
	_, err = nc.stdin.Write(append(b, '\n'))
	require.NoError(nc.t, err)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-nc.lines:
			if !ok {
				nc.t.Fatalf("node client exited:\n%s", nc.stderr.String())
			}
			if id, _ := m["id"].(float64); int(id) != nc.nextID {
				continue
			}
			if e, ok := m["error"]; ok {
				nc.t.Fatalf("node client %v: %v\n%s", cmd["op"], e, nc.stderr.String())
			}
			return m
		case <-timer.C:
			nc.t.Fatalf("node client did not answer %s:\n%s", b, nc.stderr.String())
		}
	}
}

// expectChange waits for a change notification of node matching ok;
// other notifications are kept for later calls.
func (nc *nodeClient) expectChange(node string, ok func(map[string]any) bool) map[string]any {
	nc.t.Helper()
	match := func(m map[string]any) bool { return m["node"] == node && ok(m) }
	for i, m := range nc.backlog {
		if match(m) {
			nc.backlog = append(nc.backlog[:i], nc.backlog[i+1:]...)
			return m
		}
	}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	for {
		select {
		case m := <-nc.events:
			if match(m) {
				return m
			}
			nc.backlog = append(nc.backlog, m)
		case <-timer.C:
			var seen []string
			for _, m := range nc.backlog {
				seen = append(seen, fmt.Sprint(m))
			}
			nc.t.Fatalf("no change of %s; saw %s", node, strings.Join(seen, "; "))
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a process's writer goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
