package sitegen

import (
	"fmt"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/calendar"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Series is one weekly booking series: an association's standing slot in
// a space for (most of) the season.
type Series struct {
	// UID is the iCalendar UID; occurrence ids are built from it with
	// booking.OccurrenceID.
	UID string
	// Site is the id of the school.
	Site string
	// Resource is the booking system's id of the space.
	Resource string
	// Organiser is a pseudonymous association id.
	Organiser string
	// Summary names the activity; it holds no personal data.
	Summary string
	// Status is confirmed or tentative.
	Status booking.Status
	// Start and Duration are the wall-clock start and exact length of
	// each occurrence, on the weekday of First.
	Start    site.Clock
	Duration time.Duration
	// First is the date of the first occurrence; Until is the date of
	// the last one.
	First, Until site.Date
	// ExDates are the dates of occurrences that are left out (holidays,
	// cancelled evenings), sorted.
	ExDates []site.Date
	// Overrides change single occurrences, sorted by date.
	Overrides []Override
}

// Override changes one occurrence of a series (an iCalendar VEVENT with a
// RECURRENCE-ID): it moves it or cancels it.
type Override struct {
	// Date is the original date of the occurrence.
	Date site.Date
	// Start and Duration are its new wall-clock start and length.
	Start    site.Clock
	Duration time.Duration
	// Cancelled occurrences stay in the feed with STATUS:CANCELLED.
	Cancelled bool
}

// dayWindow is the time of day a kind of space is lent out.
type dayWindow struct{ from, to site.Clock }

// demand is how a kind of space is booked: when, and how likely each
// free slot is taken by a weekly series.
type demand struct {
	weekday, weekend dayWindow
	p                float64
	activities       []string
}

var demands = map[string]demand{
	"room":    {dayWindow{17 * 60, 22 * 60}, dayWindow{10 * 60, 16 * 60}, 0.22, []string{"Skak", "Sprogundervisning", "Lektiehjælp", "Bridge", "Foredrag", "Spejdermøde"}},
	"special": {dayWindow{17 * 60, 22 * 60}, dayWindow{10 * 60, 16 * 60}, 0.25, []string{"Kor", "Keramik", "Madlavning", "Træværksted", "Band"}},
	"gym":     {dayWindow{16 * 60, 22 * 60}, dayWindow{9 * 60, 18 * 60}, 0.85, []string{"Volleyball", "Badminton", "Basketball", "Håndbold", "Gymnastik", "Floorball", "Karate"}},
	"hall":    {dayWindow{16 * 60, 22 * 60}, dayWindow{9 * 60, 18 * 60}, 0.6, []string{"Dans", "Teater", "Zumba", "Yoga", "Koncert"}},
	"pitch":   {dayWindow{16 * 60, 21 * 60}, dayWindow{9 * 60, 17 * 60}, 0.55, []string{"Fodbold", "Fodbold U12", "Fodbold senior", "Amerikansk fodbold"}},
}

var durations = []time.Duration{time.Hour, 90 * time.Minute, 90 * time.Minute, 2 * time.Hour}

// bookings generates the weekly series of school s: every bookable space
// is packed day by day with slots of one to two hours, and each slot is
// taken by a series with the space's probability.
func (g *generator) bookings(s *site.Site, school int) {
	closed := closedDates(s.Schedules["school_day"])
	n := 0
	for _, sp := range s.Spaces {
		if len(sp.Resources) == 0 {
			continue
		}
		d := demands[g.demand[sp]]
		for wd := time.Sunday; wd <= time.Saturday; wd++ {
			win := d.weekday
			if wd == time.Saturday || wd == time.Sunday {
				win = d.weekend
			}
			for t := win.from; ; {
				dur := durations[g.rng.IntN(len(durations))]
				if t+site.Clock(dur/time.Minute) > win.to {
					break
				}
				if g.rng.Float64() < d.p {
					n++
					g.ds.Series = append(g.ds.Series, g.series(s, sp, d, n, wd, t, dur, closed))
				}
				t += site.Clock(dur/time.Minute) + site.Clock(15*g.rng.IntN(2))
			}
		}
	}
}

// closedDates are the dates leisure bookings skip: public holidays and
// the Christmas holiday, when the schools are locked.
func closedDates(sched *site.Schedule) map[site.Date]bool {
	closed := make(map[site.Date]bool)
	for _, cal := range sched.Exceptions {
		for _, e := range cal.Days {
			if len(e.Hours) > 0 || (cal.ID != "public_holidays" && e.Name != "Juleferie") {
				continue
			}
			for d := e.From; !e.To.Before(d); d = d.AddDays(1) {
				closed[d] = true
			}
		}
	}
	return closed
}

func (g *generator) series(s *site.Site, sp *site.Space, d demand, n int, wd time.Weekday, start site.Clock, dur time.Duration, closed map[site.Date]bool) Series {
	status := booking.Confirmed
	if g.rng.Float64() < 0.03 {
		status = booking.Tentative
	}
	sr := Series{
		UID:       fmt.Sprintf("%s-%05d@sitegen.bmsgw", s.ID, n),
		Site:      s.ID,
		Resource:  sp.Resources[0],
		Organiser: g.orgs[g.rng.IntN(len(g.orgs))],
		Summary:   d.activities[g.rng.IntN(len(d.activities))],
		Status:    status,
		Start:     start,
		Duration:  dur,
	}
	// Most series start in the first weeks of the season and run to its
	// end; some stop at Christmas.
	first := g.cfg.SeasonStart.AddDays(7 * g.rng.IntN(3))
	for first.Weekday() != wd {
		first = first.AddDays(1)
	}
	until := g.cfg.SeasonEnd.AddDays(-7 * g.rng.IntN(3))
	if g.rng.Float64() < 0.1 {
		until = site.Date{Year: g.cfg.SeasonStart.Year, Month: time.December, Day: 18}
	}
	for until.Weekday() != wd {
		until = until.AddDays(-1)
	}
	sr.First, sr.Until = first, until
	for day := first; !until.Before(day); day = day.AddDays(7) {
		switch r := g.rng.Float64(); {
		case closed[day]:
			sr.ExDates = append(sr.ExDates, day)
		case r < 0.03:
			sr.ExDates = append(sr.ExDates, day)
		case r < 0.04:
			sr.Overrides = append(sr.Overrides, Override{Date: day, Start: start, Duration: dur, Cancelled: true})
		case r < 0.06:
			// Moved half an hour later, or made longer.
			o := Override{Date: day, Start: start + 30, Duration: dur}
			if start+30+site.Clock(dur/time.Minute) > 24*60 || g.rng.IntN(2) == 0 {
				o = Override{Date: day, Start: start, Duration: dur + 30*time.Minute}
			}
			sr.Overrides = append(sr.Overrides, o)
		}
	}
	return sr
}

// Occurrences returns the expanded bookings of the series in Source src,
// in date order: every weekly occurrence from First to Until except the
// ExDates, with Overrides applied; a cancelled override is kept with
// status cancelled. Occurrence ids are the UID and the original start,
// as booking.OccurrenceID makes them. End is Start plus the exact
// duration, as RFC 5545 has it for a recurrence with DTEND.
func (sr *Series) Occurrences(src string, loc *time.Location) []booking.Booking {
	return sr.appendOccurrences(nil, src, loc)
}

func (sr *Series) appendOccurrences(out []booking.Booking, src string, loc *time.Location) []booking.Booking {
	ex, ov := 0, 0
	for d := sr.First; !sr.Until.Before(d); d = d.AddDays(7) {
		for ex < len(sr.ExDates) && sr.ExDates[ex].Before(d) {
			ex++
		}
		if ex < len(sr.ExDates) && sr.ExDates[ex] == d {
			continue
		}
		orig := calendar.At(d, sr.Start, loc)
		b := booking.Booking{
			Source:    src,
			ID:        booking.OccurrenceID(sr.UID, orig),
			Resource:  sr.Resource,
			Organiser: sr.Organiser,
			Start:     orig,
			End:       orig.Add(sr.Duration),
			Status:    sr.Status,
		}
		for ov < len(sr.Overrides) && sr.Overrides[ov].Date.Before(d) {
			ov++
		}
		if ov < len(sr.Overrides) && sr.Overrides[ov].Date == d {
			o := sr.Overrides[ov]
			b.Start = calendar.At(d, o.Start, loc)
			b.End = b.Start.Add(o.Duration)
			if o.Cancelled {
				b.Status = booking.Cancelled
			}
		}
		out = append(out, b)
	}
	return out
}

// count returns the number of occurrences of the series.
func (sr *Series) count() int {
	weeks := 0
	for d := sr.First; !sr.Until.Before(d); d = d.AddDays(7) {
		weeks++
	}
	return weeks - len(sr.ExDates)
}

// Bookings returns the expanded bookings of every series, series by
// series, as a feed reader would produce them from Feed. Benchmarks use
// it to compile without parsing.
func (d *Dataset) Bookings() []booking.Booking {
	n := 0
	for i := range d.Series {
		n += d.Series[i].count()
	}
	out := make([]booking.Booking, 0, n)
	for i := range d.Series {
		out = d.Series[i].appendOccurrences(out, d.Source, d.Location)
	}
	return out
}
