package modbus

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/site"
)

// req is a compact expected request: unit, function, start, quantity,
// number of points.
type req struct {
	unit     uint8
	fc       uint8
	start    uint16
	quantity uint16
	points   int
}

func compact(rs []Request) []req {
	out := make([]req, len(rs))
	for i, r := range rs {
		out[i] = req{r.Unit, r.Function, r.Start, r.Quantity, len(r.Points)}
	}
	return out
}

func cat(pss ...[]*site.Point) []*site.Point {
	var out []*site.Point
	for _, ps := range pss {
		out = append(out, ps...)
	}
	return out
}

func TestPlanReads(t *testing.T) {
	twice := hr("twice", 4, site.TypeUint16)
	gaps := Limits{ReadThroughGaps: true, MaxGap: 8}
	noGaps := Limits{}
	for _, tc := range []struct {
		name   string
		points []*site.Point
		lim    Limits
		want   []req
	}{
		{
			name:   "contiguous registers make one request",
			points: seq("r", site.HoldingRegister, 1, 100, 10, site.TypeUint16),
			lim:    gaps,
			want:   []req{{1, 3, 100, 10, 10}},
		},
		{
			name:   "unsorted input is sorted",
			points: []*site.Point{hr("c", 2, site.TypeInt16), hr("a", 0, site.TypeInt16), hr("b", 1, site.TypeInt16)},
			lim:    noGaps,
			want:   []req{{1, 3, 0, 3, 3}},
		},
		{
			name:   "gap within max_gap is read through",
			points: []*site.Point{hr("a", 0, site.TypeUint16), hr("b", 9, site.TypeUint16)},
			lim:    gaps,
			want:   []req{{1, 3, 0, 10, 2}},
		},
		{
			name:   "gap over max_gap splits",
			points: []*site.Point{hr("a", 0, site.TypeUint16), hr("b", 10, site.TypeUint16)},
			lim:    gaps,
			want:   []req{{1, 3, 0, 1, 1}, {1, 3, 10, 1, 1}},
		},
		{
			name:   "gaps are not read through when off",
			points: []*site.Point{hr("a", 0, site.TypeUint16), hr("b", 2, site.TypeUint16)},
			lim:    noGaps,
			want:   []req{{1, 3, 0, 1, 1}, {1, 3, 2, 1, 1}},
		},
		{
			name:   "125 registers at most",
			points: seq("r", site.HoldingRegister, 1, 0, 130, site.TypeUint16),
			lim:    gaps,
			want:   []req{{1, 3, 0, 125, 125}, {1, 3, 125, 5, 5}},
		},
		{
			name:   "max_registers lowers the limit",
			points: seq("r", site.InputRegister, 1, 0, 25, site.TypeUint16),
			lim:    Limits{MaxRegisters: 10},
			want:   []req{{1, 4, 0, 10, 10}, {1, 4, 10, 10, 10}, {1, 4, 20, 5, 5}},
		},
		{
			name:   "a 32-bit value that fits at the boundary",
			points: append(seq("r", site.HoldingRegister, 1, 0, 8, site.TypeUint16), hr("f", 8, site.TypeFloat32)),
			lim:    Limits{MaxRegisters: 10},
			want:   []req{{1, 3, 0, 10, 9}},
		},
		{
			name:   "a 32-bit value across the boundary is never split",
			points: append(seq("r", site.HoldingRegister, 1, 0, 9, site.TypeUint16), hr("f", 9, site.TypeFloat32)),
			lim:    Limits{MaxRegisters: 10},
			want:   []req{{1, 3, 0, 9, 9}, {1, 3, 9, 2, 1}},
		},
		{
			name:   "a float64 across the 125 boundary",
			points: append(seq("r", site.HoldingRegister, 1, 0, 123, site.TypeUint16), hr("d", 123, site.TypeFloat64)),
			lim:    gaps,
			want:   []req{{1, 3, 0, 123, 123}, {1, 3, 123, 4, 1}},
		},
		{
			name:   "a value wider than max_registers is read on its own",
			points: []*site.Point{hr("d", 0, site.TypeFloat64), hr("e", 4, site.TypeUint16)},
			lim:    Limits{MaxRegisters: 2},
			want:   []req{{1, 3, 0, 4, 1}, {1, 3, 4, 1, 1}},
		},
		{
			name: "bits of one register share it",
			points: []*site.Point{
				hr("b0", 5, site.TypeBool, bit(0)), hr("b3", 5, site.TypeBool, bit(3)),
				hr("b15", 5, site.TypeBool, bit(15)), hr("next", 6, site.TypeUint16),
			},
			lim:  noGaps,
			want: []req{{1, 3, 5, 2, 4}},
		},
		{
			name:   "overlapping points share registers",
			points: []*site.Point{hr("f", 0, site.TypeFloat32), hr("lo", 1, site.TypeUint16)},
			lim:    noGaps,
			want:   []req{{1, 3, 0, 2, 2}},
		},
		{
			name:   "2000 coils at most",
			points: seq("c", site.Coil, 1, 0, 2001, site.TypeBool),
			lim:    gaps,
			want:   []req{{1, 1, 0, 2000, 2000}, {1, 1, 2000, 1, 1}},
		},
		{
			name:   "max_bits lowers the limit",
			points: seq("d", site.DiscreteInput, 1, 0, 150, site.TypeBool),
			lim:    Limits{MaxBits: 100},
			want:   []req{{1, 2, 0, 100, 100}, {1, 2, 100, 50, 50}},
		},
		{
			name: "bit gaps are 16 times max_gap",
			points: []*site.Point{
				pt("a", site.Coil, 1, 0, site.TypeBool), pt("b", site.Coil, 1, 129, site.TypeBool),
				pt("c", site.Coil, 1, 259, site.TypeBool),
			},
			lim:  gaps,
			want: []req{{1, 1, 0, 130, 2}, {1, 1, 259, 1, 1}},
		},
		{
			name: "tables and units are never mixed",
			points: cat(
				seq("u2h", site.HoldingRegister, 2, 0, 3, site.TypeUint16),
				seq("u1i", site.InputRegister, 1, 0, 3, site.TypeUint16),
				seq("u1h", site.HoldingRegister, 1, 0, 3, site.TypeUint16),
				seq("u1c", site.Coil, 1, 0, 3, site.TypeBool),
				seq("u1d", site.DiscreteInput, 1, 0, 3, site.TypeBool),
			),
			lim:  gaps,
			want: []req{{1, 1, 0, 3, 3}, {1, 2, 0, 3, 3}, {1, 3, 0, 3, 3}, {1, 4, 0, 3, 3}, {2, 3, 0, 3, 3}},
		},
		{
			name:   "unit 0 takes the default unit",
			points: []*site.Point{hr("a", 0, site.TypeUint16, unit(0)), hr("b", 1, site.TypeUint16, unit(7))},
			lim:    Limits{DefaultUnit: 7},
			want:   []req{{7, 3, 0, 2, 2}},
		},
		{
			name: "points without a valid address are left out",
			points: []*site.Point{
				{ID: "opcua", Type: site.TypeUint16},
				hr("past", 65535, site.TypeFloat32),
				hr("ok", 65535, site.TypeUint16),
			},
			lim:  noGaps,
			want: []req{{1, 3, 65535, 1, 1}},
		},
		{
			name:   "a point listed twice is read once",
			points: []*site.Point{twice, hr("same-place", 4, site.TypeUint16), twice, nil},
			lim:    noGaps,
			want:   []req{{1, 3, 4, 1, 2}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, compact(PlanReads(tc.points, tc.lim)))
		})
	}
}

func TestPlanReadsNamesPoints(t *testing.T) {
	rs := PlanReads([]*site.Point{hr("b", 1, site.TypeUint16), hr("a", 0, site.TypeUint16)}, Limits{})
	require.Len(t, rs, 1)
	require.Equal(t, Request{
		Unit: 1, Function: 3, FunctionName: "read_holding_registers", Table: site.HoldingRegister,
		Start: 0, Quantity: 2, Points: []string{"a", "b"},
	}, rs[0])
	require.Equal(t, "unit 1 fc3 read_holding_registers 0-1 (2): a, b", rs[0].String())
}

func TestPlanWrites(t *testing.T) {
	item := func(p *site.Point, idx int) writeItem {
		return writeItem{idx: idx, p: p, unit: p.Modbus.UnitID, regs: make([]uint16, width(p))}
	}
	multi := Limits{WriteMultiple: true}
	for _, tc := range []struct {
		name   string
		points []*site.Point
		lim    Limits
		want   []req
	}{
		{
			name:   "neighbouring registers make one fc16",
			points: []*site.Point{hr("a", 10, site.TypeUint16), hr("b", 11, site.TypeFloat32), hr("c", 13, site.TypeInt16)},
			lim:    multi,
			want:   []req{{1, 16, 10, 4, 3}},
		},
		{
			name:   "one register alone is fc6",
			points: []*site.Point{hr("a", 10, site.TypeUint16), hr("b", 12, site.TypeUint16)},
			lim:    multi,
			want:   []req{{1, 6, 10, 1, 1}, {1, 6, 12, 1, 1}},
		},
		{
			name:   "without write_multiple one request per point",
			points: []*site.Point{hr("a", 10, site.TypeUint16), hr("b", 11, site.TypeFloat32)},
			lim:    Limits{},
			want:   []req{{1, 6, 10, 1, 1}, {1, 16, 11, 2, 1}},
		},
		{
			name:   "neighbouring coils make one fc15",
			points: seq("c", site.Coil, 1, 0, 3, site.TypeBool),
			lim:    multi,
			want:   []req{{1, 15, 0, 3, 3}},
		},
		{
			name:   "a coil alone is fc5",
			points: seq("c", site.Coil, 1, 0, 2, site.TypeBool),
			lim:    Limits{},
			want:   []req{{1, 5, 0, 1, 1}, {1, 5, 1, 1, 1}},
		},
		{
			name:   "123 registers per fc16",
			points: seq("r", site.HoldingRegister, 1, 0, 124, site.TypeUint16),
			lim:    multi,
			want:   []req{{1, 16, 0, 123, 123}, {1, 6, 123, 1, 1}},
		},
		{
			name:   "max_registers limits writes too",
			points: seq("r", site.HoldingRegister, 1, 0, 5, site.TypeUint16),
			lim:    Limits{WriteMultiple: true, MaxRegisters: 2},
			want:   []req{{1, 16, 0, 2, 2}, {1, 16, 2, 2, 2}, {1, 6, 4, 1, 1}},
		},
		{
			name: "bits of one register make one read-modify-write",
			points: []*site.Point{
				hr("b0", 5, site.TypeBool, bit(0)), hr("x", 6, site.TypeUint16), hr("b3", 5, site.TypeBool, bit(3)),
			},
			lim:  multi,
			want: []req{{1, 6, 5, 1, 2}, {1, 6, 6, 1, 1}},
		},
		{
			name:   "the same address twice stays in order",
			points: []*site.Point{hr("first", 3, site.TypeUint16), hr("second", 3, site.TypeUint16)},
			lim:    multi,
			want:   []req{{1, 6, 3, 1, 1}, {1, 6, 3, 1, 1}},
		},
		{
			name:   "units are not mixed",
			points: []*site.Point{hr("a", 0, site.TypeUint16, unit(2)), hr("b", 1, site.TypeUint16)},
			lim:    multi,
			want:   []req{{1, 6, 1, 1, 1}, {2, 6, 0, 1, 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var items []writeItem
			for i, p := range tc.points {
				items = append(items, item(p, i))
			}
			var got []Request
			for _, b := range planWrites(items, tc.lim) {
				got = append(got, named(b))
			}
			require.Equal(t, tc.want, compact(got))
		})
	}
}

func TestPlanWritesKeepsOrderOfSameAddress(t *testing.T) {
	a, b := hr("first", 3, site.TypeUint16), hr("second", 3, site.TypeUint16)
	bs := planWrites([]writeItem{{idx: 0, p: a, unit: 1, regs: []uint16{1}}, {idx: 1, p: b, unit: 1, regs: []uint16{2}}}, Limits{WriteMultiple: true})
	require.Len(t, bs, 2)
	require.Equal(t, []string{"first"}, named(bs[0]).Points)
	require.Equal(t, []string{"second"}, named(bs[1]).Points)
}

// named is a write batch's request with the ids of the points it writes.
func named(b writeBatch) Request {
	r := b.Request
	for _, it := range b.items {
		r.Points = append(r.Points, it.p.ID)
	}
	return r
}
