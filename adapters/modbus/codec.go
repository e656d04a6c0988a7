package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/bmsgw/bmsgw/internal/site"
)

// ErrNotEncodable is returned for a value that the point's data type
// cannot hold once scale and offset are undone: too large, negative for an
// unsigned type, a fraction for an integer type, or not finite.
var ErrNotEncodable = errors.New("value does not fit the point's data type")

// isBitTable reports whether t holds single bits (coils, discrete inputs).
func isBitTable(t site.ModbusTable) bool {
	return t == site.Coil || t == site.DiscreteInput
}

// width is the number of registers (or bits) a point occupies.
func width(p *site.Point) int {
	return widthOf(p.Modbus.Table, p.Type)
}

// widthOf is the number of registers (or bits) a value of type t
// occupies in table.
func widthOf(table site.ModbusTable, t site.DataType) int {
	if isBitTable(table) || t == site.TypeBool {
		return 1
	}
	return t.Registers()
}

// checkPoint reports why a point cannot be read or written over Modbus,
// or nil.
func checkPoint(p *site.Point) error {
	a := p.Modbus
	if a == nil {
		return errors.New("point has no modbus address")
	}
	switch a.Table {
	case site.Coil, site.DiscreteInput:
		if p.Type != site.TypeBool {
			return fmt.Errorf("a %s holds a bool, not %s", a.Table, p.Type)
		}
	case site.HoldingRegister, site.InputRegister:
		switch p.Type {
		case site.TypeBool:
			if a.Bit < 0 || a.Bit > 15 {
				return fmt.Errorf("bool in a %s needs a bit 0-15, not %d", a.Table, a.Bit)
			}
		case site.TypeInt16, site.TypeUint16, site.TypeInt32, site.TypeUint32, site.TypeFloat32, site.TypeFloat64:
			if a.Bit >= 0 {
				return fmt.Errorf("bit %d applies to bool points only", a.Bit)
			}
		default:
			return fmt.Errorf("unknown data type %q", p.Type)
		}
	default:
		return fmt.Errorf("unknown table %q", a.Table)
	}
	for _, o := range []site.ByteOrder{a.ByteOrder, a.WordOrder} {
		if o != "" && o != site.BigEndian && o != site.LittleEndian {
			return fmt.Errorf("unknown byte or word order %q", o)
		}
	}
	if end := int(a.Address) + width(p) - 1; end > math.MaxUint16 {
		return fmt.Errorf("%s %d-%d runs past address 65535", a.Table, a.Address, end)
	}
	return nil
}

// scale returns the point's scale, taking 0 (unset) as 1.
func scale(p *site.Point) float64 {
	if p.Scale == 0 {
		return 1
	}
	return p.Scale
}

// decodeBit returns the engineering value of a coil or discrete input.
func decodeBit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// decodeRegisters returns the engineering value of a point from its
// registers as they came off the wire (most significant byte first).
func decodeRegisters(p *site.Point, regs []uint16) float64 {
	return decode(p.Type, p.Modbus, p.Scale, p.Offset, regs)
}

// decode returns the engineering value of a value of type t at address a,
// with scale (0 taken as 1) and offset, from its wire registers.
func decode(t site.DataType, a *site.ModbusAddress, scale, offset float64, regs []uint16) float64 {
	if t == site.TypeBool {
		r := regs[0]
		if a.ByteOrder == site.LittleEndian {
			r = r<<8 | r>>8
		}
		return decodeBit(r>>a.Bit&1 == 1)
	}
	var buf [8]byte
	b := unorder(buf[:], a, regs)
	var raw float64
	switch t {
	case site.TypeInt16:
		raw = float64(int16(binary.BigEndian.Uint16(b)))
	case site.TypeUint16:
		raw = float64(binary.BigEndian.Uint16(b))
	case site.TypeInt32:
		raw = float64(int32(binary.BigEndian.Uint32(b)))
	case site.TypeUint32:
		raw = float64(binary.BigEndian.Uint32(b))
	case site.TypeFloat32:
		raw = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case site.TypeFloat64:
		raw = math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	if scale == 0 {
		scale = 1
	}
	return raw*scale + offset
}

// unorder turns wire registers into the value's big-endian bytes, in buf
// if it is large enough: it undoes the word order (low word first when
// little) and the byte order within each register (low byte first when
// little).
func unorder(buf []byte, a *site.ModbusAddress, regs []uint16) []byte {
	n := len(regs)
	var b []byte
	if 2*n <= len(buf) {
		b = buf[:2*n]
	} else {
		b = make([]byte, 2*n)
	}
	for i, r := range regs {
		j := i
		if a.WordOrder == site.LittleEndian {
			j = n - 1 - i
		}
		if a.ByteOrder == site.LittleEndian {
			r = r<<8 | r>>8
		}
		binary.BigEndian.PutUint16(b[2*j:], r)
	}
	return b
}

// appendOrdered is the inverse of unorder: it appends to dst the wire
// registers of the value's big-endian bytes b, in the point's byte and
// word order.
func appendOrdered(dst []uint16, p *site.Point, b []byte) []uint16 {
	n := len(b) / 2
	dst = slices.Grow(dst, n)
	regs := dst[len(dst) : len(dst)+n]
	for j := range n {
		r := binary.BigEndian.Uint16(b[2*j:])
		if p.Modbus.ByteOrder == site.LittleEndian {
			r = r<<8 | r>>8
		}
		i := j
		if p.Modbus.WordOrder == site.LittleEndian {
			i = n - 1 - j
		}
		regs[i] = r
	}
	return dst[:len(dst)+n]
}

// appendRegisters appends to dst the wire registers that hold engineering
// value v of a register point that is not a bit (a write of many points
// encodes into one array). It refuses values the data type cannot hold.
func appendRegisters(dst []uint16, p *site.Point, v float64) ([]uint16, error) {
	raw := (v - p.Offset) / scale(p)
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return nil, fmt.Errorf("%v is not a finite number: %w", v, ErrNotEncodable)
	}
	var buf [8]byte
	b := buf[:0]
	switch p.Type {
	case site.TypeFloat32:
		if math.Abs(raw) > math.MaxFloat32 {
			return nil, fmt.Errorf("raw %v is beyond float32: %w", raw, ErrNotEncodable)
		}
		b = binary.BigEndian.AppendUint32(b, math.Float32bits(float32(raw)))
	case site.TypeFloat64:
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(raw))
	default:
		lo, hi := p.Type.Range()
		r := math.Round(raw)
		// Scaling leaves rounding noise (21.5/0.1 = 214.99999999999997);
		// anything more is a value between two raw steps.
		if math.Abs(raw-r) > 1e-6*max(1, math.Abs(raw)) {
			return nil, fmt.Errorf("raw %v is not a whole number (value %v, scale %v): %w", raw, v, scale(p), ErrNotEncodable)
		}
		if r < lo || r > hi {
			return nil, fmt.Errorf("raw %v is outside %s [%v, %v]: %w", r, p.Type, lo, hi, ErrNotEncodable)
		}
		switch p.Type {
		case site.TypeInt16:
			b = binary.BigEndian.AppendUint16(b, uint16(int16(r)))
		case site.TypeUint16:
			b = binary.BigEndian.AppendUint16(b, uint16(r))
		case site.TypeInt32:
			b = binary.BigEndian.AppendUint32(b, uint32(int32(r)))
		case site.TypeUint32:
			b = binary.BigEndian.AppendUint32(b, uint32(r))
		}
	}
	return appendOrdered(dst, p, b), nil
}

// encodeBool returns the bit a bool point is written with.
func encodeBool(v float64) (bool, error) {
	switch v {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("bool takes 0 or 1, not %v: %w", v, ErrNotEncodable)
}

// setBit returns register r (wire order) with the point's bit set to b.
func setBit(p *site.Point, r uint16, b bool) uint16 {
	little := p.Modbus.ByteOrder == site.LittleEndian
	if little {
		r = r<<8 | r>>8
	}
	mask := uint16(1) << p.Modbus.Bit
	if b {
		r |= mask
	} else {
		r &^= mask
	}
	if little {
		r = r<<8 | r>>8
	}
	return r
}
