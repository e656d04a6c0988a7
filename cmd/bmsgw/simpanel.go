package main

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings/bookingsim"
	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// The demo's door and alarm I/O: a simulated Modbus module starts with
// every door closed and locked and every area armed, and a simulated
// certified alarm panel follows the authorisation the gateway hands it:
// it disarms an area when authorised and arms it its exit delay after the
// authorisation ends, unless a door of the area is open. The members of
// the demo's clubs show their cards two minutes into their bookings (at
// the first door with a reader of the booked space or the space around
// it), except the chess club, which does not come (DOMAIN.md section 5).

// demoCard is when the members of a demo booking show a card, after its
// start; the chess club is the demo's no-show.
const demoCard = 2 * time.Minute

type visit struct {
	at     time.Time
	reader *site.Point
}

// visits lists the cards the demo's club members show on connection c.
func visits(s *site.Site, c *site.Connection, start time.Time) []visit {
	var out []visit
	for _, b := range bookingsim.Evening {
		if b.UID == "demo-chess" {
			continue
		}
		for _, sp := range s.Spaces {
			if !slices.Contains(sp.Resources, b.Resource) {
				continue
			}
		door:
			for p := sp; p != nil; p = p.Parent {
				for _, d := range p.Doors {
					if d.Reader != nil && d.Reader.Point.Connection == c.ID && d.Reader.Point.Type != site.TypeBool {
						out = append(out, visit{start.Add(b.Offset).Truncate(time.Minute).Add(demoCard), d.Reader.Point})
						break door
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b visit) int { return a.at.Compare(b.at) })
	return out
}

// setInput sets a bool input of the simulator so that it reads on
// (after the input's inversion).
func setInput(srv *modbussim.Server, in *site.Input, on bool) {
	if in == nil {
		return
	}
	v := 0.0
	if on != in.Invert {
		v = 1
	}
	_ = srv.SetPoint(in.Point, v)
}

func inputOn(srv *modbussim.Server, in *site.Input) bool {
	if in == nil {
		return false
	}
	v, err := srv.PointValue(in.Point)
	return err == nil && (v != 0) != in.Invert
}

// onConn reports whether an input is wired to connection c.
func onConn(in *site.Input, c *site.Connection) bool {
	return in != nil && in.Point.Connection == c.ID
}

// startSimPanel presets the doors and areas of site s whose inputs are on
// the simulated connection c, and plays the alarm panel of its areas
// until ctx is done.
func startSimPanel(ctx context.Context, s *site.Site, c *site.Connection, srv *modbussim.Server, clock control.Clock, logger *slog.Logger) {
	for _, d := range s.Doors {
		if onConn(d.Contact, c) {
			setInput(srv, d.Contact, false) // closed
			setInput(srv, d.ContactB, false)
		}
		if onConn(d.Deadbolt, c) {
			setInput(srv, d.Deadbolt, true) // locked
		}
	}
	var areas []*site.Area
	for _, a := range s.Areas {
		if onConn(a.Armed, c) && a.Authorisation != nil && a.Authorisation.Connection == c.ID {
			setInput(srv, a.Armed, true)
			areas = append(areas, a)
		}
	}
	cards := visits(s, c, clock.Now())
	if len(areas) == 0 && len(cards) == 0 {
		return
	}
	armAt := map[*site.Area]time.Time{}
	open := func(a *site.Area) bool {
		for _, d := range a.Doors {
			if onConn(d.Contact, c) && inputOn(srv, d.Contact) {
				return true
			}
		}
		return false
	}
	go func() { // stops with ctx, as the simulators do
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := clock.Now()
			for len(cards) > 0 && !now.Before(cards[0].at) {
				n, err := srv.PointValue(cards[0].reader)
				if err == nil {
					_ = srv.SetPoint(cards[0].reader, n+1)
					logger.Info("simulated card shown", "site", s.ID, "reader", cards[0].reader.ID)
				}
				cards = cards[1:]
			}
			for _, a := range areas {
				auth, err := srv.PointValue(a.Authorisation)
				if err != nil {
					continue
				}
				armed := inputOn(srv, a.Armed)
				switch {
				case auth == a.AuthorisedValue.Num:
					delete(armAt, a)
					if armed {
						setInput(srv, a.Armed, false)
						logger.Info("simulated panel: area disarmed", "site", s.ID, "area", a.ID)
					}
				case !armed && armAt[a].IsZero():
					armAt[a] = now.Add(a.ExitDelay)
				case !armed && !now.Before(armAt[a]):
					if open(a) {
						continue // a real panel will not arm over an open door
					}
					setInput(srv, a.Armed, true)
					delete(armAt, a)
					logger.Info("simulated panel: area armed", "site", s.ID, "area", a.ID)
				}
			}
		}
	}()
}
