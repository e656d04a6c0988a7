package icalendar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// recurRule is a parsed RRULE. UNTIL is kept apart from the rrule-go
// options: rrule-go compares it with time.Time values, while we iterate on
// wall clocks and must compare UNTIL by instant, by wall clock or by date
// depending on its value type.
type recurRule struct {
	opt      rrule.ROption // Dtstart and Until unset
	until    dateTime      // kindUTC, kindFloating or kindDate
	hasUntil bool
	// rule is built once per event, on the wall clock of DTSTART; see
	// iterator.
	rule *rrule.RRule
}

// build prepares the rule for a series starting at wall clock start.
func (r *recurRule) build(start int64) error {
	return r.buildFrom(nil, start)
}

// buildFrom is build with a validated template of the same rule text, if
// any: a feed repeats a handful of rules thousands of times, and rrule-go
// validates (allocating) on every NewRRule but not on DTStart.
func (r *recurRule) buildFrom(template *rrule.RRule, start int64) error {
	if template == nil {
		opt := r.opt
		opt.Dtstart = wallTime(start)
		opt.Until = farFuture
		rule, err := rrule.NewRRule(opt)
		if err != nil {
			return err
		}
		r.rule = rule
		return nil
	}
	rule := *template
	rule.DTStart(wallTime(start))
	r.rule = &rule
	return nil
}

// iterator starts a fresh iteration. rrule-go's iterator writes a counter
// into its RRule, so concurrent Expand calls each iterate a copy; the copy
// shares only slices that iteration reads.
func (r *recurRule) iterator() rrule.Next {
	rule := *r.rule
	return rule.Iterator()
}

// farFuture is handed to rrule-go as UNTIL for every rule: without one it
// silently stops 292 years after DTSTART (the range of time.Duration), which
// ends Outlook's VTIMEZONE rules that start in 1601 in 1893. Our own UNTIL
// check runs on the instances it yields.
var farFuture = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

var weekdays = map[string]rrule.Weekday{
	"MO": rrule.MO, "TU": rrule.TU, "WE": rrule.WE, "TH": rrule.TH,
	"FR": rrule.FR, "SA": rrule.SA, "SU": rrule.SU,
}

// parseRRule parses an RFC 5545 3.3.10 recurrence rule. It is strict: a
// rule it cannot read exactly is an error, because a guessed rule books
// rooms on the wrong days.
func parseRRule(value string) (recurRule, error) {
	var r recurRule
	freqSet := false
	seen := map[string]bool{}
	for _, part := range strings.Split(value, ";") {
		if part == "" {
			continue // "FREQ=WEEKLY;" is common and harmless
		}
		name, val, ok := strings.Cut(part, "=")
		name = strings.ToUpper(name)
		if !ok || val == "" {
			return r, fmt.Errorf("rule part %q is not NAME=VALUE", part)
		}
		if seen[name] {
			return r, fmt.Errorf("rule part %s given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "FREQ":
			r.opt.Freq, err = rrule.StrToFreq(strings.ToUpper(val))
			freqSet = err == nil
		case "UNTIL":
			r.until, err = parseUntil(val)
			r.hasUntil = err == nil
		case "COUNT":
			r.opt.Count, err = positive(val)
		case "INTERVAL":
			r.opt.Interval, err = positive(val)
		case "WKST":
			wd, ok := weekdays[strings.ToUpper(val)]
			if !ok {
				err = fmt.Errorf("weekday %q", val)
			}
			r.opt.Wkst = wd
		case "BYDAY":
			r.opt.Byweekday, err = parseByDay(val)
		case "BYSECOND":
			r.opt.Bysecond, err = intList(val)
		case "BYMINUTE":
			r.opt.Byminute, err = intList(val)
		case "BYHOUR":
			r.opt.Byhour, err = intList(val)
		case "BYMONTHDAY":
			r.opt.Bymonthday, err = intList(val)
		case "BYYEARDAY":
			r.opt.Byyearday, err = intList(val)
		case "BYWEEKNO":
			r.opt.Byweekno, err = intList(val)
		case "BYMONTH":
			r.opt.Bymonth, err = intList(val)
		case "BYSETPOS":
			r.opt.Bysetpos, err = intList(val)
		case "RSCALE":
			// RFC 7529: only the Gregorian scale is what we expand.
			if !strings.EqualFold(val, "GREGORIAN") {
				err = fmt.Errorf("calendar scale %q is not supported", val)
			}
		default:
			if !strings.HasPrefix(name, "X-") {
				err = errors.New("unknown rule part")
			}
		}
		if err != nil {
			return r, fmt.Errorf("%s=%s: %w", name, val, err)
		}
	}
	if !freqSet {
		return r, errors.New("FREQ is missing")
	}
	return r, nil
}

func parseUntil(val string) (dateTime, error) {
	if len(val) == 8 {
		day, err := parseDate(val)
		return dateTime{wall: day * secondsPerDay, kind: kindDate}, err
	}
	wall, utc, err := parseDateTimeWall(val)
	if err != nil {
		return dateTime{}, err
	}
	if utc {
		return dateTime{wall: wall, kind: kindUTC}, nil
	}
	return dateTime{wall: wall, kind: kindFloating}, nil
}

func positive(val string) (int, error) {
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 {
		return 0, errors.New("not a positive integer")
	}
	return n, nil
}

func intList(val string) ([]int, error) {
	parts := strings.Split(val, ",")
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseByDay(val string) ([]rrule.Weekday, error) {
	parts := strings.Split(val, ",")
	out := make([]rrule.Weekday, 0, len(parts))
	for _, p := range parts {
		if len(p) < 2 {
			return nil, fmt.Errorf("weekday %q", p)
		}
		wd, ok := weekdays[strings.ToUpper(p[len(p)-2:])]
		if !ok {
			return nil, fmt.Errorf("weekday %q", p)
		}
		if num := p[:len(p)-2]; num != "" {
			n, err := strconv.Atoi(num)
			if err != nil || n == 0 || n > 53 || n < -53 {
				return nil, fmt.Errorf("weekday %q", p)
			}
			wd = wd.Nth(n)
		}
		out = append(out, wd)
	}
	return out, nil
}

// untilExceeded reports whether an instance lies after UNTIL (which is
// inclusive, RFC 5545 3.3.10). A UTC UNTIL is an instant. RFC 5545 wants
// UNTIL in DTSTART's value type and in UTC for zoned series; producers
// break both rules, and the series' own wall clock is what they mean: a
// floating UNTIL is read in the series' zone, and a DATE UNTIL on a timed
// series is midnight starting that day, as the reference implementation
// reads it. All-day series compare days (the caller turns their UNTIL into
// a DATE).
func untilExceeded(until dateTime, wall, instant int64) bool {
	switch until.kind {
	case kindUTC:
		return instant > until.wall
	default:
		return wall > until.wall
	}
}
