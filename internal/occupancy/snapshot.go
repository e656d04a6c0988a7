package occupancy

import (
	"cmp"
	"encoding/json"
	"errors"
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
	At        time.Time              `json:"at"`
	CoverFrom time.Time              `json:"cover_from"`
	Windows   map[string][]Window    `json:"windows,omitempty"`
	Samples   map[string][]sample    `json:"samples,omitempty"`
	Grants    map[string][]time.Time `json:"grants,omitempty"`
	Records   []record               `json:"records,omitempty"`
	Lights    []lightsMark           `json:"lights,omitempty"`
}

// lightsMark is what was announced of a booking's lights.
type lightsMark struct {
	Space   string    `json:"space"`
	Booking string    `json:"booking"`
	Enabled bool      `json:"enabled,omitempty"`
	Warned  time.Time `json:"warned,omitempty"` // the end the warning was for
}

// Snapshot returns the tracker's state as JSON, for the integrator to
// store and hand to Restore after a restart: the judgements (so a no-show
// is neither forgotten nor announced twice), the history of readings and
// grants (so evidence and cards from before the restart still count), the
// booking windows and what was announced of the lights. The output is the
// same for the same state.
func (t *Tracker) Snapshot() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := snapshot{Header: statefile.Header{Version: snapshotVersion, Site: t.site}, At: t.clock, CoverFrom: t.coverFrom,
		Windows: map[string][]Window{}, Samples: t.samples, Grants: t.grants}
	for _, sp := range t.spaces {
		if len(sp.windows) > 0 {
			s.Windows[sp.id] = sp.windows
		}
	}
	for _, r := range t.records {
		s.Records = append(s.Records, *r)
	}
	slices.SortFunc(s.Records, func(a, b record) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Space, b.Space), cmp.Compare(a.Booking, b.Booking))
	})
	marks := map[key]*lightsMark{}
	mark := func(k key) *lightsMark {
		if marks[k] == nil {
			marks[k] = &lightsMark{Space: k.space, Booking: k.booking}
		}
		return marks[k]
	}
	for k, on := range t.enabled {
		mark(k).Enabled = on
	}
	for k, end := range t.warned {
		mark(k).Warned = end
	}
	for _, m := range marks {
		s.Lights = append(s.Lights, *m)
	}
	slices.SortFunc(s.Lights, func(a, b lightsMark) int {
		return cmp.Or(cmp.Compare(a.Space, b.Space), cmp.Compare(a.Booking, b.Booking))
	})
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("snapshot occupancy of site %q: %w", t.site, err)
	}
	return b, nil
}

// Restore replaces the tracker's state with a Snapshot, normally of the
// same site taken before a restart; call it right after NewTracker. What
// concerns spaces or inputs the spec no longer has is dropped, except
// judgements, which stay in the report. If the first Advance after it
// comes more than MaxGap after the snapshot, the tracker counts the gap
// as not watched. On an error the tracker is unchanged.
func (t *Tracker) Restore(data []byte) error {
	var s snapshot
	if err := statefile.Decode(data, "occupancy", t.site, snapshotVersion, &s); err != nil {
		return err
	}
	var errs []error
	for i, r := range s.Records {
		switch {
		case r.Space == "" || r.Booking == "":
			errs = append(errs, fmt.Errorf("record %d has no space or booking", i))
		case !r.End.After(r.Start):
			errs = append(errs, fmt.Errorf("record %d (booking %q) ends before it starts", i, r.Booking))
		}
		switch r.Outcome {
		case OutcomeShown, OutcomeNoShow, OutcomeLate, OutcomeUnjudged:
		default:
			errs = append(errs, fmt.Errorf("record %d (booking %q) has unknown outcome %q", i, r.Booking, r.Outcome))
		}
	}
	for id, ws := range s.Windows {
		for _, w := range ws {
			if w.Booking == "" || w.Start.IsZero() || !w.End.After(w.Start) {
				errs = append(errs, fmt.Errorf("window %q of space %q is not a valid window", w.Booking, id))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restore occupancy of site %q: %w", t.site, err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	in := func(x time.Time) time.Time {
		if x.IsZero() {
			return x
		}
		return x.In(t.loc)
	}
	t.clock, t.coverFrom, t.restoredAt = in(s.At), in(s.CoverFrom), in(s.At)
	if s.At.IsZero() {
		t.restoredAt = time.Time{}
	}
	t.samples = map[string][]sample{}
	for p, ss := range s.Samples {
		if len(t.byPoint[p]) == 0 {
			continue
		}
		var clean []sample
		for _, x := range ss {
			if !x.At.IsZero() {
				x.At = in(x.At)
				if !finite(x.V) {
					x.V, x.OK = 0, false
				}
				clean = addSample(clean, x)
			}
		}
		t.samples[p] = clean
	}
	t.grants = map[string][]time.Time{}
	for d, ts := range s.Grants {
		if len(t.byDoor[d]) == 0 {
			continue
		}
		var clean []time.Time
		for _, x := range ts {
			if !x.IsZero() {
				clean = addTime(clean, in(x))
			}
		}
		t.grants[d] = clean
	}
	for _, sp := range t.spaces {
		sp.windows = nil
		seen := map[string]bool{}
		for _, w := range s.Windows[sp.id] {
			if !seen[w.Booking] {
				seen[w.Booking] = true
				w.Start, w.End = in(w.Start), in(w.End)
				sp.windows = append(sp.windows, w)
			}
		}
		slices.SortFunc(sp.windows, func(a, b Window) int {
			return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Booking, b.Booking))
		})
	}
	t.records = map[key]*record{}
	for _, r := range s.Records {
		r.Start, r.End, r.Deadline = in(r.Start), in(r.End), in(r.Deadline)
		if r.Evidence != nil {
			r.Evidence.Time = in(r.Evidence.Time)
		}
		t.records[key{r.Space, r.Booking}] = &r
	}
	t.enabled, t.warned = map[key]bool{}, map[key]time.Time{}
	for _, m := range s.Lights {
		k := key{m.Space, m.Booking}
		if m.Enabled {
			t.enabled[k] = true
		}
		if !m.Warned.IsZero() {
			t.warned[k] = in(m.Warned)
		}
	}
	t.rev++
	return nil
}
