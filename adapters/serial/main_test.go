package serial

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/adapters/serial/serialsim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// The panel runs in a second process: the test binary started again with
// these variables set runs serialsim on one end of a socat pty pair (see
// helperMain) instead of the tests.
const (
	envHelperDevice = "BMSGW_SERIALSIM_DEVICE"
	envHelperConfig = "BMSGW_SERIALSIM_CONFIG"
	installHint     = "apt-get update && apt-get install -y socat (or run .ci/install-test-deps)"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelperDevice) != "" {
		os.Exit(helperMain())
	}
	goleak.VerifyTestMain(m)
}

// helperConfig is the panel's configuration, passed as JSON.
type helperConfig struct {
	ExitDelay time.Duration
	Second    time.Duration
}

// helperMain runs the simulated panel on the device, prints READY, then
// runs the script commands read from standard input, answering each with
// "ok" (or "ok <commands received>" for "received") or "error: ...". It
// exits when standard input ends: the test closed it, or died.
func helperMain() int {
	var cfg helperConfig
	if err := json.Unmarshal([]byte(os.Getenv(envHelperConfig)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		return 2
	}
	port, err := serialsim.Open(os.Getenv(envHelperDevice), 9600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	panel, err := serialsim.New(serialsim.Config{ExitDelay: cfg.ExitDelay, Second: cfg.Second}, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- panel.Serve(ctx, port) }()
	fmt.Println("READY")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch cmd := sc.Text(); cmd {
		case "received":
			fmt.Println("ok " + strings.Join(panel.Received(), "|"))
		default:
			if err := panel.Script(cmd); err != nil {
				fmt.Println("error:", err)
			} else {
				fmt.Println("ok")
			}
		}
	}
	cancel()
	if err := <-served; err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// syncBuffer is a bytes.Buffer safe for concurrent writers that can tell
// when a text has appeared.
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

// eventually polls cond every 5 ms until it holds or the time is up.
func eventually(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: "+msg, append([]any{within}, args...)...)
		}
		<-tick.C
	}
}

// process is a child process stopped when the test ends.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *syncBuffer
}

func startProcess(t testing.TB, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, exited: make(chan struct{}), stderr: &syncBuffer{}}
	if cmd.Stderr == nil {
		cmd.Stderr = p.stderr
	}
	require.NoError(t, cmd.Start())
	// cmd.Wait owns the process; it returns once it has exited and its
	// output is copied.
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// stop signals the process and waits for it, killing it if it lingers.
func (p *process) stop(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	timer := time.NewTimer(3 * time.Second)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// cable is a pty pair made by socat: the adapter opens a, the panel b.
type cable struct {
	a, b string
	proc *process
}

// startCable runs socat with the pair's links in dir.
func startCable(t testing.TB, dir string) *cable {
	t.Helper()
	if _, err := exec.LookPath("socat"); err != nil {
		t.Fatalf("the serial tests need socat for their pty pair: %s", installHint)
	}
	c := &cable{a: filepath.Join(dir, "a"), b: filepath.Join(dir, "b")}
	c.proc = startProcess(t, exec.Command("socat", "-d", "-d",
		"pty,raw,echo=0,link="+c.a, "pty,raw,echo=0,link="+c.b))
	eventually(t, 10*time.Second, func() bool {
		return strings.Contains(c.proc.stderr.String(), "starting data transfer loop")
	}, "socat ready; its output:\n%s", c.proc.stderr)
	return c
}

// unplug stops socat: the adapter's end hangs up and its link goes away,
// as when a USB adapter is pulled.
func (c *cable) unplug() { c.proc.stop(syscall.SIGTERM) }

// panelProc is the simulated panel in its own process.
type panelProc struct {
	proc  *process
	stdin io.WriteCloser
	lines chan string
}

// startPanel runs the panel on a device and waits for READY.
func startPanel(t testing.TB, device string, cfg helperConfig) *panelProc {
	t.Helper()
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelperDevice+"="+device, envHelperConfig+"="+string(js))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &panelProc{stdin: stdin, lines: make(chan string, 16)}
	p.proc = startProcess(t, cmd)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	})
	t.Cleanup(func() {
		stdin.Close()
		p.proc.stop(syscall.SIGKILL)
		for range p.lines {
		}
		wg.Wait()
	})
	require.Equal(t, "READY", p.next(t), "panel start; its stderr:\n%s", p.proc.stderr)
	return p
}

// next returns the panel's next line of output.
func (p *panelProc) next(t testing.TB) string {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			t.Fatalf("panel exited; its stderr:\n%s", p.proc.stderr)
		}
		return line
	case <-timer.C:
		t.Fatalf("no answer from the panel; its stderr:\n%s", p.proc.stderr)
		return ""
	}
}

// script runs script commands in the panel, each acknowledged before the
// next.
func (p *panelProc) script(t testing.TB, cmds ...string) {
	t.Helper()
	for _, cmd := range cmds {
		_, err := fmt.Fprintln(p.stdin, cmd)
		require.NoError(t, err)
		require.Equal(t, "ok", p.next(t), "script %q", cmd)
	}
}

// received returns the commands the panel received.
func (p *panelProc) received(t testing.TB) []string {
	t.Helper()
	_, err := fmt.Fprintln(p.stdin, "received")
	require.NoError(t, err)
	line := p.next(t)
	require.True(t, strings.HasPrefix(line, "ok"), line)
	if line == "ok " {
		return nil
	}
	return strings.Split(strings.TrimPrefix(line, "ok "), "|")
}

// kill ends the panel at once, as a power cut would.
func (p *panelProc) kill() { p.proc.stop(syscall.SIGKILL) }

// The demo mapping: two alarm areas and three doors of serialsim.
func demoOptions(device string) Options {
	state := map[string]float64{"ARMED": 1, "DISARMED": 0}
	return Options{
		Name:   "panel",
		Device: device,
		// Fast test timings; the panel answers within milliseconds.
		ReplyTimeout: 500 * time.Millisecond,
		Retries:      1,
		BackoffMin:   20 * time.Millisecond,
		BackoffMax:   200 * time.Millisecond,
		MaxLine:      64,
		Events: []EventPattern{
			{Pattern: `AREA (?P<area>\d+) (?P<state>ARMED|DISARMED)`,
				Set: []Assign{{Point: "area{area}_armed", Value: "{state}", Map: state}}},
			{Pattern: `AREA (?P<area>\d+) ALARM`, Set: []Assign{{Point: "area{area}_alarm", Value: "1"}}},
			{Pattern: `DOOR (?P<door>\d+) (?P<state>LOCKED|UNLOCKED)`,
				Set: []Assign{{Point: "door{door}_unlocked", Value: "{state}", Map: map[string]float64{"UNLOCKED": 1, "LOCKED": 0}}}},
			{Pattern: `DOOR (?P<door>\d+) (?P<state>\S+)`,
				Set: []Assign{{Point: "door{door}_contact", Value: "{state}", Map: map[string]float64{"OPEN": 1, "CLOSED": 0}}}},
			{Pattern: `GRANT (?P<door>\d+) (?P<card>\d+)`, Set: []Assign{
				{Point: "door{door}_grant", Value: "1", Pulse: 300 * time.Millisecond},
				{Point: "door{door}_card", Value: "{card}"},
			}},
		},
		// Status once on every open; the interval is beyond any test.
		Poll: &Poll{Command: "STATUS?", Interval: time.Hour},
		Points: map[string]PointSpec{
			"area1_armed": {Commands: map[string]string{"1": "ARM 1", "0": "DISARM 1"},
				ReadBack: ReadBackEvent, ConfirmTimeout: 5 * time.Second},
			"area2_armed":    {Commands: map[string]string{"1": "ARM {area}", "0": "DISARM {area}"}, Vars: map[string]string{"area": "2"}},
			"door3_unlock":   {Command: "UNLOCK 3 {value}"},
			"area1_alarm":    {},
			"area2_alarm":    {},
			"door1_contact":  {},
			"door2_contact":  {},
			"door3_contact":  {},
			"door1_unlocked": {},
			"door2_unlocked": {},
			"door3_unlocked": {},
			"door3_grant":    {},
			"door3_card":     {},
		},
	}
}

// demoPoints are the model points of the demo mapping.
func demoPoints() map[string]*site.Point {
	out := map[string]*site.Point{}
	for id := range demoOptions("").Points {
		out[id] = &site.Point{ID: id, Connection: "panel", Type: site.TypeBool, Access: site.AccessRead, Scale: 1}
	}
	for _, id := range []string{"area1_armed", "area2_armed"} {
		out[id].Access = site.AccessWrite
	}
	lo, hi := 1.0, 3600.0
	out["door3_unlock"].Type, out["door3_unlock"].Access, out["door3_unlock"].Min, out["door3_unlock"].Max =
		site.TypeUint16, site.AccessWrite, &lo, &hi
	out["door3_card"].Type = site.TypeUint32
	return out
}

// rig is a client talking to a panel process over a socat pty pair.
type rig struct {
	dir   string
	cable *cable
	panel *panelProc
	c     *Client
	log   *syncBuffer
	pts   map[string]*site.Point
	// watch receives the readings of a Watch of every demo point.
	watch chan control.Reading
	cfg   helperConfig
}

// newRig starts socat, the panel and a client with the demo mapping
// (adjusted by opts), watching every point, and waits for the first
// status reply.
func newRig(t *testing.T, cfg helperConfig, opts ...func(*Options)) *rig {
	t.Helper()
	r := &rig{dir: t.TempDir(), cfg: cfg, pts: demoPoints(), watch: make(chan control.Reading, 1024)}
	r.cable = startCable(t, r.dir)
	r.panel = startPanel(t, r.cable.b, cfg)
	o := demoOptions(r.cable.a)
	for _, f := range opts {
		f(&o)
	}
	r.log = &syncBuffer{}
	c, err := New(o, slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	r.c = c
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var all []*site.Point
	for _, p := range r.pts {
		all = append(all, p)
	}
	watchErr := make(chan error, 1)
	wg.Go(func() { watchErr <- c.Watch(ctx, all, r.watch) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		require.NoError(t, <-watchErr)
		require.NoError(t, c.Close())
		if t.Failed() {
			t.Logf("client log:\n%s", r.log)
		}
	})
	r.await(t, "door1_contact", 0)
	r.await(t, "door3_unlocked", 0)
	return r
}

// await takes readings from the watch until the point has the value
// without error, and returns that reading.
func (r *rig) await(t *testing.T, id string, want float64) control.Reading {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case rd := <-r.watch:
			if rd.Point == id && rd.Err == nil && rd.Value == want {
				return rd
			}
		case <-timer.C:
			t.Fatalf("%s never read %v; client log:\n%s", id, want, r.log)
		}
	}
}

// awaitErr takes readings from the watch until the point reads with an
// error matching is.
func (r *rig) awaitErr(t *testing.T, id string, is error) control.Reading {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case rd := <-r.watch:
			if rd.Point == id && rd.Err != nil && errors.Is(rd.Err, is) {
				return rd
			}
		case <-timer.C:
			t.Fatalf("%s never read with %v; client log:\n%s", id, is, r.log)
		}
	}
}

func (r *rig) write(t *testing.T, id string, v float64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.c.Write(ctx, []control.Write{{Point: r.pts[id], Value: v}})[0]
}

func (r *rig) read(t *testing.T, id string) control.Reading {
	t.Helper()
	return r.c.Read(context.Background(), []*site.Point{r.pts[id]})[0]
}
