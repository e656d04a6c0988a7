package httpapi

import (
	"maps"
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// SiteInfo is a site as GET /api/sites lists it.
type SiteInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	TimeZone string `json:"time_zone"`
	Spaces   int    `json:"spaces"`
	Points   int    `json:"points"`
	Doors    int    `json:"doors"`
	Areas    int    `json:"areas"`
}

// SpaceInfo is a space as GET /api/sites/{site}/spaces lists it.
type SpaceInfo struct {
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	Kind     string   `json:"kind"`
	Parent   string   `json:"parent,omitempty"`
	Children []string `json:"children"`
	// Resources are the booking system's ids of the space.
	Resources []string `json:"resources"`
	Profile   string   `json:"profile,omitempty"`
	// Points are the points bound to the space, in binding order.
	Points []string `json:"points"`
	Doors  []string `json:"doors"`
	// NoShow reports whether the space's bookings are watched for
	// no-shows.
	NoShow bool `json:"no_show"`
}

// PointInfo is a point as GET /api/sites/{site}/points lists it. Device
// addresses are left out: they are the integrator's business, and the
// mapping file has them.
type PointInfo struct {
	ID          string             `json:"id"`
	Device      string             `json:"device,omitempty"`
	Connection  string             `json:"connection"`
	Description string             `json:"description,omitempty"`
	Type        string             `json:"type"`
	Writable    bool               `json:"writable"`
	Unit        string             `json:"unit,omitempty"`
	Min         *float64           `json:"min,omitempty"`
	Max         *float64           `json:"max,omitempty"`
	Labels      map[string]float64 `json:"labels,omitempty"`
	// Spaces are the spaces bound to the point.
	Spaces []string `json:"spaces"`
}

// PlanChange is one row of the plan: a value a point takes from an
// instant on, and why. It is the row of `bmsgw plan --format json`.
type PlanChange struct {
	// Time is RFC 3339 in the site's zone.
	Time     string       `json:"time"`
	Site     string       `json:"site"`
	Spaces   []string     `json:"spaces"`
	Point    string       `json:"point"`
	Value    float64      `json:"value"`
	Label    string       `json:"label,omitempty"`
	Display  string       `json:"display"`
	Occupied bool         `json:"occupied"`
	Initial  bool         `json:"initial"`
	Reasons  []PlanReason `json:"reasons"`
}

// PlanReason is one cause of a change or window: a booking (Ref is
// "source:id", Organiser the pseudonymous association id), a schedule,
// an exception day (Day names it), a child space, a release (a no-show)
// or an output schedule.
type PlanReason struct {
	Kind      string `json:"kind"`
	Ref       string `json:"ref"`
	Organiser string `json:"organiser,omitempty"`
	Day       string `json:"day,omitempty"`
}

// SpaceWindow is an occupancy window of a space.
type SpaceWindow struct {
	Space   string       `json:"space"`
	Start   time.Time    `json:"start"`
	End     time.Time    `json:"end"`
	Reasons []PlanReason `json:"reasons"`
}

func siteInfo(s *site.Site) SiteInfo {
	return SiteInfo{ID: s.ID, Name: s.Name, TimeZone: zoneName(s.Location), Spaces: len(s.Spaces), Points: len(s.Points),
		Doors: len(s.Doors), Areas: len(s.Areas)}
}

func zoneName(loc *time.Location) string {
	if loc == nil {
		return "UTC"
	}
	return loc.String()
}

func spaceInfo(sp *site.Space) SpaceInfo {
	out := SpaceInfo{ID: sp.ID, Name: sp.Name, Kind: string(sp.Kind), Profile: sp.Profile.ID,
		Children: []string{}, Resources: slices.Clone(sp.Resources), Points: []string{}, Doors: []string{}, NoShow: sp.NoShow != nil}
	if out.Resources == nil {
		out.Resources = []string{}
	}
	if sp.Parent != nil {
		out.Parent = sp.Parent.ID
	}
	for _, c := range sp.Children {
		out.Children = append(out.Children, c.ID)
	}
	for _, b := range sp.Bindings {
		if b.Point != nil && !slices.Contains(out.Points, b.Point.ID) {
			out.Points = append(out.Points, b.Point.ID)
		}
	}
	for _, d := range sp.Doors {
		out.Doors = append(out.Doors, d.ID)
	}
	return out
}

func pointInfos(s *site.Site) []PointInfo {
	bound := map[string][]string{}
	for _, sp := range s.Spaces {
		for _, b := range sp.Bindings {
			if b.Point != nil && !slices.Contains(bound[b.Point.ID], sp.ID) {
				bound[b.Point.ID] = append(bound[b.Point.ID], sp.ID)
			}
		}
	}
	out := make([]PointInfo, 0, len(s.Points))
	for _, id := range s.PointIDs() {
		p := s.Points[id]
		pi := PointInfo{ID: p.ID, Device: p.Device, Connection: p.Connection, Description: p.Description, Type: string(p.Type),
			Writable: p.Writable(), Unit: p.Unit, Min: p.Min, Max: p.Max, Spaces: bound[p.ID]}
		if len(p.Labels) > 0 {
			pi.Labels = maps.Clone(p.Labels)
		}
		if pi.Spaces == nil {
			pi.Spaces = []string{}
		}
		out = append(out, pi)
	}
	return out
}

func reasons(rs []schedule.Reason) []PlanReason {
	out := make([]PlanReason, 0, len(rs))
	for _, r := range rs {
		out = append(out, PlanReason{Kind: string(r.Kind), Ref: r.Ref, Organiser: r.Organiser, Day: r.Day})
	}
	return out
}

// PlanChangeOf converts a change to its row in the API and in
// `bmsgw plan --format json`.
func PlanChangeOf(ch schedule.Change) PlanChange {
	pc := PlanChange{
		Time: ch.At.Format(time.RFC3339), Point: ch.Point.ID,
		Value: ch.Value.Num, Label: ch.Value.Label, Display: ch.Point.Format(ch.Value),
		Occupied: ch.Occupied, Initial: ch.Initial, Spaces: []string{}, Reasons: reasons(ch.Reasons),
	}
	if ch.Site != nil {
		pc.Site = ch.Site.ID
	}
	for _, s := range ch.Spaces {
		pc.Spaces = append(pc.Spaces, s.ID)
	}
	return pc
}

// EnergyReportOf is the API's energy report of a site's ISO week from
// the report lines of internal/energy.
func EnergyReportOf(siteID string, week Week, from, to time.Time, rows []energy.SpaceWeek) EnergyReport {
	rep := EnergyReport{Site: siteID, Week: week.String(), From: from, To: to, Spaces: []EnergySpace{}}
	for _, r := range rows {
		rep.Spaces = append(rep.Spaces, EnergySpace{Space: r.Space, Name: r.Name, ComfortHours: r.ComfortHours, BaselineHours: r.BaselineHours,
			SavedHours: r.SavedHours, HeatingKW: r.HeatingKW, LightingKW: r.LightingKW, SavedHeatingKWh: r.HeatingKWhSaved, SavedLightingKWh: r.LightingKWhSaved})
	}
	t := energy.Total(rows)
	rep.Total = EnergyTotal{ComfortHours: t.ComfortHours, BaselineHours: t.BaselineHours, SavedHours: t.SavedHours,
		SavedHeatingKWh: t.HeatingKWhSaved, SavedLightingKWh: t.LightingKWhSaved}
	return rep
}
