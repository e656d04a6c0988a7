package opcua

import (
	"fmt"
	"math"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// nodeID parses the point's node id.
func nodeID(p *site.Point) (*ua.NodeID, error) {
	if p.OPCUA == nil || p.OPCUA.NodeID == "" {
		return nil, fmt.Errorf("point %s has no opc ua node id", p.ID)
	}
	nid, err := ua.ParseNodeID(p.OPCUA.NodeID)
	if err != nil {
		return nil, fmt.Errorf("point %s: node id %q: %w", p.ID, p.OPCUA.NodeID, err)
	}
	return nid, nil
}

// scale returns the point's scale, 1 when unset.
func scale(p *site.Point) float64 {
	if p.Scale == 0 {
		return 1
	}
	return p.Scale
}

// encode turns an engineering value into the raw OPC UA value of the
// point's data type: raw = (value - offset) / scale, rounded to the
// nearest integer for integer types. Booleans are written as they are
// (0 or 1); scale and offset do not apply to them.
func encode(p *site.Point, value float64) (*ua.Variant, error) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return nil, fmt.Errorf("%w: %v", control.ErrOutOfRange, value)
	}
	if p.Type == site.TypeBool {
		return ua.MustVariant(value != 0), nil
	}
	raw := (value - p.Offset) / scale(p)
	integer := func(lo, hi float64) (float64, error) {
		r := math.Round(raw)
		if r < lo || r > hi {
			return 0, fmt.Errorf("%w: raw value %v does not fit %s", control.ErrOutOfRange, r, p.Type)
		}
		return r, nil
	}
	var v any
	switch p.Type {
	case site.TypeInt16:
		r, err := integer(math.MinInt16, math.MaxInt16)
		if err != nil {
			return nil, err
		}
		v = int16(r)
	case site.TypeUint16:
		r, err := integer(0, math.MaxUint16)
		if err != nil {
			return nil, err
		}
		v = uint16(r)
	case site.TypeInt32:
		r, err := integer(math.MinInt32, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		v = int32(r)
	case site.TypeUint32:
		r, err := integer(0, math.MaxUint32)
		if err != nil {
			return nil, err
		}
		v = uint32(r)
	case site.TypeFloat32:
		if math.Abs(raw) > math.MaxFloat32 {
			return nil, fmt.Errorf("%w: raw value %v does not fit float32", control.ErrOutOfRange, raw)
		}
		v = float32(raw)
	case site.TypeFloat64:
		v = raw
	default:
		return nil, fmt.Errorf("point %s: data type %q is not supported", p.ID, p.Type)
	}
	return ua.NewVariant(v)
}

// decode turns a raw OPC UA value into the point's engineering value:
// raw*scale + offset, booleans as 0 and 1. Any numeric type is accepted,
// whatever the point's declared type, since reading never harms.
func decode(p *site.Point, v *ua.Variant) (float64, error) {
	if v == nil || v.Value() == nil {
		return 0, fmt.Errorf("%w: empty value", ErrUnexpectedType)
	}
	var raw float64
	switch x := v.Value().(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case int8:
		raw = float64(x)
	case uint8:
		raw = float64(x)
	case int16:
		raw = float64(x)
	case uint16:
		raw = float64(x)
	case int32:
		raw = float64(x)
	case uint32:
		raw = float64(x)
	case int64:
		raw = float64(x)
	case uint64:
		raw = float64(x)
	case float32:
		raw = float64(x)
	case float64:
		raw = x
	default:
		return 0, fmt.Errorf("%w: %T (%s), want %s", ErrUnexpectedType, x, v.Type(), p.Type)
	}
	if p.Type == site.TypeBool {
		return boolFloat(raw != 0), nil
	}
	return raw*scale(p) + p.Offset, nil
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// reading turns a DataValue of a point into a Reading. The time is the
// source timestamp, else the server timestamp, else now.
func reading(p *site.Point, nid *ua.NodeID, dv *ua.DataValue, now time.Time) control.Reading {
	r := control.Reading{Point: p.ID, Time: now}
	if dv == nil {
		r.Err = fmt.Errorf("point %s: server returned no value", p.ID)
		return r
	}
	switch {
	case !dv.SourceTimestamp.IsZero():
		r.Time = dv.SourceTimestamp
	case !dv.ServerTimestamp.IsZero():
		r.Time = dv.ServerTimestamp
	}
	if !good(dv.Status) {
		r.Err = &StatusError{NodeID: nid.String(), Code: dv.Status}
		return r
	}
	v, err := decode(p, dv.Value)
	if err != nil {
		r.Err = fmt.Errorf("point %s: %w", p.ID, err)
		return r
	}
	r.Value = v
	return r
}
