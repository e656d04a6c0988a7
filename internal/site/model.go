// Package site is the validated, resolved model of one building site: its
// points, spaces, occupancy profiles, base schedules and exception
// calendars. It is pure data, built by internal/config from mapping files
// and read by the schedule compiler and the control engine.
package site

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Site is one building (a school) with everything the gateway controls there.
type Site struct {
	ID   string
	Name string
	// Location is the site's IANA time zone; all wall-clock times of the
	// site (schedules, calendars, CSV bookings without offset) are in it.
	Location *time.Location
	// Sources are the booking sources feeding this site, highest
	// precedence first.
	Sources []SourceRef
	// Connections by id.
	Connections map[string]*Connection
	// Points by id. Template points are named "<device>.<point>".
	Points map[string]*Point
	// Spaces in declaration order; parents may come after children.
	Spaces []*Space
	// Schedules and Calendars by id.
	Schedules map[string]*Schedule
	Calendars map[string]*Calendar
	// Doors, Detectors and Areas in declaration order.
	Doors     []*Door
	Detectors []*Detector
	Areas     []*Area
	// Round is the virtual patrol round; nil when the site has none.
	Round *Round
	// Access is the site's access rights from bookings; nil for none.
	Access *AccessRights
	// KeepCardHolder allows storing card numbers with events.
	KeepCardHolder bool
	// Energy declares the energy report; nil for none.
	Energy *Energy
	// File is the mapping file the site was loaded from.
	File string

	// pointIDs and sortedPoints are the point ids, sorted, and their
	// points, as KeepPointIDs found them.
	pointIDs     []string
	sortedPoints []*Point
}

// SourceRef binds a booking source to a site with a precedence.
type SourceRef struct {
	Source string
	// Precedence orders sources when their bookings of one resource
	// overlap: the higher precedence wins and the conflict is reported.
	Precedence int
}

// KeepPointIDs sorts the point ids once, for PointIDs and SortedPoints:
// loaders call it when the site is complete. The engine takes a site's
// points in id order, and sorting 10,000 ids was most of its start
// before the first request.
func (s *Site) KeepPointIDs() {
	s.pointIDs, s.sortedPoints = nil, nil
	ids := s.PointIDs()
	pts := make([]*Point, len(ids))
	for i, id := range ids {
		pts[i] = s.Points[id]
	}
	s.pointIDs, s.sortedPoints = ids, pts
}

// kept reports whether the ids KeepPointIDs kept are still the site's
// points.
func (s *Site) kept() bool {
	if s.pointIDs == nil || len(s.pointIDs) != len(s.Points) {
		return false
	}
	for i, id := range s.pointIDs {
		if s.Points[id] != s.sortedPoints[i] {
			return false
		}
	}
	return true
}

// SortedPoints returns the site's points in id order. The slice is the
// site's when KeepPointIDs kept it and the points are still the same:
// callers must not modify it.
func (s *Site) SortedPoints() []*Point {
	if s.kept() {
		return slices.Clip(s.sortedPoints)
	}
	ids := s.PointIDs()
	pts := make([]*Point, len(ids))
	for i, id := range ids {
		pts[i] = s.Points[id]
	}
	return pts
}

// PointIDs returns the ids of the site's points, sorted. The slice is
// the site's when KeepPointIDs kept them and the points are still the
// same: callers must not modify it.
func (s *Site) PointIDs() []string {
	if s.kept() {
		return slices.Clip(s.pointIDs)
	}
	ids := make([]string, 0, len(s.Points))
	for id := range s.Points {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// SortedConnections returns the site's connections sorted by id.
func (s *Site) SortedConnections() []*Connection {
	ids := make([]string, 0, len(s.Connections))
	for id := range s.Connections {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*Connection, len(ids))
	for i, id := range ids {
		out[i] = s.Connections[id]
	}
	return out
}

// Space looks up a space by id, or nil.
func (s *Site) Space(id string) *Space {
	for _, sp := range s.Spaces {
		if sp.ID == id {
			return sp
		}
	}
	return nil
}

// Space is a bookable or controllable area: a room, gym, pitch or wing.
type Space struct {
	ID   string
	Name string
	Kind SpaceKind
	// Parent is the enclosing space (a wing holding rooms), or nil. A
	// parent is occupied whenever one of its children is.
	Parent   *Space
	Children []*Space
	// Resources are the booking system's ids of this space; a booking of
	// any of them occupies the space.
	Resources []string
	// Profile holds the occupancy timing of the space.
	Profile Profile
	// Schedules are base schedules (school hours) that occupy the space
	// besides bookings.
	Schedules []*Schedule
	// Bindings say what each point of the space is set to.
	Bindings []Binding
	// Doors are the doors that serve the space (Door.Space is this one).
	Doors []*Door
	// Evidence and NoShow declare no-show detection; LightsByCard gates
	// some of the bindings on a card. Each is empty or nil when unused.
	Evidence     []Evidence
	NoShow       *NoShow
	LightsByCard *LightsByCard
}

// SpaceKind classifies spaces for reports; it has no effect on control.
type SpaceKind string

// Space kinds.
const (
	KindRoom      SpaceKind = "room"
	KindGym       SpaceKind = "gym"
	KindHall      SpaceKind = "hall"
	KindPitch     SpaceKind = "pitch"
	KindWing      SpaceKind = "wing"
	KindBuilding  SpaceKind = "building"
	KindOtherKind SpaceKind = "other"
)

// Profile is the occupancy timing of a space.
type Profile struct {
	ID string
	// Lead is how long before a booking the space's points go to their
	// occupied values (pre-heating); a binding may override it.
	Lead time.Duration
	// Lag is how long after a booking they stay there.
	Lag time.Duration
	// MergeGap joins windows separated by less than this, so plant does
	// not cycle off between two bookings.
	MergeGap time.Duration
	// MinWindow extends shorter windows (at their end) to this length.
	MinWindow time.Duration
}

// Binding is what one point takes when its space is occupied and vacant.
type Binding struct {
	Point    *Point
	Occupied Value
	Vacant   Value
	// Lead and Lag are resolved: the binding's own or the profile's.
	Lead time.Duration
	Lag  time.Duration
}

// Schedule is a weekly base schedule with exception calendars.
type Schedule struct {
	ID     string
	Weekly []WeeklyPeriod
	// Exceptions are consulted in order; the first calendar that has an
	// entry for a date decides that date (closed, or its own hours).
	Exceptions []*Calendar
}

// WeeklyPeriod is a period on some weekdays, in local wall-clock time.
type WeeklyPeriod struct {
	Days [7]bool // indexed by time.Weekday
	From Clock
	To   Clock // To > From; 24:00 is allowed
}

// Calendar is a named list of exception days.
type Calendar struct {
	ID   string
	Days []ExceptionDay
}

// ExceptionDay covers the dates From..To inclusive. Without Hours the
// schedule is off on those dates (holidays); with Hours it runs those
// hours instead of the weekly ones (a one-off event).
type ExceptionDay struct {
	From, To Date
	Name     string
	Hours    []Period
}

// Period is a wall-clock period within one day.
type Period struct {
	From, To Clock
}

// Covers reports whether d falls within the exception day range.
func (e ExceptionDay) Covers(d Date) bool {
	return !d.Before(e.From) && !e.To.Before(d)
}

// Clock is a wall-clock time of day in minutes since midnight, 0..1440.
type Clock int

// ParseClock parses "HH:MM" (00:00 to 24:00).
func ParseClock(s string) (Clock, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("time of day %q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("time of day %q is not between 00:00 and 24:00", s)
	}
	return Clock(h*60 + m), nil
}

// String formats the clock as HH:MM.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// On returns the instant of this wall-clock time on date d in loc, as RFC
// 5545 reads local times: a time that does not exist (the spring-forward
// gap) is read with the offset before the gap, so it moves forward by the
// gap; a time that occurs twice (fall-back) is the first occurrence. 24:00
// is midnight of the next day. time.Date leaves the repeated hour's choice
// unspecified (it returns the second one today), hence the work here.
func (c Clock) On(d Date, loc *time.Location) time.Time {
	// wall is the wall-clock reading expressed as if it were UTC; the
	// instant we want is wall minus the zone offset in force then.
	wall := time.Date(d.Year, d.Month, d.Day, int(c)/60, int(c)%60, 0, 0, time.UTC)
	// The offsets a day before and after bracket any single transition:
	// zones do not change offset twice within two days.
	_, before := wall.Add(-24 * time.Hour).In(loc).Zone()
	_, after := wall.Add(24 * time.Hour).In(loc).Zone()
	var best time.Time
	for _, off := range []int{before, after} {
		t := wall.Add(-time.Duration(off) * time.Second).In(loc)
		if sameWall(t, wall) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	if best.IsZero() {
		best = wall.Add(-time.Duration(before) * time.Second).In(loc)
	}
	return best
}

// sameWall reports whether t reads the same wall-clock time as wall
// (which holds a wall-clock reading in UTC).
func sameWall(t, wall time.Time) bool {
	y1, m1, d1 := t.Date()
	y2, m2, d2 := wall.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && t.Hour() == wall.Hour() && t.Minute() == wall.Minute()
}

// Date is a civil date without a time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DateOf returns the civil date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// AddDays returns the date n days later.
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
}

// String formats the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }
