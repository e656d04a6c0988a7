package serialsim

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

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

// line is the test's end of a pty pair with the panel serving the other.
type line struct {
	panel *Panel
	port  *Port
	lines chan string
}

// serve starts socat, serves a panel on one end and opens the other.
func serve(t *testing.T, cfg Config) *line {
	t.Helper()
	if _, err := exec.LookPath("socat"); err != nil {
		t.Fatal("the serialsim tests need socat for their pty pair: apt-get install -y socat (or run .ci/install-test-deps)")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	socat := exec.Command("socat", "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	stderr := &syncBuffer{}
	socat.Stderr = stderr
	require.NoError(t, socat.Start())
	exited := make(chan struct{})
	go func() { // owned: the cleanup waits for it
		socat.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		socat.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(stderr.String(), "starting data transfer loop") {
		require.True(t, time.Now().Before(deadline), "socat not ready:\n%s", stderr)
		<-tick.C
	}

	p, err := New(cfg, nil)
	require.NoError(t, err)
	pb, err := Open(b, 9600)
	require.NoError(t, err)
	pa, err := Open(a, 9600)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	l := &line{panel: p, port: pa, lines: make(chan string, 100)}
	var wg sync.WaitGroup
	served := make(chan error, 1)
	wg.Go(func() { served <- p.Serve(ctx, pb) })
	wg.Go(func() {
		sc := bufio.NewScanner(pa)
		for sc.Scan() {
			l.lines <- strings.TrimSuffix(sc.Text(), "\r")
		}
	})
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		pa.Close()
		wg.Wait()
	})
	return l
}

func (l *line) send(t *testing.T, cmd string) {
	t.Helper()
	_, err := l.port.Write([]byte(cmd + "\n"))
	require.NoError(t, err)
}

// expect reads the next lines and compares them.
func (l *line) expect(t *testing.T, want ...string) {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for _, w := range want {
		select {
		case got := <-l.lines:
			require.Equal(t, w, got)
		case <-timer.C:
			t.Fatalf("no line %q", w)
		}
	}
}

func TestCommands(t *testing.T) {
	l := serve(t, Config{ExitDelay: 50 * time.Millisecond, Second: 20 * time.Millisecond})

	l.send(t, "STATUS?")
	l.expect(t, "AREA 1 DISARMED", "AREA 2 DISARMED",
		"DOOR 1 CLOSED", "DOOR 1 LOCKED", "DOOR 2 CLOSED", "DOOR 2 LOCKED", "DOOR 3 CLOSED", "DOOR 3 LOCKED", "OK")

	// Arming takes the exit delay.
	l.send(t, "ARM 1")
	l.expect(t, "OK", "AREA 1 ARMED")
	require.True(t, l.panel.Armed(1))
	l.send(t, "ARM 1")
	l.expect(t, "OK", "AREA 1 ARMED")
	// An intrusion: a locked door of an armed area opens.
	require.NoError(t, l.panel.OpenDoor(1))
	l.expect(t, "DOOR 1 OPEN", "AREA 1 ALARM")
	l.send(t, "DISARM 1")
	l.expect(t, "OK", "AREA 1 DISARMED")
	// No arming while a door of the area is open.
	l.send(t, "ARM 1")
	l.expect(t, "ERR DOOR OPEN")
	require.NoError(t, l.panel.CloseDoor(1))
	l.expect(t, "DOOR 1 CLOSED")

	// A door opened during the exit delay and left open: arming fails.
	l.send(t, "ARM 2")
	l.expect(t, "OK")
	require.NoError(t, l.panel.OpenDoor(3))
	l.expect(t, "DOOR 3 OPEN", "AREA 2 DISARMED")
	require.False(t, l.panel.Armed(2))
	require.NoError(t, l.panel.CloseDoor(3))
	l.expect(t, "DOOR 3 CLOSED")

	// Unlocking: the door relocks after its time.
	l.send(t, "UNLOCK 3 2")
	l.expect(t, "OK", "DOOR 3 UNLOCKED", "DOOR 3 LOCKED")

	// Bad commands; "\r" ends a line too.
	for cmd, reply := range map[string]string{
		"ARM 9":          "ERR NO SUCH AREA",
		"ARM x":          "ERR NO SUCH AREA",
		"UNLOCK 7 5":     "ERR NO SUCH DOOR",
		"UNLOCK 3 0":     "ERR BAD SECONDS",
		"UNLOCK 3 x":     "ERR BAD SECONDS",
		"FIRE ZE\r":      "ERR UNKNOWN COMMAND",
		"arm 1":          "ERR UNKNOWN COMMAND",
		"DISARM":         "ERR UNKNOWN COMMAND",
		"UNLOCK 3 99999": "ERR BAD SECONDS",
	} {
		l.send(t, cmd)
		l.expect(t, reply)
	}

	require.NoError(t, l.panel.ShowCard(2, "4711"))
	l.expect(t, "GRANT 2 4711")
	require.Contains(t, l.panel.Received(), "UNLOCK 3 2")
}

func TestScript(t *testing.T) {
	l := serve(t, Config{})
	for _, cmd := range []string{"drop 1", "refuse BUSY NOW", "door 2 open", "card 3 12", "line HELLO", "hex 41420d0a"} {
		require.NoError(t, l.panel.Script(cmd), cmd)
	}
	l.expect(t, "DOOR 2 OPEN", "GRANT 3 12", "HELLO", "AB")
	l.send(t, "STATUS?") // dropped
	l.send(t, "ARM 2")   // refused
	l.expect(t, "ERR BUSY NOW")
	l.send(t, "ARM 2")
	l.expect(t, "OK", "AREA 2 ARMED")
	require.Equal(t, []string{"STATUS?", "ARM 2", "ARM 2"}, l.panel.Received())

	// Held replies wait for Release; events do not.
	require.NoError(t, l.panel.Script("hold"))
	l.send(t, "DISARM 2")
	require.Eventually(t, func() bool { return len(l.panel.Received()) == 4 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, l.panel.Script("door 2 close"))
	l.expect(t, "DOOR 2 CLOSED")
	require.NoError(t, l.panel.Script("release"))
	l.expect(t, "OK", "AREA 2 DISARMED")

	for cmd, want := range map[string]string{
		"":             "empty script command",
		"door x open":  `"x" is not a number`,
		"door 9 open":  "no door 9",
		"door 1 ajar":  "unknown script command",
		"card 9 1":     "no door 9",
		"hex 4":        "odd length",
		"hex zz":       "hex",
		"drop many":    "not a number",
		"refuse":       "unknown script command",
		"fly me there": "unknown script command",
	} {
		require.ErrorContains(t, l.panel.Script(cmd), want, cmd)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ExitDelay: -time.Second}, "must not be negative"},
		{Config{Areas: map[int][]int{0: {1}}}, "area 0"},
		{Config{Areas: map[int][]int{1: {0}}}, "door 0"},
		{Config{Areas: map[int][]int{1: {1}, 2: {1}}}, "door 1 is in two areas"},
	} {
		_, err := New(tc.cfg, nil)
		require.ErrorContains(t, err, tc.want)
	}
	_, err := Open("/etc/hostname", 9600)
	require.ErrorContains(t, err, "not a serial device")
	_, err = Open("/nonexistent/tty", 9600)
	require.ErrorContains(t, err, "no such file")
	_, err = Open("/dev/null", 0)
	require.ErrorContains(t, err, "not positive")
}
