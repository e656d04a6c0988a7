package energy

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// SpaceDay is one space's line of the open data export for one local
// day. It holds no personal data: no organiser, card holder or booking
// id, only the site's and space's own ids and name and counts.
//
// Hours are real elapsed hours, rounded to 4 decimals. InUseHours,
// NoShows and Late are nil for a space without no-show detection: the
// gateway gathers no evidence of use there, so they are unknown, not 0.
type SpaceDay struct {
	Site  string `json:"site"`
	Space string `json:"space"`
	Name  string `json:"name"`
	// Date is the local date, YYYY-MM-DD.
	Date string `json:"date"`
	// Hours is the length of the day counted: 24, 23 or 25 on a day of
	// daylight saving change, less where the export's range cuts it.
	Hours float64 `json:"hours"`
	// BookedHours is the union of the active bookings of the space's
	// resources.
	BookedHours float64 `json:"booked_hours"`
	// InUseHours is the booked time the evidence says was used: every
	// booking that was not judged a no-show counts whole; a no-show
	// counts nothing, and one that evidence brought back later (an
	// in_use event) counts from then to its end.
	InUseHours *float64 `json:"in_use_hours"`
	// NoShows counts the bookings starting on the day judged no-shows
	// that no evidence brought back; Late those that evidence did.
	NoShows *int `json:"no_shows"`
	Late    *int `json:"late_arrivals"`
	// ComfortHours is the time the space's heating points were at their
	// occupied value in the plan; LightingHours the same for lighting.
	ComfortHours  float64 `json:"comfort_hours"`
	LightingHours float64 `json:"lighting_hours"`
}

// DailyOpenData computes the open data export of spec's site over [from,
// to): one line per space of the spec per local day that overlaps the
// range, by date and then in spec order.
//
// plan is as for WeekReport. bookings are the site's bookings after
// booking.Merge (superseded and cancelled ones do not count; bookings of
// other resources are ignored). noShows and inUse are the journal's
// no_show and in_use events (events.Query with those kinds, from a day
// before from); events of other sites and spaces are ignored. The export
// judges bookings as the no-show report does: a booking's last no_show
// event within its time, and the first in_use event stored after it.
// Bookings still before their no-show deadline count as in use, so
// export only days that are over.
func DailyOpenData(spec *Spec, plan schedule.PlanSource, bookings []booking.Booking, noShows, inUse []events.Event, from, to time.Time) ([]SpaceDay, error) {
	for _, l := range []struct {
		kind events.Kind
		evs  []events.Event
	}{{events.NoShow, noShows}, {events.InUse, inUse}} {
		for _, e := range l.evs {
			if e.Kind != l.kind {
				return nil, fmt.Errorf("energy: open data: event %d of kind %q given as a %s event", e.ID, e.Kind, l.kind)
			}
		}
	}
	c, err := newCounter(spec, plan, from, to)
	if err != nil {
		return nil, err
	}
	loc := spec.location()
	lo, hi := from.UnixNano(), to.UnixNano()

	type evidence struct {
		booked, used spans
		watched      bool
		// noShows and late by local date of the booking's start.
		noShows, late map[site.Date]int
	}
	ev := make([]evidence, len(spec.Spaces))
	for i, ss := range spec.Spaces {
		sp := spec.Site.Space(ss.Space)
		e := &ev[i]
		e.watched = sp.NoShow != nil
		e.noShows, e.late = map[site.Date]int{}, map[site.Date]int{}
		// The space's events by booking, so that a season of bookings
		// does not scan every event for each.
		nsOf, inUseOf := byBooking(noShows, spec.Site.ID, sp.ID), byBooking(inUse, spec.Site.ID, sp.ID)
		var booked, used spans
		for _, b := range bookings {
			if !b.Status.Active() || !b.End.After(b.Start) || !slices.Contains(sp.Resources, b.Resource) {
				continue
			}
			// Clipped as times first: UnixNano of a time far outside
			// the range (a zero start) overflows.
			start, end := later(b.Start, from), earlier(b.End, to)
			if !end.After(start) {
				continue
			}
			s := span{start.UnixNano(), end.UnixNano()}
			booked = append(booked, s)
			if !e.watched {
				continue
			}
			ref := b.String()
			switch o, back := judge(nsOf[ref], inUseOf[ref], b); o {
			case outcomeShown:
				used = append(used, s)
			case outcomeNoShow:
				e.noShows[site.DateOf(b.Start.In(loc))]++
			case outcomeLate:
				e.late[site.DateOf(b.Start.In(loc))]++
				used = append(used, span{later(back, start).UnixNano(), s.b})
			}
		}
		e.booked, e.used = union(booked).clip(lo, hi), union(used).clip(lo, hi)
	}

	var out []SpaceDay
	for d := site.DateOf(from.In(loc)); ; d = d.AddDays(1) {
		ds, de := midnight(d, loc), midnight(d.AddDays(1), loc)
		if !ds.Before(to) {
			break
		}
		a, b := later(ds, from).UnixNano(), earlier(de, to).UnixNano()
		for i, ss := range spec.Spaces {
			e := &ev[i]
			r := SpaceDay{
				Site: spec.Site.ID, Space: ss.Space, Name: spec.Site.Space(ss.Space).Name, Date: d.String(),
				Hours:         hours(time.Duration(b - a)),
				BookedHours:   hours(e.booked.within(a, b)),
				ComfortHours:  hours(c.spaces[i].heat.within(a, b)),
				LightingHours: hours(c.spaces[i].light.within(a, b)),
			}
			if e.watched {
				used := hours(e.used.within(a, b))
				// A booking's no-show counts on the day it starts.
				ns, late := e.noShows[d], e.late[d]
				r.InUseHours, r.NoShows, r.Late = &used, &ns, &late
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// byBooking groups the events of one site and space by their booking.
func byBooking(evs []events.Event, siteID, spaceID string) map[string][]events.Event {
	out := map[string][]events.Event{}
	for _, e := range evs {
		if e.Site == siteID && e.Space == spaceID && e.Booking != "" {
			out[e.Booking] = append(out[e.Booking], e)
		}
	}
	return out
}

type outcome int

const (
	outcomeShown outcome = iota
	outcomeNoShow
	outcomeLate
)

// stored orders events as the journal stored them: by id, and by time
// for events without one.
func stored(a, b events.Event) int {
	if a.ID != 0 && b.ID != 0 {
		return cmp.Compare(a.ID, b.ID)
	}
	return a.Time.Compare(b.Time)
}

// judge returns what the events of one booking say of it, as the no-show
// report judges: its last stored no_show event stamped within the
// booking (a booking judged again after it moved has an older event at
// its old times), then the first in_use event stored after that. An
// in_use event stamped before the no-show (a delayed reading of evidence
// from before the deadline) makes the booking shown; a later one makes
// it late, in use from the in_use event's time.
func judge(noShows, inUse []events.Event, b booking.Booking) (outcome, time.Time) {
	var ns *events.Event
	for i, e := range noShows {
		if e.Time.Before(b.Start) || e.Time.After(b.End) {
			continue
		}
		if ns == nil || stored(e, *ns) > 0 {
			ns = &noShows[i]
		}
	}
	if ns == nil {
		return outcomeShown, time.Time{}
	}
	var back *events.Event
	for i, e := range inUse {
		if stored(e, *ns) > 0 && (back == nil || stored(e, *back) < 0) {
			back = &inUse[i]
		}
	}
	switch {
	case back == nil:
		return outcomeNoShow, time.Time{}
	case back.Time.Before(ns.Time):
		return outcomeShown, time.Time{}
	}
	return outcomeLate, back.Time
}
