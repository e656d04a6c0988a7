package site

import "time"

// SerialConnection is a line-based ASCII protocol on RS-232/RS-485 (alarm
// panels, access controllers), read by adapters/serial. Points of the
// connection take their values from event lines; writable points send
// command lines.
type SerialConnection struct {
	Device                       string
	BaudRate, DataBits, StopBits int
	Parity                       string
	RS485                        bool
	InterFrameDelay              time.Duration
	Terminator                   string
	MaxLine                      int
	ReplyTimeout                 time.Duration
	Retries                      *int
	BackoffMin, BackoffMax       time.Duration
	Ack, Nak                     string
	StaleAfter                   time.Duration
	Events                       []SerialEvent
	Poll                         *SerialPoll
}

// SerialEvent maps received lines matching Pattern onto points.
type SerialEvent struct {
	Pattern string
	Set     []SerialAssign
}

// SerialAssign sets a point (an id template over the pattern's groups)
// from a line.
type SerialAssign struct {
	Point, Value string
	Map          map[string]float64
	Pulse        time.Duration
}

// SerialPoll is a status command sent periodically.
type SerialPoll struct {
	Command  string
	Interval time.Duration
	Ack, Nak string
}

// SerialPoint is how a writable point of a serial connection is written.
type SerialPoint struct {
	Command        string
	Commands       map[string]string
	Vars           map[string]string
	Ack, Nak       string
	ReadBack       string
	ConfirmTimeout time.Duration
}
