package config

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// SerialConnection is a line-based ASCII protocol on a serial line: an alarm panel or access controller (see docs/serial.md).
type SerialConnection struct {
	// Device path, e.g. /dev/serial/by-id/usb-FTDI_... (stable across reboots).
	Device string `yaml:"device" jsonschema:"required"`
	// Baud rate. Default: 9600.
	BaudRate int `yaml:"baud_rate,omitempty"`
	// Data bits, 7 or 8. Default: 8.
	DataBits int `yaml:"data_bits,omitempty"`
	// Parity: none, even or odd. Default: none.
	Parity Parity `yaml:"parity,omitempty"`
	// Stop bits, 1 or 2. Default: 1.
	StopBits int `yaml:"stop_bits,omitempty"`
	// Half-duplex RS-485: one exchange at a time with a pause between frames. Default: false.
	RS485 bool `yaml:"rs485,omitempty"`
	// Pause between frames on RS-485. Default: 10 character times, at least 2ms.
	InterFrameDelay time.Duration `yaml:"inter_frame_delay,omitempty"`
	// Line end sent after each command and expected after each received line (a bare \n or \r is also accepted). Default: "\r\n".
	Terminator string `yaml:"terminator,omitempty"`
	// Longest line accepted; longer ones are discarded and counted. Default: 256.
	MaxLine int `yaml:"max_line,omitempty"`
	// How long to wait for the reply to a command. Default: 2s.
	ReplyTimeout time.Duration `yaml:"reply_timeout,omitempty"`
	// Repeats of a command that got no reply. Default: 2.
	Retries *int `yaml:"retries,omitempty"`
	// First wait before reopening a failed port; doubles up to backoff_max. Default: 1s.
	BackoffMin time.Duration `yaml:"backoff_min,omitempty"`
	// Longest wait between reopenings. Default: 30s.
	BackoffMax time.Duration `yaml:"backoff_max,omitempty"`
	// Regular expression of a good reply. Default: OK.
	Ack string `yaml:"ack,omitempty"`
	// Regular expression of a refusal; a group named reason is reported. Default: ERR (?P<reason>.*).
	Nak string `yaml:"nak,omitempty"`
	// A value not confirmed by an event or poll for this long is stale. Default: three poll intervals, none without a poll.
	StaleAfter time.Duration `yaml:"stale_after,omitempty"`
	// Received lines mapped onto points; the first pattern that matches the whole line wins.
	Events []SerialEvent `yaml:"events,omitempty"`
	// A status command sent periodically; its reply lines go through events.
	Poll *SerialPoll `yaml:"poll,omitempty"`
}

// SerialEvent maps received lines onto points.
type SerialEvent struct {
	// Regular expression matching a whole line, with named groups, e.g. 'DOOR (?P<door>\d+) (?P<state>OPEN|CLOSED)'.
	Pattern string `yaml:"pattern" jsonschema:"required"`
	// The points the line sets.
	Set []SerialAssign `yaml:"set" jsonschema:"required"`
}

// SerialAssign sets one point from a matched line.
type SerialAssign struct {
	// Point id, or a template over the pattern's groups, e.g. "door{door}_contact".
	Point string `yaml:"point" jsonschema:"required"`
	// A number, or "{group}": the group's text as a number, or looked up in map.
	Value string `yaml:"value" jsonschema:"required"`
	// Text of the value to number, e.g. {OPEN: 1, CLOSED: 0}.
	Map map[string]float64 `yaml:"map,omitempty"`
	// Set the value, then 0 after this long (an access grant). Default: 0 (no pulse).
	Pulse time.Duration `yaml:"pulse,omitempty"`
}

// SerialPoll is a periodic status command.
type SerialPoll struct {
	// The command line, e.g. "STATUS?".
	Command string `yaml:"command" jsonschema:"required"`
	// How often it is sent. Default: 1m.
	Interval time.Duration `yaml:"interval,omitempty"`
	// Good reply, if it differs from the connection's.
	Ack string `yaml:"ack,omitempty"`
	// Refusal, if it differs from the connection's.
	Nak string `yaml:"nak,omitempty"`
}

// SerialPoint says how a writable point of a serial connection is written.
type SerialPoint struct {
	// Command template: {value} is the engineering value, other {names} come from vars, e.g. "UNLOCK 3 {value}". Set command or commands.
	Command string `yaml:"command,omitempty"`
	// A command per value, e.g. {"1": "ARM 2", "0": "DISARM 2"} (quote the keys).
	Commands map[string]string `yaml:"commands,omitempty"`
	// Fixed names for the templates, e.g. {area: "2"}.
	Vars map[string]string `yaml:"vars,omitempty"`
	// Good reply, if it differs from the connection's.
	Ack string `yaml:"ack,omitempty"`
	// Refusal, if it differs from the connection's.
	Nak string `yaml:"nak,omitempty"`
	// What the point reads after an acknowledged write: ack (the written value) or event (only what an event line says). Default: ack.
	ReadBack SerialReadBack `yaml:"read_back,omitempty"`
	// With read_back: event, how long to wait for the confirming event (cover an exit delay). Default: reply_timeout.
	ConfirmTimeout time.Duration `yaml:"confirm_timeout,omitempty"`
}

// SerialReadBack is ack or event.
type SerialReadBack string

func (SerialReadBack) enumValues() []string { return []string{"ack", "event"} }

func (b *siteBuild) serialConn(id string, f *SerialConnection) *site.SerialConnection {
	sc := &site.SerialConnection{Device: f.Device, BaudRate: f.BaudRate, DataBits: f.DataBits, StopBits: f.StopBits, Parity: string(f.Parity),
		RS485: f.RS485, InterFrameDelay: f.InterFrameDelay, Terminator: f.Terminator, MaxLine: f.MaxLine, ReplyTimeout: f.ReplyTimeout,
		Retries: f.Retries, BackoffMin: f.BackoffMin, BackoffMax: f.BackoffMax, Ack: f.Ack, Nak: f.Nak, StaleAfter: f.StaleAfter}
	for i := range f.Events {
		e := &f.Events[i]
		if _, err := regexp.Compile(e.Pattern); err != nil {
			b.errs.add(b.pos.Key(e, "pattern"), "connection %q: pattern %q is not a regular expression: %v", id, e.Pattern, err)
		}
		se := site.SerialEvent{Pattern: e.Pattern}
		for _, a := range e.Set {
			se.Set = append(se.Set, site.SerialAssign{Point: a.Point, Value: a.Value, Map: a.Map, Pulse: a.Pulse})
		}
		sc.Events = append(sc.Events, se)
	}
	if p := f.Poll; p != nil {
		sc.Poll = &site.SerialPoll{Command: p.Command, Interval: p.Interval, Ack: p.Ack, Nak: p.Nak}
	}
	return sc
}

var templateName = regexp.MustCompile(`\{([^{}]*)\}`)

// checkSerial checks the templates of each serial connection against its
// patterns' groups and its points' commands against their vars, after
// every point is known. The adapter checks the same again when it starts
// (bmsgw validate runs it too).
func (b *siteBuild) checkSerial() {
	for i := range b.mf.Connections {
		c := &b.mf.Connections[i]
		if c.Serial == nil {
			continue
		}
		if c.Serial.Retries != nil && *c.Serial.Retries < 0 {
			b.errs.add(b.pos.Key(c.Serial, "retries"), "connection %q: retries must not be negative", c.ID)
		}
		for j := range c.Serial.Events {
			e := &c.Serial.Events[j]
			re, err := regexp.Compile(e.Pattern)
			if err != nil {
				continue // reported where the pattern is
			}
			groups := map[string]bool{}
			var names []string
			for _, n := range re.SubexpNames() {
				if n != "" {
					groups[n] = true
					names = append(names, n)
				}
			}
			for k := range e.Set {
				a := &e.Set[k]
				for _, f := range []struct{ key, text string }{{"point", a.Point}, {"value", a.Value}} {
					for _, m := range templateName.FindAllStringSubmatch(f.text, -1) {
						if !groups[m[1]] {
							b.errs.add(b.pos.Key(a, f.key), "connection %q: %s %q names {%s}, but the pattern has no group of that name (groups: %s)", c.ID, f.key, f.text, m[1], strings.Join(names, ", "))
						}
					}
				}
				if !strings.Contains(a.Point, "{") && b.s.Points[a.Point] == nil {
					b.errs.add(b.pos.Key(a, "point"), "connection %q: point %q is not defined%s", c.ID, a.Point, didYouMean(a.Point, keys(b.s.Points)))
				}
				if !strings.Contains(a.Value, "{") {
					if _, err := strconv.ParseFloat(a.Value, 64); err != nil {
						b.errs.add(b.pos.Key(a, "value"), "connection %q: value %q is neither a number nor a {group}", c.ID, a.Value)
					}
				}
			}
		}
	}
	for id, p := range b.s.Points {
		if p.Serial != nil && p.Access != site.AccessWrite {
			b.errs.add(b.pointPos[id], "point %q has serial: commands but is not writable; add access: write or drop serial:", id)
		}
		if sp := p.Serial; sp != nil {
			for _, m := range templateName.FindAllStringSubmatch(sp.Command, -1) {
				if _, ok := sp.Vars[m[1]]; !ok && m[1] != "value" {
					b.errs.add(b.pointPos[id], "point %q: command %q names {%s}, which is neither {value} nor one of its vars", id, sp.Command, m[1])
				}
			}
			for k := range sp.Commands {
				if _, err := strconv.ParseFloat(k, 64); err != nil {
					b.errs.add(b.pointPos[id], "point %q: commands key %q is not a number; write e.g. \"1\": \"ARM 2\"", id, k)
				}
			}
			if sp.Command != "" && len(sp.Commands) > 0 {
				b.errs.add(b.pointPos[id], "point %q has both command and commands; keep one", id)
			}
		}
		if c := b.s.Connections[p.Connection]; c != nil && c.Serial != nil && p.Access == site.AccessWrite && p.Serial == nil {
			b.errs.add(b.pointPos[id], "point %q is writable on serial connection %q but has no serial: command; add serial: {command: ...} or commands:", id, p.Connection)
		}
	}
}
