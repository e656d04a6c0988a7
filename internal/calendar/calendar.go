// Package calendar expands base schedules and their exception calendars
// into concrete periods of a site's local time, safely across daylight
// saving time changes.
package calendar

import (
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Period is one concrete period of a schedule: the instants it starts and
// ends, and what put it there.
type Period struct {
	// Start and End bound the period, [Start, End), in the site's location.
	Start, End time.Time
	// Schedule is the id of the schedule the period belongs to.
	Schedule string
	// Calendar is the id of the exception calendar whose day decided the
	// date, or "" when the weekly periods applied.
	Calendar string
	// Day is the name of that exception day, or "".
	Day string
}

// Day is what a schedule does on one date.
type Day struct {
	Date site.Date
	// Hours are the wall-clock periods in force on the date, sorted by
	// start; empty when the schedule is off.
	Hours []site.Period
	// Calendar and Name identify the exception day that decided the date;
	// both are "" when the weekly periods applied.
	Calendar string
	Name     string
}

// Exception reports whether an exception calendar decided the day.
func (d Day) Exception() bool { return d.Calendar != "" }

// DayOf resolves schedule s on date d. The first calendar in
// s.Exceptions with a day covering d decides: a day without hours turns
// the schedule off, a day with hours replaces the weekly periods. Without
// such a day, the weekly periods that include d's weekday apply.
func DayOf(s *site.Schedule, d site.Date) Day {
	for _, cal := range s.Exceptions {
		for i := range cal.Days {
			e := &cal.Days[i]
			if e.Covers(d) {
				hours := slices.Clone(e.Hours)
				sortHours(hours)
				return Day{Date: d, Hours: hours, Calendar: cal.ID, Name: e.Name}
			}
		}
	}
	wd := d.Weekday()
	var hours []site.Period
	for _, w := range s.Weekly {
		if w.Days[wd] {
			hours = append(hours, site.Period{From: w.From, To: w.To})
		}
	}
	sortHours(hours)
	return Day{Date: d, Hours: hours}
}

// sortHours orders periods by start, then end, so the expansion does not
// depend on the order they were declared in.
func sortHours(hours []site.Period) {
	slices.SortFunc(hours, func(a, b site.Period) int {
		if a.From != b.From {
			return int(a.From - b.From)
		}
		return int(a.To - b.To)
	})
}

// Expand returns the periods of schedule s that overlap [from, to), with
// wall-clock times resolved in loc, sorted by start, then end. Periods
// are not clipped to the range: a caller that pads the range by a lead
// time still sees where a period really starts.
func Expand(s *site.Schedule, loc *time.Location, from, to time.Time) []Period {
	if !from.Before(to) {
		return nil
	}
	// A period never starts before midnight of its own date, so the day
	// before from's date is only a guard against unusual zone offsets.
	first := site.DateOf(from.In(loc)).AddDays(-1)
	last := site.DateOf(to.In(loc))
	var out []Period
	for d := first; !last.Before(d); d = d.AddDays(1) {
		day := DayOf(s, d)
		for _, h := range day.Hours {
			start, end := At(d, h.From, loc), At(d, h.To, loc)
			if !start.Before(to) || !end.After(from) || !end.After(start) {
				continue
			}
			out = append(out, Period{Start: start, End: end, Schedule: s.ID, Calendar: day.Calendar, Day: day.Name})
		}
	}
	return out
}

// At returns the instant of wall-clock time c on date d in loc, following
// RFC 5545: a time in the spring-forward gap is read with the offset
// before the gap (so it moves forward by the gap: 02:30 becomes 03:30 on
// 2026-03-29 in Europe/Copenhagen), and a time repeated at fall-back is
// its first occurrence (02:30 CEST, not 02:30 CET, on 2026-10-25). 24:00
// is midnight at the start of the next day. It is site.Clock.On, named
// here for readers of this package.
func At(d site.Date, c site.Clock, loc *time.Location) time.Time {
	return c.On(d, loc)
}
