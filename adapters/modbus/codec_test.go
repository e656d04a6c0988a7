package modbus

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/site"
)

// TestCodecWireLayout pins the wire registers of each type and order
// against values worked out by hand.
func TestCodecWireLayout(t *testing.T) {
	big, little := site.BigEndian, site.LittleEndian
	for _, tc := range []struct {
		name        string
		typ         site.DataType
		byteO, word site.ByteOrder
		value       float64
		wire        []uint16
	}{
		{"uint16 big", site.TypeUint16, big, big, 0x0102, []uint16{0x0102}},
		{"uint16 little bytes", site.TypeUint16, little, big, 0x0102, []uint16{0x0201}},
		{"int16 negative", site.TypeInt16, big, big, -2, []uint16{0xFFFE}},
		{"int16 negative little", site.TypeInt16, little, big, -2, []uint16{0xFEFF}},
		{"uint32 big/big", site.TypeUint32, big, big, 0x01020304, []uint16{0x0102, 0x0304}},
		{"uint32 big bytes, little words", site.TypeUint32, big, little, 0x01020304, []uint16{0x0304, 0x0102}},
		{"uint32 little bytes, big words", site.TypeUint32, little, big, 0x01020304, []uint16{0x0201, 0x0403}},
		{"uint32 little/little", site.TypeUint32, little, little, 0x01020304, []uint16{0x0403, 0x0201}},
		{"int32 negative", site.TypeInt32, big, big, -1, []uint16{0xFFFF, 0xFFFF}},
		{"int32 min, little words", site.TypeInt32, big, little, math.MinInt32, []uint16{0x0000, 0x8000}},
		{"float32 big", site.TypeFloat32, big, big, 21.5, []uint16{0x41AC, 0x0000}},
		{"float32 little words", site.TypeFloat32, big, little, 21.5, []uint16{0x0000, 0x41AC}},
		{"float32 little bytes", site.TypeFloat32, little, big, 21.5, []uint16{0xAC41, 0x0000}},
		{"float64 big", site.TypeFloat64, big, big, 1.5, []uint16{0x3FF8, 0, 0, 0}},
		{"float64 little words", site.TypeFloat64, big, little, 1.5, []uint16{0, 0, 0, 0x3FF8}},
		{"float64 little/little", site.TypeFloat64, little, little, -2, []uint16{0, 0, 0, 0x00C0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := hr("p", 0, tc.typ, orders(tc.byteO, tc.word))
			got, err := appendRegisters(nil, p, tc.value)
			require.NoError(t, err)
			require.Equal(t, tc.wire, got)
			require.Equal(t, tc.value, decodeRegisters(p, tc.wire))
		})
	}
}

func TestCodecScaleOffset(t *testing.T) {
	p := hr("sp", 0, site.TypeInt16, func(p *site.Point) { p.Scale, p.Offset = 0.1, -50 })
	regs, err := appendRegisters(nil, p, 21.5) // raw (21.5+50)/0.1 = 715
	require.NoError(t, err)
	require.Equal(t, []uint16{715}, regs)
	require.InDelta(t, 21.5, decodeRegisters(p, regs), 1e-9)

	zero := hr("z", 0, site.TypeUint16, func(p *site.Point) { p.Scale = 0 })
	regs, err = appendRegisters(nil, zero, 7)
	require.NoError(t, err)
	require.Equal(t, []uint16{7}, regs, "scale 0 means 1")
}

func TestCodecRefusesWhatDoesNotFit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     *site.Point
		value float64
	}{
		{"uint16 negative", hr("p", 0, site.TypeUint16), -1},
		{"uint16 too big", hr("p", 0, site.TypeUint16), 65536},
		{"int16 too big", hr("p", 0, site.TypeInt16), 32768},
		{"int16 too small", hr("p", 0, site.TypeInt16), -32769},
		{"uint32 too big", hr("p", 0, site.TypeUint32), 1 << 32},
		{"int32 too big", hr("p", 0, site.TypeInt32), 1 << 31},
		{"fraction in an integer", hr("p", 0, site.TypeInt16), 1.5},
		{"fraction of the scale step", hr("p", 0, site.TypeInt16, func(p *site.Point) { p.Scale = 0.1 }), 21.55},
		{"scaled beyond int16", hr("p", 0, site.TypeInt16, func(p *site.Point) { p.Scale = 0.01 }), 400},
		{"float32 overflow", hr("p", 0, site.TypeFloat32), 1e39},
		{"NaN", hr("p", 0, site.TypeFloat64), math.NaN()},
		{"infinity", hr("p", 0, site.TypeFloat32), math.Inf(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := appendRegisters(nil, tc.p, tc.value)
			require.ErrorIs(t, err, ErrNotEncodable)
		})
	}
	_, err := encodeBool(2)
	require.ErrorIs(t, err, ErrNotEncodable)
}

func TestCodecBits(t *testing.T) {
	p := hr("b", 0, site.TypeBool, bit(9))
	require.Equal(t, 1.0, decodeRegisters(p, []uint16{0x0200}))
	require.Equal(t, 0.0, decodeRegisters(p, []uint16{0xFDFF}))
	require.Equal(t, uint16(0x0201), setBit(p, 0x0001, true))
	require.Equal(t, uint16(0x0001), setBit(p, 0x0201, false))

	// With the bytes of the register swapped on the wire, bit 9 of the
	// value is bit 1 of the wire register.
	l := hr("b", 0, site.TypeBool, bit(9), orders(site.LittleEndian, site.BigEndian))
	require.Equal(t, 1.0, decodeRegisters(l, []uint16{0x0002}))
	require.Equal(t, uint16(0x0102), setBit(l, 0x0100, true))
}

func TestCheckPoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *site.Point
		want string
	}{
		{"no address", &site.Point{ID: "x", Type: site.TypeUint16}, "no modbus address"},
		{"coil not bool", pt("c", site.Coil, 1, 0, site.TypeUint16), "holds a bool"},
		{"bool without bit", hr("b", 0, site.TypeBool), "needs a bit"},
		{"bit on a number", hr("n", 0, site.TypeUint16, bit(2)), "bool points only"},
		{"past 65535", hr("f", 65535, site.TypeFloat32), "past address 65535"},
		{"unknown type", hr("f", 0, "int64"), "unknown data type"},
		{"unknown table", pt("f", "register", 1, 0, site.TypeUint16), "unknown table"},
		{"unknown order", hr("f", 0, site.TypeUint32, orders("middle", site.BigEndian)), "unknown byte or word order"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPoint(tc.p)
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.NoError(t, checkPoint(hr("ok", 65534, site.TypeInt32)))
}
