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
	Areas map[string]areaSnap `json:"areas,omitempty"`
	// Leaks are the water-flow detectors with a leak raised.
	Leaks []string `json:"leaks,omitempty"`
}

// areaSnap is what a restart must not forget of an alarm area: the
// mismatch or failed arm raised, and the arm pulse sent.
type areaSnap struct {
	Mismatch      Mismatch  `json:"mismatch,omitempty"`
	MismatchSince time.Time `json:"mismatch_since,omitzero"`
	ArmFailed     bool      `json:"arm_failed,omitempty"`
	FailedSince   time.Time `json:"failed_since,omitzero"`
	ArmCommanded  time.Time `json:"arm_commanded,omitzero"`
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

// Snapshot returns the doors' judged states and raised conditions, the
// areas' mismatches and failed arms, and the leaks raised, as JSON, to be
// handed to Restore after a restart or a reload: a door held open across
// the restart is not reported again with the restart as its opening time,
// a forced door, a wire fault, an area's mismatch or a leak stays raised
// until it really clears, and none is raised twice. The output is the
// same for the same state.
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
	s.Areas = map[string]areaSnap{}
	for _, a := range m.areas {
		if a.mismatch == NoMismatch && !a.armFailed && a.armCommanded.IsZero() {
			continue
		}
		s.Areas[a.spec.ID] = areaSnap{Mismatch: a.mismatch, MismatchSince: a.mismatchSince,
			ArmFailed: a.armFailed, FailedSince: a.failedSince, ArmCommanded: a.armCommanded}
	}
	for _, d := range m.dets {
		if d.leak {
			s.Leaks = append(s.Leaks, d.spec.ID)
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
	for id, as := range s.Areas {
		if _, known := mismatchWords[as.Mismatch]; as.Mismatch != NoMismatch && !known {
			return fmt.Errorf("restore security of site %q: area %q has unknown mismatch %q", m.site, id, as.Mismatch)
		}
	}
	for _, a := range m.areas {
		if as, ok := s.Areas[a.spec.ID]; ok {
			a.mismatch, a.mismatchSince = as.Mismatch, as.MismatchSince
			a.armFailed, a.failedSince, a.armCommanded = as.ArmFailed, as.FailedSince, as.ArmCommanded
			a.restored = true
		}
	}
	for _, d := range m.dets {
		d.leak = slices.Contains(s.Leaks, d.spec.ID)
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
