package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Kind is the kind of a journal entry.
type Kind string

// Entry kinds.
const (
	// KindWrite is a value the gateway wrote, or would have written in a
	// dry run, to a point.
	KindWrite Kind = "write"
	// KindOverride is an operator override set or cleared, or one that
	// expired.
	KindOverride Kind = "override"
	// KindDevice is a device going up or down.
	KindDevice Kind = "device"
	// KindEvent is anything else worth keeping: access and alarm events.
	KindEvent Kind = "event"
)

// Kinds lists every entry kind.
var Kinds = []Kind{KindWrite, KindOverride, KindDevice, KindEvent}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindWrite, KindOverride, KindDevice, KindEvent:
		return true
	}
	return false
}

// Source is where the desired value of a write came from. The journal
// stores any non-empty source, so that a source added to the control
// engine is recorded rather than refused; these are the known ones.
type Source string

// Sources of desired values, in order of precedence.
const (
	SourceOverride  Source = "override"
	SourceBooking   Source = "booking"
	SourceSchedule  Source = "schedule"
	SourceOccupancy Source = "occupancy" // a child space is occupied
	SourceDefault   Source = "default"
)

// OverrideAction is what happened to an override.
type OverrideAction string

// Override actions.
const (
	OverrideSet     OverrideAction = "set"
	OverrideClear   OverrideAction = "clear"
	OverrideExpired OverrideAction = "expired"
)

// Severity ranks an event. Like Source, any non-empty severity is
// stored; these are the known ones.
type Severity string

// Event severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityAlarm    Severity = "alarm"
	SeverityCritical Severity = "critical"
)

// ErrInvalidEntry is returned by Append for an entry it cannot store
// meaningfully: no kind or two, no site, a write or override without a
// point, a device without a connection, an unknown override action.
// Otherwise the journal records what it is given: an audit record with a
// gap beats a lost one, and completeness (who, why) is checked where an
// override is accepted.
var ErrInvalidEntry = errors.New("invalid journal entry")

// Entry is one journal record. Exactly one of Write, Override, Device
// and Event is set; Kind says which.
type Entry struct {
	// ID increases with every committed entry and is never reused, even
	// after pruning. Append assigns it.
	ID int64
	// Time is when it happened, in UTC with nanoseconds. Append uses the
	// journal's clock when it is zero.
	Time time.Time
	// Kind is set by Append from the field that is set.
	Kind Kind

	Write    *WriteEntry
	Override *OverrideEntry
	Device   *DeviceEntry
	Event    *EventEntry
}

// WriteEntry records a write to a point: what was there, what was
// written, why, and whether it worked.
type WriteEntry struct {
	Site  string
	Point string
	// Old is the value read back from the point before the write; nil
	// when it was not known (never read, device down).
	Old *site.Value
	// New is the value written.
	New site.Value
	// Reason says in words why the point takes New, e.g. "booking
	// 4711 Badminton (org 12) 18:00–20:00".
	Reason string
	// Source is where the desired value came from.
	Source Source
	// Err is why the write failed; "" when it succeeded.
	Err string
	// Attempt counts the tries of this write, from 1; 0 means 1.
	Attempt int
	// DryRun is set when the gateway only logged the write.
	DryRun bool
}

// OK reports whether the write succeeded.
func (w *WriteEntry) OK() bool { return w.Err == "" }

// OverrideEntry records an operator override of a point.
type OverrideEntry struct {
	Site   string
	Point  string
	Action OverrideAction
	// Value is the value the override holds the point at (for set).
	Value site.Value
	// Until is when the override ends by itself; zero for no end.
	Until time.Time
	// Who set or cleared the override (user name); "" when it expired.
	Who string
	// Why is the reason the person gave.
	Why string
}

// DeviceEntry records a device going up or down.
type DeviceEntry struct {
	Site string
	// Connection is the connection id of the site mapping.
	Connection string
	// Device names the device behind the connection, e.g. "unit 12"; ""
	// for the connection as a whole.
	Device string
	Up     bool
	// Err is why the device is down.
	Err string
}

// EventEntry records an event of a space, e.g. a door held open. It
// holds the fields of events.Event, which the journal cannot import
// (the events package builds on the journal).
type EventEntry struct {
	Site  string
	Space string
	// Kind names the event in lower snake case, e.g. "door_held_open".
	Kind     string
	Severity Severity
	// Subject is the door, area, detector or output the event is about.
	Subject string
	// Points are the source points whose values led to the event.
	Points []string
	// Booking ("source:id") and Organiser (pseudonymous association id)
	// are set where a booking is involved.
	Booking   string
	Organiser string
	Message   string
	// CardHolder is personal data: who held the card. It is stored apart
	// from the event, only when Options.KeepPersonal is set, and deleted
	// after Options.PersonalRetention; Query returns it only when
	// Filter.Personal is set.
	CardHolder string
}

// Site returns the site of the entry, whatever its kind.
func (e *Entry) Site() string {
	switch {
	case e.Write != nil:
		return e.Write.Site
	case e.Override != nil:
		return e.Override.Site
	case e.Device != nil:
		return e.Device.Site
	case e.Event != nil:
		return e.Event.Site
	}
	return ""
}

// Point returns the point of a write or override entry, else "".
func (e *Entry) Point() string {
	switch {
	case e.Write != nil:
		return e.Write.Point
	case e.Override != nil:
		return e.Override.Point
	}
	return ""
}

// row is an entry as stored: the columns queries filter on, and the
// kind's own fields as JSON.
type row struct {
	time  int64
	kind  Kind
	site  string
	point string
	data  []byte
	// personal is an event's card holder, stored in journal_personal.
	personal string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEntry, fmt.Sprintf(format, args...))
}

// encode validates e and turns it into a row. Time must be set.
func encode(e *Entry) (row, error) {
	set := 0
	for _, p := range []bool{e.Write != nil, e.Override != nil, e.Device != nil, e.Event != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return row{}, invalid("%d of write, override, device and event are set; want exactly one", set)
	}
	r := row{time: e.Time.UnixNano(), site: e.Site(), point: e.Point()}
	if r.site == "" {
		return row{}, invalid("no site")
	}
	var data any
	switch {
	case e.Write != nil:
		w := e.Write
		r.kind = KindWrite
		if w.Point == "" {
			return row{}, invalid("write without a point")
		}
		if w.Source == "" {
			return row{}, invalid("write without a source")
		}
		if w.Attempt < 0 {
			return row{}, invalid("write attempt %d", w.Attempt)
		}
		d := writeData{New: toValue(w.New), Reason: w.Reason, Source: w.Source, Error: w.Err, Attempt: max(w.Attempt, 1), DryRun: w.DryRun}
		if w.Old != nil {
			old := toValue(*w.Old)
			d.Old = &old
		}
		data = d
	case e.Override != nil:
		o := e.Override
		r.kind = KindOverride
		if o.Point == "" {
			return row{}, invalid("override without a point")
		}
		switch o.Action {
		case OverrideSet, OverrideClear, OverrideExpired:
		default:
			return row{}, invalid("override action %q: use set, clear or expired", o.Action)
		}
		d := overrideData{Action: o.Action, Who: o.Who, Why: o.Why}
		if o.Action == OverrideSet {
			v := toValue(o.Value)
			d.Value = &v
		}
		if !o.Until.IsZero() {
			d.Until = o.Until.UTC().Format(time.RFC3339Nano)
		}
		data = d
	case e.Device != nil:
		d := e.Device
		r.kind = KindDevice
		if d.Connection == "" {
			return row{}, invalid("device entry without a connection")
		}
		state := "down"
		if d.Up {
			state = "up"
		}
		data = deviceData{Connection: d.Connection, Device: d.Device, State: state, Error: d.Err}
	case e.Event != nil:
		ev := e.Event
		r.kind = KindEvent
		if ev.Kind == "" {
			return row{}, invalid("event without a kind")
		}
		if ev.Severity == "" {
			return row{}, invalid("event without a severity")
		}
		data = eventData{Space: ev.Space, Event: ev.Kind, Severity: ev.Severity, Subject: ev.Subject,
			Points: ev.Points, Booking: ev.Booking, Organiser: ev.Organiser, Message: ev.Message}
		r.personal = ev.CardHolder
	}
	if e.Kind != "" && e.Kind != r.kind {
		return row{}, invalid("kind %q but the %s field is set", e.Kind, r.kind)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return row{}, invalid("%v", err)
	}
	r.data = b
	return r, nil
}

// decode turns a stored row back into an entry.
func decode(id int64, r row) (Entry, error) {
	e := Entry{ID: id, Time: time.Unix(0, r.time).UTC(), Kind: r.kind}
	var err error
	switch r.kind {
	case KindWrite:
		var d writeData
		if err = json.Unmarshal(r.data, &d); err == nil {
			e.Write = &WriteEntry{Site: r.site, Point: r.point, New: d.New.value(), Reason: d.Reason,
				Source: d.Source, Err: d.Error, Attempt: d.Attempt, DryRun: d.DryRun}
			if d.Old != nil {
				old := d.Old.value()
				e.Write.Old = &old
			}
		}
	case KindOverride:
		var d overrideData
		if err = json.Unmarshal(r.data, &d); err == nil {
			e.Override = &OverrideEntry{Site: r.site, Point: r.point, Action: d.Action, Who: d.Who, Why: d.Why}
			if d.Value != nil {
				e.Override.Value = d.Value.value()
			}
			if d.Until != "" {
				e.Override.Until, err = time.Parse(time.RFC3339Nano, d.Until)
			}
		}
	case KindDevice:
		var d deviceData
		if err = json.Unmarshal(r.data, &d); err == nil {
			e.Device = &DeviceEntry{Site: r.site, Connection: d.Connection, Device: d.Device, Up: d.State == "up", Err: d.Error}
		}
	case KindEvent:
		var d eventData
		if err = json.Unmarshal(r.data, &d); err == nil {
			e.Event = &EventEntry{Site: r.site, Space: d.Space, Kind: d.Event, Severity: d.Severity, Subject: d.Subject,
				Points: d.Points, Booking: d.Booking, Organiser: d.Organiser, Message: d.Message, CardHolder: r.personal}
		}
	default:
		err = fmt.Errorf("unknown kind %q", r.kind)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("decode journal entry %d: %w", id, err)
	}
	return e, nil
}

// The stored JSON of each kind. These are separate from the API types so
// that renaming a Go field never changes what is on disk.
type (
	writeData struct {
		Old     *value `json:"old,omitempty"`
		New     value  `json:"new"`
		Reason  string `json:"reason,omitempty"`
		Source  Source `json:"source"`
		Error   string `json:"error,omitempty"`
		Attempt int    `json:"attempt"`
		DryRun  bool   `json:"dry_run,omitempty"`
	}
	overrideData struct {
		Action OverrideAction `json:"action"`
		Value  *value         `json:"value,omitempty"`
		Until  string         `json:"until,omitempty"`
		Who    string         `json:"who,omitempty"`
		Why    string         `json:"why,omitempty"`
	}
	deviceData struct {
		Connection string `json:"connection"`
		Device     string `json:"device,omitempty"`
		State      string `json:"state"`
		Error      string `json:"error,omitempty"`
	}
	// eventData holds no card holder: that is in journal_personal,
	// so that it can be pruned on its own.
	eventData struct {
		Space     string   `json:"space,omitempty"`
		Event     string   `json:"event"`
		Severity  Severity `json:"severity"`
		Subject   string   `json:"subject,omitempty"`
		Points    []string `json:"points,omitempty"`
		Booking   string   `json:"booking,omitempty"`
		Organiser string   `json:"organiser,omitempty"`
		Message   string   `json:"message,omitempty"`
	}
)

// value is a stored site.Value. A value read back from a float point can
// be NaN or infinite, which JSON numbers cannot hold, so those are
// stored as the strings "NaN", "+Inf" and "-Inf".
type value struct {
	Num   number `json:"num"`
	Label string `json:"label,omitempty"`
}

func toValue(v site.Value) value { return value{Num: number(v.Num), Label: v.Label} }

func (v value) value() site.Value { return site.Value{Num: float64(v.Num), Label: v.Label} }

type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return json.Marshal(strconv.FormatFloat(f, 'f', -1, 64))
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (n *number) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		f, err := strconv.ParseFloat(s, 64)
		*n = number(f)
		return err
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = number(f)
	return err
}
