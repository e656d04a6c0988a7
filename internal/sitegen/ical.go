package sitegen

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/calendar"
	"github.com/bmsgw/bmsgw/internal/site"
)

// vtimezone describes Europe/Copenhagen since 1996 (EU rules).
const vtimezone = `BEGIN:VTIMEZONE
TZID:Europe/Copenhagen
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19810329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19961027T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
`

// dtstamp is fixed so the feed is the same on every run.
const dtstamp = "20260801T000000Z"

// Feed returns the booking feed of every series as one iCalendar file, as
// the municipality's booking system publishes it: one VEVENT per series
// with RRULE:FREQ=WEEKLY;UNTIL=..., DTSTART and DTEND in
// TZID=Europe/Copenhagen, LOCATION holding the resource id,
// X-ASSOCIATION-ID the pseudonymous organiser, EXDATE for left-out
// dates, and one VEVENT with RECURRENCE-ID per moved or cancelled
// occurrence.
func (d *Dataset) Feed() []byte {
	var buf bytes.Buffer
	// Writing to a bytes.Buffer does not fail.
	_ = d.WriteFeed(&buf)
	return buf.Bytes()
}

// WriteFeed writes the feed that Feed returns to w.
func (d *Dataset) WriteFeed(w io.Writer) error {
	bw := bufio.NewWriter(w)
	f := &feedWriter{w: bw, loc: d.Location}
	f.raw("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bmsgw//sitegen//EN\r\nCALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n")
	f.raw(strings.ReplaceAll(vtimezone, "\n", "\r\n"))
	for i := range d.Series {
		f.series(&d.Series[i])
	}
	f.raw("END:VCALENDAR\r\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write booking feed: %w", err)
	}
	return nil
}

type feedWriter struct {
	w   *bufio.Writer
	loc *time.Location
}

// raw writes s. A bufio.Writer keeps its first error and Flush returns
// it, so WriteFeed checks once at the end.
func (f *feedWriter) raw(s string) { _, _ = f.w.WriteString(s) }

// line writes one content line, folded at 75 octets as RFC 5545 3.1
// requires, never inside a UTF-8 sequence.
func (f *feedWriter) line(s string) {
	limit := 75
	for len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		f.raw(s[:cut])
		f.raw("\r\n ")
		s = s[cut:]
		// The leading space of a continuation line counts.
		limit = 74
	}
	f.raw(s)
	f.raw("\r\n")
}

func (f *feedWriter) local(d site.Date, c site.Clock) string {
	return calendar.At(d, c, f.loc).Format("20060102T150405")
}

func (f *feedWriter) series(sr *Series) {
	status := "CONFIRMED"
	if sr.Status == booking.Tentative {
		status = "TENTATIVE"
	}
	end := calendar.At(sr.First, sr.Start, f.loc).Add(sr.Duration)
	f.raw("BEGIN:VEVENT\r\n")
	f.line("UID:" + sr.UID)
	f.line("DTSTAMP:" + dtstamp)
	f.line("DTSTART;TZID=Europe/Copenhagen:" + f.local(sr.First, sr.Start))
	f.line("DTEND;TZID=Europe/Copenhagen:" + end.In(f.loc).Format("20060102T150405"))
	// UNTIL is in UTC when DTSTART has a TZID (RFC 5545 3.3.10) and is
	// the start of the last occurrence.
	f.line("RRULE:FREQ=WEEKLY;UNTIL=" + calendar.At(sr.Until, sr.Start, f.loc).UTC().Format("20060102T150405Z"))
	if len(sr.ExDates) > 0 {
		var b strings.Builder
		b.WriteString("EXDATE;TZID=Europe/Copenhagen:")
		for i, d := range sr.ExDates {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.local(d, sr.Start))
		}
		f.line(b.String())
	}
	f.common(sr, status)
	f.raw("END:VEVENT\r\n")
	for _, o := range sr.Overrides {
		ostatus := status
		if o.Cancelled {
			ostatus = "CANCELLED"
		}
		start := calendar.At(o.Date, o.Start, f.loc)
		f.raw("BEGIN:VEVENT\r\n")
		f.line("UID:" + sr.UID)
		f.line("DTSTAMP:" + dtstamp)
		f.line("RECURRENCE-ID;TZID=Europe/Copenhagen:" + f.local(o.Date, sr.Start))
		f.line("DTSTART;TZID=Europe/Copenhagen:" + start.Format("20060102T150405"))
		f.line("DTEND;TZID=Europe/Copenhagen:" + start.Add(o.Duration).In(f.loc).Format("20060102T150405"))
		f.line("SEQUENCE:1")
		f.common(sr, ostatus)
		f.raw("END:VEVENT\r\n")
	}
}

func (f *feedWriter) common(sr *Series, status string) {
	f.line("SUMMARY:" + escapeText(sr.Summary))
	f.line("LOCATION:" + escapeText(sr.Resource))
	f.line("X-ASSOCIATION-ID:" + escapeText(sr.Organiser))
	f.line("STATUS:" + status)
}

var textEscaper = strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`)

// escapeText escapes a TEXT value (RFC 5545 3.3.11).
func escapeText(s string) string { return textEscaper.Replace(s) }
