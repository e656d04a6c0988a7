package control

import (
	"sync"
	"time"
)

// Clock tells the time and makes timers. The engine takes one so that a
// test or a demo can run a whole evening in minutes (ScaledClock).
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d of this clock's
	// time.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the engine uses, in clock time.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// ScaledClock runs Speed times faster than the wall clock from Origin on:
// with Speed 60 an evening of bookings plays in a few minutes. It is safe
// for concurrent use.
type ScaledClock struct {
	mu     sync.Mutex
	origin time.Time // clock time at start
	start  time.Time // wall time at start
	speed  float64
}

// NewScaledClock returns a clock that reads origin now and advances speed
// times faster than real time.
func NewScaledClock(origin time.Time, speed float64) *ScaledClock {
	if speed <= 0 {
		speed = 1
	}
	return &ScaledClock{origin: origin, start: time.Now(), speed: speed}
}

// Now returns the scaled time.
func (c *ScaledClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	elapsed := time.Since(c.start)
	return c.origin.Add(time.Duration(float64(elapsed) * c.speed))
}

// Speed returns how much faster than real time the clock runs.
func (c *ScaledClock) Speed() float64 { return c.speed }

// NewTimer fires after d of scaled time (d/speed of real time).
func (c *ScaledClock) NewTimer(d time.Duration) Timer {
	return &scaledTimer{clock: c, t: time.NewTimer(c.real(d))}
}

func (c *ScaledClock) real(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) / c.speed)
}

type scaledTimer struct {
	clock *ScaledClock
	t     *time.Timer
}

func (t *scaledTimer) C() <-chan time.Time        { return t.t.C }
func (t *scaledTimer) Stop() bool                 { return t.t.Stop() }
func (t *scaledTimer) Reset(d time.Duration) bool { return t.t.Reset(t.clock.real(d)) }
