package security

import (
	"fmt"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

// DoorState is a door's state derived from its inputs with the truth
// table of DOMAIN.md section 2 (see docs/security.md for every row).
type DoorState string

// Door states.
const (
	// DoorUnknown: an input is unreadable, reads NaN or infinity, or has
	// not been read yet.
	DoorUnknown DoorState = "unknown"
	// DoorLocked: closed, deadbolt thrown.
	DoorLocked DoorState = "locked"
	// DoorOpen: the contact reads open.
	DoorOpen DoorState = "open"
	// DoorUnlockedKey: closed, deadbolt not thrown, handle released,
	// unlock output off: unlocked with a key.
	DoorUnlockedKey DoorState = "unlocked_key"
	// DoorUnlockedGrant: closed, deadbolt not thrown, handle pressed,
	// unlock output on: opened with the outside handle on an access grant.
	DoorUnlockedGrant DoorState = "unlocked_grant"
	// DoorUnlockedExit: closed, deadbolt not thrown, handle pressed,
	// unlock output off: opened with the inside handle (exit).
	DoorUnlockedExit DoorState = "unlocked_exit"
	// DoorUnlockedSystem: closed, deadbolt not thrown, handle released,
	// unlock output on: held unlocked by the access system.
	DoorUnlockedSystem DoorState = "unlocked_system"
	// DoorClosed: closed, handle released, unlock output off, on a door
	// without a deadbolt input; as secure as the monitor can tell.
	DoorClosed DoorState = "closed"
)

// deriveState is the truth table. hasBolt says whether the door has a
// deadbolt input; absent handle and unlock inputs read false.
func deriveState(hasBolt, bolt, handle, open, unlock bool) DoorState {
	switch {
	case open:
		return DoorOpen
	case hasBolt && bolt:
		return DoorLocked
	case handle && unlock:
		return DoorUnlockedGrant
	case handle:
		return DoorUnlockedExit
	case unlock:
		return DoorUnlockedSystem
	case hasBolt:
		return DoorUnlockedKey
	}
	return DoorClosed
}

// door fields named after input roles, for bindings.
const (
	fDeadbolt = iota
	fHandle
	fContact
	fContactB
	fUnlock
	fReader
)

type door struct {
	spec DoorSpec
	win  *windows // the windows of the door's space
	tm   timer

	bolt, handle, contact, contactB, unlock boolIn
	reader                                  numIn

	inputs      []string // every input point, for events
	contactPts  []string // the contact loops
	boltContact []string // contacts, deadbolt and unlock: what "secured" reads

	judged bool // the door has been judged at least once
	// restored: judged from a snapshot, its inputs not yet read since;
	// an opening found then happened unseen and is not judged as forced.
	restored   bool
	open       bool // agreed value of the contact loops
	state      DoorState
	stateSince time.Time
	openSince  time.Time
	// unsecuredSince is when the door stopped being closed and locked.
	unsecuredSince time.Time

	lastGrant     time.Time
	unlockSeen    time.Time // the unlock output was on at this time
	handleSeen    time.Time // the handle was pressed at this time
	disagreeSince time.Time // the two contact loops disagree since
	pendingOpen   time.Time // an opening of a locked door, to be judged
	comboSince    time.Time // open with the deadbolt thrown since

	held, forced, left bool
	fault              string // the raised wire fault, "" for none
	faultPts           []string
	faultSince         time.Time
}

func newDoor(s DoorSpec) *door {
	d := &door{
		spec:     s,
		bolt:     newBoolIn(s.Deadbolt),
		handle:   newBoolIn(s.Handle),
		contact:  newBoolIn(s.Contact),
		contactB: newBoolIn(s.ContactB),
		unlock:   newBoolIn(s.Unlock),
		state:    DoorUnknown,
	}
	if s.Reader != nil {
		d.reader = numIn{point: s.Reader.Point, present: true}
	}
	for _, b := range d.bools() {
		if b.in.present {
			d.inputs = append(d.inputs, b.in.point)
		}
	}
	if d.reader.present {
		d.inputs = append(d.inputs, d.reader.point)
	}
	for _, b := range []*boolIn{&d.contact, &d.contactB} {
		if b.present {
			d.contactPts = append(d.contactPts, b.point)
		}
	}
	for _, b := range []*boolIn{&d.contact, &d.contactB, &d.bolt, &d.unlock} {
		if b.present {
			d.boltContact = append(d.boltContact, b.point)
		}
	}
	return d
}

type namedIn struct {
	field string
	in    *boolIn
}

func (d *door) bools() []namedIn {
	return []namedIn{
		{"deadbolt", &d.bolt}, {"handle", &d.handle}, {"contact", &d.contact},
		{"contact_b", &d.contactB}, {"unlock", &d.unlock},
	}
}

func (d *door) timer() *timer { return &d.tm }

func (d *door) label() string { return label(d.spec.Name, d.spec.ID) }

func label(name, id string) string {
	if name == "" || name == id {
		return id
	}
	return fmt.Sprintf("%s (%s)", name, id)
}

// observe applies one reading of one of the door's inputs.
func (d *door) observe(m *Monitor, field int, v float64, ok bool, at time.Time) {
	switch field {
	case fReader:
		prev, hadPrev, good := d.reader.set(v, ok, at)
		if good && hadPrev && v > prev {
			d.lastGrant = at
			n := ""
			if v-prev > 1 && v-prev == float64(int64(v-prev)) {
				n = fmt.Sprintf(" (%d grants since the last reading)", int64(v-prev))
			}
			m.emit(at, events.AccessGranted, events.Info, d.spec.Space, d.spec.ID, []string{d.reader.point},
				"access granted at %s%s", d.label(), n)
		}
	case fUnlock:
		// unlockSeen records that the output was on up to now.
		if d.unlock.on() {
			d.unlockSeen = at
		}
		d.unlock.set(v, ok, at)
		if d.unlock.on() && d.unlock.usable() {
			d.unlockSeen = at
		}
	case fHandle:
		if d.handle.on() {
			d.handleSeen = at
		}
		d.handle.set(v, ok, at)
		if d.handle.on() && d.handle.usable() {
			d.handleSeen = at
		}
	case fDeadbolt:
		d.bolt.set(v, ok, at)
	case fContact:
		d.contact.set(v, ok, at)
	case fContactB:
		d.contactB.set(v, ok, at)
	}
	d.eval(m, at)
}

// usable reports whether every boolean input has a good current value.
// The reader does not count: without it grants go unseen, but the door
// can still be judged.
func (d *door) usable() bool {
	for _, b := range d.bools() {
		if !b.in.usable() {
			return false
		}
	}
	return true
}

// problem describes why the door cannot be judged.
func (d *door) problem() string {
	var ps []string
	for _, b := range d.bools() {
		if p := b.in.problem(b.field); p != "" {
			ps = append(ps, p)
		}
	}
	return strings.Join(ps, "; ")
}

// canBeForced: the monitor can tell the door is locked.
func (d *door) canBeForced() bool { return d.bolt.present || d.unlock.present }

// secured reports whether the door is closed and locked as far as its
// inputs tell: locked with a deadbolt input; closed with the unlock
// output off without one.
func (d *door) secured() bool {
	return d.judged && d.usable() && (d.state == DoorLocked || d.state == DoorClosed)
}

// eval judges the door at time at: state transitions, then the
// conditions (forced, wire fault, held open, left unlocked).
func (d *door) eval(m *Monitor, at time.Time) {
	if d.contactB.present && d.contact.usable() && d.contactB.usable() && d.contact.val != d.contactB.val {
		if d.disagreeSince.IsZero() {
			d.disagreeSince = at
		}
	} else {
		d.disagreeSince = time.Time{}
	}
	usable := d.usable()
	if usable {
		open := d.open
		if d.disagreeSince.IsZero() || !d.judged {
			// While the loops disagree the door keeps its last agreed
			// state; a door first seen that way follows the first loop.
			open = d.contact.val
		}
		state := deriveState(d.bolt.present, d.bolt.on(), d.handle.on(), open, d.unlock.on())
		switch {
		case !d.judged:
			d.judged = true
			d.stateSince = at
			if open {
				d.openSince = at
			}
		case open != d.open:
			if open {
				d.openSince = at
				m.emit(at, events.DoorOpened, events.Info, d.spec.Space, d.spec.ID, d.contactPts, "%s opened", d.label())
				if d.canBeForced() && (!d.bolt.present || d.bolt.on()) && !d.restored {
					d.pendingOpen = at
				}
			} else {
				d.openSince = time.Time{}
				m.emit(at, events.DoorClosed, events.Info, d.spec.Space, d.spec.ID, d.contactPts, "%s closed", d.label())
				if d.held {
					d.held = false
					m.emit(at, events.DoorRestored, events.Info, d.spec.Space, d.spec.ID, d.contactPts,
						"%s is no longer held open", d.label())
				}
			}
		}
		if state != d.state {
			d.stateSince = at
		}
		d.open, d.state, d.restored = open, state, false
		if d.open && d.bolt.on() {
			if d.comboSince.IsZero() {
				d.comboSince = at
			}
		} else {
			d.comboSince = time.Time{}
		}
		if d.secured() {
			d.unsecuredSince = time.Time{}
		} else if d.unsecuredSince.IsZero() {
			d.unsecuredSince = at
		}
	}

	if !d.pendingOpen.IsZero() && usable && !at.Before(d.pendingOpen.Add(Settle)) {
		d.judgeOpening(m, at)
	}
	if usable && d.secured() {
		if d.forced {
			d.forced = false
			m.emit(at, events.DoorRestored, events.Info, d.spec.Space, d.spec.ID, d.boltContact,
				"%s is closed and locked again after being forced", d.label())
		}
		if d.left {
			d.left = false
			m.emit(at, events.DoorRestored, events.Info, d.spec.Space, d.spec.ID, d.boltContact,
				"%s is closed and locked", d.label())
		}
	}
	if d.left && d.win.set && d.win.covered(at) {
		d.left = false
		m.emit(at, events.DoorRestored, events.Info, d.spec.Space, d.spec.ID, d.boltContact,
			"%s: a window of space %s has started", d.label(), d.spec.Space)
	}

	reason, pts := d.faultReason(at)
	switch {
	case reason != "" && d.fault == "":
		d.fault, d.faultPts, d.faultSince = reason, pts, at
		m.emit(at, events.DoorWireFault, events.Alarm, d.spec.Space, d.spec.ID, pts, "%s: wire fault: %s", d.label(), reason)
	case reason == "" && d.fault != "":
		m.emit(at, events.DoorRestored, events.Info, d.spec.Space, d.spec.ID, d.faultPts,
			"%s: wire fault cleared (%s)", d.label(), d.fault)
		d.fault, d.faultPts = "", nil
	}
	// No new condition is raised on inputs that cannot be trusted.
	if !usable || d.fault != "" {
		return
	}
	if d.open && !d.held && !at.Before(d.openSince.Add(d.spec.HeldOpenAfter)) {
		d.held = true
		m.emit(at, events.DoorHeldOpen, events.Warning, d.spec.Space, d.spec.ID, d.contactPts,
			"%s held open: open since %s, longer than %s", d.label(), m.clock(d.openSince, at), fmtDur(d.spec.HeldOpenAfter))
	}
	if !d.left && !d.secured() && d.win.set && !d.win.covered(at) {
		end := d.win.prevEnd(at)
		if !at.Before(latest(d.unsecuredSince, end).Add(d.spec.LeftUnlockedAfter)) {
			d.left = true
			after := "with no window of space " + d.spec.Space
			if !end.IsZero() {
				after = fmt.Sprintf("after the window of space %s ended at %s", d.spec.Space, m.clock(end, at))
			}
			m.emit(at, events.DoorLeftUnlocked, events.Warning, d.spec.Space, d.spec.ID, d.boltContact,
				"%s left unlocked %s: %s, not closed and locked since %s", d.label(), after, d.describe(), m.clock(d.unsecuredSince, at))
		}
	}
}

// judgeOpening decides, Settle after an opening of a locked door, whether
// it was forced. A deadbolt that reads retracted by now explains the
// opening (key, handle or motor); otherwise a grant or the unlock output
// within GrantValid before the opening (or read since) authorises it, and
// on a door without a deadbolt input so does the inside handle.
func (d *door) judgeOpening(m *Monitor, at time.Time) {
	o := d.pendingOpen
	d.pendingOpen = time.Time{}
	from := o.Add(-d.spec.GrantValid)
	recent := func(t time.Time) bool { return !t.IsZero() && !t.Before(from) }
	authorised := recent(d.lastGrant) || d.unlock.on() || recent(d.unlockSeen)
	why := ""
	if d.bolt.present {
		if !d.bolt.on() || authorised {
			return // a thrown bolt on an authorised opening is a wire fault, judged below
		}
		why = "while locked (deadbolt thrown)"
	} else {
		if authorised || d.handle.on() || recent(d.handleSeen) {
			return
		}
		why = "while locked (unlock output off, handle not pressed)"
	}
	if d.forced {
		return
	}
	d.forced = true
	pts := append([]string{}, d.boltContact...)
	if d.reader.present {
		pts = append(pts, d.reader.point)
	}
	m.emit(at, events.DoorForced, events.Alarm, d.spec.Space, d.spec.ID, pts,
		"%s forced: opened at %s %s with no access grant", d.label(), m.clock(o, at), why)
}

// faultReason returns the current wire fault, "" for none, with the
// points involved.
func (d *door) faultReason(at time.Time) (string, []string) {
	for _, b := range d.bools() {
		if b.in.present && b.in.invalid {
			return b.in.problem(b.field), []string{b.in.point}
		}
	}
	if !d.disagreeSince.IsZero() && !at.Before(d.disagreeSince.Add(Settle)) {
		return fmt.Sprintf("contact loops disagree: contact %s reads %s, contact_b %s reads %s",
			d.contact.point, openClosed(d.contact.val), d.contactB.point, openClosed(d.contactB.val)), d.contactPts
	}
	if !d.comboSince.IsZero() && !d.forced && d.pendingOpen.IsZero() && !at.Before(d.comboSince.Add(Settle)) {
		return fmt.Sprintf("deadbolt %s reads thrown while the door contact reads open", d.bolt.point),
			append([]string{d.bolt.point}, d.contactPts...)
	}
	// A fault stays raised while an input is unreadable: it cannot be
	// shown to have cleared.
	if d.fault != "" && !d.usable() {
		return d.fault, d.faultPts
	}
	return "", nil
}

func openClosed(open bool) string {
	if open {
		return "open"
	}
	return "closed"
}

// next returns when the door must be evaluated again after at.
func (d *door) next(at time.Time) time.Time {
	var c [6]time.Time
	if !d.disagreeSince.IsZero() && d.fault == "" {
		c[0] = d.disagreeSince.Add(Settle)
	}
	if !d.pendingOpen.IsZero() {
		c[1] = d.pendingOpen.Add(Settle)
	}
	if !d.comboSince.IsZero() && d.fault == "" {
		c[2] = d.comboSince.Add(Settle)
	}
	if d.judged && d.usable() && d.fault == "" {
		if d.open && !d.held {
			c[3] = d.openSince.Add(d.spec.HeldOpenAfter)
		}
		if !d.left && !d.secured() && d.win.set {
			c[4] = d.win.firstOutside(at, d.unsecuredSince, d.spec.LeftUnlockedAfter)
		}
	}
	if d.left && d.win.set {
		c[5] = d.win.nextStart(at)
	}
	return earliest(at, c[:]...)
}

// describe says in words what state the door is in.
func (d *door) describe() string {
	if !d.judged || !d.usable() {
		if p := d.problem(); p != "" {
			return "in an unknown state (" + p + ")"
		}
		return "in an unknown state"
	}
	switch d.state {
	case DoorLocked:
		return "closed and locked"
	case DoorOpen:
		switch {
		case !d.bolt.present:
			return "open"
		case d.bolt.on():
			return "open with the deadbolt reading thrown"
		}
		return "open, deadbolt not thrown"
	case DoorUnlockedKey:
		return "closed but unlocked (deadbolt not thrown)"
	case DoorUnlockedGrant:
		return "closed, unlocked, handle pressed with the unlock output on (access granted)"
	case DoorUnlockedExit:
		return "closed, unlocked, inside handle pressed (exit)"
	case DoorUnlockedSystem:
		return "closed, held unlocked by the access system"
	case DoorClosed:
		return "closed"
	}
	return string(d.state)
}

// DoorStatus is a door's state for status pages and the round.
type DoorStatus struct {
	ID, Name, Space, Area string
	// State is DoorUnknown while an input cannot be used.
	State DoorState
	// Since is when State last changed.
	Since time.Time
	// Secured: closed and locked as far as the inputs tell.
	Secured bool
	// UnsecuredSince is when the door stopped being closed and locked.
	UnsecuredSince time.Time
	// Conditions currently raised.
	HeldOpen, Forced, LeftUnlocked bool
	// Fault is the raised wire fault, "" for none.
	Fault string
	// Problem says why State is unknown.
	Problem string
	// Description is the state in words.
	Description string
}

func (d *door) status() DoorStatus {
	s := DoorStatus{
		ID: d.spec.ID, Name: d.spec.Name, Space: d.spec.Space, Area: d.spec.Area,
		State: d.state, Since: d.stateSince, Secured: d.secured(), UnsecuredSince: d.unsecuredSince,
		HeldOpen: d.held, Forced: d.forced, LeftUnlocked: d.left, Fault: d.fault,
		Problem: d.problem(), Description: d.describe(),
	}
	if !d.judged || !d.usable() {
		s.State = DoorUnknown
	}
	return s
}
