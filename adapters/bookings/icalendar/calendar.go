package icalendar

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	ical "github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// Occurrence is one instance of a VEVENT.
type Occurrence struct {
	UID string
	// RecurrenceID is the zero time for a non-recurring event; else the
	// original start of the instance (in its zone), which identifies it
	// even after an override moved it.
	RecurrenceID time.Time
	Sequence     int
	Summary      string
	Location     string
	// Start and End bound the occurrence; End is exclusive. They are in
	// the zone of DTSTART (UTC for "Z" values, the floating zone for
	// floating times). All-day occurrences run from local midnight to
	// local midnight in the floating zone.
	Start, End time.Time
	AllDay     bool
	// Status is "CONFIRMED", "TENTATIVE", "CANCELLED" or "" (as in the
	// file, upper-cased). Instances cancelled by a METHOD:CANCEL object
	// read "CANCELLED".
	Status string
	// Organizer is the raw ORGANIZER value, e.g. "mailto:x@y". It is
	// personal data: the caller pseudonymises it.
	Organizer string
	// Props holds every other single-valued property of the VEVENT by
	// upper-case name (X-*, RESOURCES, CATEGORIES, DESCRIPTION ...), TEXT
	// values unescaped; nil if none. CATEGORIES and RESOURCES lines are
	// joined with commas. ATTENDEE and CONTACT (personal data) and the
	// properties RFC 5545 lets repeat (COMMENT, ATTACH, RELATED-TO,
	// REQUEST-STATUS) are left out. All occurrences of one VEVENT share
	// the map: treat it as read-only.
	Props map[string]string
}

// Problem is a fault in one event that made Parse or Expand skip it, or a
// detail it had to ignore. The rest of the calendar is unaffected.
type Problem struct {
	UID     string // the event's UID, "" if it has none or the problem is outside events
	Line    int    // 1-based line in the stream, 0 if unknown
	Message string
}

// String renders the problem as "line N: event "UID": message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.UID != "" {
		fmt.Fprintf(&b, "event %q: ", p.UID)
	}
	b.WriteString(p.Message)
	return b.String()
}

// Calendar is a parsed iCalendar stream (one or more VCALENDAR objects).
// Its methods are safe for concurrent use.
type Calendar struct {
	xwrTimezone string
	series      []*series

	mu       sync.Mutex
	tz       *tzCache
	problems []Problem
	reported map[Problem]bool
}

// XWRTimezone returns the calendar's X-WR-TIMEZONE (first one found) or "".
// It is not an RFC 5545 property; Google and Outlook use it for the zone
// the calendar is displayed in, which is a sound default for floating times.
func (c *Calendar) XWRTimezone() string { return c.xwrTimezone }

// Warnings lists per-event problems found while parsing and expanding, in
// the order they were found, each once.
func (c *Calendar) Warnings() []Problem {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Problem(nil), c.problems...)
}

func (c *Calendar) warn(p Problem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnLocked(p)
}

func (c *Calendar) warnLocked(p Problem) {
	if c.reported == nil {
		c.reported = map[Problem]bool{}
	}
	if !c.reported[p] {
		c.reported[p] = true
		c.problems = append(c.problems, p)
	}
}

// ResolveTZID maps an iCalendar TZID to a *time.Location: IANA names,
// Windows names written by Outlook/Exchange ("Romance Standard Time" ->
// Europe/Paris, "W. Europe Standard Time" -> Europe/Berlin, per the CLDR
// windowsZones table), quoted or prefixed TZIDs
// ("/mozilla.org/20050126_1/Europe/Berlin"), and otherwise the calendar's
// own VTIMEZONE definition. The error wraps ErrUnknownTZID when nothing
// matches.
func (c *Calendar) ResolveTZID(tzid string) (*time.Location, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tz.resolve(tzid, -1)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Parse reads an iCalendar stream. Errors name the line (and property) that
// is wrong; they are *ParseError values. A malformed line or value inside
// one VEVENT only costs that event (or that line, if it is not one that
// places the event in time): see Warnings.
func Parse(r io.Reader) (*Calendar, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("read iCalendar stream: %w", err)
	}
	// Outlook and some web exports start with a byte order mark, which
	// go-ical would read as part of the first property name.
	data = bytes.TrimPrefix(data, utf8BOM)
	cals, ix, drops, err := decodeStream(data)
	if err != nil {
		return nil, err
	}
	c := &Calendar{tz: newTZCache()}
	p := &parser{c: c, ix: ix, drops: map[int][]dropped{}, rules: map[string]*rrule.RRule{}}
	for _, d := range drops {
		comp := ix.componentAt(d.line)
		p.drops[comp] = append(p.drops[comp], d)
	}
	comp := 0
	for _, cal := range cals {
		p.calendar(cal.Component, comp)
		comp += subtreeSize(cal.Component)
	}
	c.series = p.group()
	return c, nil
}

// readAll is io.ReadAll that sizes its buffer once when the reader knows
// its length (bytes.Reader, strings.Reader, files).
func readAll(r io.Reader) ([]byte, error) {
	size := 0
	switch v := r.(type) {
	case interface{ Len() int }:
		size = v.Len()
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			size = int(fi.Size())
		}
	}
	if size == 0 {
		return io.ReadAll(r)
	}
	var b bytes.Buffer
	b.Grow(size + bytes.MinRead)
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

func subtreeSize(c *ical.Component) int {
	n := 1
	for _, child := range c.Children {
		n += subtreeSize(child)
	}
	return n
}

// parser turns go-ical components into events.
type parser struct {
	c      *Calendar
	ix     *lineIndex
	drops  map[int][]dropped // by component index
	events []*event
	// cancels are the VEVENTs of METHOD:CANCEL objects.
	cancels []*event
	// rules caches a built rule per RRULE text, as a template.
	rules map[string]*rrule.RRule
}

// criticalProps place an event in time or identify it; an event whose line
// for one of them is unreadable is skipped rather than guessed.
var criticalProps = map[string]bool{
	"UID": true, "DTSTART": true, "DTEND": true, "DURATION": true, "RRULE": true,
	"RDATE": true, "EXDATE": true, "RECURRENCE-ID": true, "SEQUENCE": true, "STATUS": true,
}

func (p *parser) calendar(cal *ical.Component, comp int) {
	for _, d := range p.drops[comp] {
		p.c.warn(Problem{Line: d.line, Message: fmt.Sprintf("%s: malformed content line left out: %v", d.name, d.err)})
	}
	method := ""
	if prop := cal.Props.Get("METHOD"); prop != nil {
		method = strings.ToUpper(strings.TrimSpace(prop.Value))
	}
	if prop := cal.Props.Get("X-WR-TIMEZONE"); prop != nil && p.c.xwrTimezone == "" {
		p.c.xwrTimezone = strings.TrimSpace(unescapeText(prop.Value))
	}
	defs := map[string]*ical.Component{}
	for _, child := range cal.Children {
		if child.Name != ical.CompTimezone {
			continue
		}
		// TZID is TEXT: "(UTC+01:00) Brussels\, Copenhagen" is referred
		// to as TZID="(UTC+01:00) Brussels, Copenhagen".
		if prop := child.Props.Get("TZID"); prop != nil {
			name := unescapeText(prop.Value)
			if _, dup := defs[name]; !dup {
				defs[name] = child
			}
		}
	}
	calIdx := p.c.tz.addCalendar(defs)
	idx := comp + 1
	for _, child := range cal.Children {
		childIdx := idx
		idx += subtreeSize(child)
		if child.Name != ical.CompEvent {
			for _, d := range p.drops[childIdx] {
				p.c.warn(Problem{Line: d.line, Message: fmt.Sprintf("%s: malformed content line in %s left out: %v", d.name, child.Name, d.err)})
			}
			continue
		}
		ev, ok := p.event(child, childIdx, calIdx, method == "CANCEL")
		if !ok {
			continue
		}
		ev.order = len(p.events) + len(p.cancels)
		if method == "CANCEL" {
			p.cancels = append(p.cancels, ev)
		} else {
			p.events = append(p.events, ev)
		}
	}
}

// ridKey identifies an instance for matching overrides, duplicates and
// cancellations: instants for date-times, days for dates, wall clocks for
// floating times (which have no instant until Expand).
type ridKey struct {
	class uint8 // 0 master (no RECURRENCE-ID), 1 instant, 2 floating wall, 3 day
	v     int64
}

func keyOf(d dateTime) ridKey {
	switch d.kind {
	case kindDate:
		return ridKey{3, wallDay(d.wall)}
	case kindFloating:
		return ridKey{2, d.wall}
	case kindUTC:
		return ridKey{1, d.wall}
	default:
		return ridKey{1, newWallResolver(d.loc).instant(d.wall)}
	}
}

func (e *event) key() ridKey {
	if !e.hasRID {
		return ridKey{}
	}
	return keyOf(e.rid)
}

// newer reports whether a supersedes b for the same UID and RECURRENCE-ID:
// the higher SEQUENCE wins, then the one later in the stream.
func newer(a, b *event) bool {
	if a.seq != b.seq {
		return a.seq > b.seq
	}
	return a.order > b.order
}

// group drops superseded duplicates, applies METHOD:CANCEL objects and
// gathers each UID's master and overrides into a series.
func (p *parser) group() []*series {
	type id struct {
		uid string
		key ridKey
	}
	latest := map[id]*event{}
	for _, e := range p.events {
		if e.uid == "" {
			continue // without a UID an event cannot be matched to anything
		}
		k := id{e.uid, e.key()}
		if old, ok := latest[k]; !ok || newer(e, old) {
			latest[k] = e
		}
	}
	byUID := map[string]*series{}
	var out []*series
	for _, e := range p.events {
		if e.uid != "" && latest[id{e.uid, e.key()}] != e {
			continue
		}
		s := byUID[e.uid]
		if s == nil || e.uid == "" {
			s = &series{uid: e.uid}
			out = append(out, s)
			if e.uid != "" {
				byUID[e.uid] = s
			}
		}
		if e.hasRID {
			s.overrides = append(s.overrides, e)
		} else {
			s.master = e
		}
	}
	for _, n := range p.cancels {
		s := byUID[n.uid]
		if s == nil {
			continue
		}
		if !n.hasRID {
			// Cancelling the UID cancels the series and every override
			// the notice is at least as new as.
			if s.master != nil && n.seq >= s.master.seq {
				s.master.status = statusCancelled
			}
			for _, o := range s.overrides {
				if n.seq >= o.seq {
					o.status = statusCancelled
				}
			}
			continue
		}
		k := n.key()
		matched := false
		for _, o := range s.overrides {
			if o.key() == k {
				matched = true
				if n.seq >= o.seq {
					o.status = statusCancelled
				}
			}
		}
		if !matched && s.master != nil && n.seq >= s.master.seq {
			s.cancelled = append(s.cancelled, n.rid)
		}
	}
	for _, s := range out {
		sort.SliceStable(s.overrides, func(i, j int) bool { return s.overrides[i].order < s.overrides[j].order })
	}
	ranked := slices.Clone(out)
	// out is in stream order, so a stable sort keeps UID-less series in it.
	slices.SortStableFunc(ranked, func(a, b *series) int { return strings.Compare(a.uid, b.uid) })
	for i, s := range ranked {
		s.rank = int32(i)
	}
	return out
}

const statusCancelled = "CANCELLED"
