package bookings

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
)

// maxWarnings caps the entry problems kept in a Status; a feed with a
// broken export can have thousands.
const maxWarnings = 20

// decoded is a feed decoded for one window.
type decoded struct {
	// bookings overlap the window, carry the source id, have unique ids
	// and are sorted.
	bookings []booking.Booking
	// warnings describe skipped entries and other recoverable problems.
	warnings []string
}

// decodeFunc decodes a whole feed body for the window [from, to). An error
// means the feed as a whole is unusable; problems with single entries are
// warnings and the entries are skipped.
type decodeFunc func(body []byte, from, to time.Time) (decoded, error)

// rawEntry is one CSV row or JSON object, before validation.
type rawEntry struct {
	id, resource, organiser, start, end, status string
}

// collector gathers the bookings of one feed: it drops duplicates and
// entries outside the window and caps the warnings.
type collector struct {
	source   string
	from, to time.Time
	seen     map[string]string // id -> where it was first seen
	out      []booking.Booking
	warnings []string
	dropped  int
}

func newCollector(source string, from, to time.Time) *collector {
	return &collector{source: source, from: from, to: to, seen: map[string]string{}}
}

func (c *collector) warn(format string, args ...any) {
	if len(c.warnings) < maxWarnings {
		c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
		return
	}
	c.dropped++
}

// add keeps b unless its id was seen before or it lies outside the window;
// where locates the entry for messages ("line 7").
func (c *collector) add(where string, b booking.Booking) {
	if first, dup := c.seen[b.ID]; dup {
		c.warn("%s: duplicate id %q (first at %s); skipped", where, b.ID, first)
		return
	}
	c.seen[b.ID] = where
	if !overlaps(b, c.from, c.to) {
		return
	}
	b.Source = c.source
	c.out = append(c.out, b)
}

func (c *collector) result() decoded {
	booking.SortBookings(c.out)
	w := c.warnings
	if c.dropped > 0 {
		w = append(w, fmt.Sprintf("and %d more problems", c.dropped))
	}
	return decoded{bookings: c.out, warnings: w}
}

// overlaps reports whether b overlaps [from, to).
func overlaps(b booking.Booking, from, to time.Time) bool {
	return b.End.After(from) && b.Start.Before(to)
}

// entry validates a CSV row or JSON object. Its errors never quote the
// organiser, which may be personal data.
func (s *Source) entry(e rawEntry) (booking.Booking, error) {
	var errs []error
	if e.id == "" {
		errs = append(errs, errors.New("no id"))
	}
	if e.resource == "" {
		errs = append(errs, errors.New("no resource"))
	}
	start, err := parseTime(e.start, s.opts.Location)
	if err != nil {
		errs = append(errs, fmt.Errorf("start: %w", err))
	}
	end, err2 := parseTime(e.end, s.opts.Location)
	if err2 != nil {
		errs = append(errs, fmt.Errorf("end: %w", err2))
	}
	if err == nil && err2 == nil && !end.After(start) {
		errs = append(errs, fmt.Errorf("end %s is not after start %s", e.end, e.start))
	}
	st, err := parseStatus(e.status)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return booking.Booking{}, joinErrors(errs)
	}
	org := e.organiser
	if s.opts.PseudonymiseOrganiser && org != "" {
		org = Pseudonym(s.opts.PseudonymKey, org)
	}
	return booking.Booking{ID: e.id, Resource: e.resource, Organiser: org, Start: start, End: end, Status: st}, nil
}

// joinErrors renders several entry problems on one line.
func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// localLayouts are the accepted forms of a local time, in Options.Location.
var localLayouts = []string{
	"2006-01-02 15:04",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02T15:04:05",
}

// parseTime reads an RFC 3339 time or a local time in loc. A local time in
// a DST gap or overlap resolves as time.Date documents.
func parseTime(v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, errors.New("missing")
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor \"2006-01-02 15:04\"", v)
}

// parseStatus maps a feed's status; empty means confirmed.
func parseStatus(v string) (booking.Status, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "confirmed":
		return booking.Confirmed, nil
	case "tentative":
		return booking.Tentative, nil
	case "cancelled", "canceled":
		return booking.Cancelled, nil
	}
	return "", fmt.Errorf("status %q: want confirmed, tentative or cancelled", v)
}
