// Package bookingsim is a simulated central booking system for demos and
// tests: it serves the reference evening of DOMAIN.md section 5 as an
// iCalendar feed, placed relative to a start time so that a first-time
// user sees windows open within minutes.
package bookingsim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Booking is one booking of the simulated evening.
type Booking struct {
	UID, Summary, Resource, Association string
	// Offset from the start time to the booking's start.
	Offset   time.Duration
	Duration time.Duration
}

// Evening is the reference evening, compressed so that it begins a few
// minutes after the gateway starts: the football club's floodlit pitch
// first, then the gym (whose air handler pre-heats an hour ahead), the
// chess club in classroom 12 and the handball club in Ørestad's hall.
var Evening = []Booking{
	{"demo-pitch", "Valby BK fodbold", "valby-pitch-1", "valby-bk", 5 * time.Minute, 2 * time.Hour},
	{"demo-gym", "Valby Volley træning", "valby-gym", "valby-volley", 65 * time.Minute, 2 * time.Hour},
	{"demo-chess", "Valby Skakklub", "valby-room-12", "valby-skak", 35 * time.Minute, 2 * time.Hour},
	{"demo-handball", "Ørestad Håndbold", "oerestad-hall-a", "oerestad-hb", 50 * time.Minute, 3 * time.Hour},
	{"demo-choir", "Ørestad Kor", "oerestad-music", "oerestad-kor", 25 * time.Minute, 150 * time.Minute},
}

// Feed renders the bookings starting from start as an iCalendar feed
// (UTC times, so the feed needs no VTIMEZONE).
func Feed(start time.Time, bs []Booking) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("BEGIN:VCALENDAR")
	w("VERSION:2.0")
	w("PRODID:-//bmsgw//booking system simulator//EN")
	w("X-WR-TIMEZONE:Europe/Copenhagen")
	day := start.UTC().Format("20060102")
	for _, bk := range bs {
		s := start.Add(bk.Offset).UTC().Truncate(time.Minute)
		w("BEGIN:VEVENT")
		w("UID:%s-%s@bookingsim", bk.UID, day)
		w("DTSTAMP:%s", start.UTC().Format("20060102T150405Z"))
		w("SUMMARY:%s", bk.Summary)
		w("LOCATION:%s", bk.Resource)
		w("X-ASSOCIATION-ID:%s", bk.Association)
		w("DTSTART:%s", s.Format("20060102T150405Z"))
		w("DTEND:%s", s.Add(bk.Duration).Format("20060102T150405Z"))
		w("END:VEVENT")
	}
	w("END:VCALENDAR")
	return []byte(b.String())
}

// Handler serves GET /<anything>.ics with the evening relative to start,
// with an ETag so the gateway's conditional GETs get 304s.
func Handler(start time.Time, bs []Booking) http.Handler {
	body := Feed(start, bs)
	etag := fmt.Sprintf(`"%d"`, start.Unix())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, ".ics") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
		_, _ = w.Write(body)
	})
}
