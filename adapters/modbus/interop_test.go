package modbus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// The interop tests run this repository's pymodbus peer with Debian's
// python, which has Debian's packages; another python3 may come first on
// PATH.
const (
	debianPython = "/usr/bin/python3"
	installHint  = "apt-get update && apt-get install -y python3-pymodbus socat"
)

var pyServer = filepath.Join("..", "..", ".ci", "peers", "modbus", "pymodbus_server.py")

// requirePeers fails the test, with the install command, when pymodbus or
// socat is missing: a test that cannot run fails, it is never skipped.
func requirePeers(t *testing.T) {
	t.Helper()
	out, err := exec.Command(debianPython, "-c", "import pymodbus, serial_asyncio; print(pymodbus.__version__)").CombinedOutput()
	if err != nil {
		t.Fatalf("the interop tests need Debian's pymodbus at %s: %s\n%s", debianPython, installHint, out)
	}
	if _, err := exec.LookPath("socat"); err != nil {
		t.Fatalf("the RTU interop test needs socat: %s", installHint)
	}
}

// lineWriter collects a process's output and reports lines matching a
// pattern, so that a test waits for "READY" without a goroutine of its own.
type lineWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	pattern *regexp.Regexp
	want    int
	found   []string
	ready   chan []string
}

func newLineWriter(pattern string, want int) *lineWriter {
	return &lineWriter{pattern: regexp.MustCompile(pattern), want: want, ready: make(chan []string, 1)}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := w.buf.Len()
	w.buf.Write(p)
	if len(w.found) >= w.want {
		return len(p), nil
	}
	// Scan from the start of the line the new data began in.
	text := w.buf.String()
	from := strings.LastIndexByte(text[:start], '\n') + 1
	for _, line := range strings.SplitAfter(text[from:], "\n") {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		if m := w.pattern.FindStringSubmatch(line); m != nil && len(w.found) < w.want {
			w.found = append(w.found, m[len(m)-1])
			if len(w.found) == w.want {
				w.ready <- w.found
			}
		}
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// await waits for the lines or fails with the output so far.
func (w *lineWriter) await(t *testing.T, what string, within time.Duration, stderr fmt.Stringer) []string {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case found := <-w.ready:
		return found
	case <-timer.C:
		t.Fatalf("%s not ready within %s; output:\n%s\n%s", what, within, w, stderr)
		return nil
	}
}

// startProcess starts a peer and stops it when the test ends: by closing
// its stdin (the pymodbus peer exits then) or with SIGTERM (socat), then
// killing it if it lingers.
func startProcess(t *testing.T, stdout, stderr *lineWriter, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		if name != debianPython {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		timer := time.NewTimer(3 * time.Second)
		defer timer.Stop()
		select {
		case <-exited:
		case <-timer.C:
			cmd.Process.Kill()
			<-exited
		}
	})
	// cmd.Wait is the process's owner; it returns once the process has
	// exited and its output is copied.
	go func() {
		cmd.Wait()
		close(exited)
	}()
}

// startPymodbus runs the pymodbus peer with a spec and returns its READY
// argument (host:port or device).
func startPymodbus(t *testing.T, spec map[string]any) string {
	t.Helper()
	data, err := json.Marshal(spec)
	require.NoError(t, err)
	path := writeFile(t, t.TempDir(), "spec.json", data)
	stdout, stderr := newLineWriter(`^READY \S+ (\S+)`, 1), newLineWriter(`^$`, 1)
	startProcess(t, stdout, stderr, debianPython, pyServer, path)
	return stdout.await(t, "pymodbus", 30*time.Second, stderr)[0]
}

// interopCase is a value pymodbus encodes at a reference address with its
// own BinaryPayloadBuilder.
type interopCase struct {
	typ         site.DataType
	byteO, word site.ByteOrder
	value       float64 // exact in the type, so comparisons are exact
}

func interopCases() []interopCase {
	big, little := site.BigEndian, site.LittleEndian
	var out []interopCase
	values := map[site.DataType]float64{
		site.TypeInt16: -1234, site.TypeUint16: 54321, site.TypeInt32: -98765432,
		site.TypeUint32: 3456789012, site.TypeFloat32: 21.375, site.TypeFloat64: -1234.5678,
	}
	for _, typ := range []site.DataType{site.TypeInt16, site.TypeUint16, site.TypeInt32, site.TypeUint32, site.TypeFloat32, site.TypeFloat64} {
		for _, bo := range []site.ByteOrder{big, little} {
			for _, wo := range []site.ByteOrder{big, little} {
				if typ.Registers() == 1 && wo == little {
					continue
				}
				out = append(out, interopCase{typ, bo, wo, values[typ]})
			}
		}
	}
	return out
}

// writeOffset separates the registers the test writes from the
// references pymodbus encoded.
const writeOffset = 300

// interopSpec returns the peer's initial values and the points that
// read them: unit 1 holds the cases in holding registers, unit 2 in input
// registers; coils on unit 1, discrete inputs on unit 2, and a register of
// bits on unit 1.
func interopSpec() (values []map[string]any, refs []*site.Point, cases []interopCase) {
	cases = interopCases()
	addr := uint16(0)
	for i, c := range cases {
		for _, u := range []struct {
			unit  uint8
			table site.ModbusTable
		}{{1, site.HoldingRegister}, {2, site.InputRegister}} {
			values = append(values, map[string]any{
				"unit": u.unit, "table": string(u.table), "address": addr, "type": string(c.typ),
				"value": c.value, "byte_order": string(c.byteO), "word_order": string(c.word),
			})
			refs = append(refs, pt(fmt.Sprintf("u%d.%d.%s.%s.%s", u.unit, i, c.typ, c.byteO, c.word),
				u.table, u.unit, addr, c.typ, orders(c.byteO, c.word)))
		}
		addr += uint16(c.typ.Registers()) + 1 // a gap between cases
	}
	for i, b := range []bool{true, false, true, true, false, false, true, false} {
		values = append(values,
			map[string]any{"unit": 1, "table": "coil", "address": i, "value": b},
			map[string]any{"unit": 2, "table": "discrete_input", "address": i, "value": !b})
	}
	values = append(values, map[string]any{"unit": 1, "table": "holding_register", "address": 250, "type": "uint16", "value": 0x8001})
	return values, refs, cases
}

// runInterop reads what pymodbus encoded, writes the same values and
// compares the registers, and reads and writes coils and bits.
func runInterop(t *testing.T, c *Client, refs []*site.Point, cases []interopCase) {
	ctx := testCtx(t)
	t.Run("read values pymodbus encoded", func(t *testing.T) {
		for i, r := range c.Read(ctx, refs) {
			require.NoError(t, r.Err, refs[i].ID)
			require.Equal(t, cases[i/2].value, r.Value, refs[i].ID)
		}
	})

	t.Run("write registers as pymodbus encodes them", func(t *testing.T) {
		var ws []control.Write
		var targets []*site.Point
		for i, ref := range refs {
			if ref.Modbus.Table != site.HoldingRegister {
				continue
			}
			tp := *ref
			a := *ref.Modbus
			a.Address += writeOffset
			tp.ID, tp.Modbus = ref.ID+".written", &a
			targets = append(targets, &tp)
			ws = append(ws, control.Write{Point: &tp, Value: cases[i/2].value})
		}
		for _, err := range c.Write(ctx, ws) {
			require.NoError(t, err)
		}
		for i, tp := range targets {
			n := tp.Type.Registers()
			raw := func(addr uint16) []float64 {
				ps := seq("raw", site.HoldingRegister, 1, addr, n, site.TypeUint16)
				var out []float64
				for _, r := range c.Read(ctx, ps) {
					require.NoError(t, r.Err)
					out = append(out, r.Value)
				}
				return out
			}
			require.Equal(t, raw(tp.Modbus.Address-writeOffset), raw(tp.Modbus.Address), tp.ID)
			require.Equal(t, ws[i].Value, c.Read(ctx, []*site.Point{tp})[0].Value, tp.ID)
		}
	})

	t.Run("coils and discrete inputs", func(t *testing.T) {
		coils := seq("coil", site.Coil, 1, 0, 8, site.TypeBool)
		dis := seq("di", site.DiscreteInput, 2, 0, 8, site.TypeBool)
		var got []float64
		for _, r := range c.Read(ctx, append(coils, dis...)) {
			require.NoError(t, r.Err)
			got = append(got, r.Value)
		}
		require.Equal(t, []float64{1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1}, got)

		ws := []control.Write{{Point: coils[0], Value: 0}, {Point: coils[1], Value: 1}, {Point: coils[2], Value: 0}, {Point: coils[5], Value: 1}}
		for _, err := range c.Write(ctx, ws) { // one FC15 for 0-2, one FC5 for 5
			require.NoError(t, err)
		}
		got = got[:0]
		for _, r := range c.Read(ctx, coils) {
			require.NoError(t, r.Err)
			got = append(got, r.Value)
		}
		require.Equal(t, []float64{0, 1, 0, 1, 0, 1, 1, 0}, got)
	})

	t.Run("bits in a register", func(t *testing.T) {
		b0, b3, b15 := hr("b0", 250, site.TypeBool, bit(0)), hr("b3", 250, site.TypeBool, bit(3)), hr("b15", 250, site.TypeBool, bit(15))
		rs := c.Read(ctx, []*site.Point{b0, b3, b15})
		require.Equal(t, []float64{1, 0, 1}, []float64{rs[0].Value, rs[1].Value, rs[2].Value})
		for _, err := range c.Write(ctx, []control.Write{{Point: b3, Value: 1}, {Point: b0, Value: 0}}) {
			require.NoError(t, err)
		}
		raw := c.Read(ctx, []*site.Point{hr("raw", 250, site.TypeUint16)})[0]
		require.NoError(t, raw.Err)
		require.Equal(t, float64(0x8008), raw.Value)
	})
}

// TestInteropPymodbusTCP talks to pymodbus's TCP server.
func TestInteropPymodbusTCP(t *testing.T) {
	requirePeers(t)
	values, refs, cases := interopSpec()
	addr := startPymodbus(t, map[string]any{"mode": "tcp", "host": "127.0.0.1", "port": 0, "units": []int{1, 2}, "values": values})
	waitListening(t, addr)
	c, _ := newClient(t, Options{URL: "tcp://" + addr})
	runInterop(t, c, refs, cases)
}

// waitListening retries a TCP connect until it succeeds.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// TestInteropPymodbusRTU talks RTU to pymodbus's serial server over a
// pty pair made by socat.
func TestInteropPymodbusRTU(t *testing.T) {
	requirePeers(t)
	stdout, stderr := newLineWriter(`^$`, 1), newLineWriter(`PTY is (\S+)`, 2)
	startProcess(t, stdout, stderr, "socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0")
	ptys := stderr.await(t, "socat", 10*time.Second, stdout)

	// A pty refuses parity (tcsetattr gives EINVAL for PARENB), and the
	// line settings mean nothing on it: 8N1 on both ends.
	values, refs, cases := interopSpec()
	startPymodbus(t, map[string]any{"mode": "rtu", "device": ptys[0], "baudrate": 19200, "parity": "N", "stopbits": 1, "units": []int{1, 2}, "values": values})
	c, _ := newClient(t, Options{URL: "rtu://" + ptys[1], BaudRate: 19200, Parity: ParityNone, StopBits: 1})
	// Ready once a request is answered.
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.Read(testCtx(t), refs[:1])[0].Err
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "pymodbus RTU server not answering: %v", err)
		<-tick.C
	}
	runInterop(t, c, refs, cases)

	t.Run("inter-frame delay", func(t *testing.T) {
		require.NoError(t, c.Close()) // one owner of the line at a time
		const gap = 60 * time.Millisecond
		slow, _ := newClient(t, Options{URL: "rtu://" + ptys[1], Parity: ParityNone, InterFrameDelay: gap})
		start := time.Now()
		for range 5 {
			r := slow.Read(testCtx(t), refs[:1])[0]
			require.NoError(t, r.Err)
		}
		require.GreaterOrEqual(t, time.Since(start), 4*gap)
	})
}
