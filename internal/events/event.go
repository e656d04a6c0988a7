// Package events is the gateway's one event model: what the door, alarm
// area, occupancy and patrol-round logic report for people to act on. An
// event is stored durably in the journal before it is streamed to live
// subscribers, so nothing streamed can be lost by a crash.
package events

import "time"

// Kind names an event in lower snake case.
type Kind string

// Event kinds. The list is closed: producers use these constants, filters
// and docs are built from Kinds.
const (
	// Doors (DOMAIN.md section 2).
	DoorOpened       Kind = "door_opened"
	DoorClosed       Kind = "door_closed"
	DoorHeldOpen     Kind = "door_held_open"     // open longer than its limit
	DoorForced       Kind = "door_forced"        // opened while locked, no grant
	DoorLeftUnlocked Kind = "door_left_unlocked" // after the last window
	DoorWireFault    Kind = "door_wire_fault"    // impossible input combination
	DoorRestored     Kind = "door_restored"      // a held-open, forced or fault condition ended
	AccessGranted    Kind = "access_granted"     // a card was granted at a reader
	// Alarm areas and detectors.
	AreaArmed          Kind = "area_armed"
	AreaDisarmed       Kind = "area_disarmed"
	AreaMismatch       Kind = "area_mismatch"         // armed state differs from the schedule
	AreaArmOverOpening Kind = "area_arm_over_opening" // scheduled to arm over an open or unlocked door
	AreaArmFailed      Kind = "area_arm_failed"       // direct control did not take
	Intrusion          Kind = "intrusion"
	Panic              Kind = "panic"
	Leak               Kind = "leak"
	// Occupancy.
	NoShow          Kind = "no_show"
	InUse           Kind = "in_use"         // evidence after a no-show brought the space back
	LightsEnabled   Kind = "lights_enabled" // card-enabled lights switched on
	LightsWarning   Kind = "lights_warning" // warning blink before switch-off
	ValueChangedBMS Kind = "value_changed_at_bms"
	// Access rights output.
	AccessPushFailed Kind = "access_push_failed"
	// Virtual patrol round.
	RoundFinding Kind = "round_finding"
	RoundDone    Kind = "round_done"
)

// Kinds lists every kind, for filters and docs.
var Kinds = []Kind{
	DoorOpened, DoorClosed, DoorHeldOpen, DoorForced, DoorLeftUnlocked, DoorWireFault, DoorRestored, AccessGranted,
	AreaArmed, AreaDisarmed, AreaMismatch, AreaArmOverOpening, AreaArmFailed, Intrusion, Panic, Leak,
	NoShow, InUse, LightsEnabled, LightsWarning, ValueChangedBMS,
	AccessPushFailed,
	RoundFinding, RoundDone,
}

// Severity ranks an event; Critical is reserved for people in danger
// (panic) and alarms.
type Severity string

// Severities, lowest first.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Alarm    Severity = "alarm"
	Critical Severity = "critical"
)

// Rank orders severities: Info 0 .. Critical 3; unknown -1.
func (s Severity) Rank() int {
	switch s {
	case Info:
		return 0
	case Warning:
		return 1
	case Alarm:
		return 2
	case Critical:
		return 3
	}
	return -1
}

// Event is one thing that happened at a site.
type Event struct {
	// ID is the journal id, assigned when the event is stored.
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	Site string    `json:"site"`
	// Space is the space the event concerns, "" for the site as a whole.
	Space    string   `json:"space,omitempty"`
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	// Subject is the door, area, detector or output the event is about.
	Subject string `json:"subject,omitempty"`
	// Points are the source points whose values led to the event.
	Points []string `json:"points,omitempty"`
	// Booking ("source:id") and Organiser (pseudonymous association id)
	// are set where a booking is involved.
	Booking   string `json:"booking,omitempty"`
	Organiser string `json:"organiser,omitempty"`
	Message   string `json:"message"`
	// CardHolder is personal data: who held the card. It is stored only
	// when the mapping says so, pruned after the declared retention, and
	// never written to exports or streams.
	CardHolder string `json:"-"`
}
