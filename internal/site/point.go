package site

import (
	"math"
	"strconv"
)

// Point is one BMS data point the gateway reads or writes.
type Point struct {
	ID string
	// Device is the template instance the point comes from, or "".
	Device      string
	Connection  string
	Description string
	Type        DataType
	Access      Access
	// Unit is the engineering unit, for display only ("°C", "%").
	Unit string
	// Scale and Offset convert raw to engineering values:
	// engineering = raw*Scale + Offset.
	Scale, Offset float64
	// Min and Max bound the engineering values written to the point.
	Min, Max *float64
	// Labels name the allowed values of an enumerated point
	// ("comfort" → 2). When set, only these values may be written.
	Labels map[string]float64
	// OnExternalChange is "respect" or "enforce" (see control.Policy).
	OnExternalChange string
	// Exactly one address is set, matching the connection's protocol;
	// a point of a serial connection has none (event lines set it) and
	// Serial says how it is written, if it is.
	Modbus *ModbusAddress
	OPCUA  *OPCUAAddress
	Serial *SerialPoint
}

// Writable reports whether the gateway may write the point.
func (p *Point) Writable() bool { return p.Access == AccessWrite }

// Label returns the name of v in the point's labels, or "".
func (p *Point) Label(v float64) string {
	for name, x := range p.Labels {
		if x == v {
			return name
		}
	}
	return ""
}

// Format renders an engineering value for people: labels by name,
// booleans as true/false, numbers with their unit.
func (p *Point) Format(v Value) string {
	switch {
	case v.Label != "":
		return v.Label
	case p.Type == TypeBool:
		return strconv.FormatBool(v.Num != 0)
	case p.Unit != "":
		return strconv.FormatFloat(v.Num, 'f', -1, 64) + " " + p.Unit
	}
	return strconv.FormatFloat(v.Num, 'f', -1, 64)
}

// Value is an engineering value a point takes: a number (booleans are 0
// and 1) with the label it was given by, if any.
type Value struct {
	Num   float64
	Label string
}

// Equal reports whether two values write the same thing.
func (v Value) Equal(w Value) bool { return v.Num == w.Num }

// DataType is the wire data type of a point.
type DataType string

// Data types.
const (
	TypeBool    DataType = "bool"
	TypeInt16   DataType = "int16"
	TypeUint16  DataType = "uint16"
	TypeInt32   DataType = "int32"
	TypeUint32  DataType = "uint32"
	TypeFloat32 DataType = "float32"
	TypeFloat64 DataType = "float64"
)

// Range is the lowest and highest raw value the type can hold.
func (t DataType) Range() (lo, hi float64) {
	switch t {
	case TypeBool:
		return 0, 1
	case TypeInt16:
		return math.MinInt16, math.MaxInt16
	case TypeUint16:
		return 0, math.MaxUint16
	case TypeInt32:
		return math.MinInt32, math.MaxInt32
	case TypeUint32:
		return 0, math.MaxUint32
	case TypeFloat32:
		return -math.MaxFloat32, math.MaxFloat32
	}
	return -math.MaxFloat64, math.MaxFloat64
}

// Registers is the number of 16-bit Modbus registers the type occupies.
func (t DataType) Registers() int {
	switch t {
	case TypeInt32, TypeUint32, TypeFloat32:
		return 2
	case TypeFloat64:
		return 4
	}
	return 1
}

// Access says whether the gateway may write a point.
type Access string

// Access modes.
const (
	// AccessRead points are only read (sensors, states).
	AccessRead Access = "read"
	// AccessWrite points are written by the gateway and read back.
	AccessWrite Access = "write"
)

// ModbusTable is one of the four Modbus data tables.
type ModbusTable string

// Modbus tables.
const (
	Coil            ModbusTable = "coil"
	DiscreteInput   ModbusTable = "discrete_input"
	HoldingRegister ModbusTable = "holding_register"
	InputRegister   ModbusTable = "input_register"
)

// ByteOrder is the order of bytes within a 16-bit register, or of words
// within a multi-register value.
type ByteOrder string

// Byte and word orders.
const (
	BigEndian    ByteOrder = "big"
	LittleEndian ByteOrder = "little"
)

// ModbusAddress locates a point in a Modbus device.
type ModbusAddress struct {
	Table ModbusTable
	// Address is the zero-based protocol address (register 40001 is
	// holding_register 0).
	Address uint16
	// Bit selects one bit (0 = least significant) of a register for a
	// bool point; -1 when unused.
	Bit       int
	UnitID    uint8
	ByteOrder ByteOrder
	WordOrder ByteOrder
}

// OPCUAAddress locates a point in an OPC UA server.
type OPCUAAddress struct {
	// NodeID in the standard string form, e.g. "ns=2;s=Valby.Gym.AHU.Mode".
	NodeID string
}
