// Package uaserver serves the gateway's state to BMS vendors over OPC UA
// from a supervised child process, so that a crash or hang of the OPC UA
// server (gopcua's, which has known crash bugs) never stops control.
//
// The gateway builds a Snapshot (Build) and hands it to a Supervisor
// (Publish), which runs `bmsgw uaserver --socket PATH` as a child process,
// feeds it over a Unix socket and restarts it with backoff when it exits
// or stops answering. The child (RunChild) serves the snapshot's address
// space with gopcua's server, security None only, and sends vendor writes
// that pass its checks back to the gateway (Supervisor.Writes). See
// docs/opcua-server.md.
package uaserver

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/control"
)

// EventSlots is how many of the latest events each space (and each site,
// for site-wide events) shows; the slots always exist, so their node ids
// are stable.
const EventSlots = 5

// Snapshot is what the OPC UA server shows: the gateway's state at one
// instant. It is JSON-serialisable (it crosses the socket to the child).
// A published Snapshot must not be modified afterwards.
type Snapshot struct {
	// Time is when the snapshot was taken.
	Time  time.Time `json:"time"`
	Sites []Site    `json:"sites"`
	// Feeds are the booking sources the plans come from: whether the
	// plans stand on a fresh feed, or on the last good one while the
	// booking system fails.
	Feeds []control.FeedStatus `json:"feeds,omitempty"`
}

// Site is one building.
type Site struct {
	ID     string  `json:"id"`
	Name   string  `json:"name,omitempty"`
	Spaces []Space `json:"spaces,omitempty"`
	// Points are the site's points no space binds.
	Points []Point `json:"points,omitempty"`
	// Events are the latest site-wide events (no space), newest first.
	Events  []Event  `json:"events,omitempty"`
	Devices []Device `json:"devices,omitempty"`
}

// Space is a room, gym, pitch or wing and its occupancy.
type Space struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Occupied bool   `json:"occupied"`
	// Current is the occupancy window the space is in, nil when vacant;
	// Next is the next window to start, nil when none is known.
	Current *Window `json:"current,omitempty"`
	Next    *Window `json:"next,omitempty"`
	// Organiser is the pseudonymous organiser of the current booking (of
	// the next one when vacant), "" when none.
	Organiser string `json:"organiser,omitempty"`
	// Source is what occupies the space now (booking, schedule,
	// exception, child), "" when vacant.
	Source string `json:"source,omitempty"`
	// Points are the points the space binds.
	Points []Point `json:"points,omitempty"`
	// Events are the space's latest events, newest first; only the first
	// EventSlots are shown.
	Events []Event `json:"events,omitempty"`
}

// Window is an occupancy window [Start, End).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Point is one controlled point: what it should be, what it is, and why.
type Point struct {
	ID string `json:"id"`
	// Bool is true for a boolean point (served as Boolean), false for a
	// number (served as Double, in engineering units).
	Bool bool   `json:"bool,omitempty"`
	Unit string `json:"unit,omitempty"`
	// Desired and Actual are nil while unknown.
	Desired *float64 `json:"desired,omitempty"`
	Actual  *float64 `json:"actual,omitempty"`
	// Source is where the desired value comes from (override, booking,
	// schedule, occupancy, default).
	Source string `json:"source,omitempty"`
	InSync bool   `json:"in_sync"`
	// Override is the value of the active override, nil when none.
	Override *float64 `json:"override,omitempty"`
}

// Event is one event as vendors see it: no card holders, no organisers.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity,omitempty"`
	Message  string    `json:"message"`
}

// Device is one device's health.
type Device struct {
	Connection string    `json:"connection"`
	Device     string    `json:"device"`
	Up         bool      `json:"up"`
	Since      time.Time `json:"since"`
	LastError  string    `json:"last_error,omitempty"`
}

// ErrBadSnapshot is wrapped by Check's errors.
var ErrBadSnapshot = errors.New("bad snapshot")

// Check reports every problem that would keep the snapshot from being
// served: empty ids, ids containing "/" (node ids are paths), duplicate
// ids, and values that are not finite. The server keeps serving the last
// good snapshot when a new one fails Check.
func (s *Snapshot) Check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...))
	}
	id := func(what, v string) {
		if v == "" || strings.Contains(v, "/") {
			bad("%s id %q must be non-empty and contain no \"/\"", what, v)
		}
	}
	num := func(what string, v *float64) {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			bad("%s is %v", what, *v)
		}
	}
	points := func(site string, ps []Point) {
		for _, p := range ps {
			id("point", p.ID)
			num(site+"/"+p.ID+" desired", p.Desired)
			num(site+"/"+p.ID+" actual", p.Actual)
			num(site+"/"+p.ID+" override", p.Override)
		}
	}
	if len(errs) == 0 {
		seen := map[string]bool{}
		for _, site := range s.Sites {
			id("site", site.ID)
			if seen[site.ID] {
				bad("site %q appears twice", site.ID)
			}
			seen[site.ID] = true
			points(site.ID, site.Points)
			for _, sp := range site.Spaces {
				id("space", sp.ID)
				points(site.ID, sp.Points)
			}
			for _, d := range site.Devices {
				id("connection", d.Connection)
				id("device", d.Device)
			}
		}
		for _, f := range s.Feeds {
			id("booking source", f.Source)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Node ids must be unique across the whole address space (a space
	// and a site-level point of the same id would collide).
	_, err := buildTree(s, nil, nil)
	return err
}
