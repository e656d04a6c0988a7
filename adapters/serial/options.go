package serial

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Parity is the parity of a serial line.
type Parity string

// Parities.
const (
	ParityNone Parity = "none"
	ParityEven Parity = "even"
	ParityOdd  Parity = "odd"
)

// ReadBack says what a point reads after a write was acknowledged.
type ReadBack string

// Read-back modes.
const (
	// ReadBackAck: the acknowledged value is the point's value until an
	// event line sets another one. For commands the panel does not report
	// back (a door unlock timer), and for areas with a long exit delay.
	ReadBackAck ReadBack = "ack"
	// ReadBackEvent: only event lines set the point. After the Ack the
	// write waits up to ConfirmTimeout for an event line that sets the
	// point to the written value, and fails with ErrNotConfirmed if none
	// comes.
	ReadBackEvent ReadBack = "event"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultBaudRate     = 9600
	DefaultDataBits     = 8
	DefaultParity       = ParityNone
	DefaultStopBits     = 1
	DefaultTerminator   = "\r\n"
	DefaultMaxLine      = 256
	DefaultReplyTimeout = 2 * time.Second
	DefaultRetries      = 2
	DefaultBackoffMin   = time.Second
	DefaultBackoffMax   = 30 * time.Second
	DefaultAck          = `OK`
	DefaultNak          = `ERR (?P<reason>.*)`
)

// Options configure a Client. Options is data: New validates it and builds
// the runtime Client. Zero fields take the defaults shown.
//
// Every regular expression (event patterns, Ack, Nak) is matched against
// a whole received line, as if written ^(?:...)$, in Go's RE2 syntax;
// named groups are written (?P<name>...).
type Options struct {
	// Name names the connection in logs, errors and States. Default: Device.
	Name string
	// Device is the serial device, e.g. /dev/ttyUSB0, /dev/serial/by-id/...
	// or a pty. Required.
	Device string

	// BaudRate in bit/s. Default 9600.
	BaudRate int
	// DataBits per character, 5 to 8. Default 8.
	DataBits int
	// Parity: none, even or odd. Default none.
	Parity Parity
	// StopBits, 1 or 2. Default 1.
	StopBits int

	// RS485 is for a half-duplex two-wire bus: before each command the
	// line is kept silent for InterFrameDelay after the last byte sent or
	// received. (Commands are always sent one at a time: a command is
	// sent only once the previous one is answered or has timed out.)
	RS485 bool
	// InterFrameDelay is the silence kept before a command on an RS485
	// bus. Default: 10 character times at BaudRate, at least 2 ms.
	InterFrameDelay time.Duration
	// KernelRS485 switches the transceiver's direction with RTS through
	// the kernel's RS-485 mode (TIOCSRS485), for UARTs wired to a
	// transceiver without automatic direction control. USB adapters
	// switch by themselves and need not set it; a pty refuses it.
	KernelRS485 bool

	// Terminator ends every command sent. Received lines end at "\n",
	// "\r" or the terminator's last byte, so "\r\n" and a bare "\n" are
	// both taken. Default "\r\n".
	Terminator string
	// MaxLine is the longest received line in bytes; longer lines are
	// discarded, counted in Stats and logged. Default 256.
	MaxLine int

	// ReplyTimeout bounds the wait for a command's Ack or Nak. Default 2s.
	ReplyTimeout time.Duration
	// Retries is how often a command is sent again when no reply came
	// within ReplyTimeout. A refusal (Nak) is never repeated. Default 2;
	// negative means no retries.
	Retries int
	// BackoffMin is the wait before the port is reopened after it failed
	// (a USB adapter unplugged) or could not be opened; it doubles on each
	// failure up to BackoffMax. Default 1s.
	BackoffMin time.Duration
	// BackoffMax caps the wait between reopens. Default 30s.
	BackoffMax time.Duration

	// Ack is the reply that accepts a command, for points whose PointSpec
	// gives none and for Poll. Default "OK".
	Ack string
	// Nak is the reply that refuses a command; a group named "reason"
	// gives the reason reported, else the whole line. Default
	// "ERR (?P<reason>.*)".
	Nak string

	// StaleAfter: a value no event line has set for this long reads with
	// control.ErrStale (the value is still given). Default: 3 poll
	// intervals with Poll, else 0 (event values do not age). Whatever
	// the setting, every value is stale from when the port fails until an
	// event line sets it again: events may have been missed meanwhile.
	StaleAfter time.Duration

	// Events map received lines onto point values. Every received line,
	// replies included, is tried against the patterns in order, and the
	// first that matches sets its points. Lines no pattern matches (and
	// that are not the awaited reply) are counted in Stats and logged at
	// debug level.
	Events []EventPattern
	// Poll is an optional status command sent after the port is opened
	// and then every interval; its reply lines go through Events.
	Poll *Poll

	// Points holds every point of the connection, read-only ones with a
	// zero PointSpec, keyed by point id. Read, Write and Watch refuse
	// points not listed (ErrUnknownPoint), and event lines naming other
	// points are counted and logged.
	Points map[string]PointSpec
}

// EventPattern maps the lines matching a regular expression onto points.
type EventPattern struct {
	// Pattern is a regular expression with named groups, matched against
	// the whole line, e.g. `DOOR (?P<door>\d+) (?P<state>OPEN|CLOSED)`.
	Pattern string
	// Set are the points a matching line sets.
	Set []Assign
}

// Assign sets one point from a matching line.
type Assign struct {
	// Point is the point id, a template that may name the pattern's
	// groups: "door{door}_contact".
	Point string
	// Value is a number ("1"), or a template naming groups ("{card}")
	// whose text is a number or, with Map, a key of Map ("{state}").
	Value string
	// Map turns the text of Value into a number: {"OPEN": 1, "CLOSED": 0}.
	// A text not in Map is counted in Stats and logged; the point keeps
	// its value.
	Map map[string]float64
	// Pulse, when set, makes the value a pulse: the point takes the value
	// and returns to 0 Pulse later (an access grant, a card shown). Every
	// pulse is delivered to Watch, even with an unchanged value. Before
	// its first pulse such a point reads 0 once the port is open.
	Pulse time.Duration
}

// Poll is a status command sent periodically.
type Poll struct {
	// Command is the line sent, e.g. "STATUS?". Required.
	Command string
	// Interval between polls. Required.
	Interval time.Duration
	// Ack and Nak override Options.Ack and Options.Nak for the poll.
	Ack, Nak string
}

// PointSpec is how a point is written. Read-only points have a zero
// PointSpec.
type PointSpec struct {
	// Command is the line sent for a write, a template naming {value}
	// (the engineering value, e.g. 5 or 21.5) and Vars: "UNLOCK 12
	// {value}".
	Command string
	// Commands gives a line per value, keyed by the value as a number
	// ("1": "ARM 2", "0": "DISARM 2"); they may name Vars. A value with no
	// entry here falls back to Command, and without Command it is refused
	// with control.ErrOutOfRange.
	Commands map[string]string
	// Vars are the point's own template fields, e.g. {"area": "2"} for
	// "ARM {area}": one command template serves many points.
	Vars map[string]string
	// Ack and Nak override Options.Ack and Options.Nak for this point.
	Ack, Nak string
	// ReadBack: ack (default) or event; see ReadBack.
	ReadBack ReadBack
	// ConfirmTimeout bounds the wait for the confirming event line with
	// ReadBack event; it must cover the panel's exit delay when arming.
	// Default: ReplyTimeout.
	ConfirmTimeout time.Duration
}

// settings are validated Options with the defaults applied and the
// expressions and templates compiled.
type settings struct {
	Options
	name   string
	ack    *regexp.Regexp
	nak    *regexp.Regexp
	events []event
	poll   *pollSpec
	points map[string]*pointSpec
	// pulsePoints are the points some Assign with a Pulse can set.
	pulsePoints []string
}

type event struct {
	re  *regexp.Regexp
	set []assign
}

type assign struct {
	point template
	value template
	// literal is the value when value has no fields.
	literal float64
	m       map[string]float64
	pulse   time.Duration
}

type pollSpec struct {
	command  string
	interval time.Duration
	ack, nak *regexp.Regexp
}

type pointSpec struct {
	id       string
	command  *template
	commands map[float64]template
	vars     map[string]string
	ack, nak *regexp.Regexp
	readBack ReadBack
	confirm  time.Duration
}

// writable reports whether the spec has any command.
func (p *pointSpec) writable() bool { return p.command != nil || len(p.commands) > 0 }

// compileLine compiles a regular expression matched against whole lines.
func compileLine(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err // the message then shows what was written
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// validate applies the defaults and checks the options, reporting every
// problem at once.
func (o Options) validate() (*settings, error) {
	s := &settings{Options: o, points: map[string]*pointSpec{}}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if o.Device == "" {
		bad("device is required")
	}
	s.name = o.Name
	if s.name == "" {
		s.name = o.Device
	}
	s.BaudRate = orDefault(s.BaudRate, DefaultBaudRate)
	s.DataBits = orDefault(s.DataBits, DefaultDataBits)
	s.StopBits = orDefault(s.StopBits, DefaultStopBits)
	if s.Parity == "" {
		s.Parity = DefaultParity
	}
	if s.BaudRate < 0 {
		bad("baud_rate %d is negative", s.BaudRate)
	}
	if s.DataBits < 5 || s.DataBits > 8 {
		bad("data_bits %d: use 5 to 8", s.DataBits)
	}
	if s.StopBits != 1 && s.StopBits != 2 {
		bad("stop_bits %d: use 1 or 2", s.StopBits)
	}
	switch s.Parity {
	case ParityNone, ParityEven, ParityOdd:
	default:
		bad("parity %q: use none, even or odd", s.Parity)
	}
	if s.InterFrameDelay == 0 && s.RS485 && s.BaudRate > 0 {
		s.InterFrameDelay = max(2*time.Millisecond, time.Duration(float64(time.Second)*10*float64(charBits(s))/float64(s.BaudRate)))
	}
	if s.InterFrameDelay != 0 && !s.RS485 {
		bad("inter_frame_delay applies to rs485 only")
	}
	if s.Terminator == "" {
		s.Terminator = DefaultTerminator
	}
	s.MaxLine = orDefault(s.MaxLine, DefaultMaxLine)
	if s.MaxLine < 1 {
		bad("max_line %d is not positive", s.MaxLine)
	}
	if s.ReplyTimeout == 0 {
		s.ReplyTimeout = DefaultReplyTimeout
	}
	if s.Retries == 0 {
		s.Retries = DefaultRetries
	}
	if s.Retries < 0 {
		s.Retries = 0
	}
	if s.BackoffMin == 0 {
		s.BackoffMin = DefaultBackoffMin
	}
	if s.BackoffMax == 0 {
		s.BackoffMax = max(DefaultBackoffMax, s.BackoffMin)
	}
	if s.StaleAfter == 0 && o.Poll != nil {
		s.StaleAfter = 3 * o.Poll.Interval
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"inter_frame_delay", s.InterFrameDelay}, {"reply_timeout", s.ReplyTimeout}, {"backoff_min", s.BackoffMin},
		{"backoff_max", s.BackoffMax}, {"stale_after", s.StaleAfter}} {
		if d.v < 0 {
			bad("%s %s is negative", d.name, d.v)
		}
	}
	if s.BackoffMax < s.BackoffMin {
		bad("backoff_max %s is below backoff_min %s", s.BackoffMax, s.BackoffMin)
	}

	if s.Ack == "" {
		s.Ack = DefaultAck
	}
	if s.Nak == "" {
		s.Nak = DefaultNak
	}
	var err error
	if s.ack, err = compileLine(s.Ack); err != nil {
		bad("ack: %w", err)
	}
	if s.nak, err = compileLine(s.Nak); err != nil {
		bad("nak: %w", err)
	}
	replies := func(where, ack, nak string) (a, n *regexp.Regexp) {
		a, n = s.ack, s.nak
		if ack != "" {
			if a, err = compileLine(ack); err != nil {
				bad("%s: ack: %w", where, err)
			}
		}
		if nak != "" {
			if n, err = compileLine(nak); err != nil {
				bad("%s: nak: %w", where, err)
			}
		}
		return a, n
	}

	if o.Poll != nil {
		p := &pollSpec{command: o.Poll.Command, interval: o.Poll.Interval}
		if p.command == "" {
			bad("poll: command is required")
		}
		if strings.ContainsAny(p.command, "\r\n") {
			bad("poll: command %q holds a line end; the terminator is added when sent", p.command)
		}
		if p.interval <= 0 {
			bad("poll: interval %s is not positive", p.interval)
		}
		p.ack, p.nak = replies("poll", o.Poll.Ack, o.Poll.Nak)
		s.poll = p
	}

	ids := make([]string, 0, len(o.Points))
	for id := range o.Points {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ps, perr := compilePoint(id, o.Points[id], replies, s.ReplyTimeout)
		errs = append(errs, perr...)
		s.points[id] = ps
	}

	// Which points can an event line set, and with a pulse?
	settable := map[string]bool{}
	incomplete := false // an event failed to compile: settable is partial
	pulses := map[string]bool{}
	for i, ep := range o.Events {
		where := fmt.Sprintf("events[%d]", i)
		ev, eerr := compileEvent(where, ep)
		errs = append(errs, eerr...)
		for j, a := range ev.set {
			if a.point.src == "" {
				incomplete = true // reported by compileEvent
				continue
			}
			m := a.point.matcher()
			n := 0
			for _, id := range ids {
				if m.MatchString(id) {
					n++
					settable[id] = true
					if a.pulse > 0 {
						pulses[id] = true
					}
				}
			}
			switch {
			case n > 0:
			case a.point.fixed():
				bad("%s.set[%d]: point %q is not in points", where, j, a.point.src)
			default:
				bad("%s.set[%d]: point template %q matches no point in points", where, j, a.point.src)
			}
		}
		s.events = append(s.events, ev)
	}
	for _, id := range ids {
		if pulses[id] {
			s.pulsePoints = append(s.pulsePoints, id)
		}
		if ps := s.points[id]; ps != nil && ps.readBack == ReadBackEvent && !settable[id] && !incomplete {
			bad("points[%q]: read_back is event, but no event pattern sets the point", id)
		}
	}

	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("serial options for %s: %w", s.name, err)
	}
	return s, nil
}

func compilePoint(id string, p PointSpec, replies func(where, ack, nak string) (*regexp.Regexp, *regexp.Regexp), replyTimeout time.Duration) (*pointSpec, []error) {
	var errs []error
	where := fmt.Sprintf("points[%q]", id)
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	ps := &pointSpec{id: id, vars: p.Vars, readBack: p.ReadBack, confirm: p.ConfirmTimeout}
	if id == "" {
		bad("empty point id")
	}
	for name, v := range p.Vars {
		if !fieldName.MatchString(name) || name == "value" {
			bad("var %q: use letters, digits and _, and not value", name)
		}
		if strings.ContainsAny(v, "\r\n") {
			bad("var %q: %q holds a line end", name, v)
		}
	}
	for k, cmd := range p.Commands {
		if strings.ContainsAny(cmd, "\r\n") {
			bad("commands[%q] %q holds a line end; the terminator is added when sent", k, cmd)
		}
	}
	if strings.ContainsAny(p.Command, "\r\n") {
		bad("command %q holds a line end; the terminator is added when sent", p.Command)
	}
	known := func(t template, what string) {
		for _, f := range t.fields() {
			if _, ok := p.Vars[f]; !ok && f != "value" {
				bad("%s %q names {%s}, which is neither value nor one of the point's vars", what, t.src, f)
			}
		}
	}
	if p.Command != "" {
		t, err := parseTemplate(p.Command)
		if err != nil {
			bad("command: %w", err)
		} else {
			known(t, "command")
			ps.command = &t
		}
	}
	keys := make([]string, 0, len(p.Commands))
	for k := range p.Commands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := strconv.ParseFloat(k, 64)
		if err != nil {
			bad("commands: key %q is not a number", k)
			continue
		}
		t, err := parseTemplate(p.Commands[k])
		if err != nil {
			bad("commands[%q]: %w", k, err)
			continue
		}
		known(t, "commands["+k+"]")
		if slices.Contains(t.fields(), "value") {
			bad("commands[%q] %q: a per-value command cannot name {value}", k, t.src)
		}
		if p.Commands[k] == "" {
			bad("commands[%q] is empty", k)
		}
		if ps.commands == nil {
			ps.commands = map[float64]template{}
		}
		ps.commands[v] = t
	}
	ps.ack, ps.nak = replies(where, p.Ack, p.Nak)
	if !ps.writable() && (p.Ack != "" || p.Nak != "" || p.ReadBack != "" || p.ConfirmTimeout != 0 || len(p.Vars) > 0) {
		bad("ack, nak, read_back, confirm_timeout and vars need a command or commands")
	}
	if ps.readBack == "" {
		ps.readBack = ReadBackAck
	}
	switch ps.readBack {
	case ReadBackAck:
		if p.ConfirmTimeout != 0 {
			bad("confirm_timeout applies to read_back event only")
		}
	case ReadBackEvent:
	default:
		bad("read_back %q: use ack or event", ps.readBack)
	}
	if ps.confirm == 0 {
		ps.confirm = replyTimeout
	}
	if p.ConfirmTimeout < 0 {
		bad("confirm_timeout %s is negative", p.ConfirmTimeout)
	}
	return ps, errs
}

func compileEvent(where string, ep EventPattern) (event, []error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	badSet := func(j int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.set[%d]: "+format, append([]any{where, j}, args...)...))
	}
	var ev event
	var groups []string
	re, err := compileLine(ep.Pattern)
	switch {
	case ep.Pattern == "":
		bad("pattern is required")
	case err != nil:
		bad("pattern: %w", err)
	default:
		ev.re = re
		for _, g := range re.SubexpNames() {
			if g != "" {
				groups = append(groups, g)
			}
		}
	}
	if len(ep.Set) == 0 {
		bad("set names no point")
	}
	checkFields := func(j int, what string, t template) {
		if ev.re == nil {
			return
		}
		for _, f := range t.fields() {
			if !slices.Contains(groups, f) {
				badSet(j, "%s %q names {%s}, but the pattern has no group of that name (groups: %v)", what, t.src, f, groups)
			}
		}
	}
	for j, a := range ep.Set {
		var as assign
		pt, err := parseTemplate(a.Point)
		switch {
		case a.Point == "":
			badSet(j, "point is required")
		case err != nil:
			badSet(j, "point: %w", err)
		default:
			checkFields(j, "point", pt)
			as.point = pt
		}
		vt, err := parseTemplate(a.Value)
		switch {
		case a.Value == "":
			badSet(j, "value is required (a number, or a template such as {state})")
		case err != nil:
			badSet(j, "value: %w", err)
		case vt.fixed() && len(a.Map) > 0:
			badSet(j, "map needs a value naming a group, such as {state}")
		case vt.fixed():
			v, perr := strconv.ParseFloat(a.Value, 64)
			if perr != nil {
				badSet(j, "value %q is neither a number nor a template naming a group", a.Value)
			}
			as.value, as.literal = vt, v
		default:
			checkFields(j, "value", vt)
			as.value = vt
		}
		as.m = a.Map
		if a.Pulse < 0 {
			badSet(j, "pulse %s is negative", a.Pulse)
		}
		as.pulse = a.Pulse
		ev.set = append(ev.set, as)
	}
	return ev, errs
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// charBits is the number of bits one character takes on the line.
func charBits(s *settings) int {
	bits := 1 + s.DataBits + s.StopBits
	if s.Parity != ParityNone {
		bits++
	}
	return bits
}
