package serial

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// TestCommandsAcknowledged arms, disarms and unlocks over the pty pair and
// reads back what the panel reported.
func TestCommandsAcknowledged(t *testing.T) {
	r := newRig(t, helperConfig{ExitDelay: 100 * time.Millisecond, Second: 50 * time.Millisecond})

	// read_back event: the write returns once the panel reports the
	// area armed, after its exit delay.
	require.NoError(t, r.write(t, "area1_armed", 1))
	got := r.read(t, "area1_armed")
	require.NoError(t, got.Err)
	require.Equal(t, 1.0, got.Value)

	// A command template with the point's vars; read_back ack.
	require.NoError(t, r.write(t, "area2_armed", 1))
	r.await(t, "area2_armed", 1)

	require.NoError(t, r.write(t, "area1_armed", 0))
	got = r.read(t, "area1_armed")
	require.NoError(t, got.Err)
	require.Equal(t, 0.0, got.Value)

	// Unlock door 3 for 2 (short) seconds: the acknowledged value reads
	// back, and the panel reports the door unlocked, then locked again.
	require.NoError(t, r.write(t, "door3_unlock", 2))
	got = r.read(t, "door3_unlock")
	require.NoError(t, got.Err)
	require.Equal(t, 2.0, got.Value)
	r.await(t, "door3_unlocked", 1)
	r.await(t, "door3_unlocked", 0)

	require.Equal(t, []string{"STATUS?", "ARM 1", "ARM 2", "DISARM 1", "UNLOCK 3 2"}, r.panel.received(t))
	st := r.c.States()
	require.Len(t, st, 1)
	require.Equal(t, "panel", st[0].Device)
	require.True(t, st[0].Up, st[0].LastError)
}

// TestRefusedCommand: an ERR reply is a write error with its reason, and
// is not repeated.
func TestRefusedCommand(t *testing.T) {
	r := newRig(t, helperConfig{})

	r.panel.script(t, "door 1 open")
	r.await(t, "door1_contact", 1)
	err := r.write(t, "area1_armed", 1)
	var refused *RefusedError
	require.ErrorAs(t, err, &refused, "%v", err)
	require.ErrorIs(t, err, ErrRefused)
	require.Equal(t, "DOOR OPEN", refused.Reason)
	require.Equal(t, "ARM 1", refused.Command)
	require.Contains(t, err.Error(), `write 1 to area1_armed on panel: command "ARM 1" refused: DOOR OPEN`)
	got := r.read(t, "area1_armed")
	require.NoError(t, got.Err)
	require.Equal(t, 0.0, got.Value, "a refused arm leaves the area disarmed")

	// A refusal of a read_back ack write does not set the point.
	r.panel.script(t, "refuse BUSY")
	err = r.write(t, "door3_unlock", 5)
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), "refused: BUSY")
	require.ErrorIs(t, r.read(t, "door3_unlock").Err, ErrNoValue)

	require.Equal(t, []string{"STATUS?", "ARM 1", "UNLOCK 3 5"}, r.panel.received(t), "refusals are not repeated")
	require.EqualValues(t, 2, r.c.Stats().Refused)
	require.True(t, r.c.States()[0].Up, "a refusal is an answer")
}

// TestEventsMapOntoPoints: door contacts, an intrusion, card grants
// (pulses) arrive on Watch as they happen.
func TestEventsMapOntoPoints(t *testing.T) {
	r := newRig(t, helperConfig{})
	// Before its first pulse a pulse point rests at 0; the card number
	// has no value yet.
	got := r.read(t, "door3_grant")
	require.NoError(t, got.Err)
	require.Equal(t, 0.0, got.Value)
	require.ErrorIs(t, r.read(t, "door3_card").Err, ErrNoValue)

	// Quick changes are all delivered, in order.
	r.panel.script(t, "door 2 open", "door 2 close", "door 2 open", "door 2 close")
	r.await(t, "door2_contact", 1)
	r.await(t, "door2_contact", 0)
	r.await(t, "door2_contact", 1)
	r.await(t, "door2_contact", 0)

	// A card at door 3: a grant pulse and the card number.
	r.panel.script(t, "card 3 4711")
	r.await(t, "door3_grant", 1)
	card := r.await(t, "door3_card", 4711)
	r.await(t, "door3_grant", 0)
	require.False(t, card.Time.IsZero())
	// The next card gives another pulse.
	r.panel.script(t, "card 3 815")
	r.await(t, "door3_grant", 1)
	r.await(t, "door3_card", 815)
	r.await(t, "door3_grant", 0)

	// Arm area 1, then open its door: an intrusion.
	require.NoError(t, r.write(t, "area1_armed", 1))
	r.panel.script(t, "door 1 open")
	r.await(t, "door1_contact", 1)
	r.await(t, "area1_alarm", 1)
	require.Zero(t, r.c.Stats().Unmatched)
}

// TestEventsWhileAwaitingReply: lines that arrive while a command waits
// for its reply are still applied.
func TestEventsWhileAwaitingReply(t *testing.T) {
	r := newRig(t, helperConfig{})
	r.panel.script(t, "hold")
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- r.write(t, "area2_armed", 1) })
	t.Cleanup(wg.Wait)
	eventually(t, 10*time.Second, func() bool { return slices.Contains(r.panel.received(t), "ARM 2") }, "panel receives ARM 2")

	r.panel.script(t, "door 1 open", "line RANDOM NOISE")
	r.await(t, "door1_contact", 1)
	select {
	case err := <-done:
		t.Fatalf("the write ended before the panel replied: %v", err)
	default:
	}
	r.panel.script(t, "release")
	require.NoError(t, <-done)
	r.await(t, "area2_armed", 1)
	require.EqualValues(t, 1, r.c.Stats().Unmatched)
}

// TestNoReply: a command without reply is sent again; when the retries
// run out the write fails, the panel is marked down, and it is up again
// once it talks.
func TestNoReply(t *testing.T) {
	r := newRig(t, helperConfig{})

	r.panel.script(t, "drop 1")
	require.NoError(t, r.write(t, "area2_armed", 1))
	require.Equal(t, []string{"STATUS?", "ARM 2", "ARM 2"}, r.panel.received(t))
	require.EqualValues(t, 1, r.c.Stats().Repeats)

	r.panel.script(t, "drop 2")
	err := r.write(t, "area2_armed", 0)
	require.ErrorIs(t, err, ErrNoReply)
	require.Contains(t, err.Error(), `command "DISARM 2": no reply within 500ms (2 attempts)`)
	st := r.c.States()[0]
	require.False(t, st.Up)
	require.Contains(t, st.LastError, "no reply")

	r.panel.script(t, "door 2 open")
	r.await(t, "door2_contact", 1)
	require.True(t, r.c.States()[0].Up)
	require.NoError(t, r.write(t, "area2_armed", 0))
	r.await(t, "area2_armed", 0)
}

// TestSurvivesGarbage: noise, binary bytes, overlong lines, unknown points
// and values do not stop the adapter; they are counted.
func TestSurvivesGarbage(t *testing.T) {
	r := newRig(t, helperConfig{})
	r.panel.script(t,
		"line HELLO WORLD",
		"hex 00ff41fe0d0a",                   // NUL, bytes that are not UTF-8, CR LF
		"line "+strings.Repeat("X", 200),     // longer than max_line 64
		"hex "+strings.Repeat("5a", 100),     // overlong with no line end yet ...
		"line  tail of the overlong line",    // ... ended here: both discarded as one
		"line DOOR 99 OPEN",                  // no such point
		"line DOOR 2 AJAR",                   // not in the map
		"line GRANT 3 not-a-number",          // no pattern matches
		"hex 444f4f5220320d0a204f50454e0d0a", // "DOOR 2\r\n OPEN\r\n": two lines, neither matches fully
		"door 2 open",
	)
	r.await(t, "door2_contact", 1)
	s := r.c.Stats()
	require.EqualValues(t, 2, s.Overlong)
	require.EqualValues(t, 1, s.UnknownPoint)
	require.EqualValues(t, 1, s.BadValue)
	require.EqualValues(t, 5, s.Unmatched, "HELLO WORLD, the binary line, GRANT 3 not-a-number, DOOR 2, OPEN")
	require.Contains(t, r.log.String(), "serial line longer than max_line discarded")
	require.NoError(t, r.write(t, "area2_armed", 1))
}

// TestPanelRestart: the panel process dies and another starts on the
// same line; then the whole cable goes (socat stops, as a USB adapter
// pulled) and comes back: the adapter reopens the port.
func TestPanelRestart(t *testing.T) {
	r := newRig(t, helperConfig{})
	require.NoError(t, r.write(t, "area2_armed", 1))

	// The panel restarts; the port stays open.
	r.panel.kill()
	r.panel = startPanel(t, r.cable.b, r.cfg)
	require.NoError(t, r.write(t, "area2_armed", 0))
	r.await(t, "area2_armed", 0)
	require.EqualValues(t, 1, r.c.Stats().Opens)

	// The cable goes: values turn stale, writes fail at once.
	r.panel.kill()
	r.cable.unplug()
	stale := r.awaitErr(t, "door1_contact", control.ErrStale)
	require.Equal(t, 0.0, stale.Value, "a stale reading keeps the last value")
	eventually(t, 10*time.Second, func() bool { return !r.c.States()[0].Up }, "panel reported down")
	err := r.write(t, "area2_armed", 1)
	require.ErrorIs(t, err, ErrPortDown)
	got := r.read(t, "area2_armed")
	require.ErrorIs(t, got.Err, control.ErrStale)

	// It comes back on the same path: the port is reopened, the status
	// poll refreshes the values, and commands work again.
	r.cable = startCable(t, r.dir)
	r.panel = startPanel(t, r.cable.b, r.cfg)
	r.await(t, "door1_contact", 0)
	eventually(t, 10*time.Second, func() bool { return r.c.States()[0].Up }, "panel reported up")
	require.NoError(t, r.write(t, "area2_armed", 1))
	r.await(t, "area2_armed", 1)
	require.EqualValues(t, 2, r.c.Stats().Opens)
	require.Contains(t, r.log.String(), "serial port reopened")
}

// TestStaleAfter: values a poll no longer refreshes turn stale.
func TestStaleAfter(t *testing.T) {
	r := newRig(t, helperConfig{}, func(o *Options) {
		o.Poll.Interval = 50 * time.Millisecond
		o.ReplyTimeout = 40 * time.Millisecond
		o.Retries = -1
	})
	r.panel.script(t, "drop 1000000")
	got := r.awaitErr(t, "door1_contact", control.ErrStale)
	require.Equal(t, 0.0, got.Value)
	require.ErrorIs(t, r.read(t, "door1_contact").Err, control.ErrStale)
	// Pulse points are events; they do not age.
	require.NoError(t, r.read(t, "door3_grant").Err)
	require.Contains(t, r.log.String(), "serial status poll failed")
}

// TestGuardRails: writes the mapping forbids never reach the wire, and
// need no panel.
func TestGuardRails(t *testing.T) {
	o := demoOptions(t.TempDir() + "/no-such-tty")
	c, err := New(o, nil)
	require.NoError(t, err)
	defer c.Close()
	pts := demoPoints()
	ctx := context.Background()
	lo := 0.0
	noCommand := &site.Point{ID: "door1_contact", Type: site.TypeBool, Access: site.AccessWrite, Min: &lo}
	stranger := &site.Point{ID: "boiler", Type: site.TypeBool, Access: site.AccessWrite}
	errs := c.Write(ctx, []control.Write{
		{Point: pts["door1_contact"], Value: 1}, // read-only in the model
		{Point: pts["door3_unlock"], Value: 5000},
		{Point: pts["area1_armed"], Value: 2},
		{Point: noCommand, Value: 1},
		{Point: stranger, Value: 1},
	})
	require.ErrorIs(t, errs[0], control.ErrNotWritable)
	require.ErrorIs(t, errs[1], control.ErrOutOfRange)
	require.ErrorIs(t, errs[2], control.ErrOutOfRange)
	require.ErrorIs(t, errs[3], control.ErrNotWritable)
	require.Contains(t, errs[3].Error(), "no command")
	require.ErrorIs(t, errs[4], ErrUnknownPoint)
	require.Zero(t, c.Stats().Commands)

	// The device does not exist: writes fail at once with the reason.
	err = c.Write(ctx, []control.Write{{Point: pts["area1_armed"], Value: 1}})[0]
	require.ErrorIs(t, err, ErrPortDown)
	require.Contains(t, err.Error(), "no-such-tty")
	rd := c.Read(ctx, []*site.Point{pts["door1_contact"], stranger})
	require.ErrorIs(t, rd[0].Err, ErrPortDown)
	require.ErrorIs(t, rd[1].Err, ErrUnknownPoint)
	st := c.States()[0]
	require.False(t, st.Up)
	require.Contains(t, st.LastError, "no-such-tty")

	require.NoError(t, c.Close())
	require.ErrorIs(t, c.Write(ctx, []control.Write{{Point: pts["area1_armed"], Value: 1}})[0], ErrClosed)
	require.ErrorIs(t, c.Watch(ctx, nil, make(chan control.Reading)), ErrClosed)
	require.NoError(t, c.Close())
	var nilClient *Client
	require.NoError(t, nilClient.Close())
}

// TestNotASerialDevice: a regular file is refused with a clear error
// rather than handed to the terminal ioctls.
func TestNotASerialDevice(t *testing.T) {
	o := demoOptions("/etc/hostname")
	c, err := New(o, nil)
	require.NoError(t, err)
	defer c.Close()
	pts := demoPoints()
	err = c.Write(context.Background(), []control.Write{{Point: pts["area1_armed"], Value: 1}})[0]
	require.ErrorIs(t, err, ErrPortDown)
	require.Contains(t, err.Error(), "not a serial device")
	require.False(t, errors.Is(err, ErrNoReply))
}

// TestRS485: on a half-duplex bus the commands still go one at a time
// after the line's silence; the kernel's RS-485 mode is refused by a pty
// with a clear error.
func TestRS485(t *testing.T) {
	r := newRig(t, helperConfig{}, func(o *Options) {
		o.RS485 = true
		o.InterFrameDelay = 20 * time.Millisecond
	})
	for _, v := range []float64{1, 0, 1} {
		require.NoError(t, r.write(t, "area2_armed", v))
	}
	require.NoError(t, r.write(t, "door3_unlock", 1))
	require.Equal(t, []string{"STATUS?", "ARM 2", "DISARM 2", "ARM 2", "UNLOCK 3 1"}, r.panel.received(t))

	o := demoOptions(r.cable.a)
	o.KernelRS485 = true
	c, err := New(o, nil)
	require.NoError(t, err)
	defer c.Close()
	err = c.Write(context.Background(), []control.Write{{Point: r.pts["area2_armed"], Value: 1}})[0]
	require.ErrorIs(t, err, ErrPortDown)
	require.Contains(t, err.Error(), "RS485")
}

// TestNotConfirmed: with read_back event, an acknowledged command that
// the panel does not confirm in time is an error.
func TestNotConfirmed(t *testing.T) {
	r := newRig(t, helperConfig{ExitDelay: time.Minute}, func(o *Options) {
		spec := o.Points["area1_armed"]
		spec.ConfirmTimeout = 100 * time.Millisecond
		o.Points["area1_armed"] = spec
	})
	err := r.write(t, "area1_armed", 1)
	require.ErrorIs(t, err, ErrNotConfirmed)
	require.Contains(t, err.Error(), `command "ARM 1" acknowledged, but no event line confirmed the write within 100ms`)
	got := r.read(t, "area1_armed")
	require.NoError(t, got.Err)
	require.Equal(t, 0.0, got.Value, "the panel still reports the area disarmed")
}

// TestAbandonedWrite: a write whose context ends returns at once; the
// command still gets its reply, and the next command is not confused by
// it.
func TestAbandonedWrite(t *testing.T) {
	r := newRig(t, helperConfig{})
	r.panel.script(t, "hold")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- r.c.Write(ctx, []control.Write{{Point: r.pts["area2_armed"], Value: 1}})[0] })
	t.Cleanup(wg.Wait)
	eventually(t, 10*time.Second, func() bool { return slices.Contains(r.panel.received(t), "ARM 2") }, "panel receives ARM 2")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	r.panel.script(t, "release")
	r.await(t, "area2_armed", 1) // the panel's report after its OK
	require.NoError(t, r.write(t, "area2_armed", 0))
	require.Equal(t, []string{"STATUS?", "ARM 2", "DISARM 2"}, r.panel.received(t))
}
