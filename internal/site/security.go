package site

import "time"

// This file holds the access and alarm side of a site: doors, detectors,
// alarm areas, occupancy evidence, card-enabled lights and the patrol
// round. The logic lives in internal/security and internal/occupancy;
// these are the resolved declarations.

// Input is a point read as a bool: a value other than 0 is true, and
// Invert flips it (a normally closed loop that reads 1 when the door is
// closed is a contact with Invert).
type Input struct {
	Point  *Point
	Invert bool
}

// Door is a portal: a door with its lock, as the access and alarm systems
// see it (DOMAIN.md section 2). Each input is optional; true means: bolt
// thrown, handle pressed, door open, unlock output on, access granted.
type Door struct {
	ID   string
	Name string
	// Space is the space the door serves; Area the alarm area it belongs
	// to, nil for none.
	Space *Space
	Area  *Area

	Deadbolt, Handle, Contact, ContactB, Unlock, Reader *Input
	// Card is the card number read at the reader: personal data, kept
	// with events only when the site's privacy settings allow it.
	Card *Point

	HeldOpenAfter     time.Duration
	GrantValid        time.Duration
	LeftUnlockedAfter time.Duration
}

// DetectorKind is the kind of an intrusion or safety detector.
type DetectorKind string

// Detector kinds.
const (
	DetectorContact    DetectorKind = "contact"
	DetectorPIR        DetectorKind = "pir"
	DetectorMicrowave  DetectorKind = "microwave"
	DetectorDualTech   DetectorKind = "dual_tech"
	DetectorGlassBreak DetectorKind = "glass_break"
	DetectorPanic      DetectorKind = "panic"
	DetectorWaterFlow  DetectorKind = "water_flow"
)

// Detector belongs to exactly one alarm area.
type Detector struct {
	ID   string
	Kind DetectorKind
	// Input is the detector; InputB the second technology of a dual-tech
	// detector, which alarms only when both trip within Within.
	Input  *Input
	InputB *Input
	Within time.Duration
	// Above is the flow above which a water-flow detector is active.
	Above float64
	Area  *Area
}

// AreaControl says who arms an alarm area.
type AreaControl string

// Area controls.
const (
	// ControlPanel leaves arming to the certified alarm panel: the gateway
	// hands it the schedule and checks the armed state.
	ControlPanel AreaControl = "panel"
	// ControlDirect lets the gateway pulse arm and disarm outputs itself
	// (an uninsured hall, a keyswitch input).
	ControlDirect AreaControl = "direct"
)

// Area is an alarm area. Its windows (when it should be disarmed) are the
// occupancy windows of Space widened by DisarmBefore and RearmAfter.
type Area struct {
	ID   string
	Name string
	// Space is the space whose bookings and schedules drive the area.
	Space        *Space
	DisarmBefore time.Duration
	RearmAfter   time.Duration
	// Armed is the armed state read back from the panel.
	Armed *Input
	// Authorisation is a writable point the gateway sets to
	// AuthorisedValue inside the area's windows and to
	// UnauthorisedValue outside: the schedule handed to the panel.
	Authorisation     *Point
	AuthorisedValue   Value
	UnauthorisedValue Value
	ExitDelay         time.Duration
	MismatchAfter     time.Duration
	// Night is when water flow in the armed area is a leak alarm.
	Night   Period
	Control AreaControl
	// Arm and Disarm are pulsed for Pulse under direct control.
	Arm, Disarm *Point
	Pulse       time.Duration
	Doors       []*Door
	Detectors   []*Detector
}

// Evidence is one source of evidence that a space is in use.
type Evidence struct {
	// Door: a card granted at this door.
	Door *Door
	// Point: a reading; with Above, a value above it; with Rise, an
	// increase of at least Rise since the booking started; with neither,
	// a true bool.
	Point *Point
	Above *float64
	Rise  *float64
}

// NoShow declares no-show detection for a space.
type NoShow struct {
	// Grace is how long after a booking's start evidence must appear.
	Grace time.Duration
	// Before is how long before the start evidence already counts.
	Before time.Duration
}

// LightsByCard gates some bindings of a space: their occupied value is
// written only inside a booked window and after a card at one of Doors
// (or a press of one of Buttons).
type LightsByCard struct {
	Doors   []*Door
	Buttons []*Point
	Points  []*Point
	// Early is how long before a window a card counts for it.
	Early time.Duration
	// WarningBefore and WarningBlink: the lights go off for Blink this
	// long before the window ends, as a warning; zero for none.
	WarningBefore time.Duration
	WarningBlink  time.Duration
}

// AccessRights is a site's access rights from bookings (internal/access).
type AccessRights struct {
	MarginBefore, MarginAfter time.Duration
	// PinSchedule: inside it doors want card + PIN; nil for card only.
	PinSchedule *Schedule
	// Groups maps organisers to access groups.
	Groups map[string]string
	// Outputs are ids of the gateway's access outputs.
	Outputs []string
	// Points are door schedule enables per group and door.
	Points []AccessPoint
}

// AccessPoint is a writable bool point true while a group may use a door.
type AccessPoint struct {
	Group string
	Door  *Door
	Point *Point
}

// Round is the virtual patrol round after the site's last window.
type Round struct {
	// After is how long after the day's last window the round runs.
	After time.Duration
}

// Energy declares the energy report of a site (internal/energy): the
// lending period that heat and light ran through under the old practice,
// and per space its declared powers and which points are its heating
// and its lighting.
type Energy struct {
	Lending *Schedule
	Spaces  []EnergySpace
}

// EnergySpace is one space of the energy report.
type EnergySpace struct {
	Space                 *Space
	HeatingKW, LightingKW float64
	Heating, Lighting     []*Point
}
