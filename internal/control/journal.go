package control

import (
	"context"
	"time"
)

// Journal records what the engine does: every write attempt, every
// override, every device going up or down, and notable events, with who,
// what and why. Implementations are safe for concurrent use and return
// only once the record is durable.
type Journal interface {
	// Writes records write attempts, the results of one batch of a
	// driver together.
	Writes(ctx context.Context, rs []WriteRecord) error
	Override(ctx context.Context, r OverrideRecord) error
	Device(ctx context.Context, r DeviceRecord) error
	Event(ctx context.Context, r EventRecord) error
}

// WriteRecord is one write attempt.
type WriteRecord struct {
	Time  time.Time
	Site  string
	Point string
	// Old is the value read from the device before the write, nil if unknown.
	Old *float64
	New float64
	// Reason says why: the bookings, schedule or override behind the value.
	Reason  string
	Source  Source
	Attempt int
	DryRun  bool
	// Err is empty when the write succeeded and read back right.
	Err string
}

// OverrideRecord is an override set, cleared or expired.
type OverrideRecord struct {
	Time   time.Time
	Site   string
	Point  string
	Value  float64
	Until  time.Time
	Who    string
	Why    string
	Action string // set, clear or expired
}

// DeviceRecord is a device going up or down.
type DeviceRecord struct {
	Time       time.Time
	Site       string
	Connection string
	Device     string
	Up         bool
	Err        string
}

// EventRecord is anything else worth keeping, e.g. a value changed at the
// BMS by someone else.
type EventRecord struct {
	Time     time.Time
	Site     string
	Space    string
	Kind     string
	Severity string
	Message  string
}

type nopJournal struct{}

func (nopJournal) Writes(context.Context, []WriteRecord) error    { return nil }
func (nopJournal) Override(context.Context, OverrideRecord) error { return nil }
func (nopJournal) Device(context.Context, DeviceRecord) error     { return nil }
func (nopJournal) Event(context.Context, EventRecord) error       { return nil }
