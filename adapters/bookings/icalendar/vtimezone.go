package icalendar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	ical "github.com/emersion/go-ical"
)

// vtimezoneHorizon bounds the expansion of open-ended observance rules.
// Bookings lie decades ahead at most; beyond it the last offset stays.
const vtimezoneHorizon = 2100

// onset is one transition of a VTIMEZONE: from instant at on, the offset is
// off seconds east of UTC.
type onset struct {
	at   int64
	off  int64
	dst  bool
	abbr string
}

// vtimezoneLocation builds a *time.Location from a VTIMEZONE whose TZID is
// neither an IANA nor a Windows name (Exchange writes names like
// "GMT +0100 (Standard) / GMT +0200 (Daylight)"). It expands every
// STANDARD and DAYLIGHT observance (DTSTART, RRULE, RDATE) into explicit
// transitions and hands them to time.LoadLocationFromTZData as a TZif blob,
// so the result behaves like any IANA zone.
func vtimezoneLocation(name string, comp *ical.Component) (*time.Location, error) {
	var onsets []onset
	for _, obs := range comp.Children {
		if obs.Name != "STANDARD" && obs.Name != "DAYLIGHT" {
			continue
		}
		got, err := observanceOnsets(obs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obs.Name, err)
		}
		onsets = append(onsets, got...)
	}
	if len(onsets) == 0 {
		return nil, errors.New("no STANDARD or DAYLIGHT observance")
	}
	sort.SliceStable(onsets, func(i, j int) bool { return onsets[i].at < onsets[j].at })
	// Before the first onset the offset is the TZOFFSETFROM of the earliest
	// observance, the offset that onset leaves.
	first := onsets[0]
	initial := onset{off: first.off, abbr: first.abbr}
	if f, ok := firstFrom(comp); ok {
		initial = onset{off: f, abbr: offsetAbbr(f)}
	}
	data, err := tzif(initial, onsets)
	if err != nil {
		return nil, err
	}
	return time.LoadLocationFromTZData(name, data)
}

// firstFrom returns the TZOFFSETFROM of the earliest observance, the offset
// in force before the zone's first onset.
func firstFrom(comp *ical.Component) (int64, bool) {
	best, bestWall, found := int64(0), int64(0), false
	for _, obs := range comp.Children {
		if obs.Name != "STANDARD" && obs.Name != "DAYLIGHT" {
			continue
		}
		p := obs.Props.Get("DTSTART")
		from := obs.Props.Get("TZOFFSETFROM")
		if p == nil || from == nil {
			continue
		}
		wall, _, err := parseDateTimeWall(p.Value)
		off, err2 := parseUTCOffset(from.Value)
		if err != nil || err2 != nil {
			continue
		}
		if !found || wall < bestWall {
			best, bestWall, found = off, wall, true
		}
	}
	return best, found
}

func observanceOnsets(obs *ical.Component) ([]onset, error) {
	get := func(name string) (string, error) {
		p := obs.Props.Get(name)
		if p == nil {
			return "", fmt.Errorf("missing %s", name)
		}
		return p.Value, nil
	}
	dtstart, err := get("DTSTART")
	if err != nil {
		return nil, err
	}
	fromS, err := get("TZOFFSETFROM")
	if err != nil {
		return nil, err
	}
	toS, err := get("TZOFFSETTO")
	if err != nil {
		return nil, err
	}
	start, _, err := parseDateTimeWall(dtstart)
	if err != nil {
		return nil, fmt.Errorf("DTSTART: %w", err)
	}
	from, err := parseUTCOffset(fromS)
	if err != nil {
		return nil, fmt.Errorf("TZOFFSETFROM: %w", err)
	}
	to, err := parseUTCOffset(toS)
	if err != nil {
		return nil, fmt.Errorf("TZOFFSETTO: %w", err)
	}
	abbr := ""
	if p := obs.Props.Get("TZNAME"); p != nil {
		abbr = unescapeText(p.Value)
	}
	if !validAbbr(abbr) {
		abbr = offsetAbbr(to)
	}
	dst := obs.Name == "DAYLIGHT"
	// Onsets are wall clock readings in the offset that was in force
	// before them (RFC 5545 3.6.5).
	mk := func(wall int64) onset { return onset{at: wall - from, off: to, dst: dst, abbr: abbr} }
	onsets := []onset{mk(start)}
	for _, p := range obs.Props.Values("RRULE") {
		walls, err := observanceRule(p.Value, start, from)
		if err != nil {
			return nil, fmt.Errorf("RRULE: %w", err)
		}
		for _, w := range walls {
			if w != start {
				onsets = append(onsets, mk(w))
			}
		}
	}
	for _, p := range obs.Props.Values("RDATE") {
		for _, v := range strings.Split(p.Value, ",") {
			w, _, err := parseDateTimeWall(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("RDATE: %w", err)
			}
			onsets = append(onsets, mk(w))
		}
	}
	return onsets, nil
}

// observanceRule expands a yearly (or other) observance rule up to the
// horizon. UNTIL in a VTIMEZONE is UTC (RFC 5545 3.6.5).
func observanceRule(value string, start, from int64) ([]int64, error) {
	r, err := parseRRule(value)
	if err != nil {
		return nil, err
	}
	if err := r.build(start); err != nil {
		return nil, err
	}
	next := r.iterator()
	var walls []int64
	for {
		t, ok := next()
		if !ok || t.Year() > vtimezoneHorizon || len(walls) > 4*(vtimezoneHorizon-1500) {
			break
		}
		w := t.Unix()
		if r.hasUntil && untilExceeded(r.until, w, w-from) {
			break
		}
		walls = append(walls, w)
	}
	return walls, nil
}

// parseUTCOffset parses "+0100", "-0800" or "+053045" into seconds.
func parseUTCOffset(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if len(s) != 5 && len(s) != 7 {
		return 0, fmt.Errorf("%w: UTC offset %q", errValue, s)
	}
	sign := int64(1)
	switch s[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return 0, fmt.Errorf("%w: UTC offset %q", errValue, s)
	}
	h, ok1 := digits(s[1:3])
	m, ok2 := digits(s[3:5])
	sec := int64(0)
	ok3 := true
	if len(s) == 7 {
		sec, ok3 = digits(s[5:7])
	}
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 59 {
		return 0, fmt.Errorf("%w: UTC offset %q", errValue, s)
	}
	return sign * (h*3600 + m*60 + sec), nil
}

// validAbbr reports whether a TZNAME can serve as a TZif abbreviation.
func validAbbr(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// offsetAbbr names an offset the way tzdata does for zones without a
// common abbreviation: "+01", "-0330".
func offsetAbbr(off int64) string {
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	h, m := off/3600, off%3600/60
	if m == 0 {
		return fmt.Sprintf("%c%02d", sign, h)
	}
	return fmt.Sprintf("%c%02d%02d", sign, h, m)
}

// tzif encodes the transitions as a version 2 TZif file (RFC 8536). The
// 32-bit block is left empty, as RFC 8536 allows; Go reads the 64-bit one.
// Type 0 is the initial type and is never used by a transition, which is
// how Go picks the type for instants before the first transition.
func tzif(initial onset, onsets []onset) ([]byte, error) {
	type ttype struct {
		off  int64
		dst  bool
		abbr string
	}
	types := []ttype{{initial.off, initial.dst, initial.abbr}}
	index := map[ttype]int{}
	var idx []byte
	var when []int64
	for _, o := range onsets {
		t := ttype{o.off, o.dst, o.abbr}
		i, ok := index[t]
		if !ok {
			i = len(types)
			index[t] = i
			types = append(types, t)
		}
		if len(when) > 0 && when[len(when)-1] == o.at {
			// Two observances with the same onset (Outlook's 1601-01-01
			// placeholders): the later one in the file wins.
			idx[len(idx)-1] = byte(i)
			continue
		}
		when = append(when, o.at)
		idx = append(idx, byte(i))
	}
	if len(types) > 255 {
		return nil, fmt.Errorf("%d distinct offsets, at most 255 fit a TZif file", len(types))
	}
	var chars []byte
	abbrAt := map[string]int{}
	for _, t := range types {
		if _, ok := abbrAt[t.abbr]; !ok {
			abbrAt[t.abbr] = len(chars)
			chars = append(chars, t.abbr...)
			chars = append(chars, 0)
		}
	}

	var b []byte
	header := func(timecnt, typecnt, charcnt int) {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		for _, n := range []int{0, 0, 0, timecnt, typecnt, charcnt} {
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		}
	}
	// Minimal 32-bit block: one type, one abbreviation byte.
	header(0, 1, 1)
	b = append(b, 0, 0, 0, 0, 0, 0, 0)
	header(len(when), len(types), len(chars))
	for _, w := range when {
		b = binary.BigEndian.AppendUint64(b, uint64(w))
	}
	b = append(b, idx...)
	for _, t := range types {
		b = binary.BigEndian.AppendUint32(b, uint32(int32(t.off)))
		dst := byte(0)
		if t.dst {
			dst = 1
		}
		b = append(b, dst, byte(abbrAt[t.abbr]))
	}
	b = append(b, chars...)
	// An empty footer: after the last transition its offset stays, and
	// transitions reach the horizon.
	b = append(b, '\n', '\n')
	return b, nil
}
