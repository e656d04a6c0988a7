package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/store"
)

// Severities lists every severity, lowest first.
var Severities = []Severity{Info, Warning, Alarm, Critical}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// ParseKinds parses a comma-separated list of kinds ("door_forced,panic"),
// with a clear error for a kind that does not exist; "" is none.
func ParseKinds(s string) ([]Kind, error) {
	var out []Kind
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if !Kind(k).Valid() {
			return nil, fmt.Errorf("unknown event kind %q; kinds are %s", k, joinKinds(Kinds))
		}
		out = append(out, Kind(k))
	}
	return out, nil
}

// ParseSeverity parses a severity, with a clear error for one that does
// not exist; "" is none.
func ParseSeverity(s string) (Severity, error) {
	if s == "" || Severity(s).Rank() >= 0 {
		return Severity(s), nil
	}
	return "", fmt.Errorf("unknown severity %q; use info, warning, alarm or critical", s)
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Filter selects events, from the journal (Query) and live (Subscribe).
// The zero Filter selects every event.
type Filter struct {
	// SinceID, when positive, selects the events with a larger id: what a
	// reader that has seen SinceID has not.
	SinceID int64
	// Since is the earliest time, inclusive; Until the latest,
	// exclusive. Zero for no bound.
	Since, Until time.Time
	// Kinds selects events of these kinds; empty for all.
	Kinds []Kind
	// Site and Space, when set, select events of that site and space.
	Site, Space string
	// MinSeverity selects events of this severity or higher; "" for all.
	MinSeverity Severity
	// Limit, when positive, keeps only the latest Limit events (Query).
	Limit int
	// First, when positive, keeps only the First events with the lowest
	// ids, in id order (Query), for reading the journal page by page
	// with SinceID. It cannot be combined with Limit.
	First int
	// Personal fills in the card holder where the journal kept it
	// (Query; never for subscriptions). Only a person at the gateway's
	// own console asks for it; exports and streams never do.
	Personal bool
}

// Validate reports a filter that cannot select anything meaningful: an
// unknown kind or severity, a negative limit, or limit and first
// together.
func (f Filter) Validate() error {
	var errs []error
	for _, k := range f.Kinds {
		if !k.Valid() {
			errs = append(errs, fmt.Errorf("unknown event kind %q; kinds are %s", k, joinKinds(Kinds)))
		}
	}
	if _, err := ParseSeverity(string(f.MinSeverity)); err != nil {
		errs = append(errs, err)
	}
	if f.Limit < 0 || f.First < 0 || f.SinceID < 0 {
		errs = append(errs, errors.New("limit, first and since id cannot be negative"))
	}
	if f.Limit > 0 && f.First > 0 {
		errs = append(errs, errors.New("limit and first cannot be combined"))
	}
	if !f.Until.IsZero() && !f.Until.After(f.Since) {
		errs = append(errs, fmt.Errorf("until %s is not after since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339)))
	}
	return errors.Join(errs...)
}

// Match reports whether e passes the filter (all but Limit and First).
func (f Filter) Match(e Event) bool {
	switch {
	case e.ID <= f.SinceID,
		!f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		len(f.Kinds) > 0 && !slices.Contains(f.Kinds, e.Kind),
		f.Site != "" && e.Site != f.Site,
		f.Space != "" && e.Space != f.Space,
		f.MinSeverity != "" && e.Severity.Rank() < f.MinSeverity.Rank():
		return false
	}
	return true
}

// journal turns f into the journal's filter.
func (f Filter) journal() journal.Filter {
	jf := journal.Filter{
		Since: f.Since, Until: f.Until, AfterID: f.SinceID, Site: f.Site, Space: f.Space,
		Kinds: []journal.Kind{journal.KindEvent}, Limit: f.Limit, First: f.First, Personal: f.Personal,
	}
	for _, k := range f.Kinds {
		jf.Events = append(jf.Events, string(k))
	}
	if f.MinSeverity != "" {
		for _, s := range Severities {
			if s.Rank() >= f.MinSeverity.Rank() {
				jf.Severities = append(jf.Severities, journal.Severity(s))
			}
		}
	}
	return jf
}

// FromEntry returns the event of a journal entry; false when the entry
// is not an event.
func FromEntry(e journal.Entry) (Event, bool) {
	ev := e.Event
	if ev == nil {
		return Event{}, false
	}
	return Event{
		ID: e.ID, Time: e.Time, Site: ev.Site, Space: ev.Space, Kind: Kind(ev.Kind), Severity: Severity(ev.Severity),
		Subject: ev.Subject, Points: slices.Clone(ev.Points), Booking: ev.Booking, Organiser: ev.Organiser,
		Message: ev.Message, CardHolder: ev.CardHolder,
	}, true
}

// entry turns e into a journal entry.
func entry(e Event) journal.Entry {
	return journal.Entry{Time: e.Time, Event: &journal.EventEntry{
		Site: e.Site, Space: e.Space, Kind: string(e.Kind), Severity: journal.Severity(e.Severity),
		Subject: e.Subject, Points: slices.Clone(e.Points), Booking: e.Booking, Organiser: e.Organiser,
		Message: e.Message, CardHolder: e.CardHolder,
	}}
}

// Query returns the events of the journal in db that match f, oldest
// first (by time, then id; by id with First). db may be read-only, so
// a tool can read events while the gateway writes them.
func Query(ctx context.Context, db *store.DB, f Filter) ([]Event, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	entries, err := journal.Query(ctx, db, f.journal())
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(entries))
	for _, e := range entries {
		if ev, ok := FromEntry(e); ok {
			out = append(out, ev)
		}
	}
	return out, nil
}
