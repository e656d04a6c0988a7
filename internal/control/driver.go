// Package control is the level-triggered control engine: for every
// writable point it works out the desired value (operator override,
// booking-derived occupancy, base schedule, the point's default), compares
// it with the value read back from the device, and writes only what
// differs, until the two agree. This file holds the small interfaces the
// protocol adapters satisfy.
package control

import (
	"context"
	"errors"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Reading is a value read from a point.
type Reading struct {
	// Point is the point id.
	Point string
	// Value is the engineering value (raw*scale+offset; bools 0 and 1).
	// It is meaningless when Err is set.
	Value float64
	// Time is the source timestamp if the device gives one, else when the
	// value was read.
	Time time.Time
	// Err is why the point could not be read (device down, bad node id,
	// exception reply).
	Err error
}

// Write is one value to write to a point.
type Write struct {
	Point *site.Point
	// Value is the engineering value; the adapter converts it to raw
	// (inverse scale and offset, data type, byte and word order).
	Value float64
}

// DeviceState is the health of one device behind a driver: a Modbus unit
// on a link, or an OPC UA server.
type DeviceState struct {
	// Device names the device, e.g. "rooms" or "rooms/unit 12".
	Device string
	Up     bool
	// Since is when Up last changed.
	Since time.Time
	// LastError is the latest error talking to the device, "" if none.
	LastError string
}

// Driver talks to the devices of one connection of a site. A driver is
// safe for concurrent use by several goroutines.
type Driver interface {
	// Read reads the given points now and returns one Reading per point,
	// in the same order. Adapters batch and coalesce requests as the
	// protocol and the device's limits allow.
	Read(ctx context.Context, points []*site.Point) []Reading
	// Write writes the values and returns one error per write, in the
	// same order (nil: written). Adapters batch what the device allows.
	// Write never writes a point that is not writable or a value outside
	// its limits: it returns ErrNotWritable or ErrOutOfRange for those.
	Write(ctx context.Context, ws []Write) []error
	// Watch delivers readings of the points on out whenever they change
	// (subscriptions) or at least every interval (polling) until ctx is
	// done. It keeps the connection up, reconnecting with backoff, and
	// recreates subscriptions after a reconnect. It returns nil when ctx
	// is done, and never closes out.
	Watch(ctx context.Context, points []*site.Point, out chan<- Reading) error
	// States reports the health of the driver's devices.
	States() []DeviceState
	// Close releases connections; it must be safe after a failed New and
	// after Watch has returned.
	Close() error
}

// ReaderInto is a Driver that can return its readings in a slice the
// caller gives: the engine hands back the buffers of readings it has
// taken, so that reading back every write does not allocate anew.
type ReaderInto interface {
	// ReadInto is Read returning the readings in out's array (out's
	// length does not matter; it grows as needed). Every element up to
	// len(points) is set.
	ReadInto(ctx context.Context, points []*site.Point, out []Reading) []Reading
}

// Errors every driver returns for writes it refuses before they reach the
// wire: the guard rails.
var (
	// ErrNotWritable is returned for a point the mapping does not declare writable.
	ErrNotWritable = errors.New("point is not writable")
	// ErrOutOfRange is returned for a value outside the point's limits or labels.
	ErrOutOfRange = errors.New("value outside the point's limits")
	// ErrStale marks a Reading whose value is older than the point's
	// stale time: Value still holds the last value known.
	ErrStale = errors.New("value is stale")
)

// CheckWrite applies the guard rails of a mapping to one write: the point
// must be declared writable, and the value must be one of its labels or
// within its min and max. Drivers call it before encoding a value.
func CheckWrite(w Write) error {
	p := w.Point
	if !p.Writable() {
		return ErrNotWritable
	}
	switch {
	case p.Type == site.TypeBool && w.Value != 0 && w.Value != 1:
		return ErrOutOfRange
	case len(p.Labels) > 0 && p.Label(w.Value) == "":
		return ErrOutOfRange
	case p.Min != nil && w.Value < *p.Min, p.Max != nil && w.Value > *p.Max:
		return ErrOutOfRange
	}
	return nil
}
