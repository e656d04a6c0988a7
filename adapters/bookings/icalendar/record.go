package icalendar

import "time"

// Record is the JSON form of an occurrence that `bmsgw bookings expand
// --json` prints and testdata/reference_expand.py reproduces: times in RFC
// 3339 UTC, RecurrenceID "" for a non-recurring event.
type Record struct {
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrence_id"`
	Summary      string `json:"summary"`
	Location     string `json:"location"`
	Start        string `json:"start"`
	End          string `json:"end"`
}

// RecordOf converts an occurrence to its Record.
func RecordOf(o Occurrence) Record {
	r := Record{
		UID:      o.UID,
		Summary:  o.Summary,
		Location: o.Location,
		Start:    o.Start.UTC().Format(time.RFC3339),
		End:      o.End.UTC().Format(time.RFC3339),
	}
	if !o.RecurrenceID.IsZero() {
		r.RecurrenceID = o.RecurrenceID.UTC().Format(time.RFC3339)
	}
	return r
}
