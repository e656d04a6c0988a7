package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/site"
)

// TestSiteChanges: what a reload changes in a site that stays, as
// `bmsgw reload --check` lists it.
func TestSiteChanges(t *testing.T) {
	mb := func(url string) *site.Connection {
		return &site.Connection{ID: "plc", Modbus: &site.ModbusConnection{URL: url}}
	}
	reg := func(id string, addr uint16) *site.Point {
		return &site.Point{ID: id, Connection: "plc", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1,
			Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: addr, Bit: -1, UnitID: 1}}
	}
	old := &site.Site{ID: "s", Connections: map[string]*site.Connection{"plc": mb("tcp://127.0.0.1:1502")}, Points: map[string]*site.Point{}}
	for i := range 12 {
		p := reg(fmt.Sprintf("p%02d", i), uint16(i))
		old.Points[p.ID] = p
	}
	same := &site.Site{ID: "s", Connections: map[string]*site.Connection{"plc": mb("tcp://127.0.0.1:1502")}, Points: map[string]*site.Point{}}
	for id, p := range old.Points {
		q := *p
		same.Points[id] = &q
	}
	require.Empty(t, siteChanges(old, same), "an equal copy changes nothing")

	moved := &site.Site{ID: "s", Connections: map[string]*site.Connection{"plc": mb("tcp://127.0.0.1:1503")}, Points: map[string]*site.Point{}}
	for id, p := range old.Points {
		q := *p
		moved.Points[id] = &q
	}
	delete(moved.Points, "p00")
	moved.Points["p01"] = reg("p01", 40)
	for i := range 10 {
		p := reg(fmt.Sprintf("n%02d", i), uint16(100+i))
		moved.Points[p.ID] = p
	}
	require.Equal(t, []string{
		"site s: replace connection plc: its settings changed (a new link; its points are read again)",
		"site s: add 10 points (n00, n01, n02, n03, n04, n05, n06, n07 and 2 more)",
		"site s: remove 1 point (p00)",
		"site s: rewire 1 point (p01)",
	}, siteChanges(old, moved))
}
