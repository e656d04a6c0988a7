package icalendar

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// kind says how a DATE or DATE-TIME value is anchored in time (RFC 5545 3.3.4, 3.3.5).
type kind uint8

const (
	kindDate     kind = iota + 1 // DATE: a calendar day, placed in the floating zone
	kindFloating                 // DATE-TIME without Z or TZID: wall clock in the floating zone
	kindUTC                      // DATE-TIME with Z
	kindZoned                    // DATE-TIME with a TZID
)

// dateTime is a parsed DATE or DATE-TIME value. It keeps the wall clock
// rather than an instant because floating values and dates only become
// instants once Expand knows the floating zone.
type dateTime struct {
	// wall counts seconds since 1970-01-01T00:00:00 on a zone-free clock
	// (for kindUTC it is the instant itself).
	wall int64
	kind kind
	loc  *time.Location // kindZoned only
}

// isDate reports whether the value is a DATE.
func (d dateTime) isDate() bool { return d.kind == kindDate }

// zone is the location in which the wall clock is read.
func (d dateTime) zone(floating *time.Location) *time.Location {
	switch d.kind {
	case kindUTC:
		return time.UTC
	case kindZoned:
		return d.loc
	default:
		return floating
	}
}

// period is an RDATE;VALUE=PERIOD value (RFC 5545 3.3.9): a start and
// either an explicit end or a duration.
type period struct {
	start  dateTime
	end    dateTime // set when hasEnd
	hasEnd bool
	dur    duration
}

// duration is an RFC 5545 3.3.6 duration: days (weeks are 7 days) are
// nominal, hours, minutes and seconds are exact.
type duration struct {
	days int64
	secs int64
}

const secondsPerDay = 86400

// errValue marks values that do not follow the RFC 5545 grammar.
var errValue = errors.New("malformed value")

// daysFromCivil converts a proleptic Gregorian date to days since 1970-01-01
// (Howard Hinnant's algorithm), so wall-clock arithmetic needs no time.Time.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// floorDiv divides rounding towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// wallDay is the day number (days since 1970-01-01) of a wall clock value.
func wallDay(wall int64) int64 { return floorDiv(wall, secondsPerDay) }

// wallTime turns a wall clock into a time.Time in UTC that shows the same
// fields; rrule-go iterates on such values.
func wallTime(wall int64) time.Time { return time.Unix(wall, 0).UTC() }

// wallOf is the wall clock a time shows in its own location.
func wallOf(t time.Time) int64 {
	_, off := t.Zone()
	return t.Unix() + int64(off)
}

func digits(s string) (int64, bool) {
	var n int64
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseDate parses a DATE value "YYYYMMDD" into its day number.
func parseDate(s string) (int64, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("%w: date %q is not YYYYMMDD", errValue, s)
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[4:6])
	d, ok3 := digits(s[6:8])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, fmt.Errorf("%w: date %q is not YYYYMMDD", errValue, s)
	}
	return daysFromCivil(y, m, d), nil
}

// parseDateTimeWall parses "YYYYMMDDTHHMMSS" with an optional "Z" and
// returns the wall clock and whether it is UTC.
func parseDateTimeWall(s string) (int64, bool, error) {
	utc := strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z")
	if utc {
		s = s[:len(s)-1]
	}
	if len(s) != 15 || (s[8] != 'T' && s[8] != 't') {
		return 0, false, fmt.Errorf("%w: date-time %q is not YYYYMMDDTHHMMSS[Z]", errValue, s)
	}
	day, err := parseDate(s[:8])
	if err != nil {
		return 0, false, fmt.Errorf("%w: date-time %q is not YYYYMMDDTHHMMSS[Z]", errValue, s)
	}
	h, ok1 := digits(s[9:11])
	mi, ok2 := digits(s[11:13])
	sec, ok3 := digits(s[13:15])
	// Second 60 is a leap second (RFC 5545 3.3.12); it is read as the next
	// minute's first second, as time.Date would.
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || sec > 60 {
		return 0, false, fmt.Errorf("%w: date-time %q is not YYYYMMDDTHHMMSS[Z]", errValue, s)
	}
	return day*secondsPerDay + h*3600 + mi*60 + sec, utc, nil
}

// parseDuration parses an RFC 5545 3.3.6 duration such as "PT1H30M",
// "P1D", "-P2W" or "P1DT12H".
func parseDuration(s string) (duration, error) {
	bad := fmt.Errorf("%w: duration %q", errValue, s)
	neg := false
	if strings.HasPrefix(s, "-") {
		neg = true
		s = s[1:]
	} else {
		s = strings.TrimPrefix(s, "+")
	}
	if !strings.HasPrefix(s, "P") && !strings.HasPrefix(s, "p") {
		return duration{}, bad
	}
	s = s[1:]
	var d duration
	inTime := false
	seen := false
	for len(s) > 0 {
		if s[0] == 'T' || s[0] == 't' {
			if inTime {
				return duration{}, bad
			}
			inTime = true
			s = s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return duration{}, bad
		}
		n, _ := digits(s[:i])
		switch unit := s[i] | 0x20; {
		case unit == 'w' && !inTime:
			d.days += 7 * n
		case unit == 'd' && !inTime:
			d.days += n
		case unit == 'h' && inTime:
			d.secs += 3600 * n
		case unit == 'm' && inTime:
			d.secs += 60 * n
		case unit == 's' && inTime:
			d.secs += n
		default:
			return duration{}, bad
		}
		seen = true
		s = s[i+1:]
	}
	if !seen {
		return duration{}, bad
	}
	if neg {
		d.days, d.secs = -d.days, -d.secs
	}
	return d, nil
}

// unescapeText undoes RFC 5545 3.3.11 TEXT escaping. Unknown escapes are
// kept as written: producers get this wrong often, and a summary must not
// be lost over a stray backslash.
func unescapeText(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch n := s[i]; n {
		case 'n', 'N':
			b.WriteByte('\n')
		case '\\', ';', ',':
			b.WriteByte(n)
		default:
			b.WriteByte('\\')
			b.WriteByte(n)
		}
	}
	return b.String()
}
