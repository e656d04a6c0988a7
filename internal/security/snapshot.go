package security

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/statefile"
)

// snapshotVersion is the version of the Snapshot format; Restore refuses
// others.
const snapshotVersion = 1

type snapshot struct {
	statefile.Header
	At    time.Time           `json:"at"`
	Doors map[string]doorSnap `json:"doors,omitempty"`
}

// doorSnap is what a restart must not forget of a door: the state it was
// judged in, since when, and the conditions raised.
type doorSnap struct {
	Open           bool      `json:"open,omitempty"`
	State          DoorState `json:"state"`
	StateSince     time.Time `json:"state_since"`
	OpenSince      time.Time `json:"open_since,omitzero"`
	UnsecuredSince time.Time `json:"unsecured_since,omitzero"`
	HeldOpen       bool      `json:"held_open,omitempty"`
	Forced         bool      `json:"forced,omitempty"`
	LeftUnlocked   bool      `json:"left_unlocked,omitempty"`
	Fault          string    `json:"fault,omitempty"`
	FaultPoints    []string  `json:"fault_points,omitempty"`
	FaultSince     time.Time `json:"fault_since,omitzero"`
	LastGrant      time.Time `json:"last_grant,omitzero"`
}

// Snapshot returns the doors' judged states and raised conditions as
// JSON, to be handed to Restore after a restart or a reload, so that a
// door held open across the restart is not reported again with the
// restart as its opening time, and a forced door or a wire fault stays
// raised until it is really cleared. The output is the same for the same
// state.
func (m *Monitor) Snapshot() ([]byte, error) {
	s := snapshot{Header: statefile.Header{Version: snapshotVersion, Site: m.site}, At: m.now, Doors: map[string]doorSnap{}}
	for _, d := range m.doors {
		if !d.judged {
			continue
		}
		s.Doors[d.spec.ID] = doorSnap{
			Open: d.open, State: d.state, StateSince: d.stateSince, OpenSince: d.openSince,
			UnsecuredSince: d.unsecuredSince, HeldOpen: d.held, Forced: d.forced, LeftUnlocked: d.left,
			Fault: d.fault, FaultPoints: slices.Clone(d.faultPts), FaultSince: d.faultSince, LastGrant: d.lastGrant,
		}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("snapshot security of site %q: %w", m.site, err)
	}
	return data, nil
}

// Restore takes back a Snapshot of the same site; call it right after
// NewMonitor, before the first Observe or Advance. Doors the spec no
// longer has are dropped, new doors start unjudged. A door comes back
// judged as it was: when its first readings agree, nothing is reported
// again and its timers run on from the saved times; when they differ,
// the change is reported as seen at that moment (an opening the monitor
// did not see is not judged as forced). On an error the monitor is
// unchanged.
func (m *Monitor) Restore(data []byte) error {
	var s snapshot
	if err := statefile.Decode(data, "security", m.site, snapshotVersion, &s); err != nil {
		return err
	}
	if m.started {
		return fmt.Errorf("restore security of site %q: the monitor has already started", m.site)
	}
	for id, ds := range s.Doors {
		switch ds.State {
		case DoorLocked, DoorOpen, DoorUnlockedKey, DoorUnlockedGrant, DoorUnlockedExit, DoorUnlockedSystem, DoorClosed:
		default:
			return fmt.Errorf("restore security of site %q: door %q has unknown state %q", m.site, id, ds.State)
		}
	}
	for _, d := range m.doors {
		ds, ok := s.Doors[d.spec.ID]
		if !ok {
			continue
		}
		d.judged, d.restored = true, true
		d.open, d.state, d.stateSince, d.openSince = ds.Open, ds.State, ds.StateSince, ds.OpenSince
		d.unsecuredSince = ds.UnsecuredSince
		d.held, d.forced, d.left = ds.HeldOpen, ds.Forced, ds.LeftUnlocked
		d.fault, d.faultPts, d.faultSince = ds.Fault, ds.FaultPoints, ds.FaultSince
		d.lastGrant = ds.LastGrant
		if d.open && d.openSince.IsZero() {
			d.openSince = ds.StateSince
		}
	}
	return nil
}
