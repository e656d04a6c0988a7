// Package access turns bookings into access rights for the access-control
// system (ACS) and keeps the ACS in line with them through its outputs: a
// JSON HTTP push, a file export and door-schedule points.
//
// Only pseudonymous access-group ids, door ids, times, modes and grant keys
// ever leave the gateway. Cards, PINs, validity periods and blocked or
// returned cards stay the access-control system's business.
package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Mode is how a door lets a group in during a grant.
type Mode string

// Modes. In DOMAIN.md terms they are the two parts of an ACS time
// schedule: time for card and time for card + code.
const (
	// ModeCard opens the door on a valid card.
	ModeCard Mode = "card"
	// ModeCardPIN needs the card and the holder's PIN (school hours).
	ModeCardPIN Mode = "card_pin"
)

// Valid reports whether m is one of the modes.
func (m Mode) Valid() bool { return m == ModeCard || m == ModeCardPIN }

// Grant is one permission of an access group at a door for a period in
// one mode. A booking's window is split into grants at the boundaries of
// the PIN schedule, so one booking can lead to several grants per door.
type Grant struct {
	// Key identifies the grant across reconciliations. It is a hash of
	// the group, the door, the grant's anchor booking (the smallest
	// booking key behind it), the mode and the ordinal of the segment of
	// that mode within the window, so it does not change when the
	// booking moves, when another booking changes, or when a later
	// booking is merged in. It holds no booking id in clear.
	Key string `json:"key"`
	// Group is the ACS access group: the mapping's group for the
	// organiser, or "org-<organiser>".
	Group string `json:"group"`
	// Door is the door id from the mapping.
	Door string `json:"door"`
	// From and To bound the grant, [From, To), in the site's location.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Mode is card or card_pin.
	Mode Mode `json:"mode"`
	// Bookings are the bookings behind the grant, sorted; more than one
	// when the target's limit made the gateway merge windows. They are
	// for the journal and are never pushed.
	Bookings []booking.Key `json:"-"`
	// Organisers are the pseudonymous organisers of those bookings,
	// sorted, without duplicates. They are never pushed either.
	Organisers []string `json:"-"`
}

// String describes the grant for people and logs, without booking ids.
func (g Grant) String() string {
	return fmt.Sprintf("%s at %s %s..%s %s", g.Group, g.Door,
		g.From.Format("2006-01-02 15:04"), g.To.Format("2006-01-02 15:04 MST"), g.Mode)
}

// compareGrants orders grants by group, door, start, end, mode and key.
func compareGrants(a, b Grant) int {
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	if c := strings.Compare(a.Door, b.Door); c != 0 {
		return c
	}
	if c := a.From.Compare(b.From); c != 0 {
		return c
	}
	if c := a.To.Compare(b.To); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Mode), string(b.Mode)); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// SortGrants orders grants by group, door, start, end, mode and key, the
// order Grants returns them in.
func SortGrants(gs []Grant) { slices.SortFunc(gs, compareGrants) }

// Spec is the access section of a site's mapping, resolved by the
// integrator: which doors each booked resource opens, for which group, in
// which mode, with which margins.
type Spec struct {
	// Site is the site id, for messages.
	Site string
	// Location is the site's time zone; the PIN schedule is read in it
	// and grants are expressed in it. Nil means UTC.
	Location *time.Location
	// MarginBefore and MarginAfter widen each booking: the club's cards
	// open the door from MarginBefore before the booking until
	// MarginAfter after it (mapping: margin_before, margin_after).
	MarginBefore, MarginAfter time.Duration
	// PinSchedule is the schedule inside which doors need card + PIN
	// (school hours, mapping: pin_schedule); outside it a card is
	// enough. Nil means card mode always.
	PinSchedule *site.Schedule
	// Groups maps a pseudonymous organiser id to its ACS access group
	// (mapping: groups). An organiser not listed gets "org-<organiser>".
	Groups map[string]string
	// Spaces say which doors a booking of each resource opens (mapping:
	// spaces[].doors). A resource listed by several spaces opens all
	// their doors.
	Spaces []SpaceDoors
	// MaxPerGroupDoor is the target's limit: at most this many
	// simultaneous permissions per group and door (output option
	// max_per_group_door). 0 means no limit. With a limit, windows of one
	// group at one door that overlap or touch are merged as far as the
	// limit needs. When a site feeds several outputs, compute grants per
	// output or use the smallest limit among them.
	MaxPerGroupDoor int
}

// SpaceDoors is the doors that a booking of one of Resources opens.
type SpaceDoors struct {
	// Space is the space id, for messages.
	Space string
	// Resources are the booking system's ids of the space.
	Resources []string
	// Doors are the door ids whose access the booking's group gets.
	Doors []string
}

// SpacesFromSite pairs each space of s that has doors in doors (space id
// -> door ids, from the mapping's spaces[].doors) with its resources, in
// site order. Door lists of unknown spaces are ignored; Spec.Validate
// does not see them, so the integrator validates the space ids.
func SpacesFromSite(s *site.Site, doors map[string][]string) []SpaceDoors {
	var out []SpaceDoors
	for _, sp := range s.Spaces {
		if d := doors[sp.ID]; len(d) > 0 {
			out = append(out, SpaceDoors{Space: sp.ID, Resources: slices.Clone(sp.Resources), Doors: slices.Clone(d)})
		}
	}
	return out
}

// GroupOf returns the access group of a pseudonymous organiser: the
// mapped group, or "org-<organiser>".
func (s *Spec) GroupOf(organiser string) string {
	if g, ok := s.Groups[organiser]; ok {
		return g
	}
	return "org-" + organiser
}

// ErrSpec is wrapped by every error of Spec.Validate.
var ErrSpec = errors.New("invalid access spec")

// Validate checks the spec and returns every problem found, joined, each
// wrapping ErrSpec.
func (s *Spec) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrSpec}, args...)...))
	}
	if s.MarginBefore < 0 {
		add("margin_before %s is negative", s.MarginBefore)
	}
	if s.MarginAfter < 0 {
		add("margin_after %s is negative", s.MarginAfter)
	}
	if s.MaxPerGroupDoor < 0 {
		add("max_per_group_door %d is negative; use 0 for no limit", s.MaxPerGroupDoor)
	}
	for _, org := range sortedKeys(s.Groups) {
		if g := s.Groups[org]; strings.TrimSpace(g) == "" {
			add("group for organiser %q is empty", org)
		}
	}
	for _, sp := range s.Spaces {
		if len(sp.Resources) == 0 {
			add("space %q has doors but no booking resources", sp.Space)
		}
		for _, d := range sp.Doors {
			if strings.TrimSpace(d) == "" {
				add("space %q has an empty door id", sp.Space)
			}
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
