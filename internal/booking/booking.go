// Package booking holds the normalised booking record that every feed
// adapter produces and the schedule compiler consumes.
package booking

import (
	"fmt"
	"time"
)

// Status is the state of one booking occurrence.
type Status string

// Booking statuses.
const (
	// Confirmed bookings make their space occupied.
	Confirmed Status = "confirmed"
	// Tentative bookings are treated like confirmed ones for heating and
	// lighting: an unheated hall is worse than a heated empty one.
	Tentative Status = "tentative"
	// Cancelled bookings are kept so that a cancellation can be reported
	// and undone, but never make a space occupied.
	Cancelled Status = "cancelled"
	// Superseded bookings lost a conflict against a booking of a source
	// with higher precedence.
	Superseded Status = "superseded"
)

// Active reports whether a booking with this status makes its space occupied.
func (s Status) Active() bool { return s == Confirmed || s == Tentative }

// Booking is one occurrence of a booking, normalised from any feed.
//
// Booking holds no personal data: Organiser is a pseudonymous association
// id, never a person's name or e-mail address.
type Booking struct {
	// Source is the id of the booking source (feed) it came from.
	Source string `json:"source"`
	// ID is stable across polls: the iCalendar UID plus the recurrence id
	// of the occurrence ("UID" or "UID/20261126T180000Z").
	ID string `json:"id"`
	// Resource is the booking system's id of the booked room or pitch.
	Resource string `json:"resource"`
	// Organiser is a pseudonymous id of the booking association.
	Organiser string `json:"organiser,omitempty"`
	// Start and End bound the booking: [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Status is confirmed, tentative, cancelled or superseded.
	Status Status `json:"status"`
}

// String identifies the booking in messages and plan reasons.
func (b Booking) String() string {
	return fmt.Sprintf("%s:%s", b.Source, b.ID)
}

// OccurrenceID joins a UID and a recurrence id into a stable booking id.
// A non-recurring event has the bare UID as its id.
func OccurrenceID(uid string, recurrenceID time.Time) string {
	if recurrenceID.IsZero() {
		return uid
	}
	return uid + "/" + recurrenceID.UTC().Format("20060102T150405Z")
}
