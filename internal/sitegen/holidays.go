package sitegen

import (
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// easter returns Easter Sunday of year (Gregorian calendar), by the
// anonymous Gregorian algorithm (Meeus/Jones/Butcher).
func easter(year int) site.Date {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return site.Date{Year: year, Month: time.Month(month), Day: day}
}

func oneDay(d site.Date, name string) site.ExceptionDay {
	return site.ExceptionDay{From: d, To: d, Name: name}
}

// publicHolidays returns the Danish public holidays, plus Christmas Eve
// and New Year's Eve on which schools and most halls close, of the years
// from..to. Store Bededag is not a holiday since 2024.
func publicHolidays(from, to int) *site.Calendar {
	cal := &site.Calendar{ID: "public_holidays"}
	for y := from; y <= to; y++ {
		e := easter(y)
		cal.Days = append(cal.Days,
			oneDay(site.Date{Year: y, Month: time.January, Day: 1}, "Nytårsdag"),
			oneDay(e.AddDays(-3), "Skærtorsdag"),
			oneDay(e.AddDays(-2), "Langfredag"),
			oneDay(e, "Påskedag"),
			oneDay(e.AddDays(1), "2. påskedag"),
			oneDay(e.AddDays(39), "Kristi himmelfartsdag"),
			oneDay(e.AddDays(49), "Pinsedag"),
			oneDay(e.AddDays(50), "2. pinsedag"),
			oneDay(site.Date{Year: y, Month: time.June, Day: 5}, "Grundlovsdag"),
			oneDay(site.Date{Year: y, Month: time.December, Day: 24}, "Juleaftensdag"),
			oneDay(site.Date{Year: y, Month: time.December, Day: 25}, "Juledag"),
			oneDay(site.Date{Year: y, Month: time.December, Day: 26}, "2. juledag"),
			oneDay(site.Date{Year: y, Month: time.December, Day: 31}, "Nytårsaftensdag"),
		)
	}
	return cal
}

// isoWeekMonday returns the Monday of ISO week w of year.
func isoWeekMonday(year, w int) site.Date {
	// 4 January is always in week 1.
	jan4 := site.Date{Year: year, Month: time.January, Day: 4}
	wd := int(jan4.Weekday()+6) % 7 // Monday = 0
	return jan4.AddDays(-wd + 7*(w-1))
}

// schoolHolidays returns the school holidays of the school year starting
// in August of year y, after the pattern Copenhagen uses: autumn holiday
// in week 42, Christmas from the 19th December to the 3rd January, winter
// holiday in week 7, Easter from the Saturday before Palm Sunday, and the
// Friday after Ascension Day.
func schoolHolidays(y int) *site.Calendar {
	autumn := isoWeekMonday(y, 42)
	winter := isoWeekMonday(y+1, 7)
	e := easter(y + 1)
	return &site.Calendar{ID: "school_holidays", Days: []site.ExceptionDay{
		{From: autumn.AddDays(-2), To: autumn.AddDays(6), Name: "Efterårsferie"},
		{From: site.Date{Year: y, Month: time.December, Day: 19}, To: site.Date{Year: y + 1, Month: time.January, Day: 3}, Name: "Juleferie"},
		{From: winter.AddDays(-2), To: winter.AddDays(6), Name: "Vinterferie"},
		{From: e.AddDays(-8), To: e.AddDays(1), Name: "Påskeferie"},
		oneDay(e.AddDays(40), "Fredag efter Kristi himmelfart"),
	}}
}
