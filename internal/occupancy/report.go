package occupancy

import (
	"cmp"
	"slices"
	"time"
)

// SpaceState is what a space looks like at the tracker's clock (its last
// Advance).
type SpaceState struct {
	Space string
	// Booking, Organiser, Start and End are the current booking's, empty
	// when the space is not booked now (the earliest-starting one when
	// bookings overlap).
	Booking   string
	Organiser string
	Start     time.Time
	End       time.Time
	// InUse: evidence for the current booking (from its start minus
	// before), or, when not booked, evidence within the last before
	// (15 minutes when before is 0): someone is there without a booking.
	InUse bool
	// NoShow: the current booking is a no-show (no evidence since).
	NoShow bool
	// LastEvidence is the latest evidence counted for InUse, nil if none.
	LastEvidence *Evidence
	// LightsOn: card-enabled lights are on now (false while blinking and
	// for spaces without lights_by_card).
	LightsOn bool
}

// State returns every space's state, in spec order.
func (t *Tracker) State() []SpaceState {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock
	out := make([]SpaceState, 0, len(t.spaces))
	for _, sp := range t.spaces {
		st := SpaceState{Space: sp.id}
		var cur *Window
		for i, w := range sp.windows {
			if !now.Before(w.Start) && now.Before(w.End) {
				cur = &sp.windows[i]
				break
			}
		}
		from := now.Add(-sp.before)
		if sp.before == 0 {
			from = now.Add(-DefaultBefore)
		}
		if cur != nil {
			st.Booking, st.Organiser, st.Start, st.End = cur.Booking, cur.Organiser, cur.Start, cur.End
			from = cur.Start.Add(-sp.before)
			if r := t.records[key{sp.id, cur.Booking}]; r != nil && r.Outcome == OutcomeNoShow {
				st.NoShow = true
			}
		}
		if _, last, ok := t.evidence(sp, from, now.Add(1)); ok && !st.NoShow {
			st.InUse, st.LastEvidence = true, &last
		}
		if sp.lights != nil {
			for _, g := range t.gates(sp) {
				if !g.on.IsZero() && !now.Before(g.on) && now.Before(g.w.End) &&
					!(g.blink && !now.Before(g.warnAt) && now.Before(g.warnAt.Add(sp.lights.blink))) {
					st.LightsOn = true
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// ReportRow is one organiser's line in the no-show report.
type ReportRow struct {
	// Organiser is the pseudonymous association id ("" when the booking
	// had none).
	Organiser string
	// Bookings counts the judged bookings: shown, no-show and late.
	Bookings int
	// NoShows counts bookings with no evidence from the deadline to now
	// (or to their end).
	NoShows int
	// Late counts no-shows that evidence later brought back.
	Late int
	// Unjudged counts bookings the tracker could not judge (it was not
	// watching the whole evidence range, and no evidence came); they are
	// not in Bookings.
	Unjudged int
	// Rate is NoShows / Bookings, 0 without bookings.
	Rate float64
}

// Report returns the no-show report per organiser for the bookings
// starting in [from, to) whose deadline has passed, sorted by organiser.
// Bookings still before their deadline are not counted yet.
func (t *Tracker) Report(from, to time.Time) []ReportRow {
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := map[string]*ReportRow{}
	for _, r := range t.records {
		if r.Start.Before(from) || !r.Start.Before(to) {
			continue
		}
		row := rows[r.Organiser]
		if row == nil {
			row = &ReportRow{Organiser: r.Organiser}
			rows[r.Organiser] = row
		}
		switch r.Outcome {
		case OutcomeUnjudged:
			row.Unjudged++
			continue
		case OutcomeNoShow:
			row.NoShows++
		case OutcomeLate:
			row.Late++
		}
		row.Bookings++
	}
	out := make([]ReportRow, 0, len(rows))
	for _, row := range rows {
		if row.Bookings > 0 {
			row.Rate = float64(row.NoShows) / float64(row.Bookings)
		}
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b ReportRow) int { return cmp.Compare(a.Organiser, b.Organiser) })
	return out
}

// Judgement is the outcome of one booking, for a caller that keeps its
// own figures.
type Judgement struct {
	Space, Booking, Organiser string
	Start, End, Deadline      time.Time
	Outcome                   Outcome
	// Evidence is the first evidence (shown) or the one that ended the
	// no-show (late), nil otherwise.
	Evidence *Evidence
}

// Judgements lists the judged bookings starting in [from, to), by start,
// space and booking.
func (t *Tracker) Judgements(from, to time.Time) []Judgement {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Judgement
	for _, r := range t.records {
		if r.Start.Before(from) || !r.Start.Before(to) {
			continue
		}
		j := Judgement{Space: r.Space, Booking: r.Booking, Organiser: r.Organiser, Start: r.Start, End: r.End, Deadline: r.Deadline, Outcome: r.Outcome}
		if r.Evidence != nil {
			e := *r.Evidence
			j.Evidence = &e
		}
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b Judgement) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Space, b.Space), cmp.Compare(a.Booking, b.Booking))
	})
	return out
}
