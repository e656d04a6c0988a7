package modbus

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Errors of requests that never reached the wire.
var (
	// ErrUnitDown is returned at once for a request to a unit that failed
	// Retries+1 times in a row (or whose link cannot be opened) until its
	// backoff has passed; the error also wraps the unit's last error.
	ErrUnitDown = errors.New("modbus unit is down")
	// ErrClosed is returned for requests after Close.
	ErrClosed = errors.New("modbus client is closed")
)

// busyPause is the pause before repeating a request that got a busy
// reply, multiplied by the attempt number.
const busyPause = 50 * time.Millisecond

// job is one wire request (or a read-modify-write pair) waiting for the
// link.
type job struct {
	unit uint8
	// read is the read request to send; its reply is left in regs or
	// bits. Without it, do runs the request on the link's client, which
	// is set to the unit.
	read *readBatch
	regs []uint16
	bits []bool
	do   func(mc *modbus.ModbusClient) error
	// abandon is closed when the caller no longer waits for the result
	// (its context is done); the job is then dropped unsent.
	abandon <-chan struct{}
	// done receives the job once, when err is final; with a group, it
	// receives only the last job of the group to finish. It is buffered
	// for every send of a call, so finishing never blocks.
	done  chan<- *job
	group *jobGroup
	err   error
	// over is set when err (and the reply) are final.
	over atomic.Bool

	attempts  int
	notBefore time.Time
	batch     int  // index of the caller's batch
	finished  bool // the caller has its result (owned by the caller)
}

// jobGroup holds the jobs of a call that wants to be woken once, when
// all of them are done, rather than once per request.
type jobGroup struct {
	left atomic.Int32
}

// complete makes err the job's final result and tells the caller.
func (j *job) complete(err error) {
	j.err = err
	j.over.Store(true)
	if j.group != nil && j.group.left.Add(-1) > 0 {
		return
	}
	j.done <- j
}

// unitState is the health and queue of one unit on the link.
type unitState struct {
	id    uint8
	queue []*job

	known   bool // a request has completed
	up      bool
	since   time.Time
	lastErr error

	fails   int // failed requests in a row
	down    bool
	retryAt time.Time
	backoff time.Duration

	nextWrite time.Time // for WriteRate
}

// link owns one connection. One goroutine, started on the first request
// and stopped by close, sends all requests on it, one at a time, taking
// the units with waiting requests in turn so that a unit that does not
// answer delays the others by at most one timeout per turn.
type link struct {
	s   *settings
	log *slog.Logger
	mc  *modbus.ModbusClient // used by the loop goroutine only

	mu      sync.Mutex
	units   map[uint8]*unitState
	ids     []uint8 // sorted unit ids, for turns
	turn    int
	started bool
	closed  bool
	linkErr error // why the link is down, or nil
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	// Owned by the loop goroutine.
	open        bool
	linkRetryAt time.Time
	linkBackoff time.Duration
	lastFrame   time.Time
}

func newLink(s *settings, log *slog.Logger) (*link, error) {
	parity := modbus.PARITY_EVEN
	switch s.Parity {
	case ParityNone:
		parity = modbus.PARITY_NONE
	case ParityOdd:
		parity = modbus.PARITY_ODD
	}
	mc, err := modbus.NewClient(&modbus.ClientConfiguration{
		URL:           s.URL,
		Speed:         uint(s.BaudRate),
		DataBits:      uint(s.DataBits),
		Parity:        parity,
		StopBits:      uint(s.StopBits),
		Timeout:       s.Timeout,
		TLSClientCert: s.tlsCert,
		TLSRootCAs:    s.tlsCAs,
		Logger:        slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	})
	if err != nil {
		return nil, fmt.Errorf("modbus client for %s: %w", s.name, err)
	}
	return &link{
		s: s, log: log, mc: mc,
		units: map[uint8]*unitState{},
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
	}, nil
}

// unitLocked returns the state of a unit, creating it. l.mu is held.
func (l *link) unitLocked(id uint8) *unitState {
	u := l.units[id]
	if u == nil {
		u = &unitState{id: id, backoff: l.s.BackoffMin}
		l.units[id] = u
		i, _ := slices.BinarySearch(l.ids, id)
		l.ids = slices.Insert(l.ids, i, id)
	}
	return u
}

// submit queues jobs; the result of each arrives on its done channel.
func (l *link) submit(jobs []job) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		for i := range jobs {
			jobs[i].complete(ErrClosed)
		}
		return
	}
	if !l.started {
		l.started = true
		l.wg.Add(1)
		go l.loop()
	}
	for i := range jobs {
		u := l.unitLocked(jobs[i].unit)
		u.queue = append(u.queue, &jobs[i])
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// reserveWrite returns when the next write request to the unit may be
// sent under WriteRate, and books that slot.
func (l *link) reserveWrite(unit uint8, now time.Time) time.Time {
	if l.s.WriteRate < 0 {
		return now
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.unitLocked(unit)
	at := now
	if u.nextWrite.After(now) {
		at = u.nextWrite
	}
	u.nextWrite = at.Add(time.Duration(float64(time.Second) / l.s.WriteRate))
	return at
}

// close stops the loop, fails the queued jobs and closes the connection.
func (l *link) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	started := l.started
	l.mu.Unlock()
	close(l.stop)
	if started {
		l.wg.Wait() // the loop closes the connection on its way out
	}
}

func (l *link) loop() {
	defer l.wg.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		l.closeConn()
		l.mu.Lock()
		for _, u := range l.units {
			for _, j := range u.queue {
				j.complete(ErrClosed)
			}
			u.queue = nil
		}
		l.mu.Unlock()
	}()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		j, u, wait := l.next(time.Now())
		if j != nil {
			l.run(j, u)
			continue
		}
		var tc <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tc = timer.C
		}
		select {
		case <-l.stop:
			return
		case <-l.wake:
		case <-tc:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// next takes the next job to send, visiting the units in turn. It fails
// at once the jobs of units that are down and drops abandoned jobs. With
// nothing to send it returns how long until a delayed retry is due (0:
// wait for a new job).
func (l *link) next(now time.Time) (*job, *unitState, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	n := len(l.ids)
	for k := range n {
		i := (l.turn + k) % n
		u := l.units[l.ids[i]]
		for len(u.queue) > 0 {
			j := u.queue[0]
			if isClosed(j.abandon) {
				u.queue = u.queue[1:]
				j.complete(errAbandoned)
				continue
			}
			if retryAt, cause, down := l.downUntilLocked(u); down && now.Before(retryAt) {
				u.queue = u.queue[1:]
				j.complete(fmt.Errorf("%w until %s: %w", ErrUnitDown, retryAt.Format("15:04:05.000"), cause))
				continue
			}
			if d := j.notBefore.Sub(now); d > 0 {
				if wait == 0 || d < wait {
					wait = d
				}
				break
			}
			u.queue = u.queue[1:]
			l.turn = (i + 1) % n
			return j, u, 0
		}
	}
	return nil, nil, wait
}

// downUntilLocked reports whether the unit (or its whole link) is down,
// why, and when it may be tried again.
func (l *link) downUntilLocked(u *unitState) (time.Time, error, bool) {
	if l.linkErr != nil {
		return l.linkRetryAt, l.linkErr, true
	}
	return u.retryAt, u.lastErr, u.down
}

var errAbandoned = errors.New("request abandoned")

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// run sends one job and decides what its outcome means for the job, the
// unit and the link.
func (l *link) run(j *job, u *unitState) {
	if err := l.connect(); err != nil {
		l.finish(j, err)
		return
	}
	l.mu.Lock()
	probe := u.down // its backoff has passed: one attempt decides
	l.mu.Unlock()
	if !l.interFrameWait() {
		l.requeue(j, u, time.Time{})
		return
	}
	err := l.do(j)
	l.lastFrame = time.Now()
	class := classify(err)

	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	switch class {
	case classOK, classException, classBusy:
		// The unit answered.
		if !u.up || !u.known {
			if u.known {
				l.log.Info("modbus unit up", "unit", u.id)
			}
			u.up, u.since = true, now
		}
		u.known, u.fails, u.down, u.backoff = true, 0, false, l.s.BackoffMin
		if class != classOK {
			u.lastErr = err
		}
	case classTimeout, classUnreachable, classFraming:
		u.fails++
		u.lastErr = err
		if class != classUnreachable {
			if class == classFraming {
				l.log.Warn("bad modbus reply, reopening the link", "unit", u.id, "error", err)
			}
			l.closeConnLocked()
		}
		if probe || u.fails > l.s.Retries {
			l.markDownLocked(u, now)
		}
	case classLink:
		l.log.Warn("modbus link broken, reopening", "error", err)
		l.closeConnLocked()
	}

	retry := j.attempts < l.s.Retries && !probe && !u.down
	switch {
	case class == classBusy && retry:
		j.attempts++
		j.notBefore = now.Add(time.Duration(j.attempts) * busyPause)
		u.queue = slices.Insert(u.queue, 0, j)
	case (class == classTimeout || class == classUnreachable || class == classFraming || class == classLink) && retry:
		j.attempts++
		u.queue = slices.Insert(u.queue, 0, j)
	default:
		j.complete(err)
	}
}

// do sends the job's request. A panic in the library on a reply it did
// not expect becomes a framing error: a bad reply never crashes the
// gateway.
func (l *link) do(j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: reply crashed the decoder: %v", modbus.ErrProtocolError, r)
		}
	}()
	l.mc.SetUnitId(j.unit)
	if b := j.read; b != nil {
		switch b.Table {
		case site.Coil:
			j.bits, err = l.mc.ReadCoils(b.Start, b.Quantity)
		case site.DiscreteInput:
			j.bits, err = l.mc.ReadDiscreteInputs(b.Start, b.Quantity)
		case site.HoldingRegister:
			j.regs, err = l.mc.ReadRegisters(b.Start, b.Quantity, modbus.HOLDING_REGISTER)
		default:
			j.regs, err = l.mc.ReadRegisters(b.Start, b.Quantity, modbus.INPUT_REGISTER)
		}
		return err
	}
	return j.do(l.mc)
}

// markDownLocked puts a unit into backoff, doubling it from the last time.
func (l *link) markDownLocked(u *unitState, now time.Time) {
	if !u.down {
		l.log.Warn("modbus unit down", "unit", u.id, "error", u.lastErr, "retry_in", u.backoff)
		if u.up || !u.known {
			u.since = now
		}
		u.up, u.known, u.down = false, true, true
	} else {
		u.backoff = min(2*u.backoff, l.s.BackoffMax)
		l.log.Debug("modbus unit still down", "unit", u.id, "error", u.lastErr, "retry_in", u.backoff)
	}
	u.retryAt = now.Add(u.backoff)
}

func (l *link) requeue(j *job, u *unitState, notBefore time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j.notBefore = notBefore
	u.queue = slices.Insert(u.queue, 0, j)
}

func (l *link) finish(j *job, err error) {
	j.complete(err)
}

// connect opens the connection if it is not open. While the link is in
// backoff after a failed open it fails at once.
func (l *link) connect() error {
	if l.open {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	linkErr := l.linkErr
	l.mu.Unlock()
	if linkErr != nil && now.Before(l.linkRetryAt) {
		return fmt.Errorf("%w until %s: %w", ErrUnitDown, l.linkRetryAt.Format("15:04:05.000"), linkErr)
	}
	err := l.mc.Open()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("open %s: %w", l.s.name, err)
		if l.linkErr == nil {
			l.linkBackoff = l.s.BackoffMin
			l.log.Warn("modbus link down", "error", err, "retry_in", l.linkBackoff)
		} else {
			l.linkBackoff = min(2*l.linkBackoff, l.s.BackoffMax)
		}
		l.linkErr = err
		l.linkRetryAt = now.Add(l.linkBackoff)
		for _, u := range l.units {
			if u.up || !u.known {
				u.since = now
			}
			u.up, u.known, u.lastErr = false, true, err
		}
		return err
	}
	if l.linkErr != nil {
		l.log.Info("modbus link up")
	}
	l.linkErr = nil
	l.open = true
	return nil
}

func (l *link) closeConn() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeConnLocked()
}

// closeConnLocked closes the connection; the next job reopens it.
func (l *link) closeConnLocked() {
	if l.open {
		l.mc.Close()
		l.open = false
	}
}

// interFrameWait keeps the RTU line silent for InterFrameDelay after the
// last frame. It returns false if the link is stopping.
func (l *link) interFrameWait() bool {
	if l.s.kind != kindRTU || l.s.InterFrameDelay <= 0 {
		return true
	}
	d := time.Until(l.lastFrame.Add(l.s.InterFrameDelay))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.stop:
		return false
	}
}

// states reports the units that have been talked to.
func (l *link) states() []unitSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []unitSnapshot
	for _, id := range l.ids {
		u := l.units[id]
		if !u.known {
			continue
		}
		s := unitSnapshot{id: id, up: u.up, since: u.since}
		if u.lastErr != nil {
			s.lastErr = u.lastErr.Error()
		}
		out = append(out, s)
	}
	return out
}

type unitSnapshot struct {
	id      uint8
	up      bool
	since   time.Time
	lastErr string
}

// errClass says what an outcome means for the retry, the unit and the link.
type errClass int

const (
	classOK errClass = iota
	// classBusy: the device is busy; repeat after a pause on the same link.
	classBusy
	// classTimeout: no reply; the unit may be dead and the line may carry
	// a late reply, so the link is reopened before the next request.
	classTimeout
	// classUnreachable: a gateway says the unit behind it did not answer.
	classUnreachable
	// classFraming: a reply that does not parse; reopen and repeat.
	classFraming
	// classLink: the connection broke; reopen and repeat.
	classLink
	// classException: the device refused the request; repeating will not
	// help, and the unit is alive.
	classException
	// classLocal: the request was not sent (bad parameters).
	classLocal
)

func classify(err error) errClass {
	var me modbus.Error
	switch {
	case err == nil:
		return classOK
	case errors.Is(err, modbus.ErrServerDeviceBusy), errors.Is(err, modbus.ErrAcknowledge):
		return classBusy
	case errors.Is(err, modbus.ErrRequestTimedOut), os.IsTimeout(err):
		return classTimeout
	case errors.Is(err, modbus.ErrGWTargetFailedToRespond), errors.Is(err, modbus.ErrGWPathUnavailable):
		return classUnreachable
	case errors.Is(err, modbus.ErrBadCRC), errors.Is(err, modbus.ErrShortFrame), errors.Is(err, modbus.ErrProtocolError),
		errors.Is(err, modbus.ErrBadTransactionId), errors.Is(err, modbus.ErrBadUnitId), errors.Is(err, modbus.ErrUnknownProtocolId):
		return classFraming
	case errors.Is(err, modbus.ErrUnexpectedParameters), errors.Is(err, modbus.ErrConfigurationError):
		return classLocal
	case errors.As(err, &me), strings.HasPrefix(err.Error(), "unknown exception code"):
		return classException
	}
	return classLink
}
