package uaserver

import (
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// BuildInput is what Build turns into a snapshot.
type BuildInput struct {
	Now   time.Time
	Sites []*site.Site
	// Status is the engine's status (Engine.Status).
	Status control.Status
	// Windows returns a space's occupancy windows around Now (the site's
	// schedule.Compiler.Windows); nil shows no windows.
	Windows func(siteID, spaceID string) []schedule.Window
	// Events are recent events in any order; Build keeps the newest
	// EventSlots per space and per site, without card holders.
	Events []events.Event
	// Feeds are the booking sources' health, in the order shown.
	Feeds []control.FeedStatus
}

// Build assembles a snapshot from the engine's status, the schedule's
// windows and recent events. A point appears under every space that
// binds it, and at site level when no space does.
func Build(in BuildInput) *Snapshot {
	snap := &Snapshot{Time: in.Now}
	status := map[string]control.PointStatus{}
	for _, p := range in.Status.Points {
		status[p.Site+"/"+p.Point] = p
	}
	evs := slices.Clone(in.Events)
	slices.SortStableFunc(evs, func(a, b events.Event) int { return b.Time.Compare(a.Time) })
	for _, st := range in.Sites {
		out := Site{ID: st.ID, Name: st.Name}
		bound := map[string]bool{}
		point := func(p *site.Point) (Point, bool) {
			ps, ok := status[st.ID+"/"+p.ID]
			if !ok {
				return Point{}, false
			}
			pt := Point{ID: p.ID, Bool: p.Type == site.TypeBool, Unit: p.Unit, Desired: ps.Desired, Actual: ps.Actual, Source: string(ps.Source), InSync: ps.InSync}
			if ps.Override != nil {
				v := ps.Override.Value
				pt.Override = &v
			}
			return pt, true
		}
		for _, sp := range st.Spaces {
			s := Space{ID: sp.ID, Name: sp.Name}
			if in.Windows != nil {
				occupancy(&s, in.Windows(st.ID, sp.ID), in.Now)
			}
			seen := map[string]bool{}
			for _, b := range sp.Bindings {
				if b.Point == nil || seen[b.Point.ID] {
					continue
				}
				seen[b.Point.ID] = true
				bound[b.Point.ID] = true
				if pt, ok := point(b.Point); ok {
					s.Points = append(s.Points, pt)
				}
			}
			s.Events = latest(evs, st.ID, sp.ID)
			out.Spaces = append(out.Spaces, s)
		}
		for _, id := range st.PointIDs() {
			if !bound[id] {
				if pt, ok := point(st.Points[id]); ok {
					out.Points = append(out.Points, pt)
				}
			}
		}
		out.Events = latest(evs, st.ID, "")
		for _, d := range in.Status.Devices {
			if d.Site == st.ID {
				out.Devices = append(out.Devices, Device{Connection: d.Connection, Device: deviceID(d.Device), Up: d.Up, Since: d.Since, LastError: d.LastError})
			}
		}
		snap.Sites = append(snap.Sites, out)
	}
	snap.Feeds = slices.Clone(in.Feeds)
	return snap
}

// occupancy fills the space's current and next window, organiser and
// source from its windows.
func occupancy(s *Space, ws []schedule.Window, now time.Time) {
	var cur, next *schedule.Window
	for i := range ws {
		w := &ws[i]
		switch {
		case !now.Before(w.Start) && now.Before(w.End):
			cur = w
		case w.Start.After(now) && (next == nil || w.Start.Before(next.Start)):
			next = w
		}
	}
	if cur != nil {
		s.Occupied = true
		s.Current = &Window{Start: cur.Start, End: cur.End}
		if len(cur.Reasons) > 0 {
			s.Source = string(cur.Reasons[0].Kind)
		}
	}
	if next != nil {
		s.Next = &Window{Start: next.Start, End: next.End}
	}
	for _, w := range []*schedule.Window{cur, next} {
		if w == nil {
			continue
		}
		for _, r := range w.Reasons {
			if r.Kind == schedule.ReasonBooking && r.Organiser != "" {
				s.Organiser = r.Organiser
				return
			}
		}
	}
}

// latest returns the newest EventSlots events of a space ("" for
// site-wide ones) from evs sorted newest first.
func latest(evs []events.Event, siteID, spaceID string) []Event {
	var out []Event
	for _, e := range evs {
		if e.Site != siteID || e.Space != spaceID {
			continue
		}
		out = append(out, Event{Time: e.Time, Kind: string(e.Kind), Severity: string(e.Severity), Message: e.Message})
		if len(out) == EventSlots {
			break
		}
	}
	return out
}

// deviceID makes a driver's device name a node id element: drivers name
// devices freely ("127.0.0.1:502/unit 12" for a Modbus unit, "" for a
// whole link), but a "/" would split the node id and an empty one is not
// an id, and either made Check refuse the whole snapshot. The last part
// is the device within its connection ("unit 12"), which the connection
// folder already qualifies.
func deviceID(name string) string {
	if i := strings.LastIndexByte(strings.TrimRight(name, "/"), '/'); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Trim(name, "/")
	if name == "" {
		return "link"
	}
	return name
}
