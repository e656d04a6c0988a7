package serial

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOptionsDefaults(t *testing.T) {
	o := demoOptions("/dev/ttyUSB0")
	o.Name, o.ReplyTimeout, o.Retries, o.BackoffMin, o.BackoffMax, o.MaxLine = "", 0, 0, 0, 0, 0
	o.RS485 = true
	s, err := o.validate()
	require.NoError(t, err)
	require.Equal(t, "/dev/ttyUSB0", s.name)
	require.Equal(t, 9600, s.BaudRate)
	require.Equal(t, 8, s.DataBits)
	require.Equal(t, ParityNone, s.Parity)
	require.Equal(t, 1, s.StopBits)
	require.Equal(t, "\r\n", s.Terminator)
	require.Equal(t, 256, s.MaxLine)
	require.Equal(t, 2*time.Second, s.ReplyTimeout)
	require.Equal(t, 2, s.Retries)
	require.Equal(t, time.Second, s.BackoffMin)
	require.Equal(t, 30*time.Second, s.BackoffMax)
	require.Equal(t, 3*time.Hour, s.StaleAfter, "3 poll intervals")
	// 10 characters of 10 bits at 9600 bit/s.
	require.Equal(t, 10416666*time.Nanosecond, s.InterFrameDelay)
	require.Equal(t, []string{"door3_grant"}, s.pulsePoints)
	require.Equal(t, ReadBackAck, s.points["door3_unlock"].readBack)
	require.Equal(t, 2*time.Second, s.points["door3_unlock"].confirm)

	o.Retries = -1
	o.Poll = nil
	s, err = o.validate()
	require.NoError(t, err)
	require.Zero(t, s.Retries)
	require.Zero(t, s.StaleAfter, "event values do not age without a poll")
}

// TestOptionsErrors: New reports every problem of the options, each
// saying where it is.
func TestOptionsErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(o *Options)
		want []string
	}{
		{"no device", func(o *Options) { o.Device = "" }, []string{"device is required"}},
		{"line settings", func(o *Options) { o.DataBits, o.StopBits, o.Parity, o.BaudRate = 9, 3, "mark", -1 }, []string{
			"baud_rate -1 is negative", "data_bits 9: use 5 to 8", "stop_bits 3: use 1 or 2", `parity "mark": use none, even or odd`}},
		{"inter-frame delay without rs485", func(o *Options) { o.InterFrameDelay = time.Millisecond }, []string{"inter_frame_delay applies to rs485 only"}},
		{"backoff", func(o *Options) { o.BackoffMin, o.BackoffMax = time.Minute, time.Second }, []string{"backoff_max 1s is below backoff_min 1m0s"}},
		{"negative durations", func(o *Options) { o.ReplyTimeout, o.StaleAfter = -time.Second, -time.Second }, []string{
			"reply_timeout -1s is negative", "stale_after -1s is negative"}},
		{"bad pattern", func(o *Options) { o.Events[0].Pattern = `AREA (?P<area>\d+` }, []string{
			"events[0]: pattern: error parsing regexp: missing closing )"}},
		{"empty pattern", func(o *Options) { o.Events[0].Pattern = "" }, []string{"events[0]: pattern is required"}},
		{"no assignments", func(o *Options) { o.Events[1].Set = nil }, []string{"events[1]: set names no point"}},
		{"group missing", func(o *Options) { o.Events[3].Set[0].Point = "door{dor}_contact" }, []string{
			`events[3].set[0]: point "door{dor}_contact" names {dor}, but the pattern has no group of that name (groups: [door state])`}},
		{"value group missing", func(o *Options) { o.Events[4].Set[1].Value = "{badge}" }, []string{
			`events[4].set[1]: value "{badge}" names {badge}, but the pattern has no group of that name`}},
		{"unknown fixed point", func(o *Options) { o.Events[1].Set[0].Point = "area9_alarm" }, []string{
			`events[1].set[0]: point "area9_alarm" is not in points`}},
		{"template matches no point", func(o *Options) { o.Events[4].Set[1].Point = "reader{door}_card" }, []string{
			`events[4].set[1]: point template "reader{door}_card" matches no point in points`}},
		{"bad literal", func(o *Options) { o.Events[1].Set[0].Value = "on" }, []string{
			`events[1].set[0]: value "on" is neither a number nor a template naming a group`}},
		{"map with literal", func(o *Options) { o.Events[0].Set[0].Value = "1" }, []string{
			"events[0].set[0]: map needs a value naming a group, such as {state}"}},
		{"unclosed brace", func(o *Options) { o.Events[0].Set[0].Point = "area{area_armed" }, []string{
			`events[0].set[0]: point: template "area{area_armed": unclosed {`}},
		{"negative pulse", func(o *Options) { o.Events[4].Set[0].Pulse = -time.Second }, []string{"events[4].set[0]: pulse -1s is negative"}},
		{"command field", func(o *Options) { o.Points["door3_unlock"] = PointSpec{Command: "UNLOCK {door} {value}"} }, []string{
			`points["door3_unlock"]: command "UNLOCK {door} {value}" names {door}, which is neither value nor one of the point's vars`}},
		{"commands key", func(o *Options) { o.Points["area1_armed"] = PointSpec{Commands: map[string]string{"on": "ARM 1"}} }, []string{
			`points["area1_armed"]: commands: key "on" is not a number`}},
		{"per-value command with value", func(o *Options) {
			o.Points["area1_armed"] = PointSpec{Commands: map[string]string{"1": "ARM {value}"}}
		}, []string{`points["area1_armed"]: commands["1"] "ARM {value}": a per-value command cannot name {value}`}},
		{"line end in command", func(o *Options) {
			o.Points["door3_unlock"] = PointSpec{Command: "UNLOCK 3 {value}\r\n", Vars: map[string]string{"x": "a\nb"}}
		}, []string{`command "UNLOCK 3 {value}\r\n" holds a line end`, `var "x": "a\nb" holds a line end`}},
		{"read_back", func(o *Options) {
			o.Points["door3_unlock"] = PointSpec{Command: "UNLOCK 3 {value}", ReadBack: "maybe", ConfirmTimeout: -time.Second}
		}, []string{`read_back "maybe": use ack or event`, "confirm_timeout -1s is negative"}},
		{"read_back event with no event", func(o *Options) {
			o.Points["door3_unlock"] = PointSpec{Command: "UNLOCK 3 {value}", ReadBack: ReadBackEvent}
		}, []string{`points["door3_unlock"]: read_back is event, but no event pattern sets the point`}},
		{"confirm_timeout with ack", func(o *Options) {
			o.Points["door3_unlock"] = PointSpec{Command: "UNLOCK 3 {value}", ConfirmTimeout: time.Second}
		}, []string{"confirm_timeout applies to read_back event only"}},
		{"reply settings on a read-only point", func(o *Options) { o.Points["door1_contact"] = PointSpec{Ack: "YES"} }, []string{
			`points["door1_contact"]: ack, nak, read_back, confirm_timeout and vars need a command or commands`}},
		{"bad ack", func(o *Options) {
			o.Ack = "OK("
			o.Points["door3_unlock"] = PointSpec{Command: "UNLOCK 3 {value}", Nak: "ERR[", Ack: "OK"}
		}, []string{"ack: error parsing regexp", `points["door3_unlock"]: nak: error parsing regexp`}},
		{"poll", func(o *Options) { o.Poll = &Poll{Ack: "("} }, []string{
			"poll: command is required", "poll: interval 0s is not positive", "poll: ack: error parsing regexp"}},
		{"bad var name", func(o *Options) {
			o.Points["area2_armed"] = PointSpec{Command: "ARM 2", Vars: map[string]string{"value": "1", "a-b": "2"}}
		}, []string{`var "value": use letters`, `var "a-b": use letters`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := demoOptions("/dev/ttyUSB0")
			tc.edit(&o)
			c, err := New(o, nil)
			require.Error(t, err)
			require.Nil(t, c)
			require.NoError(t, c.Close(), "Close is safe after a failed New")
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, "serial options for "), msg)
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
			// One line per problem.
			require.Len(t, strings.Split(msg, "\n"), len(tc.want), msg)
		})
	}
}

func TestTemplate(t *testing.T) {
	tp, err := parseTemplate("door{door}_{{x}}_{state}{door}")
	require.NoError(t, err)
	require.Equal(t, []string{"door", "state"}, tp.fields())
	require.False(t, tp.fixed())
	got := tp.render(func(f string) string { return map[string]string{"door": "3", "state": "OPEN"}[f] })
	require.Equal(t, "door3_{x}_OPEN3", got)
	m := tp.matcher()
	require.True(t, m.MatchString("door12_{x}_CLOSED12"))
	require.False(t, m.MatchString("door_{x}_CLOSED12"), "a field is never empty")

	fixed, err := parseTemplate("ARM 2")
	require.NoError(t, err)
	require.True(t, fixed.fixed())

	for src, want := range map[string]string{
		"door{":      "unclosed {",
		"door}":      "} without {",
		"door{}":     "{} is not a field name",
		"door{1a}":   "{1a} is not a field name",
		"door{a b}":  "{a b} is not a field name",
		"door{a{b}}": "{a{b} is not a field name",
	} {
		_, err := parseTemplate(src)
		require.ErrorContains(t, err, want, src)
	}
}

func TestSplitter(t *testing.T) {
	type step struct {
		in       string
		lines    []string
		overlong int
	}
	cases := []struct {
		name       string
		terminator string
		max        int
		steps      []step
	}{
		{"crlf across reads", "\r\n", 20, []step{
			{"OK\r", []string{"OK"}, 0},
			{"\nDOOR 1 ", nil, 0},
			{"OPEN\r\nAREA 1 ARMED\r\n", []string{"DOOR 1 OPEN", "AREA 1 ARMED"}, 0},
		}},
		{"bare lf and cr", "\r\n", 9, []step{{"A\nB\rC\n\n\r\r\nD", []string{"A", "B", "C"}, 0}, {"\n", []string{"D"}, 0}}},
		{"noise trimmed", "\r\n", 9, []step{{"\x00\x00 OK \t\r\n\x00\x00\r\n", []string{"OK"}, 0}}},
		{"own terminator", "\x03", 9, []step{{"A\x03B\r\nC\x03", []string{"A", "B", "C"}, 0}}},
		{"overlong", "\r\n", 9, []step{
			{"0123456789", nil, 1},
			{"more of it", nil, 0},
			{"\r\nOK\r\n0123456789\r\n", []string{"OK"}, 1},
			{"012345678\r\n", []string{"012345678"}, 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSplitter(tc.terminator, tc.max)
			for i, st := range tc.steps {
				lines, over := sp.feed([]byte(st.in))
				require.Equal(t, st.lines, lines, "step %d", i)
				require.Equal(t, st.overlong, over, "step %d", i)
			}
		})
	}
	sp := newSplitter("\r\n", 100)
	sp.feed([]byte("partial"))
	sp.reset()
	lines, _ := sp.feed([]byte("OK\n"))
	require.Equal(t, []string{"OK"}, lines)
}
