package sitemon

import (
	"slices"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/occupancy"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/site"
)

// SecuritySpec translates a site's doors, detectors and alarm areas for
// internal/security.
func SecuritySpec(s *site.Site) security.Spec {
	var spec security.Spec
	in := func(i *site.Input) *security.Input {
		if i == nil {
			return nil
		}
		return &security.Input{Point: i.Point.ID, Invert: i.Invert}
	}
	for _, a := range s.Areas {
		as := security.AreaSpec{ID: a.ID, Name: a.Name, Armed: in(a.Armed), ExitDelay: a.ExitDelay,
			MismatchAfter: a.MismatchAfter, Night: &security.Night{From: a.Night.From, To: a.Night.To}, Control: security.Panel}
		if a.Control == site.ControlDirect && a.Arm != nil && a.Disarm != nil {
			as.Control = security.Direct
			as.Direct = &security.DirectSpec{Arm: security.Output{Point: a.Arm.ID}, Disarm: security.Output{Point: a.Disarm.ID}, Pulse: a.Pulse}
		}
		spec.Areas = append(spec.Areas, as)
	}
	for _, d := range s.Doors {
		ds := security.DoorSpec{ID: d.ID, Name: d.Name,
			Deadbolt: in(d.Deadbolt), Handle: in(d.Handle), Contact: in(d.Contact), ContactB: in(d.ContactB),
			Unlock: in(d.Unlock), Reader: in(d.Reader),
			HeldOpenAfter: d.HeldOpenAfter, GrantValid: d.GrantValid, LeftUnlockedAfter: d.LeftUnlockedAfter}
		if d.Space != nil {
			ds.Space = d.Space.ID
		}
		if d.Area != nil {
			ds.Area = d.Area.ID
		}
		spec.Doors = append(spec.Doors, ds)
	}
	for _, d := range s.Detectors {
		ds := security.DetectorSpec{ID: d.ID, Kind: security.DetectorKind(d.Kind), Within: d.Within, Above: d.Above}
		if d.Input != nil {
			ds.Point, ds.Invert = d.Input.Point.ID, d.Input.Invert
		}
		if d.InputB != nil {
			ds.PointB = d.InputB.Point.ID
		}
		if d.Area != nil {
			ds.Area = d.Area.ID
		}
		spec.Detectors = append(spec.Detectors, ds)
	}
	return spec
}

// OccupancySpec translates the spaces' evidence, no-show and
// card-enabled lights for internal/occupancy.
func OccupancySpec(s *site.Site) occupancy.Spec {
	var spec occupancy.Spec
	for _, sp := range s.Spaces {
		if len(sp.Evidence) == 0 && sp.NoShow == nil && sp.LightsByCard == nil {
			continue
		}
		ss := occupancy.SpaceSpec{ID: sp.ID}
		for _, e := range sp.Evidence {
			es := occupancy.EvidenceSpec{Above: e.Above, Rise: e.Rise}
			if e.Door != nil {
				es.Door = e.Door.ID
			}
			if e.Point != nil {
				es.Point = e.Point.ID
			}
			ss.Evidence = append(ss.Evidence, es)
		}
		if ns := sp.NoShow; ns != nil {
			before := ns.Before
			ss.NoShow = &occupancy.NoShowSpec{Grace: ns.Grace, Before: &before}
		}
		if l := sp.LightsByCard; l != nil {
			early := l.Early
			ls := &occupancy.LightsSpec{Early: &early}
			for _, d := range l.Doors {
				ls.Doors = append(ls.Doors, d.ID)
			}
			for _, p := range l.Buttons {
				ls.Buttons = append(ls.Buttons, p.ID)
			}
			for _, p := range l.Points {
				ls.Points = append(ls.Points, p.ID)
			}
			if l.WarningBefore > 0 {
				ls.Warning = &occupancy.WarningSpec{Before: l.WarningBefore, Blink: l.WarningBlink}
			}
			ss.LightsByCard = ls
		}
		spec.Spaces = append(spec.Spaces, ss)
	}
	return spec
}

// hasSecurity and hasOccupancy say whether a site needs the logic at all.
func hasSecurity(s *site.Site) bool {
	return len(s.Doors) > 0 || len(s.Areas) > 0 || len(s.Detectors) > 0
}

func hasOccupancy(s *site.Site) bool {
	for _, sp := range s.Spaces {
		if len(sp.Evidence) > 0 || sp.NoShow != nil || sp.LightsByCard != nil {
			return true
		}
	}
	return false
}

// AccessSpec translates a site's access section for internal/access with
// the given target limit: a booking of a space opens the doors of the
// space and of the spaces around it (the wing entrance on the way to a
// classroom). It returns false for a site without access rights.
func AccessSpec(s *site.Site, maxPerGroupDoor int) (access.Spec, bool) {
	a := s.Access
	if a == nil {
		return access.Spec{}, false
	}
	doors := map[string][]string{}
	for _, sp := range s.Spaces {
		for p := sp; p != nil; p = p.Parent {
			for _, d := range p.Doors {
				if !slices.Contains(doors[sp.ID], d.ID) {
					doors[sp.ID] = append(doors[sp.ID], d.ID)
				}
			}
		}
	}
	var spaces []access.SpaceDoors
	for _, sd := range access.SpacesFromSite(s, doors) {
		if len(sd.Resources) > 0 {
			spaces = append(spaces, sd)
		}
	}
	return access.Spec{Site: s.ID, Location: s.Location, MarginBefore: a.MarginBefore, MarginAfter: a.MarginAfter,
		PinSchedule: a.PinSchedule, Groups: a.Groups, Spaces: spaces, MaxPerGroupDoor: maxPerGroupDoor}, true
}

// accessPoints is the door-schedule point mapping of a site.
func accessPoints(s *site.Site) []access.PointMap {
	if s.Access == nil {
		return nil
	}
	var out []access.PointMap
	for _, p := range s.Access.Points {
		out = append(out, access.PointMap{Group: p.Group, Door: p.Door.ID, Point: p.Point.ID})
	}
	return out
}
