// Package modbus reads and writes BMS points over Modbus TCP, Modbus/TCP
// Security (TLS) and RTU, coalescing neighbouring points into few requests
// and keeping one dead unit on a shared link from stalling the others.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Client talks to the units behind one Modbus link (a TCP device or
// gateway, or a serial line). It is safe for concurrent use: all requests
// go through one queue, served by one goroutine that owns the connection.
type Client struct {
	s    *settings
	log  *slog.Logger
	link *link

	mu sync.Mutex
	// noGaps holds the unit tables that refused a read through unused
	// addresses; their reads are planned without gaps from then on.
	noGaps map[groupKey]bool
	// gen counts the changes of noGaps: plans made before are stale.
	gen uint64
	// plans are the plans of the last slices Read or Requests planned:
	// the engine reads a driver's writable points first and after each
	// write, and polls all of them, so each of those finds its plan.
	plans    [planCache]*readPlan
	nextPlan int // where the next new plan goes in plans
}

// New validates the options and builds a Client. It does not connect: the
// connection is opened by the first request and reopened as needed. A nil
// logger discards the log.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	s, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("link", s.name)
	l, err := newLink(s, logger)
	if err != nil {
		return nil, err
	}
	return &Client{s: s, log: logger, link: l, noGaps: map[groupKey]bool{}}, nil
}

// Close stops the link's goroutine and closes the connection; requests
// still queued fail with ErrClosed. It is safe on a nil Client (after a
// failed New) and more than once.
func (c *Client) Close() error {
	if c == nil || c.link == nil {
		return nil
	}
	c.link.close()
	return nil
}

// Requests returns the read requests that Read and Watch send for the
// points, for `bmsgw plan --requests`.
func (c *Client) Requests(points []*site.Point) []Request {
	return requests(c.planFor(points).batches)
}

// readPlan is how one slice of points is read: the requests, the points
// that cannot be read, and the points listed more than once. It is
// immutable once made, and kept while the slice and the addresses of its
// points stay the same (Watch and pollers read the same slice again and
// again).
type readPlan struct {
	points  []*site.Point // a copy of the slice that was planned
	wires   []wire        // what planning saw of each point
	gen     uint64        // Client.gen when planned
	batches []readBatch
	bad     []int    // first listings of points that cannot be read
	dups    [][2]int // {first listing, repeat} of points listed more than once
}

// wire is what a read plan depends on of a point, in a few bytes: its
// address and type, each name as a code. Decoding reads the point itself
// (address, type, byte order, scale, offset, id), which fits has just
// compared with the plan.
type wire struct {
	addr         uint16
	bit          int8
	unit         uint8
	table, typ   uint8
	bytes, words uint8
	ok           bool // the point has an address
}

// wireOf returns a point's wire, and false when some name of its has no
// code (a point no mapping could load): plans with it are made anew for
// every read.
func wireOf(p *site.Point) (wire, bool) {
	if p == nil || p.Modbus == nil {
		return wire{}, true
	}
	a := p.Modbus
	w := wire{addr: a.Address, bit: int8(a.Bit), unit: a.UnitID, ok: true}
	var t, ty, b, wo bool
	w.table, t = codeOf(a.Table, tableNames[:])
	w.typ, ty = codeOf(p.Type, typeNames[:])
	w.bytes, b = codeOf(a.ByteOrder, orderNames[:])
	w.words, wo = codeOf(a.WordOrder, orderNames[:])
	return w, t && ty && b && wo && int(w.bit) == a.Bit
}

// The names a wire codes, by code - 1 ("" is 0).
var (
	tableNames = [...]site.ModbusTable{site.HoldingRegister, site.InputRegister, site.Coil, site.DiscreteInput}
	typeNames  = [...]site.DataType{site.TypeUint16, site.TypeInt16, site.TypeBool, site.TypeUint32, site.TypeInt32, site.TypeFloat32, site.TypeFloat64}
	orderNames = [...]site.ByteOrder{site.BigEndian, site.LittleEndian}
)

// codeOf returns 1 + the index of v in names, 0 for "", and false for any
// other name.
func codeOf[T ~string](v T, names []T) (uint8, bool) {
	if v == "" {
		return 0, true
	}
	if i := slices.Index(names, v); i >= 0 {
		return uint8(i + 1), true
	}
	return 0, false
}

// fits reports whether the plan still holds for points.
func (pl *readPlan) fits(points []*site.Point, gen uint64) bool {
	if pl == nil || pl.gen != gen || len(pl.points) != len(points) {
		return false
	}
	for i, p := range points {
		if p != pl.points[i] {
			return false
		}
		if w, exact := wireOf(p); !exact || w != pl.wires[i] {
			return false
		}
	}
	return true
}

// planCache is how many plans a client keeps.
const planCache = 4

// planFor returns the plan for points: a kept one if it still fits, else
// a new one, which is kept in place of the oldest.
func (c *Client) planFor(points []*site.Point) *readPlan {
	c.mu.Lock()
	kept, gen := c.plans, c.gen
	c.mu.Unlock()
	for _, pl := range kept {
		if pl.fits(points, gen) {
			return pl
		}
	}
	pl := c.newPlan(points)
	c.mu.Lock()
	c.plans[c.nextPlan] = pl
	c.nextPlan = (c.nextPlan + 1) % planCache
	c.mu.Unlock()
	return pl
}

// newPlan plans reads of the points with the client's limits, without
// gaps for the unit tables that refused them.
func (c *Client) newPlan(points []*site.Point) *readPlan {
	pl := &readPlan{points: slices.Clone(points), wires: make([]wire, len(points))}
	for i, p := range points {
		pl.wires[i], _ = wireOf(p)
	}
	c.mu.Lock()
	pl.gen = c.gen
	var noGaps func(groupKey) bool
	if len(c.noGaps) > 0 {
		refused := maps.Clone(c.noGaps)
		noGaps = func(k groupKey) bool { return refused[k] }
	}
	c.mu.Unlock()
	pl.batches = planReads(points, c.s.limits(), noGaps)

	planned := 0
	for _, b := range pl.batches {
		planned += len(b.idx)
	}
	if planned == len(points) {
		return pl
	}
	// Some points cannot be read or are listed again.
	inBatch := make([]bool, len(points))
	for _, b := range pl.batches {
		for _, i := range b.idx {
			inBatch[i] = true
		}
	}
	first := make(map[*site.Point]int, len(points))
	for i, p := range slices.Backward(points) {
		first[p] = i
	}
	for i, p := range points {
		switch f := first[p]; {
		case f != i:
			pl.dups = append(pl.dups, [2]int{f, i})
		case !inBatch[i]:
			pl.bad = append(pl.bad, i)
		}
	}
	return pl
}

// writeScratch holds the arrays Write encodes into, kept for the next
// Write once no request holds them.
type writeScratch struct {
	items []writeItem
	regs  []uint16
}

var writeScratches = sync.Pool{New: func() any { return new(writeScratch) }}

func (sc *writeScratch) put(items []writeItem, regs []uint16) {
	clear(items[:cap(items)])
	sc.items, sc.regs = items[:0], regs[:0]
	writeScratches.Put(sc)
}

// Read reads the points now, with as few requests as the limits allow,
// and returns one Reading per point in the same order.
func (c *Client) Read(ctx context.Context, points []*site.Point) []control.Reading {
	return c.ReadInto(ctx, points, nil)
}

// ReadInto is Read returning its readings in out's array when it is large
// enough (control.ReaderInto): the engine hands back the buffers of the
// readings it has taken.
func (c *Client) ReadInto(ctx context.Context, points []*site.Point, out []control.Reading) []control.Reading {
	out = slices.Grow(out[:0], len(points))[:len(points)]
	pl := c.planFor(points)
	c.read(ctx, pl, func(i int, r control.Reading) { out[i] = r }, false)
	for _, d := range pl.dups {
		out[d[1]] = out[d[0]]
	}
	return out
}

// read reads the planned points and calls emit once per distinct point,
// with its first index in the planned slice. With each set it does so as
// soon as the point's request is done (Watch sends them on at once, so
// that a slow unit does not hold back the readings of the others).
func (c *Client) read(ctx context.Context, pl *readPlan, emit func(int, control.Reading), each bool) {
	for _, i := range pl.bad {
		p := pl.points[i]
		if p == nil {
			emit(i, control.Reading{Time: time.Now(), Err: errors.New("read: no point")})
			continue
		}
		emit(i, control.Reading{Point: p.ID, Time: time.Now(), Err: fmt.Errorf("read %s: %w", p.ID, checkPoint(p))})
	}
	retry := c.runReads(ctx, pl, pl.batches, emit, each)
	if len(retry) == 0 {
		return
	}
	// Some devices refuse reads of unused addresses: read those points
	// again without gaps, and plan them so from now on.
	lim := c.s.limits()
	var again []*site.Point
	var at []int // index in the planned slice of again[k]
	c.mu.Lock()
	for _, b := range retry {
		k := groupKey{b.Unit, b.Table}
		if !c.noGaps[k] {
			c.log.Warn("modbus unit refused a read through unused addresses; reading without gaps from now on",
				"unit", b.Unit, "table", b.Table, "start", b.Start, "quantity", b.Quantity)
		}
		c.noGaps[k] = true
		again = append(again, b.points...)
		at = append(at, b.idx...)
	}
	c.gen++
	c.mu.Unlock()
	lim.ReadThroughGaps = false
	batches := planReads(again, lim, nil)
	for _, b := range batches {
		for k, i := range b.idx {
			b.idx[k] = at[i]
		}
	}
	c.runReads(ctx, pl, batches, emit, each)
}

// runReads sends the read batches and emits their readings. With each
// set it emits the readings of a request as soon as the request is done
// (Watch); else it is woken once, when all are done (Read). It returns the
// batches that read through gaps and got an illegal data address
// exception, unemitted. When ctx ends first, the requests not done get its
// error.
func (c *Client) runReads(ctx context.Context, pl *readPlan, batches []readBatch, emit func(int, control.Reading), each bool) []readBatch {
	if len(batches) == 0 {
		return nil
	}
	jobs := make([]job, len(batches))
	var group *jobGroup
	done := make(chan *job, len(batches))
	if !each {
		group = &jobGroup{}
		group.left.Store(int32(len(batches)))
		done = make(chan *job, 1)
	}
	for i := range batches {
		jobs[i] = job{unit: batches[i].Unit, read: &batches[i], abandon: ctx.Done(), done: done, group: group, batch: i}
	}
	c.link.submit(jobs)

	var retry []readBatch
	// result emits the readings of a job that is over, or keeps its batch
	// for a read without gaps.
	result := func(j *job, mayRetry bool) {
		j.finished = true
		b := &batches[j.batch]
		if j.err != nil {
			if mayRetry && b.gaps && errors.Is(j.err, modbus.ErrIllegalDataAddress) {
				retry = append(retry, *b)
				return
			}
			c.emitErr(b, j.err, emit)
			return
		}
		now := time.Now()
		bits := isBitTable(b.Table)
		for _, i := range b.idx {
			p := pl.points[i]
			a := p.Modbus
			off := int(a.Address) - int(b.Start)
			var v float64
			if bits {
				v = decodeBit(j.bits[off])
			} else {
				v = decode(p.Type, a, p.Scale, p.Offset, j.regs[off:off+widthOf(b.Table, p.Type)])
			}
			emit(i, control.Reading{Point: p.ID, Value: v, Time: now})
		}
	}
	for left := len(jobs); left > 0; {
		select {
		case j := <-done:
			if group == nil {
				result(j, true)
				left--
				continue
			}
			for i := range jobs {
				result(&jobs[i], true)
			}
			left = 0
		case <-ctx.Done():
			for i := range jobs {
				switch j := &jobs[i]; {
				case j.finished:
				case j.over.Load():
					result(j, false)
				default:
					c.emitErr(&batches[i], ctx.Err(), emit)
				}
			}
			return nil
		}
	}
	return retry
}

// emitErr gives every point of a failed request the request's error, one
// error value for all (a dead device's poll failed with an error made
// for each of its points).
func (c *Client) emitErr(b *readBatch, err error, emit func(int, control.Reading)) {
	now := time.Now()
	err = fmt.Errorf("read %s/unit %d %s %d-%d: %w", c.s.name, b.Unit, b.Table, b.Start, int(b.Start)+int(b.Quantity)-1, err)
	for k, p := range b.points {
		emit(b.idx[k], control.Reading{Point: p.ID, Time: now, Err: err})
	}
}

// Write writes the values and returns one error per write, in the same
// order. It refuses, before anything is sent, points that are not
// writable, values outside their limits (control.ErrNotWritable,
// control.ErrOutOfRange) and values the data type cannot hold
// (ErrNotEncodable). Neighbouring registers and coils are written with
// one request when WriteMultiple is on; a bit in a register is written by
// reading the register and writing it back, with no other request to the
// unit in between. Writes to one unit are paced by WriteRate.
func (c *Client) Write(ctx context.Context, ws []control.Write) []error {
	errs := make([]error, len(ws))
	lim := c.s.limits()
	sc := writeScratches.Get().(*writeScratch)
	items := slices.Grow(sc.items[:0], len(ws))
	// The registers of every write in one array, sized for the widest.
	regs := slices.Grow(sc.regs[:0], 4*len(ws))
	for i, w := range ws {
		it, err := c.encode(i, w, lim, &regs)
		if err != nil {
			errs[i] = fmt.Errorf("write %v to %s: %w", w.Value, w.Point.ID, err)
			continue
		}
		items = append(items, it)
	}
	batches := planWrites(items, lim)
	if len(batches) == 0 {
		return errs
	}

	// Book a WriteRate slot for every request, in plan order, so that
	// requests to one unit keep their order.
	now := time.Now()
	at := make([]time.Time, len(batches))
	for i, b := range batches {
		at[i] = c.link.reserveWrite(b.Unit, now)
	}
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return at[a].Compare(at[b]) })

	done := make(chan *job, len(batches))
	submitted := 0
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	result := func(b writeBatch, err error) {
		for _, it := range b.items {
			if err != nil {
				errs[it.idx] = fmt.Errorf("write %v to %s at %s/unit %d %s %d: %w",
					it.value, it.p.ID, c.s.name, b.Unit, b.Table, it.p.Modbus.Address, err)
				continue
			}
			if c.log.Enabled(context.Background(), slog.LevelDebug) {
				c.log.Debug("modbus write", "point", it.p.ID, "value", it.value, "unit", b.Unit,
					"table", b.Table, "address", it.p.Modbus.Address, "function", b.FunctionName)
			}
		}
	}
	if !at[order[len(order)-1]].After(now) {
		// No request waits for a WriteRate slot: all go to the link at
		// once, and the caller is woken once, when the last is done.
		jobs := make([]job, len(order))
		group := &jobGroup{}
		group.left.Store(int32(len(order)))
		last := make(chan *job, 1)
		for k, i := range order {
			jobs[k] = job{unit: batches[i].Unit, abandon: ctx.Done(), done: last, group: group, batch: i, do: writeFunc(batches[i])}
		}
		c.link.submit(jobs)
		select {
		case <-last:
		case <-ctx.Done():
		}
		over := true
		for k := range jobs {
			if err := ctx.Err(); !jobs[k].over.Load() {
				result(batches[jobs[k].batch], err)
				over = false
				continue
			}
			result(batches[jobs[k].batch], jobs[k].err)
		}
		if over { // no request still holds the arrays
			sc.put(items, regs)
		}
		return errs
	}
submit:
	for _, i := range order {
		if d := time.Until(at[i]); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-ctx.Done():
				break submit
			}
		}
		b := batches[i]
		c.link.submit([]job{{unit: b.Unit, abandon: ctx.Done(), done: done, batch: i, do: writeFunc(b)}})
		submitted++
	}
	finished := make([]bool, len(batches))
	for range submitted {
		select {
		case j := <-done:
			finished[j.batch] = true
			result(batches[j.batch], j.err)
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	for i, b := range batches {
		if !finished[i] {
			result(b, ctx.Err())
		}
	}
	return errs
}

// encode applies the guard rails and turns one write into wire values.
func (c *Client) encode(i int, w control.Write, lim Limits, buf *[]uint16) (writeItem, error) {
	p := w.Point
	if err := control.CheckWrite(w); err != nil {
		return writeItem{}, err
	}
	if err := checkPoint(p); err != nil {
		return writeItem{}, err
	}
	it := writeItem{idx: i, p: p, value: w.Value, unit: lim.unit(p.Modbus)}
	switch t := p.Modbus.Table; {
	case t == site.DiscreteInput || t == site.InputRegister:
		return writeItem{}, fmt.Errorf("a %s is read-only: %w", t, control.ErrNotWritable)
	case p.Type == site.TypeBool:
		b, err := encodeBool(w.Value)
		if err != nil {
			return writeItem{}, err
		}
		it.bit = b
	default:
		n := len(*buf)
		regs, err := appendRegisters(*buf, p, w.Value)
		if err != nil {
			return writeItem{}, err
		}
		*buf = regs
		it.regs = regs[n:len(regs):len(regs)]
	}
	return it, nil
}

// writeFunc returns the wire exchange of a planned write. The closures
// take only what they send: one over b would hold the whole batch, an
// allocation of its size for each of 10,000 single-register writes.
func writeFunc(b writeBatch) func(mc *modbus.ModbusClient) error {
	start := b.Start
	switch {
	case b.rmw:
		items := b.items
		return func(mc *modbus.ModbusClient) error {
			r, err := mc.ReadRegister(start, modbus.HOLDING_REGISTER)
			if err != nil {
				return fmt.Errorf("read for read-modify-write: %w", err)
			}
			for _, it := range items {
				r = setBit(it.p, r, it.bit)
			}
			return mc.WriteRegister(start, r)
		}
	case b.Function == FuncWriteSingleCoil:
		bit := b.items[0].bit
		return func(mc *modbus.ModbusClient) error { return mc.WriteCoil(start, bit) }
	case b.Function == FuncWriteMultipleCoils:
		bits := make([]bool, 0, b.Quantity)
		for _, it := range b.items {
			bits = append(bits, it.bit)
		}
		return func(mc *modbus.ModbusClient) error { return mc.WriteCoils(start, bits) }
	case b.Function == FuncWriteSingleRegister:
		reg := b.items[0].regs[0]
		return func(mc *modbus.ModbusClient) error { return mc.WriteRegister(start, reg) }
	default:
		regs := make([]uint16, 0, b.Quantity)
		for _, it := range b.items {
			regs = append(regs, it.regs...)
		}
		return func(mc *modbus.ModbusClient) error { return mc.WriteRegisters(start, regs) }
	}
}

// Watch reads the points every PollInterval, starting at once, and sends
// one Reading per point and poll on out (Err set when the point could not
// be read); the readings of a request are sent as soon as it is done. It
// keeps the link up, reopening it with backoff. It returns nil when ctx
// is done (ErrClosed after Close) and never closes out.
func (c *Client) Watch(ctx context.Context, points []*site.Point, out chan<- control.Reading) error {
	t := time.NewTicker(c.s.PollInterval)
	defer t.Stop()
	var pl *readPlan
	for {
		c.mu.Lock()
		gen := c.gen
		c.mu.Unlock()
		if !pl.fits(points, gen) {
			pl = c.planFor(points) // the engine's first read made it
		}
		stopped := false
		c.read(ctx, pl, func(_ int, r control.Reading) {
			if stopped || ctx.Err() != nil {
				stopped = true
				return
			}
			select {
			case out <- r:
			case <-ctx.Done():
				stopped = true
			}
		}, true)
		if ctx.Err() != nil {
			return nil
		}
		c.link.mu.Lock()
		closed := c.link.closed
		c.link.mu.Unlock()
		if closed {
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// States reports each unit the client has talked to, as
// "<host:port or device>/unit N": up or down, since when, and the last
// error.
func (c *Client) States() []control.DeviceState {
	var out []control.DeviceState
	for _, u := range c.link.states() {
		out = append(out, control.DeviceState{
			Device:    fmt.Sprintf("%s/unit %d", c.s.name, u.id),
			Up:        u.up,
			Since:     u.since,
			LastError: u.lastErr,
		})
	}
	return out
}

// Interface guards.
var (
	_ control.Driver     = (*Client)(nil)
	_ control.ReaderInto = (*Client)(nil)
)
