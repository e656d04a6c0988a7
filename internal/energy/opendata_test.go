package energy_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
)

// dayFigures are the numbers of an open data line; -1 stands for an
// unknown (null) value.
type dayFigures struct {
	Hours, Booked, InUse float64
	NoShows, Late        int
	Comfort, Lighting    float64
}

func dayFiguresOf(r energy.SpaceDay) dayFigures {
	f := dayFigures{Hours: r.Hours, Booked: r.BookedHours, InUse: -1, NoShows: -1, Late: -1, Comfort: r.ComfortHours, Lighting: r.LightingHours}
	if r.InUseHours != nil {
		f.InUse = *r.InUseHours
	}
	if r.NoShows != nil {
		f.NoShows = *r.NoShows
	}
	if r.Late != nil {
		f.Late = *r.Late
	}
	return f
}

// chess is the reference Thursday's chess club booking of classroom 12
// and the no_show event the occupancy tracker sends at its deadline,
// 19:20: no card, water or motion in wing B by then.
func chess(t *testing.T, ref reference) (booking.Booking, events.Event) {
	b := ref.find(t, "valby-room-12", at(2026, 11, 26, 19, 0))
	require.Equal(t, "valby-skak", b.Organiser)
	return b, events.Event{
		Time: at(2026, 11, 26, 19, 20), Site: "valby-skole", Space: "room12", Kind: events.NoShow, Severity: events.Info,
		Booking: b.String(), Organiser: b.Organiser, Message: "room12: no evidence of use by 19:20; released",
	}
}

// TestDailyOpenDataNoShow covers the reference Thursday, 26 November
// 2026, and the Tuesday before, with the chess club's no-show.
//
// Classroom 12 on Thursday: booked 19:00-21:00 (2 h); the no-show means
// nobody was there: 0 h in use, 1 no-show. Heating through the overlay
// (released from 19:20): 07:00-15:30 and 18:30-19:20 = 8.5 h + 50 min;
// lights 07:30-15:30 and 19:00-19:20 = 8 h + 20 min.
// Classroom 12 on Tuesday: the school's own booking 17:00-19:00 was not
// judged a no-show: 2 h booked, 2 h in use; heating 07:00-15:30 and
// 16:30-19:00 = 11 h, lights 07:30-15:30 and 17-19 = 10 h.
// The gym on Thursday: Valby Volley 19:00-21:00; the gym has no no-show
// detection, so its use is unknown (null), not 0. Heating 06:30-15:45
// and 18:00-21:15 = 12.5 h; lights 07:15-15:45 and 18:45-21:15 = 11 h.
func TestDailyOpenDataNoShow(t *testing.T) {
	from, to := at(2026, 11, 24, 0, 0), at(2026, 11, 27, 0, 0)
	ref := loadSeason(t, from, to)
	b, ns := chess(t, ref)
	noShows, inUse := journalEvents(t, ns)
	plan := schedule.NewOverlay(ref.compile(from, to), ref.site, from, to, releaseSpace(ref.site, "room12", ns.Time, b.End), nil)

	rows, err := energy.DailyOpenData(referenceSpec(ref.site), plan, ref.bookings, noShows, inUse, from, to)
	require.NoError(t, err)
	got := map[string]dayFigures{}
	for _, r := range rows {
		require.Equal(t, "valby-skole", r.Site)
		got[r.Date+" "+r.Space] = dayFiguresOf(r)
	}
	require.Equal(t, map[string]dayFigures{
		"2026-11-24 gym":    {24, 0, -1, -1, -1, 9.25, 8.5},
		"2026-11-24 room12": {24, 2, 2, 0, 0, 11, 10},
		"2026-11-25 gym":    {24, 0, -1, -1, -1, 9.25, 8.5},
		"2026-11-25 room12": {24, 0, 0, 0, 0, 8.5, 8},
		"2026-11-26 gym":    {24, 2, -1, -1, -1, 12.5, 11},
		"2026-11-26 room12": {24, 2, 0, 1, 0, 9.3333, 8.3333},
	}, got)
	// By date, then in spec order.
	require.Equal(t, []string{"2026-11-24 gym", "2026-11-24 room12", "2026-11-25 gym", "2026-11-25 room12", "2026-11-26 gym", "2026-11-26 room12"},
		slices.Collect(func(yield func(string) bool) {
			for _, r := range rows {
				if !yield(r.Date + " " + r.Space) {
					return
				}
			}
		}))

	t.Run("no personal data", func(t *testing.T) {
		var js, cs bytes.Buffer
		require.NoError(t, energy.WriteDaysJSON(&js, rows))
		require.NoError(t, energy.WriteDaysCSV(&cs, rows))
		// No organiser of any booking of the site (the timetable's
		// organiser is the school itself, whose id is the site's),
		// no booking id, nothing from the iCalendar ORGANIZER.
		for _, b := range ref.bookings {
			for _, secret := range []string{b.ID, b.String(), b.Organiser} {
				if secret == "" || secret == "valby-skole" {
					continue
				}
				require.NotContains(t, js.String(), secret)
				require.NotContains(t, cs.String(), secret)
			}
		}
		for _, secret := range []string{"valby-skak", "valby-volley", "Mette", "mette.hansen", "@", "leisure", "organi"} {
			require.NotContains(t, js.String(), secret)
			require.NotContains(t, cs.String(), secret)
		}
		// The fields are exactly the documented ones.
		var doc struct {
			Days []map[string]any `json:"days"`
		}
		require.NoError(t, json.Unmarshal(js.Bytes(), &doc))
		require.Len(t, doc.Days, len(rows))
		fields := []string{"site", "space", "name", "date", "hours", "booked_hours", "in_use_hours", "no_shows", "late_arrivals", "comfort_hours", "lighting_hours"}
		for _, d := range doc.Days {
			require.ElementsMatch(t, fields, slices.Collect(maps.Keys(d)))
		}
		require.Nil(t, doc.Days[4]["in_use_hours"], "the gym's use is unknown: null")
		require.Equal(t, 1.0, doc.Days[5]["no_shows"])
		recs, err := csv.NewReader(&cs).ReadAll()
		require.NoError(t, err)
		require.Equal(t, fields, recs[0])
		require.Len(t, recs, len(rows)+1)
		require.Equal(t, []string{"valby-skole", "room12", "Classroom 12", "2026-11-26", "24", "2", "0", "1", "0", "9.3333", "8.3333"}, recs[6])
		require.Equal(t, []string{"valby-skole", "gym", "Gymnastiksal", "2026-11-26", "24", "2", "", "", "", "12.5", "11"}, recs[5])
	})
}

// TestDailyOpenDataEvidenceAfterNoShow judges the chess club's booking as
// the no-show report does, from the order the journal stored the events.
func TestDailyOpenDataEvidenceAfterNoShow(t *testing.T) {
	from, to := at(2026, 11, 26, 0, 0), at(2026, 11, 27, 0, 0)
	ref := loadSeason(t, from, to)
	b, ns := chess(t, ref)
	spec := referenceSpec(ref.site)
	spec.Spaces = spec.Spaces[1:] // classroom 12 alone
	inUse := func(at time.Time) events.Event {
		return events.Event{Time: at, Site: "valby-skole", Space: "room12", Kind: events.InUse, Severity: events.Info,
			Booking: b.String(), Organiser: b.Organiser, Message: "room12 in use after the no-show"}
	}
	for _, tc := range []struct {
		name          string
		evs           []events.Event
		inUse         float64
		noShows, late int
	}{
		// A card at 19:50: the club came late; in use 19:50-21:00.
		{"late", []events.Event{ns, inUse(at(2026, 11, 26, 19, 50))}, 1 + 10.0/60, 0, 1},
		// Evidence from 19:10 that reached the gateway after it had
		// judged: the club was there all along.
		{"delayed reading", []events.Event{ns, inUse(at(2026, 11, 26, 19, 10))}, 2, 0, 0},
		// An in_use event stored before the no-show belongs to an
		// earlier judgement and does not bring this one back.
		{"stale evidence", []events.Event{inUse(at(2026, 11, 26, 19, 50)), ns}, 0, 1, 0},
		// A no-show event stamped outside the booking (it was judged
		// before it moved) does not count.
		{"moved booking", []events.Event{func() events.Event { e := ns; e.Time = at(2026, 11, 26, 17, 20); return e }()}, 2, 0, 0},
		// Another space's or site's no-show does not count here.
		{"other space", []events.Event{func() events.Event { e := ns; e.Space = "room14"; return e }()}, 2, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noShows, inUse := journalEvents(t, tc.evs...)
			rows, err := energy.DailyOpenData(spec, ref.compile(from, to), ref.bookings, noShows, inUse, from, to)
			require.NoError(t, err)
			require.Len(t, rows, 1)
			require.Equal(t, 2.0, rows[0].BookedHours)
			require.InDelta(t, tc.inUse, *rows[0].InUseHours, 1e-4)
			require.Equal(t, tc.noShows, *rows[0].NoShows)
			require.Equal(t, tc.late, *rows[0].Late)
		})
	}

	noShows, _ := journalEvents(t, ns)
	_, err := energy.DailyOpenData(spec, ref.compile(from, to), ref.bookings, nil, noShows, from, to)
	require.ErrorContains(t, err, `of kind "no_show" given as a in_use event`)
}

// TestDailyOpenDataDSTDay: Sunday 25 October 2026 has 25 hours; the LAN
// night in classroom 14 (Saturday 22:00 CEST to Sunday 06:00 CET, 9 real
// hours) is 2 h on Saturday and 7 h on Sunday.
func TestDailyOpenDataDSTDay(t *testing.T) {
	from, to := at(2026, 10, 24, 0, 0), at(2026, 10, 26, 0, 0)
	ref := loadSeason(t, from, to)
	spec := &energy.Spec{Site: ref.site, Lending: lending(ref.site), Spaces: []energy.SpaceSpec{
		{Space: "room14", Heating: []string{"room14.mode"}},
	}}
	rows, err := energy.DailyOpenData(spec, ref.compile(from, to), ref.bookings, nil, nil, from, to)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, dayFigures{24, 2, -1, -1, -1, 2.5, 0}, dayFiguresOf(rows[0]))
	require.Equal(t, dayFigures{25, 7, -1, -1, -1, 7, 0}, dayFiguresOf(rows[1]))
	require.True(t, strings.HasPrefix(rows[1].Date, "2026-10-25"))
}

// TestDailyOpenDataOddBookings: a booking without a start (a feed's
// zero time) or ending in the year 3000 is cut at the range instead of
// overflowing (0-2 h and 22-24 h count); cancelled, backwards and other
// resources' bookings do not count.
func TestDailyOpenDataOddBookings(t *testing.T) {
	from, to := at(2026, 11, 25, 0, 0), at(2026, 11, 26, 0, 0)
	ref := loadSeason(t, from, to)
	spec := referenceSpec(ref.site)
	spec.Spaces = spec.Spaces[1:]
	bs := []booking.Booking{
		{Source: "x", ID: "open-start", Resource: "valby-room-12", End: at(2026, 11, 25, 2, 0), Status: booking.Confirmed},
		{Source: "x", ID: "far-end", Resource: "valby-room-12", Start: at(2026, 11, 25, 22, 0), End: at(3000, 1, 1, 0, 0), Status: booking.Confirmed},
		{Source: "x", ID: "cancelled", Resource: "valby-room-12", Start: at(2026, 11, 25, 17, 0), End: at(2026, 11, 25, 19, 0), Status: booking.Cancelled},
		{Source: "x", ID: "elsewhere", Resource: "valby-room-14", Start: at(2026, 11, 25, 17, 0), End: at(2026, 11, 25, 19, 0), Status: booking.Confirmed},
		{Source: "x", ID: "backwards", Resource: "valby-room-12", Start: at(2026, 11, 25, 19, 0), End: at(2026, 11, 25, 17, 0), Status: booking.Confirmed},
	}
	rows, err := energy.DailyOpenData(spec, ref.compile(from, to), bs, nil, nil, from, to)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, 4.0, rows[0].BookedHours)
	require.Equal(t, 4.0, *rows[0].InUseHours)
}
