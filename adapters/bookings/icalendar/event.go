package icalendar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	ical "github.com/emersion/go-ical"
)

// event is one VEVENT as parsed, before expansion.
type event struct {
	uid   string
	line  int // line of BEGIN:VEVENT
	order int // position in the stream, for "the later one wins"

	seq       int
	summary   string
	location  string
	status    string
	organizer string
	props     map[string]string

	start  dateTime
	end    dateTime
	hasEnd bool
	dur    duration
	hasDur bool

	rid           dateTime
	hasRID        bool
	thisAndFuture bool

	rules   []recurRule
	rdates  []period
	exdates []dateTime
}

// recurring reports whether the event has instances beyond DTSTART.
func (e *event) recurring() bool { return len(e.rules) > 0 || len(e.rdates) > 0 }

// fieldProps are the properties Occurrence has fields for, or that only
// shape the recurrence set; they are not repeated in Props.
var fieldProps = map[string]bool{
	"UID": true, "DTSTART": true, "DTEND": true, "DURATION": true, "RRULE": true,
	"RDATE": true, "EXDATE": true, "EXRULE": true, "RECURRENCE-ID": true, "SEQUENCE": true,
	"SUMMARY": true, "LOCATION": true, "STATUS": true, "ORGANIZER": true,
	// Personal data, and properties RFC 5545 3.6.1 lets repeat.
	"ATTENDEE": true, "CONTACT": true, "COMMENT": true, "ATTACH": true,
	"RELATED-TO": true, "REQUEST-STATUS": true,
}

// listProps may repeat; their lines are one list.
var listProps = map[string]bool{"CATEGORIES": true, "RESOURCES": true}

// textProps have the TEXT value type (RFC 5545 3.8), so their escapes are
// undone in Props.
var textProps = map[string]bool{
	"CATEGORIES": true, "CLASS": true, "DESCRIPTION": true, "RESOURCES": true,
	"TRANSP": true,
}

// eventProblem is a fault that makes an event unusable, at a property.
type eventProblem struct {
	prop string
	k    int // which of the properties with that name
	err  error
}

func (e *eventProblem) Error() string { return fmt.Sprintf("%s: %v", e.prop, e.err) }

// event parses one VEVENT. ok is false when the event must be skipped; the
// reason is recorded as a Problem. A notice (VEVENT of a METHOD:CANCEL
// object) needs only UID, SEQUENCE and RECURRENCE-ID.
func (p *parser) event(comp *ical.Component, compIdx, calIdx int, notice bool) (*event, bool) {
	e := &event{line: p.ix.beginLine(compIdx)}
	if prop := comp.Props.Get("UID"); prop != nil {
		e.uid = strings.TrimSpace(unescapeText(prop.Value))
	}
	report := func(line int, msg string) {
		p.c.warn(Problem{UID: e.uid, Line: line, Message: msg})
	}
	skip := false
	for _, d := range p.drops[compIdx] {
		if criticalProps[d.name] {
			report(d.line, fmt.Sprintf("%s: malformed content line: %v; event skipped", d.name, d.err))
			skip = true
		} else {
			report(d.line, fmt.Sprintf("%s: malformed content line left out: %v", d.name, d.err))
		}
	}
	if skip {
		return nil, false
	}
	err := p.fill(e, comp, compIdx, calIdx, notice)
	var ep *eventProblem
	if errors.As(err, &ep) {
		report(p.ix.propLine(compIdx, ep.prop, ep.k), ep.Error()+"; event skipped")
		return nil, false
	}
	if err != nil {
		report(e.line, err.Error()+"; event skipped")
		return nil, false
	}
	if e.uid == "" && !notice {
		// RFC 5545 requires a UID; without one the event still books the
		// room, but overrides and cancellations cannot refer to it.
		report(e.line, "no UID; the event is kept, but nothing can override or cancel it")
	}
	if prop := comp.Props.Get("SEQUENCE"); prop != nil {
		n, err := strconv.Atoi(strings.TrimSpace(prop.Value))
		if err != nil || n < 0 {
			report(p.ix.propLine(compIdx, "SEQUENCE", 0), fmt.Sprintf("SEQUENCE %q is not a non-negative integer; read as 0", prop.Value))
		} else {
			e.seq = n
		}
	}
	return e, true
}

// fill reads the properties of a VEVENT into e.
func (p *parser) fill(e *event, comp *ical.Component, compIdx, calIdx int, notice bool) error {
	if notice && e.uid == "" {
		return errors.New("cancellation without UID")
	}
	if props := comp.Props.Values("RECURRENCE-ID"); len(props) > 0 {
		d, err := p.dateValue(&props[0], props[0].Value, calIdx)
		if err != nil {
			return &eventProblem{"RECURRENCE-ID", 0, err}
		}
		e.rid, e.hasRID = d, true
		switch rng := strings.ToUpper(props[0].Params.Get("RANGE")); rng {
		case "":
		case "THISANDFUTURE":
			e.thisAndFuture = true
		default:
			// RFC 5545 dropped THISANDPRIOR; reading it as a single
			// override is the safe half of what it meant.
			p.c.warn(Problem{UID: e.uid, Line: e.line, Message: fmt.Sprintf("RECURRENCE-ID: RANGE=%s is not supported; read as this instance only", rng)})
		}
	}
	if notice {
		return nil
	}
	if prop := comp.Props.Get("STATUS"); prop != nil {
		e.status = strings.ToUpper(strings.TrimSpace(unescapeText(prop.Value)))
	}
	if prop := comp.Props.Get("SUMMARY"); prop != nil {
		e.summary = unescapeText(prop.Value)
	}
	if prop := comp.Props.Get("LOCATION"); prop != nil {
		e.location = unescapeText(prop.Value)
	}
	if prop := comp.Props.Get("ORGANIZER"); prop != nil {
		e.organizer = prop.Value
	}

	dtstart := comp.Props.Get("DTSTART")
	if dtstart == nil {
		return &eventProblem{"DTSTART", 0, errors.New("missing")}
	}
	start, err := p.dateValue(dtstart, dtstart.Value, calIdx)
	if err != nil {
		return &eventProblem{"DTSTART", 0, err}
	}
	e.start = start

	dtend := comp.Props.Get("DTEND")
	durProp := comp.Props.Get("DURATION")
	if dtend != nil && durProp != nil {
		// RFC 5545 3.6.1 allows one of them. Thunderbird writes both
		// (DURATION:PT0S beside a real DTEND) on moved instances; dropping
		// the event would leave the booking at its old time, so DTEND,
		// the explicit end, wins.
		p.c.warn(Problem{UID: e.uid, Line: e.line, Message: "DTEND and DURATION both given (RFC 5545 3.6.1 allows one); DTEND used"})
		durProp = nil
	}
	switch {
	case dtend != nil:
		end, err := p.dateValue(dtend, dtend.Value, calIdx)
		if err != nil {
			return &eventProblem{"DTEND", 0, err}
		}
		if end.isDate() != start.isDate() {
			return &eventProblem{"DTEND", 0, errors.New("value type differs from DTSTART's (RFC 5545 3.8.2.2)")}
		}
		// Floating against zoned values can only be compared in Expand.
		if a, b := keyOf(start), keyOf(end); a.class == b.class && b.v < a.v {
			return &eventProblem{"DTEND", 0, errors.New("before DTSTART")}
		}
		e.end, e.hasEnd = end, true
	case durProp != nil:
		d, err := parseDuration(strings.TrimSpace(durProp.Value))
		if err != nil {
			return &eventProblem{"DURATION", 0, err}
		}
		if d.days < 0 || d.secs < 0 {
			return &eventProblem{"DURATION", 0, errors.New("negative")}
		}
		e.dur, e.hasDur = d, true
	}

	for k, prop := range comp.Props.Values("RRULE") {
		value := strings.TrimSpace(prop.Value)
		if strings.ContainsAny(value, " \t") {
			// Exchange's CDO writes "BYDAY=MO, TU, WE": RFC 5545 3.3.10
			// has no spaces, but the meaning is not in doubt.
			value = strings.Join(strings.Fields(value), "")
			p.c.warn(Problem{UID: e.uid, Line: e.line, Message: "spaces in RRULE ignored (RFC 5545 3.3.10 has none)"})
		}
		r, err := parseRRule(value)
		if err == nil {
			// rrule-go checks the BY* ranges here, so that error too
			// names the line.
			err = r.buildFrom(p.rules[value], start.wall)
		}
		if err != nil {
			return &eventProblem{"RRULE", k, err}
		}
		if p.rules[value] == nil {
			p.rules[value] = r.rule
		}
		e.rules = append(e.rules, r)
	}
	for k := range comp.Props.Values("RDATE") {
		prop := &comp.Props.Values("RDATE")[k]
		periods, err := p.rdateValue(prop, calIdx)
		if err != nil {
			return &eventProblem{"RDATE", k, err}
		}
		e.rdates = append(e.rdates, periods...)
	}
	for k := range comp.Props.Values("EXDATE") {
		prop := &comp.Props.Values("EXDATE")[k]
		for _, v := range strings.Split(prop.Value, ",") {
			d, err := p.dateValue(prop, strings.TrimSpace(v), calIdx)
			if err != nil {
				return &eventProblem{"EXDATE", k, err}
			}
			if d.isDate() && !start.isDate() {
				p.c.warn(Problem{UID: e.uid, Line: p.ix.propLine(compIdx, "EXDATE", k), Message: fmt.Sprintf(
					"EXDATE: date %s on a timed series only excludes an instance at midnight; write a DATE-TIME to exclude the booking", v)})
			}
			e.exdates = append(e.exdates, d)
		}
	}
	e.props = otherProps(comp.Props)
	return nil
}

func otherProps(props ical.Props) map[string]string {
	var out map[string]string
	for name, values := range props {
		if fieldProps[name] || len(values) == 0 {
			continue
		}
		if len(values) > 1 && !listProps[name] {
			continue // a repeated property does not fit one string
		}
		parts := make([]string, len(values))
		for i := range values {
			parts[i] = propText(&values[i])
		}
		if out == nil {
			out = make(map[string]string, 4)
		}
		out[name] = strings.Join(parts, ",")
	}
	return out
}

// propText is a property's value as text: TEXT values (and X- properties,
// whose default type is TEXT) unescaped, others as written.
func propText(prop *ical.Prop) string {
	vt := strings.ToUpper(prop.Params.Get("VALUE"))
	if (textProps[prop.Name] || strings.HasPrefix(prop.Name, "X-")) && (vt == "" || vt == "TEXT") {
		return unescapeText(prop.Value)
	}
	return prop.Value
}

// dateValue parses one DATE or DATE-TIME value of a property, honouring its
// VALUE and TZID parameters.
func (p *parser) dateValue(prop *ical.Prop, value string, calIdx int) (dateTime, error) {
	value = strings.TrimSpace(value)
	vt := strings.ToUpper(prop.Params.Get("VALUE"))
	// Producers often leave out VALUE=DATE; a bare 8-digit value is a date.
	if vt == "DATE" || (vt == "" && len(value) == 8) {
		day, err := parseDate(value)
		if err != nil {
			return dateTime{}, err
		}
		// A TZID on a DATE has no meaning (RFC 5545 3.2.19) and is ignored.
		return dateTime{wall: day * secondsPerDay, kind: kindDate}, nil
	}
	if vt != "" && vt != "DATE-TIME" {
		return dateTime{}, fmt.Errorf("VALUE=%s where DATE or DATE-TIME belongs", vt)
	}
	wall, utc, err := parseDateTimeWall(value)
	if err != nil {
		return dateTime{}, err
	}
	if utc {
		// "Z" is explicit; a TZID next to it is invalid (RFC 5545 3.3.5)
		// and the Z is the safer of the two to believe.
		return dateTime{wall: wall, kind: kindUTC}, nil
	}
	tzid := prop.Params.Get("TZID")
	if tzid == "" {
		return dateTime{wall: wall, kind: kindFloating}, nil
	}
	loc, err := p.c.tz.resolve(tzid, calIdx)
	if err != nil {
		return dateTime{}, err
	}
	return dateTime{wall: wall, kind: kindZoned, loc: loc}, nil
}

// rdateValue parses an RDATE line: a list of DATE, DATE-TIME or PERIOD
// values (RFC 5545 3.8.5.2). go-ical cannot: it rejects lists and periods.
func (p *parser) rdateValue(prop *ical.Prop, calIdx int) ([]period, error) {
	vt := strings.ToUpper(prop.Params.Get("VALUE"))
	var out []period
	for _, v := range strings.Split(prop.Value, ",") {
		v = strings.TrimSpace(v)
		first, second, isPeriod := strings.Cut(v, "/")
		if !isPeriod {
			if vt == "PERIOD" {
				return nil, fmt.Errorf("%w: period %q has no \"/\"", errValue, v)
			}
			d, err := p.dateValue(prop, v, calIdx)
			if err != nil {
				return nil, err
			}
			out = append(out, period{start: d})
			continue
		}
		if vt != "" && vt != "PERIOD" {
			return nil, fmt.Errorf("VALUE=%s with a period value %q", vt, v)
		}
		dtProp := ical.Prop{Name: prop.Name, Params: ical.Params{"TZID": prop.Params.Values("TZID")}}
		start, err := p.dateValue(&dtProp, first, calIdx)
		if err != nil {
			return nil, err
		}
		if start.isDate() {
			return nil, fmt.Errorf("%w: period %q starts with a date", errValue, v)
		}
		pd := period{start: start}
		if strings.HasPrefix(second, "P") || strings.HasPrefix(second, "+P") || strings.HasPrefix(second, "-P") {
			pd.dur, err = parseDuration(second)
			if err == nil && (pd.dur.days < 0 || pd.dur.secs < 0) {
				err = fmt.Errorf("%w: period %q has a negative duration", errValue, v)
			}
		} else {
			pd.end, err = p.dateValue(&dtProp, second, calIdx)
			pd.hasEnd = true
			if err == nil && pd.end.isDate() {
				err = fmt.Errorf("%w: period %q ends with a date", errValue, v)
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, pd)
	}
	return out, nil
}
