package access

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

// Output is where grants go: the ACS's HTTP API or an export file. Push
// makes the output hold exactly the desired grants and reports what it
// did. Implementations are safe for concurrent use; pushes to one output
// are serialised.
type Output interface {
	// ID is the output's id from the gateway config.
	ID() string
	// Push reconciles the output with desired. Failures of single grants
	// are in the Result; the error is for failures of the whole push
	// (state not readable or writable, ctx done).
	Push(ctx context.Context, desired []Grant) (Result, error)
}

// Action is what a push did, or tried to do, with one grant.
type Action string

// Actions.
const (
	// Create gives a grant the output does not have yet.
	Create Action = "create"
	// Update changes a grant the output has, through its reference.
	Update Action = "update"
	// Revoke takes back a grant that is no longer desired, through its
	// reference.
	Revoke Action = "revoke"
	// Expire forgets a grant that has ended, without telling the output:
	// the ACS lets it lapse on its own.
	Expire Action = "expire"
)

// Op is one action on one grant and how it ended.
type Op struct {
	Action Action
	// Grant is the grant as desired (create, update) or as last pushed
	// (revoke, expire); its Bookings are the reasons for the journal.
	Grant Grant
	// Ref is the ACS's reference of the grant, "" for files and failed
	// creates.
	Ref string
	// Attempts is how many requests were made; 0 for files and expiry.
	Attempts int
	// Status is the HTTP status of the last attempt, 0 if none arrived.
	Status int
	// Err is why the action failed, nil when it succeeded.
	Err error
	// Permanent marks a failure that retrying will not fix by itself (a
	// 4xx answer, a limit the gateway would exceed); false for transient
	// failures that outlasted the retries.
	Permanent bool
}

// Failed reports whether the op failed.
func (o Op) Failed() bool { return o.Err != nil }

// String describes the op for people, e.g. "create G1041 at gym_entrance
// 2026-11-26 18:45..2026-11-26 21:15 CET card (ref p-1)".
func (o Op) String() string {
	var b strings.Builder
	b.WriteString(string(o.Action) + " " + o.Grant.String())
	if o.Ref != "" {
		b.WriteString(" (ref " + o.Ref + ")")
	}
	if o.Err != nil {
		b.WriteString(": " + o.Err.Error())
	}
	return b.String()
}

// Result is the summary of one push.
type Result struct {
	// Output is the output's id.
	Output string
	// Ops are the actions taken, in the order they were taken, failed
	// ones included.
	Ops []Op
	// Unchanged counts the desired grants the output already had.
	Unchanged int
	// Written reports whether a file output rewrote its file.
	Written bool
}

// Count returns how many ops of the action succeeded.
func (r Result) Count(a Action) int {
	n := 0
	for _, o := range r.Ops {
		if o.Action == a && o.Err == nil {
			n++
		}
	}
	return n
}

// Failures returns the ops that failed.
func (r Result) Failures() []Op {
	var out []Op
	for _, o := range r.Ops {
		if o.Err != nil {
			out = append(out, o)
		}
	}
	return out
}

// Changed reports whether the push changed anything at the output.
func (r Result) Changed() bool {
	for _, o := range r.Ops {
		if o.Err == nil && o.Action != Expire {
			return true
		}
	}
	return r.Written
}

// String summarises the result, e.g. "acs: 1 created, 0 updated, 2
// revoked, 0 expired, 1 failed, 3 unchanged".
func (r Result) String() string {
	return fmt.Sprintf("%s: %d created, %d updated, %d revoked, %d expired, %d failed, %d unchanged",
		r.Output, r.Count(Create), r.Count(Update), r.Count(Revoke), r.Count(Expire), len(r.Failures()), r.Unchanged)
}

// Events turns each failed op into an access_push_failed event of the
// site at the given time, for the journal. The event's subject is the
// output; booking and organiser are set when a single one is behind the
// grant.
func (r Result) Events(siteID string, at time.Time) []events.Event {
	var out []events.Event
	for _, o := range r.Failures() {
		e := events.Event{
			Time:     at,
			Site:     siteID,
			Kind:     events.AccessPushFailed,
			Severity: events.Warning,
			Subject:  r.Output,
			Message:  fmt.Sprintf("access output %s: %s", r.Output, o),
		}
		if len(o.Grant.Bookings) == 1 {
			e.Booking = o.Grant.Bookings[0].String()
		}
		if len(o.Grant.Organisers) == 1 {
			e.Organiser = o.Grant.Organisers[0]
		}
		out = append(out, e)
	}
	return out
}
