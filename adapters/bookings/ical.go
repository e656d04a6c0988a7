package bookings

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/adapters/bookings/icalendar"
	"github.com/bmsgw/bmsgw/internal/booking"
)

// decodeICal reads an iCalendar feed and expands its events for the
// window. An event without a resource is reported and skipped.
func (s *Source) decodeICal(body []byte, from, to time.Time) (decoded, error) {
	cal, err := icalendar.Parse(bytes.NewReader(body))
	if err != nil {
		return decoded{}, fmt.Errorf("icalendar: %w", err)
	}
	c := newCollector(s.opts.ID, from, to)
	floating := s.opts.Location
	if tz := cal.XWRTimezone(); tz != "" {
		// The calendar's own zone for floating times is more specific than
		// the site's.
		if loc, err := time.LoadLocation(tz); err == nil {
			floating = loc
		} else {
			c.warn("X-WR-TIMEZONE %q is not a known time zone; floating times are in %s", tz, floating)
		}
	}
	occs, err := cal.Expand(from, to, floating)
	if err != nil {
		return decoded{}, fmt.Errorf("icalendar: expand: %w", err)
	}
	for _, p := range cal.Warnings() {
		c.warn("%v", p)
	}
	noResource := map[string]bool{} // by UID: one warning per series, not per occurrence
	for _, o := range occs {
		id := booking.OccurrenceID(o.UID, o.RecurrenceID)
		where := "event " + id
		res := property(o, s.opts.ResourceProperty)
		if res == "" {
			if !noResource[o.UID] {
				noResource[o.UID] = true
				c.warn("event %s: no %s; skipped", o.UID, s.opts.ResourceProperty)
			}
			continue
		}
		if !o.End.After(o.Start) {
			c.warn("%s: ends %s, not after its start %s; skipped", where, o.End.Format(time.RFC3339), o.Start.Format(time.RFC3339))
			continue
		}
		org := property(o, s.opts.OrganiserProperty)
		if org == "" && len(s.opts.PseudonymKey) > 0 && strings.TrimSpace(o.Organizer) != "" {
			org = Pseudonym(s.opts.PseudonymKey, o.Organizer)
		}
		c.add(where, booking.Booking{
			ID:        id,
			Resource:  res,
			Organiser: org,
			Start:     o.Start,
			End:       o.End,
			Status:    icalStatus(o.Status),
		})
	}
	return c.result(), nil
}

// property returns the value of an upper-case property name of o.
func property(o icalendar.Occurrence, name string) string {
	switch name {
	case "LOCATION":
		return strings.TrimSpace(o.Location)
	case "SUMMARY":
		return strings.TrimSpace(o.Summary)
	}
	return strings.TrimSpace(o.Props[name])
}

func icalStatus(s string) booking.Status {
	switch strings.ToUpper(s) {
	case "CANCELLED":
		return booking.Cancelled
	case "TENTATIVE":
		return booking.Tentative
	}
	return booking.Confirmed
}

// Pseudonym returns the pseudonymous organiser id of an organiser value
// (an iCalendar ORGANIZER such as "mailto:anna@example.org", or a name):
// "anon-" and the first 12 hex digits of HMAC-SHA256(key, the value
// trimmed and lower-cased). Without the key the value cannot be
// recovered or confirmed; with it, the booking office can compute the
// pseudonym of a known organiser.
func Pseudonym(key []byte, organiser string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(organiser))))
	return "anon-" + hex.EncodeToString(m.Sum(nil))[:12]
}
