// Package serialsim is a small alarm panel and door controller that
// speaks the demo line protocol of docs/serial.md over any io.ReadWriter
// (a serial port, a pty, a pipe), scriptable by tests: doors open and
// close, cards are shown, commands are refused, dropped or held.
//
// Commands, one per line, answered by OK or ERR <reason>:
//
//	ARM <area>               arm after the exit delay; ERR DOOR OPEN while a door of the area is open
//	DISARM <area>            disarm at once
//	UNLOCK <door> <seconds>  unlock the door for 1-3600 seconds
//	STATUS?                  one line per area and door, then OK
//
// Events, sent when they happen:
//
//	AREA <n> ARMED|DISARMED|ALARM
//	DOOR <n> OPEN|CLOSED
//	DOOR <n> LOCKED|UNLOCKED
//	GRANT <door> <card>
package serialsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goserial "github.com/jacobsa/go-serial/serial"
)

// Config describes the panel. Zero fields take the defaults shown.
type Config struct {
	// Areas maps each alarm area to its doors. Default: area 1 with doors
	// 1 and 2, area 2 with door 3.
	Areas map[int][]int
	// ExitDelay is the time between ARM and the area being armed. 0 arms
	// at once.
	ExitDelay time.Duration
	// Second is the length of one second of UNLOCK <door> <seconds>, so
	// that tests need not wait. Default 1s.
	Second time.Duration
	// Terminator ends every line sent. Default "\r\n". Received lines may
	// end in "\r\n", "\n" or "\r".
	Terminator string
}

// Panel is the simulated panel. It is safe for concurrent use: tests
// script it while Serve runs.
type Panel struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	areas map[int]*area
	doors map[int]*door
	// out holds bytes to send; Serve writes them.
	out  []byte
	wake chan struct{}
	// Scripted misbehaviour.
	drop    int      // ignore the next drop commands
	refuse  []string // refuse the next commands with these reasons
	holding bool     // hold replies until Release
	held    []byte
	// received lists the commands received, for tests.
	received []string
}

type area struct {
	id    int
	doors []int
	armed bool
	armAt time.Time // arming until then; zero when not arming
	alarm bool
}

type door struct {
	id       int
	open     bool
	unlockTo time.Time // unlocked until then; zero when locked
}

// New builds a panel.
func New(cfg Config, logger *slog.Logger) (*Panel, error) {
	if cfg.Areas == nil {
		cfg.Areas = map[int][]int{1: {1, 2}, 2: {3}}
	}
	if cfg.Second == 0 {
		cfg.Second = time.Second
	}
	if cfg.Terminator == "" {
		cfg.Terminator = "\r\n"
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ExitDelay < 0 || cfg.Second < 0 {
		return nil, errors.New("serialsim: exit delay and second must not be negative")
	}
	p := &Panel{cfg: cfg, log: logger, areas: map[int]*area{}, doors: map[int]*door{}, wake: make(chan struct{}, 1)}
	for id, ds := range cfg.Areas {
		if id < 1 {
			return nil, fmt.Errorf("serialsim: area %d: numbers start at 1", id)
		}
		p.areas[id] = &area{id: id, doors: ds}
		for _, d := range ds {
			if d < 1 {
				return nil, fmt.Errorf("serialsim: door %d: numbers start at 1", d)
			}
			if p.doors[d] != nil {
				return nil, fmt.Errorf("serialsim: door %d is in two areas", d)
			}
			p.doors[d] = &door{id: d}
		}
	}
	return p, nil
}

// Serve answers the commands read from rw and sends events until ctx is
// done (it returns nil) or reading or writing fails (it returns the
// error). It closes rw on return if rw is an io.Closer, which ends a read
// in progress; any other rw must end its reads by itself. One Serve at a
// time.
func (p *Panel) Serve(ctx context.Context, rw io.ReadWriter) error {
	ctx, cancel := context.WithCancel(ctx)
	lines := make(chan string)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { readErr <- readLines(ctx, rw, lines) })
	defer func() {
		cancel()
		if c, ok := rw.(io.Closer); ok {
			c.Close() // ends a read in progress
		}
		wg.Wait()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		p.tickLocked(time.Now())
		out := p.out
		p.out = nil
		next := p.nextLocked()
		p.mu.Unlock()
		if len(out) > 0 {
			if _, err := rw.Write(out); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("serialsim: write: %w", err)
			}
		}
		timer.Stop()
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case line := <-lines:
			p.command(line)
		case <-p.wake:
		case <-tc:
		}
	}
}

// readLines reads lines until reading fails or ctx is done.
func readLines(ctx context.Context, r io.Reader, out chan<- string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	sc.Split(splitLines)
	for sc.Scan() {
		line := strings.Trim(sc.Text(), " \t\x00")
		if line == "" {
			continue
		}
		select {
		case out <- line:
		case <-ctx.Done():
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("serialsim: read: %w", err)
	}
	return io.EOF
}

// splitLines splits at "\n" or "\r".
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// emitLocked queues an event line.
func (p *Panel) emitLocked(line string) {
	p.out = append(p.out, line+p.cfg.Terminator...)
	p.signal()
}

// replyLocked queues a reply line, held while Hold is in force.
func (p *Panel) replyLocked(line string) {
	if p.holding {
		p.held = append(p.held, line+p.cfg.Terminator...)
		return
	}
	p.emitLocked(line)
}

func (p *Panel) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// command answers one command line.
func (p *Panel) command(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received = append(p.received, line)
	if p.drop > 0 {
		p.drop--
		p.log.Debug("dropping command", "command", line)
		return
	}
	if len(p.refuse) > 0 {
		reason := p.refuse[0]
		p.refuse = p.refuse[1:]
		p.replyLocked("ERR " + reason)
		return
	}
	f := strings.Fields(line)
	num := func(i int) (int, bool) {
		if i >= len(f) {
			return 0, false
		}
		n, err := strconv.Atoi(f[i])
		return n, err == nil
	}
	now := time.Now()
	switch {
	case len(f) == 2 && (f[0] == "ARM" || f[0] == "DISARM"):
		n, ok := num(1)
		a := p.areas[n]
		if !ok || a == nil {
			p.replyLocked("ERR NO SUCH AREA")
			return
		}
		if f[0] == "DISARM" {
			a.armed, a.armAt, a.alarm = false, time.Time{}, false
			p.replyLocked("OK")
			p.replyLocked(fmt.Sprintf("AREA %d DISARMED", n))
			return
		}
		switch {
		case a.armed:
			p.replyLocked("OK")
			p.replyLocked(fmt.Sprintf("AREA %d ARMED", n))
		case p.openDoorLocked(a) != 0:
			p.replyLocked("ERR DOOR OPEN")
		case !a.armAt.IsZero():
			p.replyLocked("OK") // already arming
		case p.cfg.ExitDelay == 0:
			a.armed = true
			p.replyLocked("OK")
			p.replyLocked(fmt.Sprintf("AREA %d ARMED", n))
		default:
			a.armAt = now.Add(p.cfg.ExitDelay)
			p.replyLocked("OK")
		}
	case len(f) == 3 && f[0] == "UNLOCK":
		n, ok := num(1)
		d := p.doors[n]
		if !ok || d == nil {
			p.replyLocked("ERR NO SUCH DOOR")
			return
		}
		secs, ok := num(2)
		if !ok || secs < 1 || secs > 3600 {
			p.replyLocked("ERR BAD SECONDS")
			return
		}
		wasLocked := d.unlockTo.IsZero()
		d.unlockTo = now.Add(time.Duration(secs) * p.cfg.Second)
		p.replyLocked("OK")
		if wasLocked {
			p.replyLocked(fmt.Sprintf("DOOR %d UNLOCKED", n))
		}
	case len(f) == 1 && f[0] == "STATUS?":
		for _, id := range sortedKeys(p.areas) {
			p.replyLocked(fmt.Sprintf("AREA %d %s", id, word(p.areas[id].armed, "ARMED", "DISARMED")))
		}
		for _, id := range sortedKeys(p.doors) {
			d := p.doors[id]
			p.replyLocked(fmt.Sprintf("DOOR %d %s", id, word(d.open, "OPEN", "CLOSED")))
			p.replyLocked(fmt.Sprintf("DOOR %d %s", id, word(d.unlockTo.IsZero(), "LOCKED", "UNLOCKED")))
		}
		p.replyLocked("OK")
	default:
		p.replyLocked("ERR UNKNOWN COMMAND")
	}
}

// openDoorLocked returns an open door of the area, or 0.
func (p *Panel) openDoorLocked(a *area) int {
	for _, id := range a.doors {
		if p.doors[id].open {
			return id
		}
	}
	return 0
}

// tickLocked ends exit delays and unlocks that are due.
func (p *Panel) tickLocked(now time.Time) {
	for _, id := range sortedKeys(p.areas) {
		a := p.areas[id]
		if a.armAt.IsZero() || now.Before(a.armAt) {
			continue
		}
		a.armAt = time.Time{}
		if p.openDoorLocked(a) != 0 {
			// Still open at the end of the exit delay: arming failed.
			p.emitLocked(fmt.Sprintf("AREA %d DISARMED", id))
			continue
		}
		a.armed = true
		p.emitLocked(fmt.Sprintf("AREA %d ARMED", id))
	}
	for _, id := range sortedKeys(p.doors) {
		d := p.doors[id]
		if !d.unlockTo.IsZero() && !now.Before(d.unlockTo) {
			d.unlockTo = time.Time{}
			p.emitLocked(fmt.Sprintf("DOOR %d LOCKED", id))
		}
	}
}

// nextLocked returns when tickLocked has work next, or zero.
func (p *Panel) nextLocked() time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, a := range p.areas {
		earlier(a.armAt)
	}
	for _, d := range p.doors {
		earlier(d.unlockTo)
	}
	return next
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func word(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// OpenDoor opens a door: DOOR <n> OPEN, and AREA <a> ALARM when its area
// is armed and the door is locked.
func (p *Panel) OpenDoor(n int) error { return p.setDoor(n, true) }

// CloseDoor closes a door: DOOR <n> CLOSED.
func (p *Panel) CloseDoor(n int) error { return p.setDoor(n, false) }

func (p *Panel) setDoor(n int, open bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.doors[n]
	if d == nil {
		return fmt.Errorf("serialsim: no door %d", n)
	}
	if d.open == open {
		return nil
	}
	d.open = open
	p.emitLocked(fmt.Sprintf("DOOR %d %s", n, word(open, "OPEN", "CLOSED")))
	if open && d.unlockTo.IsZero() {
		for _, id := range sortedKeys(p.areas) {
			if a := p.areas[id]; a.armed && slices.Contains(a.doors, n) && !a.alarm {
				a.alarm = true
				p.emitLocked(fmt.Sprintf("AREA %d ALARM", id))
			}
		}
	}
	return nil
}

// ShowCard reports a card granted at a door's reader: GRANT <door> <card>.
func (p *Panel) ShowCard(n int, card string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.doors[n] == nil {
		return fmt.Errorf("serialsim: no door %d", n)
	}
	if card == "" || strings.ContainsAny(card, " \r\n") {
		return fmt.Errorf("serialsim: card %q: no spaces or line ends", card)
	}
	p.emitLocked(fmt.Sprintf("GRANT %d %s", n, card))
	return nil
}

// SendLine sends a line as is, with the terminator: garbage, or an
// event the demo protocol lacks.
func (p *Panel) SendLine(text string) {
	p.SendBytes([]byte(text + p.cfg.Terminator))
}

// SendBytes sends bytes as is, without a terminator.
func (p *Panel) SendBytes(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = append(p.out, b...)
	p.signal()
}

// Drop makes the panel ignore the next n commands, as if it never heard
// them.
func (p *Panel) Drop(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = n
}

// Refuse makes the panel answer the next command ERR <reason>, whatever
// it is; several calls queue.
func (p *Panel) Refuse(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = append(p.refuse, reason)
}

// Hold holds the replies to commands (and the events that follow them)
// until Release; other events still go out.
func (p *Panel) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// Release sends the held replies and ends Hold.
func (p *Panel) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = false
	p.out = append(p.out, p.held...)
	p.held = nil
	p.signal()
}

// Received returns the commands received so far, dropped ones included.
func (p *Panel) Received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// Armed reports whether an area is armed.
func (p *Panel) Armed(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.areas[n]
	return a != nil && a.armed
}

// Script runs one scripting command, for a panel in another process
// driven over its standard input:
//
//	door <n> open|close
//	card <door> <card>
//	line <text>     send a line as is
//	hex <hex>       send bytes as is, e.g. 00ff41
//	drop <n>
//	refuse <reason>
//	hold
//	release
func (p *Panel) Script(line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return errors.New("serialsim: empty script command")
	}
	arg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), f[0]))
	num := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("serialsim: %q is not a number", s)
		}
		return n, nil
	}
	switch {
	case f[0] == "door" && len(f) == 3 && (f[2] == "open" || f[2] == "close"):
		n, err := num(f[1])
		if err != nil {
			return err
		}
		return p.setDoor(n, f[2] == "open")
	case f[0] == "card" && len(f) == 3:
		n, err := num(f[1])
		if err != nil {
			return err
		}
		return p.ShowCard(n, f[2])
	case f[0] == "line":
		p.SendLine(arg)
		return nil
	case f[0] == "hex" && len(f) == 2:
		b, err := decodeHex(f[1])
		if err != nil {
			return err
		}
		p.SendBytes(b)
		return nil
	case f[0] == "drop" && len(f) == 2:
		n, err := num(f[1])
		if err != nil {
			return err
		}
		p.Drop(n)
		return nil
	case f[0] == "refuse" && arg != "":
		p.Refuse(arg)
		return nil
	case f[0] == "hold" && len(f) == 1:
		p.Hold()
		return nil
	case f[0] == "release" && len(f) == 1:
		p.Release()
		return nil
	}
	return fmt.Errorf("serialsim: unknown script command %q", line)
}

func decodeHex(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("serialsim: hex %q has an odd length", s)
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("serialsim: hex %q: %w", s, err)
		}
		out[i] = byte(v)
	}
	return out, nil
}

// Port is a serial port opened by Open.
type Port struct {
	f      io.ReadWriteCloser
	closed atomic.Bool
}

// Open opens a serial device (or pty) at 8N1 for Serve. Reads block until
// data arrives or the port is closed: the port is read with a 100 ms
// inter-character timeout and the read repeated, so that Close ends a
// read within 100 ms.
func Open(device string, baud int) (*Port, error) {
	if baud <= 0 {
		return nil, fmt.Errorf("serialsim: baud rate %d is not positive", baud)
	}
	fi, err := os.Stat(device)
	if err != nil {
		return nil, fmt.Errorf("serialsim: %w", err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return nil, fmt.Errorf("serialsim: %s is not a serial device", device)
	}
	f, err := goserial.Open(goserial.OpenOptions{
		PortName: device, BaudRate: uint(baud), DataBits: 8, StopBits: 1,
		ParityMode: goserial.PARITY_NONE, InterCharacterTimeout: 100,
	})
	if err != nil {
		return nil, fmt.Errorf("serialsim: open %s: %w", device, err)
	}
	return &Port{f: f}, nil
}

// Read reads at least one byte, or fails.
func (p *Port) Read(b []byte) (int, error) {
	fast := 0
	for {
		start := time.Now()
		n, err := p.f.Read(b)
		if n == 0 && errors.Is(err, io.EOF) {
			if p.closed.Load() {
				return 0, os.ErrClosed
			}
			// Nothing within the inter-character timeout; but a hung-up
			// terminal returns end-of-file at once, every time.
			if time.Since(start) < 25*time.Millisecond {
				if fast++; fast >= 3 {
					return 0, fmt.Errorf("serialsim: read: port hung up: %w", io.ErrUnexpectedEOF)
				}
			} else {
				fast = 0
			}
			continue
		}
		return n, err
	}
}

// Write writes to the port.
func (p *Port) Write(b []byte) (int, error) { return p.f.Write(b) }

// Close closes the port.
func (p *Port) Close() error {
	p.closed.Store(true)
	return p.f.Close()
}
