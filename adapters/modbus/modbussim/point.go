package modbussim

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/bmsgw/bmsgw/internal/site"
)

// The codec below is written apart from the client's on purpose: tests
// that set a value here and read it with the client (or the other way
// round) then check two implementations of byte order, word order and
// scaling against each other.

// SetPoint stores a point's engineering value in its unit's table, as the
// device would hold it: raw = (value-offset)/scale in the point's data
// type, byte order and word order. A bool in a register sets its bit and
// leaves the others.
func (s *Server) SetPoint(p *site.Point, value float64) error {
	a, err := address(p)
	if err != nil {
		return err
	}
	if p.Type == site.TypeBool {
		if value != 0 && value != 1 {
			return fmt.Errorf("modbussim: bool point %s takes 0 or 1, not %v", p.ID, value)
		}
		if a.Table == site.Coil || a.Table == site.DiscreteInput {
			return s.Set(a.UnitID, a.Table, a.Address, uint16(value))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.unitLocked(a.UnitID).holding
		if a.Table == site.InputRegister {
			t = s.unitLocked(a.UnitID).input
		}
		host := swapIf(a.ByteOrder, t[a.Address]) // as a number
		host = host&^(1<<a.Bit) | uint16(value)<<a.Bit
		t[a.Address] = swapIf(a.ByteOrder, host)
		return nil
	}
	raw := (value - p.Offset) / scaleOf(p)
	var bits uint64 // the value's bits, right-aligned
	n := p.Type.Registers()
	switch p.Type {
	case site.TypeFloat32:
		bits = uint64(math.Float32bits(float32(raw)))
	case site.TypeFloat64:
		bits = math.Float64bits(raw)
	default:
		r := math.Round(raw)
		lo, hi := -math.Ldexp(1, 16*n-1), math.Ldexp(1, 16*n-1)-1
		if p.Type == site.TypeUint16 || p.Type == site.TypeUint32 {
			lo, hi = 0, math.Ldexp(1, 16*n)-1
		}
		if r < lo || r > hi || math.IsNaN(r) {
			return fmt.Errorf("modbussim: %v does not fit %s point %s", value, p.Type, p.ID)
		}
		bits = uint64(int64(r)) & (1<<(16*n) - 1)
	}
	regs := make([]uint16, n)
	for k := range n { // k-th word from the most significant one
		w := uint16(bits >> (16 * (n - 1 - k)))
		i := k
		if a.WordOrder == site.LittleEndian {
			i = n - 1 - k
		}
		regs[i] = swapIf(a.ByteOrder, w)
	}
	return s.Set(a.UnitID, a.Table, a.Address, regs...)
}

// PointValue returns a point's engineering value as the device holds it.
func (s *Server) PointValue(p *site.Point) (float64, error) {
	a, err := address(p)
	if err != nil {
		return 0, err
	}
	n := p.Type.Registers()
	if p.Type == site.TypeBool {
		n = 1
	}
	regs, err := s.Get(a.UnitID, a.Table, a.Address, n)
	if err != nil {
		return 0, err
	}
	if p.Type == site.TypeBool {
		if a.Table == site.Coil || a.Table == site.DiscreteInput {
			return float64(regs[0]), nil
		}
		return float64(swapIf(a.ByteOrder, regs[0]) >> a.Bit & 1), nil
	}
	var bits uint64
	for k := range n {
		i := k
		if a.WordOrder == site.LittleEndian {
			i = n - 1 - k
		}
		bits = bits<<16 | uint64(swapIf(a.ByteOrder, regs[i]))
	}
	var raw float64
	switch p.Type {
	case site.TypeInt16:
		raw = float64(int16(bits))
	case site.TypeUint16, site.TypeUint32:
		raw = float64(bits)
	case site.TypeInt32:
		raw = float64(int32(bits))
	case site.TypeFloat32:
		raw = float64(math.Float32frombits(uint32(bits)))
	case site.TypeFloat64:
		raw = math.Float64frombits(bits)
	}
	return raw*scaleOf(p) + p.Offset, nil
}

func address(p *site.Point) (*site.ModbusAddress, error) {
	a := p.Modbus
	if a == nil {
		return nil, fmt.Errorf("modbussim: point %s has no modbus address", p.ID)
	}
	bitTable := a.Table == site.Coil || a.Table == site.DiscreteInput
	switch {
	case bitTable && p.Type != site.TypeBool:
		return nil, fmt.Errorf("modbussim: point %s in a %s must be a bool", p.ID, a.Table)
	case !bitTable && p.Type == site.TypeBool && (a.Bit < 0 || a.Bit > 15):
		return nil, fmt.Errorf("modbussim: bool point %s in a %s needs a bit 0-15", p.ID, a.Table)
	}
	return a, nil
}

func swapIf(o site.ByteOrder, w uint16) uint16 {
	if o == site.LittleEndian {
		return w>>8 | w<<8
	}
	return w
}

func scaleOf(p *site.Point) float64 {
	if p.Scale == 0 {
		return 1
	}
	return p.Scale
}

// ForSite builds one stopped simulator per connection of the site that
// has Modbus points (connection id → server), each holding its points at
// an initial value: the lowest label, else 0 moved into [min, max]. Every
// server gets cfg; Start them and point the site's connections at their
// URLs.
func ForSite(st *site.Site, cfg Config, logger *slog.Logger) (map[string]*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	byConn := map[string][]*site.Point{}
	for _, p := range st.Points {
		if p.Modbus != nil {
			byConn[p.Connection] = append(byConn[p.Connection], p)
		}
	}
	out := map[string]*Server{}
	var errs []error
	for conn, points := range byConn {
		slices.SortFunc(points, func(a, b *site.Point) int { return cmp.Compare(a.ID, b.ID) })
		srv, err := New(cfg, logger.With("conn", conn))
		if err != nil {
			return nil, err
		}
		for _, p := range points {
			if err := srv.SetPoint(p, initial(p)); err != nil {
				errs = append(errs, fmt.Errorf("connection %s: %w", conn, err))
			}
		}
		out[conn] = srv
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func initial(p *site.Point) float64 {
	if len(p.Labels) > 0 {
		v := math.Inf(1)
		for _, x := range p.Labels {
			v = min(v, x)
		}
		return v
	}
	v := 0.0
	if p.Min != nil {
		v = max(v, *p.Min)
	}
	if p.Max != nil {
		v = min(v, *p.Max)
	}
	return v
}
