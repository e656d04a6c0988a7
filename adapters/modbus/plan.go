package modbus

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Modbus function codes the client sends.
const (
	FuncReadCoils              uint8 = 1
	FuncReadDiscreteInputs     uint8 = 2
	FuncReadHoldingRegisters   uint8 = 3
	FuncReadInputRegisters     uint8 = 4
	FuncWriteSingleCoil        uint8 = 5
	FuncWriteSingleRegister    uint8 = 6
	FuncWriteMultipleCoils     uint8 = 15
	FuncWriteMultipleRegisters uint8 = 16
)

// FunctionName returns the snake_case name of a function code, e.g.
// "read_holding_registers", or "function_N" for codes the client does not
// send.
func FunctionName(fc uint8) string {
	switch fc {
	case FuncReadCoils:
		return "read_coils"
	case FuncReadDiscreteInputs:
		return "read_discrete_inputs"
	case FuncReadHoldingRegisters:
		return "read_holding_registers"
	case FuncReadInputRegisters:
		return "read_input_registers"
	case FuncWriteSingleCoil:
		return "write_single_coil"
	case FuncWriteSingleRegister:
		return "write_single_register"
	case FuncWriteMultipleCoils:
		return "write_multiple_coils"
	case FuncWriteMultipleRegisters:
		return "write_multiple_registers"
	}
	return fmt.Sprintf("function_%d", fc)
}

// Request describes one Modbus request on the wire.
type Request struct {
	// Unit is the unit (slave) id the request is sent to.
	Unit uint8
	// Function is the function code, FunctionName its name.
	Function     uint8
	FunctionName string
	// Table is the data table the request reads or writes.
	Table site.ModbusTable
	// Start is the first address and Quantity the number of registers or
	// bits, gaps read through included.
	Start    uint16
	Quantity uint16
	// Points are the ids of the points the request serves, in address
	// order.
	Points []string
}

// String renders the request for people: "unit 1 fc3
// read_holding_registers 100-109 (10): ahu.mode, ahu.setpoint".
func (r Request) String() string {
	return fmt.Sprintf("unit %d fc%d %s %d-%d (%d): %s", r.Unit, r.Function, r.FunctionName,
		r.Start, int(r.Start)+int(r.Quantity)-1, r.Quantity, strings.Join(r.Points, ", "))
}

// Limits are the device limits and merging rules the planner obeys.
type Limits struct {
	// MaxRegisters is the most registers in one read, 1-125; other
	// values mean 125.
	MaxRegisters int
	// MaxBits is the most coils or discrete inputs in one read, 1-2000;
	// other values mean 2000.
	MaxBits int
	// ReadThroughGaps merges reads across unused addresses.
	ReadThroughGaps bool
	// MaxGap is the most unused registers read through, and MaxGap×16 the
	// most unused bits.
	MaxGap int
	// WriteMultiple merges writes of neighbouring registers into one FC16
	// request and of neighbouring coils into one FC15 request.
	WriteMultiple bool
	// DefaultUnit replaces unit id 0 in point addresses when it is not 0.
	DefaultUnit uint8
}

func (l Limits) maxRegisters() int {
	if l.MaxRegisters < 1 || l.MaxRegisters > MaxRegistersLimit {
		return MaxRegistersLimit
	}
	return l.MaxRegisters
}

func (l Limits) maxBits() int {
	if l.MaxBits < 1 || l.MaxBits > MaxBitsLimit {
		return MaxBitsLimit
	}
	return l.MaxBits
}

func (l Limits) unit(a *site.ModbusAddress) uint8 {
	if a.UnitID == 0 && l.DefaultUnit != 0 {
		return l.DefaultUnit
	}
	return a.UnitID
}

// PlanReads returns the requests that read the points: points of one unit
// and table at neighbouring addresses share a request, as far as the
// limits allow. Points without a valid Modbus address are left out.
// Requests are ordered by unit, function code and start address.
func PlanReads(points []*site.Point, lim Limits) []Request {
	return requests(planReads(points, lim, nil))
}

// requests returns the wire requests of planned reads, with their point ids.
func requests(batches []readBatch) []Request {
	out := make([]Request, len(batches))
	for i, b := range batches {
		out[i] = b.Request
		out[i].Points = make([]string, len(b.points))
		for k, p := range b.points {
			out[i].Points[k] = p.ID
		}
	}
	return out
}

// readBatch is a planned read with the points it serves. Its Request has
// no Points (see requests); points and idx are views of arrays shared by
// the whole plan and must not be appended to.
type readBatch struct {
	Request
	points []*site.Point
	// idx holds, for each point, its index in the slice that was planned.
	idx []int
	// gaps reports whether the request reads addresses no point uses.
	gaps bool
}

type groupKey struct {
	unit  uint8
	table site.ModbusTable
}

func readFunction(t site.ModbusTable) uint8 {
	switch t {
	case site.Coil:
		return FuncReadCoils
	case site.DiscreteInput:
		return FuncReadDiscreteInputs
	case site.HoldingRegister:
		return FuncReadHoldingRegisters
	}
	return FuncReadInputRegisters
}

// span is one point's place in a table, and its index in the planned slice.
type span struct {
	p          *site.Point
	i          int
	unit, fc   uint8
	start, end int // [start, end)
}

// spanPool holds planReads' working arrays: a cold start plans the reads
// of every device at once.
var spanPool = sync.Pool{New: func() any { return new([]span) }}

// planReads plans the reads of the points that have a valid address. A
// point listed more than once is read once, at its first index. Groups
// (unit and table) for which noGaps is true are planned without reading
// through gaps. It sorts the points once and builds no maps: Read plans
// every read-back slice the engine hands it.
func planReads(points []*site.Point, lim Limits, noGaps func(groupKey) bool) []readBatch {
	sp := spanPool.Get().(*[]span)
	spans := slices.Grow((*sp)[:0], len(points))
	defer func() {
		clear(spans[:cap(spans)])
		*sp = spans[:0]
		spanPool.Put(sp)
	}()
	for i, p := range points {
		if p == nil || checkPoint(p) != nil {
			continue
		}
		s := int(p.Modbus.Address)
		spans = append(spans, span{p, i, lim.unit(p.Modbus), readFunction(p.Modbus.Table), s, s + width(p)})
	}
	// Stable: among points at the same place the first listed comes first,
	// which is what dropping repeats below relies on.
	order := func(a, b span) int {
		return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(a.fc, b.fc),
			cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	}
	// Points are often listed in address order already.
	if !slices.IsSortedFunc(spans, order) {
		slices.SortStableFunc(spans, order)
	}
	// Drop repeated points: they sort next to their first listing, or
	// among points at the same place.
	kept := spans[:0]
	for _, s := range spans {
		dup := false
		for k := len(kept) - 1; k >= 0; k-- {
			q := kept[k]
			if q.unit != s.unit || q.fc != s.fc || q.start != s.start || q.end != s.end {
				break
			}
			if q.p == s.p {
				dup = true
				break
			}
		}
		if !dup {
			kept = append(kept, s)
		}
	}
	spans = kept

	pts := make([]*site.Point, len(spans))
	idx := make([]int, len(spans))
	for k, s := range spans {
		pts[k], idx[k] = s.p, s.i
	}
	var out []readBatch
	first := 0               // first span of the current batch
	var start, end, used int // used counts addresses some point covers
	var limit, maxGap int
	flush := func(to int) {
		if to == first {
			return
		}
		s := spans[first]
		out = append(out, readBatch{
			Request: Request{
				Unit: s.unit, Function: s.fc, FunctionName: FunctionName(s.fc), Table: s.p.Modbus.Table,
				Start: uint16(start), Quantity: uint16(end - start),
			},
			points: pts[first:to:to], idx: idx[first:to:to], gaps: used < end-start,
		})
		first = to
	}
	for k, s := range spans {
		if k > first {
			prev := spans[k-1]
			gap := s.start - end
			newEnd := max(end, s.end)
			if prev.unit == s.unit && prev.fc == s.fc && gap <= maxGap && newEnd-start <= limit {
				used += max(0, newEnd-max(end, s.start))
				end = newEnd
				continue
			}
		}
		flush(k)
		table := s.p.Modbus.Table
		limit, maxGap = lim.maxRegisters(), lim.MaxGap
		if isBitTable(table) {
			limit, maxGap = lim.maxBits(), lim.MaxGap*16
		}
		if !lim.ReadThroughGaps || maxGap < 0 || (noGaps != nil && noGaps(groupKey{s.unit, table})) {
			maxGap = 0
		}
		start, end, used = s.start, s.end, s.end-s.start
	}
	flush(len(spans))
	return out
}

// writeItem is one encoded write.
type writeItem struct {
	idx   int // index in the caller's writes
	p     *site.Point
	value float64
	unit  uint8
	regs  []uint16 // register points other than bits
	bit   bool     // coils and bits in registers
}

// writeBatch is a planned write request with the writes it carries; its
// Request leaves Points empty (nothing prints write requests, and
// naming them cost an array per request).
type writeBatch struct {
	Request
	items []writeItem
	// rmw marks a read-modify-write of bits in one holding register.
	rmw bool
}

// planWrites groups encoded writes into requests: bits of one register
// into one read-modify-write, and with WriteMultiple neighbouring
// registers into one FC16 and neighbouring coils into one FC15. Writes to
// the same address stay in separate requests, in the order given.
func planWrites(items []writeItem, lim Limits) []writeBatch {
	var out []writeBatch
	if !lim.WriteMultiple {
		out = make([]writeBatch, 0, len(items)) // a request per item, or fewer
	}
	type rmwKey struct {
		unit uint8
		addr uint16
	}
	isRMW := func(it writeItem) bool {
		return it.p.Modbus.Table == site.HoldingRegister && it.p.Type == site.TypeBool
	}
	// Without read-modify-writes, items are planned in place (they are
	// the caller's to give).
	rest := items
	if slices.ContainsFunc(items, isRMW) {
		rest = make([]writeItem, 0, len(items))
		rmw := map[rmwKey]int{} // index in out
		for _, it := range items {
			if !isRMW(it) {
				rest = append(rest, it)
				continue
			}
			a := it.p.Modbus
			k := rmwKey{it.unit, a.Address}
			if i, ok := rmw[k]; ok {
				out[i].items = append(out[i].items, it)
				continue
			}
			rmw[k] = len(out)
			out = append(out, writeBatch{Request: Request{
				Unit: it.unit, Function: FuncWriteSingleRegister, FunctionName: "read_modify_write_register",
				Table: a.Table, Start: a.Address, Quantity: 1,
			}, items: []writeItem{it}, rmw: true})
		}
	}
	// By unit, table and address; writes to one address keep their order.
	// The requests then carry neighbouring runs of rest, not copies.
	order := func(a, b writeItem) int {
		return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(a.p.Modbus.Table, b.p.Modbus.Table),
			cmp.Compare(a.p.Modbus.Address, b.p.Modbus.Address))
	}
	if !slices.IsSortedFunc(rest, order) {
		slices.SortStableFunc(rest, order)
	}
	for i := 0; i < len(rest); {
		unit, table := rest[i].unit, rest[i].p.Modbus.Table
		limit := min(lim.maxRegisters(), maxWriteRegisters)
		if table == site.Coil {
			limit = min(lim.maxBits(), maxWriteBits)
		}
		start := int(rest[i].p.Modbus.Address)
		end := start + width(rest[i].p)
		j := i + 1
		for lim.WriteMultiple && j < len(rest) && rest[j].unit == unit && rest[j].p.Modbus.Table == table {
			s, w := int(rest[j].p.Modbus.Address), width(rest[j].p)
			if s != end || end+w-start > limit {
				break
			}
			end += w
			j++
		}
		b := writeBatch{Request: Request{Unit: unit, Table: table, Start: uint16(start), Quantity: uint16(end - start)},
			items: rest[i:j:j]}
		switch {
		case table == site.Coil && j-i == 1:
			b.Function = FuncWriteSingleCoil
		case table == site.Coil:
			b.Function = FuncWriteMultipleCoils
		case b.Quantity == 1:
			b.Function = FuncWriteSingleRegister
		default:
			b.Function = FuncWriteMultipleRegisters
		}
		b.FunctionName = FunctionName(b.Function)
		out = append(out, b)
		i = j
	}
	return out
}
