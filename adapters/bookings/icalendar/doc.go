// Package icalendar reads iCalendar (RFC 5545) booking feeds and expands
// them into the occurrences that drive heating, ventilation and lighting.
//
// Two libraries do the generic work. github.com/emersion/go-ical is the
// content-line parser: a small, well-kept decoder that unfolds lines, splits
// parameters (quoted values included) and nests components; Parse loops its
// Decoder to EOF because a feed may hold several VCALENDAR objects.
// github.com/teambition/rrule-go expands RRULEs: it is a port of Python's
// dateutil.rrule, whose behaviour (BYSETPOS, negative BYDAY ordinals, WKST,
// interval arithmetic) the other calendar tools agree with.
//
// Around them this package does what they get wrong or leave out:
//
//   - Values. DATE, DATE-TIME and PERIOD values and comma-separated EXDATE
//     and RDATE lists are parsed here; go-ical's DateTime and
//     RecurrenceSet reject lists and periods and cannot load Windows TZIDs.
//   - Time zones. ResolveTZID accepts IANA names, the Windows names Outlook
//     and Exchange write (CLDR windowsZones table, generated into
//     windowszones.go), vendor-prefixed names, and otherwise builds a
//     *time.Location from the calendar's own VTIMEZONE.
//   - Wall clocks. Recurrences are expanded on wall clocks and converted to
//     instants as RFC 5545 3.3.5 says: a time skipped by a DST gap is read
//     with the offset before the gap, a time that occurs twice means the
//     first occurrence. time.Date guarantees neither.
//   - Recurrence sets: DTSTART, several RRULEs, RDATE (dates, date-times,
//     periods), EXDATE, UNTIL in any of its value types, overrides matched
//     by instant (by date for all-day series) including
//     RANGE=THISANDFUTURE, duplicate UID/RECURRENCE-ID pairs resolved by
//     SEQUENCE, and METHOD:CANCEL objects that cancel what they name.
//   - Robustness. Lines are numbered, a malformed line costs only its event
//     (or only itself), and per-event faults are Warnings, not errors: one
//     broken booking must not lose the rest of a feed.
//
// testdata/reference_expand.py re-implements Expand's output on Debian's
// python3-icalendar, python3-dateutil and python3-recurring-ical-events;
// TestAgreesWithReferenceImplementation compares the two on every .ics of
// the shared corpus and of testdata.
package icalendar
