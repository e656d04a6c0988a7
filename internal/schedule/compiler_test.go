package schedule

import (
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Copenhagen must resolve on bare machines.

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
)

var cph = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at parses "2006-01-02 15:04" in Copenhagen, or with an explicit offset
// "2006-01-02 15:04 -0700" where a DST change makes local time ambiguous.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	if len(s) > len("2006-01-02 15:04") {
		v, err := time.Parse("2006-01-02 15:04 -0700", s)
		require.NoError(t, err)
		return v.In(cph)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, cph)
	require.NoError(t, err)
	return v
}

func clk(s string) site.Clock {
	c, err := site.ParseClock(s)
	if err != nil {
		panic(err)
	}
	return c
}

func day(s string) site.Date {
	d, err := site.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

var (
	modeLabels = map[string]float64{"off": 0, "economy": 1, "comfort": 2}
	comfort    = site.Value{Num: 2, Label: "comfort"}
	economy    = site.Value{Num: 1, Label: "economy"}
	on         = site.Value{Num: 1}
	off        = site.Value{Num: 0}
)

func point(id string, typ site.DataType) *site.Point {
	p := &site.Point{ID: id, Type: typ, Access: site.AccessWrite, Connection: "bms",
		OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=Valby." + id}}
	if typ == site.TypeUint16 {
		p.Labels = modeLabels
	}
	return p
}

// schoolDay is Monday to Friday 08:00-15:00 with Danish holidays and a
// one-off short day.
func schoolDay() *site.Schedule {
	holidays := &site.Calendar{ID: "public_holidays", Days: []site.ExceptionDay{
		{From: day("2026-12-24"), To: day("2026-12-24"), Name: "Juleaftensdag"},
		{From: day("2026-12-25"), To: day("2026-12-25"), Name: "Juledag"},
	}}
	events := &site.Calendar{ID: "school_events", Days: []site.ExceptionDay{
		{From: day("2026-12-18"), To: day("2026-12-18"), Name: "Juleafslutning", Hours: []site.Period{{From: clk("08:00"), To: clk("11:00")}}},
	}}
	weekdays := [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}
	return &site.Schedule{
		ID:         "school_day",
		Weekly:     []site.WeeklyPeriod{{Days: weekdays, From: clk("08:00"), To: clk("15:00")}},
		Exceptions: []*site.Calendar{holidays, events},
	}
}

// valby builds the reference site of DOMAIN.md section 5: a gym in the
// gym wing, classroom 12 in wing A on the school-day schedule, and a
// floodlit pitch. Bindings use the profile's lead and lag unless noted.
func valby() *site.Site {
	s := &site.Site{ID: "valby", Name: "Valby Skole", Location: cph, Points: map[string]*site.Point{}}
	sched := schoolDay()
	s.Schedules = map[string]*site.Schedule{sched.ID: sched}
	s.Calendars = map[string]*site.Calendar{}
	for _, c := range sched.Exceptions {
		s.Calendars[c.ID] = c
	}
	add := func(sp *site.Space, parent *site.Space) *site.Space {
		if parent != nil {
			sp.Parent = parent
			parent.Children = append(parent.Children, sp)
		}
		s.Spaces = append(s.Spaces, sp)
		return sp
	}
	mode := func(id string, lead, lag time.Duration) site.Binding {
		p := point(id, site.TypeUint16)
		s.Points[id] = p
		return site.Binding{Point: p, Occupied: comfort, Vacant: economy, Lead: lead, Lag: lag}
	}
	enable := func(id string) site.Binding {
		p := point(id, site.TypeBool)
		s.Points[id] = p
		return site.Binding{Point: p, Occupied: on, Vacant: off}
	}
	wingProfile := site.Profile{ID: "wing", Lead: time.Hour, MergeGap: time.Hour}
	gymWing := add(&site.Space{ID: "gym-wing", Kind: site.KindWing, Profile: wingProfile}, nil)
	gymWing.Bindings = []site.Binding{mode("gym-wing.ahu.mode", time.Hour, 0)}
	// Declared after its child on purpose: parents may come after children.
	gym := add(&site.Space{ID: "gym", Kind: site.KindGym, Resources: []string{"valby-gym"},
		Profile: site.Profile{ID: "gym", Lead: time.Hour, Lag: 15 * time.Minute, MergeGap: time.Hour, MinWindow: time.Hour}}, gymWing)
	gym.Bindings = []site.Binding{mode("gym.ahu.mode", time.Hour, 15*time.Minute), enable("gym.lights")}
	wingA := add(&site.Space{ID: "wing-a", Kind: site.KindWing, Profile: wingProfile}, nil)
	wingA.Bindings = []site.Binding{mode("wing-a.ahu.mode", time.Hour, 0)}
	room := add(&site.Space{ID: "room-12", Kind: site.KindRoom, Resources: []string{"valby-room-12"},
		Profile:   site.Profile{ID: "room", Lead: 30 * time.Minute, MergeGap: 30 * time.Minute, MinWindow: time.Hour},
		Schedules: []*site.Schedule{sched}}, wingA)
	room.Bindings = []site.Binding{mode("room-12.mode", 30*time.Minute, 0)}
	pitch := add(&site.Space{ID: "pitch", Kind: site.KindPitch, Resources: []string{"valby-pitch"},
		Profile: site.Profile{ID: "pitch"}}, nil)
	pitch.Bindings = []site.Binding{enable("pitch.floodlight")}
	return s
}

func book(t *testing.T, resource, id, org, start, end string) booking.Booking {
	return booking.Booking{Source: "leisure", ID: id, Resource: resource, Organiser: org,
		Start: at(t, start), End: at(t, end), Status: booking.Confirmed}
}

// change is an expected change: local time, value, reasons as strings.
type change struct {
	at      string
	value   site.Value
	reasons []string
}

func reasonStrings(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func requireTimeline(t *testing.T, c *Compiler, pointID string, want []change) {
	t.Helper()
	got := c.Timeline(pointID)
	var gotS, wantS []string
	for i, ch := range got {
		require.Equal(t, i == 0, ch.Initial, "only the first change is initial")
		require.Equal(t, pointID, ch.Point.ID)
		gotS = append(gotS, ch.At.Format("2006-01-02 15:04 -0700")+" "+ch.Point.Format(ch.Value)+" "+strings.Join(reasonStrings(ch.Reasons), "; "))
	}
	for _, w := range want {
		wantS = append(wantS, at(t, w.at).Format("2006-01-02 15:04 -0700")+" "+c.site.Points[pointID].Format(w.value)+" "+strings.Join(w.reasons, "; "))
	}
	require.Equal(t, wantS, gotS)
}

func requireWindows(t *testing.T, c *Compiler, spaceID string, want [][3]string) {
	t.Helper()
	var gotS, wantS []string
	for _, w := range c.Windows(spaceID) {
		gotS = append(gotS, w.Start.Format("2006-01-02 15:04 -0700")+" - "+w.End.Format("2006-01-02 15:04 -0700")+" "+strings.Join(reasonStrings(w.Reasons), "; "))
	}
	for _, w := range want {
		wantS = append(wantS, at(t, w[0]).Format("2006-01-02 15:04 -0700")+" - "+at(t, w[1]).Format("2006-01-02 15:04 -0700")+" "+w[2])
	}
	require.Equal(t, wantS, gotS)
}

// TestReferenceScenario is DOMAIN.md section 5: Thursday 2026-11-26 at
// Valby Skole.
func TestReferenceScenario(t *testing.T) {
	c := NewCompiler(valby(), at(t, "2026-11-26 00:00"), at(t, "2026-11-27 00:00"))
	c.SetBookings([]booking.Booking{
		book(t, "valby-pitch", "bk/20261126T170000Z", "valby-bk", "2026-11-26 18:00", "2026-11-26 20:00"),
		book(t, "valby-gym", "abc/20261126T180000Z", "valby-volley", "2026-11-26 19:00", "2026-11-26 21:00"),
		book(t, "valby-room-12", "chess/20261126T180000Z", "chess-club", "2026-11-26 19:00", "2026-11-26 21:00"),
	})
	volley := "booking leisure:abc/20261126T180000Z (org valby-volley)"
	chess := "booking leisure:chess/20261126T180000Z (org chess-club)"

	tests := []struct {
		point string
		want  []change
	}{
		{"gym.ahu.mode", []change{
			{"2026-11-26 00:00", economy, nil},
			{"2026-11-26 18:00", comfort, []string{volley}},
			{"2026-11-26 21:15", economy, []string{volley}},
		}},
		{"gym.lights", []change{
			{"2026-11-26 00:00", off, nil},
			{"2026-11-26 19:00", on, []string{volley}},
			{"2026-11-26 21:00", off, []string{volley}},
		}},
		{"gym-wing.ahu.mode", []change{
			{"2026-11-26 00:00", economy, nil},
			{"2026-11-26 18:00", comfort, []string{"child gym"}},
			{"2026-11-26 21:00", economy, []string{"child gym"}},
		}},
		{"pitch.floodlight", []change{
			{"2026-11-26 00:00", off, nil},
			{"2026-11-26 18:00", on, []string{"booking leisure:bk/20261126T170000Z (org valby-bk)"}},
			{"2026-11-26 20:00", off, []string{"booking leisure:bk/20261126T170000Z (org valby-bk)"}},
		}},
		{"room-12.mode", []change{
			{"2026-11-26 00:00", economy, nil},
			{"2026-11-26 07:30", comfort, []string{"schedule school_day"}},
			{"2026-11-26 15:00", economy, []string{"schedule school_day"}},
			{"2026-11-26 18:30", comfort, []string{chess}},
			{"2026-11-26 21:00", economy, []string{chess}},
		}},
		{"wing-a.ahu.mode", []change{
			{"2026-11-26 00:00", economy, nil},
			{"2026-11-26 07:00", comfort, []string{"child room-12"}},
			{"2026-11-26 15:00", economy, []string{"child room-12"}},
			{"2026-11-26 18:00", comfort, []string{"child room-12"}},
			{"2026-11-26 21:00", economy, []string{"child room-12"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.point, func(t *testing.T) {
			requireTimeline(t, c, tt.point, tt.want)
		})
	}

	t.Run("windows", func(t *testing.T) {
		requireWindows(t, c, "gym", [][3]string{{"2026-11-26 19:00", "2026-11-26 21:00", volley}})
		requireWindows(t, c, "gym-wing", [][3]string{{"2026-11-26 19:00", "2026-11-26 21:00", "child gym"}})
		requireWindows(t, c, "room-12", [][3]string{
			{"2026-11-26 08:00", "2026-11-26 15:00", "schedule school_day"},
			{"2026-11-26 19:00", "2026-11-26 21:00", chess},
		})
		require.Nil(t, c.Windows("no-such-space"))
	})

	t.Run("changes in time order", func(t *testing.T) {
		var got []string
		for _, ch := range c.Changes() {
			got = append(got, ch.At.Format("15:04")+" "+ch.Point.ID)
		}
		require.Equal(t, []string{
			"00:00 gym-wing.ahu.mode", "00:00 gym.ahu.mode", "00:00 gym.lights", "00:00 pitch.floodlight", "00:00 room-12.mode", "00:00 wing-a.ahu.mode",
			"07:00 wing-a.ahu.mode", "07:30 room-12.mode",
			"15:00 room-12.mode", "15:00 wing-a.ahu.mode",
			"18:00 gym-wing.ahu.mode", "18:00 gym.ahu.mode", "18:00 pitch.floodlight", "18:00 wing-a.ahu.mode",
			"18:30 room-12.mode", "19:00 gym.lights", "20:00 pitch.floodlight",
			"21:00 gym-wing.ahu.mode", "21:00 gym.lights", "21:00 room-12.mode", "21:00 wing-a.ahu.mode",
			"21:15 gym.ahu.mode",
		}, got)
	})

	t.Run("value at", func(t *testing.T) {
		tests := []struct {
			name     string
			at       string
			value    site.Value
			changed  string
			initial  bool
			occupied bool
		}{
			{"night", "2026-11-26 03:00", economy, "2026-11-26 00:00", true, false},
			{"pre-heat starts", "2026-11-26 18:00", comfort, "2026-11-26 18:00", false, true},
			{"during", "2026-11-26 20:59", comfort, "2026-11-26 18:00", false, true},
			{"lag", "2026-11-26 21:14", comfort, "2026-11-26 18:00", false, true},
			{"after", "2026-11-26 21:15", economy, "2026-11-26 21:15", false, false},
			{"late", "2026-11-26 23:59", economy, "2026-11-26 21:15", false, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ch, ok := c.ValueAt("gym.ahu.mode", at(t, tt.at))
				require.True(t, ok)
				require.Equal(t, tt.value, ch.Value)
				require.True(t, at(t, tt.changed).Equal(ch.At), "changed at %s", ch.At)
				require.Equal(t, tt.initial, ch.Initial)
				require.Equal(t, tt.occupied, ch.Occupied)
			})
		}
		_, ok := c.ValueAt("gym.ahu.mode", at(t, "2026-11-27 00:00"))
		require.False(t, ok, "the end of the range is outside it")
		_, ok = c.ValueAt("gym.ahu.mode", at(t, "2026-11-25 23:59"))
		require.False(t, ok)
		_, ok = c.ValueAt("no-such-point", at(t, "2026-11-26 12:00"))
		require.False(t, ok)
	})

	t.Run("string", func(t *testing.T) {
		tl := c.Timeline("gym.ahu.mode")
		require.Equal(t, "2026-11-26 18:00 CET valby gym.ahu.mode = comfort ("+volley+")", tl[1].String())
		require.Equal(t, "2026-11-26 00:00 CET valby gym.ahu.mode = economy initially vacant", tl[0].String())
	})

	t.Run("stats", func(t *testing.T) {
		require.Equal(t, Stats{Spaces: 5, Points: 6, Bookings: 3, Windows: 7, Changes: 22}, c.Stats())
	})
}

func TestReasonString(t *testing.T) {
	tests := []struct {
		reason Reason
		want   string
	}{
		{Reason{Kind: ReasonBooking, Ref: "leisure:abc/20261126T180000Z", Organiser: "valby-volley"}, "booking leisure:abc/20261126T180000Z (org valby-volley)"},
		{Reason{Kind: ReasonBooking, Ref: "leisure:abc"}, "booking leisure:abc"},
		{Reason{Kind: ReasonSchedule, Ref: "school_day"}, "schedule school_day"},
		{Reason{Kind: ReasonException, Ref: "public_holidays", Day: "Juleaftensdag"}, "exception public_holidays: Juleaftensdag"},
		{Reason{Kind: ReasonChild, Ref: "room-12"}, "child room-12"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, tt.reason.String())
		})
	}
}

// TestMergeAndMinWindow covers the window rules on the gym (merge gap 1h,
// minimum window 1h) and the pitch (neither).
func TestMergeAndMinWindow(t *testing.T) {
	type bk struct{ resource, id, start, end string }
	tests := []struct {
		name     string
		bookings []bk
		space    string
		want     [][3]string
	}{
		{
			name:     "gap shorter than merge gap merges",
			bookings: []bk{{"valby-gym", "a", "2026-11-26 17:00", "2026-11-26 18:00"}, {"valby-gym", "b", "2026-11-26 18:59", "2026-11-26 21:00"}},
			space:    "gym",
			want:     [][3]string{{"2026-11-26 17:00", "2026-11-26 21:00", "booking leisure:a; booking leisure:b"}},
		},
		{
			name:     "gap equal to merge gap does not merge",
			bookings: []bk{{"valby-gym", "a", "2026-11-26 17:00", "2026-11-26 18:00"}, {"valby-gym", "b", "2026-11-26 19:00", "2026-11-26 21:00"}},
			space:    "gym",
			want: [][3]string{
				{"2026-11-26 17:00", "2026-11-26 18:00", "booking leisure:a"},
				{"2026-11-26 19:00", "2026-11-26 21:00", "booking leisure:b"},
			},
		},
		{
			name:     "overlapping bookings merge",
			bookings: []bk{{"valby-gym", "b", "2026-11-26 18:00", "2026-11-26 21:00"}, {"valby-gym", "a", "2026-11-26 17:00", "2026-11-26 19:00"}},
			space:    "gym",
			want:     [][3]string{{"2026-11-26 17:00", "2026-11-26 21:00", "booking leisure:a; booking leisure:b"}},
		},
		{
			name:     "short window extended at its end",
			bookings: []bk{{"valby-gym", "a", "2026-11-26 17:00", "2026-11-26 17:20"}},
			space:    "gym",
			want:     [][3]string{{"2026-11-26 17:00", "2026-11-26 18:00", "booking leisure:a"}},
		},
		{
			name:     "booking inside the extension joins",
			bookings: []bk{{"valby-gym", "a", "2026-11-26 17:00", "2026-11-26 17:20"}, {"valby-gym", "b", "2026-11-26 17:50", "2026-11-26 18:10"}},
			space:    "gym",
			want:     [][3]string{{"2026-11-26 17:00", "2026-11-26 18:10", "booking leisure:a; booking leisure:b"}},
		},
		{
			name:     "merge gap counts from the extended end",
			bookings: []bk{{"valby-gym", "a", "2026-11-26 17:00", "2026-11-26 17:20"}, {"valby-gym", "b", "2026-11-26 18:50", "2026-11-26 20:00"}},
			space:    "gym",
			want:     [][3]string{{"2026-11-26 17:00", "2026-11-26 20:00", "booking leisure:a; booking leisure:b"}},
		},
		{
			name:     "touching bookings merge without a gap",
			bookings: []bk{{"valby-pitch", "a", "2026-11-26 17:00", "2026-11-26 18:00"}, {"valby-pitch", "b", "2026-11-26 18:00", "2026-11-26 19:00"}},
			space:    "pitch",
			want:     [][3]string{{"2026-11-26 17:00", "2026-11-26 19:00", "booking leisure:a; booking leisure:b"}},
		},
		{
			name:     "no merge gap keeps a one-minute gap",
			bookings: []bk{{"valby-pitch", "a", "2026-11-26 17:00", "2026-11-26 18:00"}, {"valby-pitch", "b", "2026-11-26 18:01", "2026-11-26 19:00"}},
			space:    "pitch",
			want: [][3]string{
				{"2026-11-26 17:00", "2026-11-26 18:00", "booking leisure:a"},
				{"2026-11-26 18:01", "2026-11-26 19:00", "booking leisure:b"},
			},
		},
		{
			name: "a repeated key counts once",
			bookings: []bk{
				{"valby-pitch", "a", "2026-11-26 17:00", "2026-11-26 18:00"},
				{"valby-pitch", "a", "2026-11-26 17:00", "2026-11-26 18:00"},
			},
			space: "pitch",
			want:  [][3]string{{"2026-11-26 17:00", "2026-11-26 18:00", "booking leisure:a"}},
		},
		{
			name: "a booking merges with the school day",
			bookings: []bk{
				{"valby-room-12", "homework", "2026-11-26 15:15", "2026-11-26 16:00"},
			},
			space: "room-12",
			want:  [][3]string{{"2026-11-26 08:00", "2026-11-26 16:00", "booking leisure:homework; schedule school_day"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCompiler(valby(), at(t, "2026-11-26 00:00"), at(t, "2026-11-27 00:00"))
			var bs []booking.Booking
			for _, b := range tt.bookings {
				bs = append(bs, book(t, b.resource, b.id, "", b.start, b.end))
			}
			c.SetBookings(bs)
			requireWindows(t, c, tt.space, tt.want)
		})
	}
}

func TestBookingFilter(t *testing.T) {
	cancelled := book(t, "valby-gym", "c", "", "2026-11-26 10:00", "2026-11-26 11:00")
	cancelled.Status = booking.Cancelled
	superseded := book(t, "valby-gym", "s", "", "2026-11-26 12:00", "2026-11-26 13:00")
	superseded.Status = booking.Superseded
	tentative := book(t, "valby-gym", "t", "", "2026-11-26 14:00", "2026-11-26 15:00")
	tentative.Status = booking.Tentative
	c := NewCompiler(valby(), at(t, "2026-11-26 00:00"), at(t, "2026-11-27 00:00"))
	c.SetBookings([]booking.Booking{
		cancelled, superseded, tentative,
		book(t, "other-school-gym", "o", "", "2026-11-26 16:00", "2026-11-26 17:00"),
		book(t, "valby-gym", "empty", "", "2026-11-26 18:00", "2026-11-26 18:00"),
		book(t, "valby-gym", "far", "", "2027-03-01 18:00", "2027-03-01 19:00"),
	})
	requireWindows(t, c, "gym", [][3]string{{"2026-11-26 14:00", "2026-11-26 15:00", "booking leisure:t"}})
	require.Equal(t, 1, c.Stats().Bookings)
	require.Equal(t, tentative.String(), c.Windows("gym")[0].Reasons[0].Ref, "a booking's Ref is its String")
}

// TestWindowsAcrossRange checks the value at the start of the range for a
// window that started before it, and windows reaching past its end.
func TestWindowsAcrossRange(t *testing.T) {
	c := NewCompiler(valby(), at(t, "2026-11-26 20:00"), at(t, "2026-11-26 20:30"))
	c.SetBookings([]booking.Booking{book(t, "valby-gym", "a", "", "2026-11-26 19:00", "2026-11-26 21:00")})
	requireTimeline(t, c, "gym.ahu.mode", []change{{"2026-11-26 20:00", comfort, []string{"booking leisure:a"}}})
	requireWindows(t, c, "gym", [][3]string{{"2026-11-26 19:00", "2026-11-26 21:00", "booking leisure:a"}})

	// The lag reaches into the range from a booking that ended before it.
	c = NewCompiler(valby(), at(t, "2026-11-26 21:10"), at(t, "2026-11-26 22:00"))
	c.SetBookings([]booking.Booking{book(t, "valby-gym", "a", "", "2026-11-26 19:00", "2026-11-26 21:00")})
	requireTimeline(t, c, "gym.ahu.mode", []change{
		{"2026-11-26 21:10", comfort, []string{"booking leisure:a"}},
		{"2026-11-26 21:15", economy, []string{"booking leisure:a"}},
	})
	requireWindows(t, c, "gym", nil)

	// A window ending exactly at the start of the range leaves it vacant.
	c = NewCompiler(valby(), at(t, "2026-11-26 21:15"), at(t, "2026-11-26 22:00"))
	c.SetBookings([]booking.Booking{book(t, "valby-gym", "a", "", "2026-11-26 19:00", "2026-11-26 21:00")})
	requireTimeline(t, c, "gym.ahu.mode", []change{{"2026-11-26 21:15", economy, nil}})
}

// TestHolidaysAndExceptions runs the school-day schedule over the week
// before Christmas 2026: a one-off short day (Friday 18th), holidays on
// the 24th and 25th.
func TestHolidaysAndExceptions(t *testing.T) {
	c := NewCompiler(valby(), at(t, "2026-12-17 00:00"), at(t, "2026-12-26 00:00"))
	c.SetBookings([]booking.Booking{
		// A booking on a holiday still occupies the room.
		book(t, "valby-room-12", "xmas", "choir", "2026-12-24 10:00", "2026-12-24 11:00"),
	})
	requireWindows(t, c, "room-12", [][3]string{
		{"2026-12-17 08:00", "2026-12-17 15:00", "schedule school_day"},
		{"2026-12-18 08:00", "2026-12-18 11:00", "exception school_events: Juleafslutning"},
		{"2026-12-21 08:00", "2026-12-21 15:00", "schedule school_day"},
		{"2026-12-22 08:00", "2026-12-22 15:00", "schedule school_day"},
		{"2026-12-23 08:00", "2026-12-23 15:00", "schedule school_day"},
		{"2026-12-24 10:00", "2026-12-24 11:00", "booking leisure:xmas (org choir)"},
	})
	requireTimeline(t, c, "wing-a.ahu.mode", []change{
		{"2026-12-17 00:00", economy, nil},
		{"2026-12-17 07:00", comfort, []string{"child room-12"}},
		{"2026-12-17 15:00", economy, []string{"child room-12"}},
		{"2026-12-18 07:00", comfort, []string{"child room-12"}},
		{"2026-12-18 11:00", economy, []string{"child room-12"}},
		{"2026-12-21 07:00", comfort, []string{"child room-12"}},
		{"2026-12-21 15:00", economy, []string{"child room-12"}},
		{"2026-12-22 07:00", comfort, []string{"child room-12"}},
		{"2026-12-22 15:00", economy, []string{"child room-12"}},
		{"2026-12-23 07:00", comfort, []string{"child room-12"}},
		{"2026-12-23 15:00", economy, []string{"child room-12"}},
		{"2026-12-24 09:00", comfort, []string{"child room-12"}},
		{"2026-12-24 11:00", economy, []string{"child room-12"}},
	})
}

// TestParentOccupiedByChild checks a parent wing follows its children,
// and that a grandparent follows the wing.
func TestParentOccupiedByChild(t *testing.T) {
	s := valby()
	building := &site.Space{ID: "building", Kind: site.KindBuilding, Profile: site.Profile{ID: "building"}}
	p := point("building.boiler", site.TypeBool)
	s.Points[p.ID] = p
	building.Bindings = []site.Binding{{Point: p, Occupied: on, Vacant: off}}
	for _, id := range []string{"gym-wing", "wing-a"} {
		w := s.Space(id)
		w.Parent = building
		building.Children = append(building.Children, w)
	}
	s.Spaces = append([]*site.Space{building}, s.Spaces...)
	c := NewCompiler(s, at(t, "2026-11-28 00:00"), at(t, "2026-11-29 00:00")) // a Saturday
	c.SetBookings([]booking.Booking{
		book(t, "valby-gym", "a", "", "2026-11-28 10:00", "2026-11-28 12:00"),
		book(t, "valby-room-12", "b", "", "2026-11-28 11:00", "2026-11-28 13:00"),
	})
	requireWindows(t, c, "gym-wing", [][3]string{{"2026-11-28 10:00", "2026-11-28 12:00", "child gym"}})
	requireWindows(t, c, "wing-a", [][3]string{{"2026-11-28 11:00", "2026-11-28 13:00", "child room-12"}})
	requireWindows(t, c, "building", [][3]string{{"2026-11-28 10:00", "2026-11-28 13:00", "child gym-wing; child wing-a"}})
	requireTimeline(t, c, "building.boiler", []change{
		{"2026-11-28 00:00", off, nil},
		{"2026-11-28 10:00", on, []string{"child gym-wing", "child wing-a"}},
		{"2026-11-28 13:00", off, []string{"child gym-wing", "child wing-a"}},
	})
}

// TestPointInSeveralSpaces binds one point in the gym and on the pitch:
// it is occupied when either is, each with its own lead.
func TestPointInSeveralSpaces(t *testing.T) {
	s := valby()
	shared := point("outdoor.lights", site.TypeBool)
	s.Points[shared.ID] = shared
	gym, pitch := s.Space("gym"), s.Space("pitch")
	gym.Bindings = append(gym.Bindings, site.Binding{Point: shared, Occupied: on, Vacant: off, Lead: 30 * time.Minute})
	pitch.Bindings = append(pitch.Bindings, site.Binding{Point: shared, Occupied: on, Vacant: off, Lag: 10 * time.Minute})
	c := NewCompiler(s, at(t, "2026-11-28 00:00"), at(t, "2026-11-29 00:00"))
	c.SetBookings([]booking.Booking{
		book(t, "valby-gym", "g", "", "2026-11-28 10:00", "2026-11-28 12:00"),
		book(t, "valby-pitch", "p", "", "2026-11-28 12:00", "2026-11-28 13:00"),
		book(t, "valby-pitch", "q", "", "2026-11-28 15:00", "2026-11-28 16:00"),
	})
	requireTimeline(t, c, "outdoor.lights", []change{
		{"2026-11-28 00:00", off, nil},
		{"2026-11-28 09:30", on, []string{"booking leisure:g", "booking leisure:p"}},
		{"2026-11-28 13:10", off, []string{"booking leisure:g", "booking leisure:p"}},
		{"2026-11-28 15:00", on, []string{"booking leisure:q"}},
		{"2026-11-28 16:10", off, []string{"booking leisure:q"}},
	})
	tl := c.Timeline("outdoor.lights")
	require.Equal(t, []*site.Space{gym, pitch}, tl[0].Spaces)

	// Moving the pitch booking away from the gym's splits the window, as
	// a full compile does.
	moved := book(t, "valby-pitch", "p", "", "2026-11-28 13:00", "2026-11-28 14:00")
	c.Apply([]booking.Booking{moved}, nil)
	full := NewCompiler(s, at(t, "2026-11-28 00:00"), at(t, "2026-11-29 00:00"))
	full.SetBookings([]booking.Booking{
		book(t, "valby-gym", "g", "", "2026-11-28 10:00", "2026-11-28 12:00"),
		moved,
		book(t, "valby-pitch", "q", "", "2026-11-28 15:00", "2026-11-28 16:00"),
	})
	requireTimeline(t, c, "outdoor.lights", []change{
		{"2026-11-28 00:00", off, nil},
		{"2026-11-28 09:30", on, []string{"booking leisure:g"}},
		{"2026-11-28 12:00", off, []string{"booking leisure:g"}},
		{"2026-11-28 13:00", on, []string{"booking leisure:p"}},
		{"2026-11-28 14:10", off, []string{"booking leisure:p"}},
		{"2026-11-28 15:00", on, []string{"booking leisure:q"}},
		{"2026-11-28 16:10", off, []string{"booking leisure:q"}},
	})
	require.Equal(t, full.Timeline("outdoor.lights"), c.Timeline("outdoor.lights"))
}

// TestDST runs bookings over both DST changes of 2026 in
// Europe/Copenhagen. Expected instants carry their offset.
func TestDST(t *testing.T) {
	type bk struct{ resource, start, end string }
	tests := []struct {
		name     string
		from, to string
		bookings []bk
		point    string
		want     []change
	}{
		{
			name: "spring: evening booking on the change Sunday",
			from: "2026-03-29 00:00 +0100", to: "2026-03-30 00:00 +0200",
			bookings: []bk{{"valby-gym", "2026-03-29 19:00 +0200", "2026-03-29 21:00 +0200"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-03-29 00:00 +0100", economy, nil},
				{"2026-03-29 18:00 +0200", comfort, []string{"booking leisure:b0"}},
				{"2026-03-29 21:15 +0200", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "spring: booking across the night of the change",
			from: "2026-03-28 12:00 +0100", to: "2026-03-29 12:00 +0200",
			bookings: []bk{{"valby-gym", "2026-03-28 23:00 +0100", "2026-03-29 05:00 +0200"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-03-28 12:00 +0100", economy, nil},
				{"2026-03-28 22:00 +0100", comfort, []string{"booking leisure:b0"}},
				{"2026-03-29 05:15 +0200", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "spring: lead across the change is absolute",
			from: "2026-03-28 12:00 +0100", to: "2026-03-29 12:00 +0200",
			// 03:30 CEST is 01:30 UTC; an hour earlier is 01:30 CET, wall-clock two hours earlier.
			bookings: []bk{{"valby-gym", "2026-03-29 03:30 +0200", "2026-03-29 05:00 +0200"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-03-28 12:00 +0100", economy, nil},
				{"2026-03-29 01:30 +0100", comfort, []string{"booking leisure:b0"}},
				{"2026-03-29 05:15 +0200", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "autumn: evening booking on the change Sunday",
			from: "2026-10-25 00:00 +0200", to: "2026-10-26 00:00 +0100",
			bookings: []bk{{"valby-gym", "2026-10-25 19:00 +0100", "2026-10-25 21:00 +0100"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-10-25 00:00 +0200", economy, nil},
				{"2026-10-25 18:00 +0100", comfort, []string{"booking leisure:b0"}},
				{"2026-10-25 21:15 +0100", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "autumn: booking across the night of the change",
			from: "2026-10-24 12:00 +0200", to: "2026-10-25 12:00 +0100",
			bookings: []bk{{"valby-gym", "2026-10-24 23:00 +0200", "2026-10-25 05:00 +0100"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-10-24 12:00 +0200", economy, nil},
				{"2026-10-24 22:00 +0200", comfort, []string{"booking leisure:b0"}},
				{"2026-10-25 05:15 +0100", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "autumn: lead lands in the second repeated hour",
			from: "2026-10-24 12:00 +0200", to: "2026-10-25 12:00 +0100",
			// 03:30 CET is 02:30 UTC; an hour earlier is 02:30 CET.
			bookings: []bk{{"valby-gym", "2026-10-25 03:30 +0100", "2026-10-25 05:00 +0100"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-10-24 12:00 +0200", economy, nil},
				{"2026-10-25 02:30 +0100", comfort, []string{"booking leisure:b0"}},
				{"2026-10-25 05:15 +0100", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "autumn: lead from the second 02:30 is the first 02:30",
			from: "2026-10-24 12:00 +0200", to: "2026-10-25 12:00 +0100",
			// 02:30 CET is 01:30 UTC; an hour earlier is 02:30 CEST: the
			// same wall-clock time, one hour of physics apart.
			bookings: []bk{{"valby-gym", "2026-10-25 02:30 +0100", "2026-10-25 05:00 +0100"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-10-24 12:00 +0200", economy, nil},
				{"2026-10-25 02:30 +0200", comfort, []string{"booking leisure:b0"}},
				{"2026-10-25 05:15 +0100", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "autumn: lag lands in the second repeated hour",
			from: "2026-10-24 12:00 +0200", to: "2026-10-25 12:00 +0100",
			bookings: []bk{{"valby-gym", "2026-10-25 00:00 +0200", "2026-10-25 02:50 +0200"}},
			point:    "gym.ahu.mode",
			want: []change{
				{"2026-10-24 12:00 +0200", economy, nil},
				{"2026-10-24 23:00 +0200", comfort, []string{"booking leisure:b0"}},
				{"2026-10-25 02:05 +0100", economy, []string{"booking leisure:b0"}},
			},
		},
		{
			name: "autumn: school day after the change starts at 07:30 local",
			from: "2026-10-25 12:00 +0100", to: "2026-10-26 12:00 +0100",
			point: "room-12.mode",
			want: []change{
				{"2026-10-25 12:00 +0100", economy, nil},
				{"2026-10-26 07:30 +0100", comfort, []string{"schedule school_day"}},
			},
		},
		{
			name: "spring: school day after the change starts at 07:30 local",
			from: "2026-03-29 12:00 +0200", to: "2026-03-30 12:00 +0200",
			point: "room-12.mode",
			want: []change{
				{"2026-03-29 12:00 +0200", economy, nil},
				{"2026-03-30 07:30 +0200", comfort, []string{"schedule school_day"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCompiler(valby(), at(t, tt.from), at(t, tt.to))
			var bs []booking.Booking
			for i, b := range tt.bookings {
				bs = append(bs, book(t, b.resource, "b"+string(rune('0'+i)), "", b.start, b.end))
			}
			c.SetBookings(bs)
			requireTimeline(t, c, tt.point, tt.want)
		})
	}
}

func TestApply(t *testing.T) {
	s := valby()
	c := NewCompiler(s, at(t, "2026-11-26 00:00"), at(t, "2026-11-27 00:00"))
	volley := book(t, "valby-gym", "v", "valby-volley", "2026-11-26 19:00", "2026-11-26 21:00")
	chess := book(t, "valby-room-12", "c", "chess", "2026-11-26 19:00", "2026-11-26 21:00")
	c.SetBookings([]booking.Booking{volley, chess})

	// Move the volleyball booking to the pitch an hour later.
	moved := volley
	moved.Resource, moved.Start, moved.End = "valby-pitch", at(t, "2026-11-26 20:00"), at(t, "2026-11-26 22:00")
	c.Apply([]booking.Booking{moved}, nil)
	requireWindows(t, c, "gym", nil)
	requireWindows(t, c, "gym-wing", nil)
	requireWindows(t, c, "pitch", [][3]string{{"2026-11-26 20:00", "2026-11-26 22:00", "booking leisure:v (org valby-volley)"}})

	// Cancel the chess booking: the school day remains.
	cancelled := chess
	cancelled.Status = booking.Cancelled
	c.Apply([]booking.Booking{cancelled}, nil)
	requireWindows(t, c, "room-12", [][3]string{{"2026-11-26 08:00", "2026-11-26 15:00", "schedule school_day"}})

	// Remove the moved booking and an unknown one.
	c.Apply(nil, []BookingKey{KeyOf(moved), {Source: "leisure", ID: "nope"}})
	requireWindows(t, c, "pitch", nil)
	require.Equal(t, 0, c.Stats().Bookings)

	// An unchanged booking rebuilds nothing.
	room := c.spaceByID["room-12"]
	c.Apply([]booking.Booking{book(t, "valby-room-12", "c2", "chess", "2026-11-26 19:00", "2026-11-26 21:00")}, nil)
	before := room.windows
	c.Apply([]booking.Booking{book(t, "valby-room-12", "c2", "chess", "2026-11-26 19:00", "2026-11-26 21:00")}, nil)
	require.Same(t, &before[0], &room.windows[0], "windows were rebuilt")
	c.Apply(nil, []BookingKey{{Source: "leisure", ID: "c2"}})

	// Removals come before upserts in one Apply.
	c.Apply([]booking.Booking{volley}, []BookingKey{KeyOf(volley)})
	requireWindows(t, c, "gym", [][3]string{{"2026-11-26 19:00", "2026-11-26 21:00", "booking leisure:v (org valby-volley)"}})
}

func TestPlan(t *testing.T) {
	a, b := valby(), valby()
	b.ID = "valby2"
	// The second site has its own resource ids.
	for _, sp := range b.Spaces {
		for i, r := range sp.Resources {
			sp.Resources[i] = strings.Replace(r, "valby-", "valby2-", 1)
		}
	}
	// Sites are given out of id order; Changes sorts by site id.
	p := NewPlan([]*site.Site{b, a}, at(t, "2026-11-26 00:00"), at(t, "2026-11-27 00:00"))
	gym1 := book(t, "valby-gym", "g1", "", "2026-11-26 19:00", "2026-11-26 21:00")
	gym2 := book(t, "valby2-gym", "g2", "", "2026-11-26 19:00", "2026-11-26 21:00")
	p.SetBookings([]booking.Booking{gym1, gym2, book(t, "elsewhere", "x", "", "2026-11-26 19:00", "2026-11-26 21:00")})
	require.Equal(t, 2, p.Stats().Bookings)
	require.Same(t, a, p.Compiler("valby").Site())
	require.Len(t, p.Compilers(), 2)

	var got []string
	for _, ch := range p.Changes() {
		if ch.At.Equal(at(t, "2026-11-26 18:00")) {
			got = append(got, ch.Site.ID+" "+ch.Point.ID)
		}
	}
	require.Equal(t, []string{"valby gym-wing.ahu.mode", "valby gym.ahu.mode", "valby2 gym-wing.ahu.mode", "valby2 gym.ahu.mode"}, got)

	// Move g1 to the other school: it leaves the first.
	moved := gym1
	moved.Resource = "valby2-pitch"
	p.Apply([]booking.Booking{moved}, nil)
	require.Nil(t, p.Compiler("valby").Windows("gym"))
	requireWindows(t, p.Compiler("valby2"), "pitch", [][3]string{{"2026-11-26 19:00", "2026-11-26 21:00", "booking leisure:g1"}})
	p.Apply(nil, []BookingKey{KeyOf(gym1), KeyOf(gym2)})
	require.Equal(t, 0, p.Stats().Bookings)
}

// TestTwoSchedules gives classroom 12 an after-school club besides the
// school day; only the school day closes on public holidays.
func TestTwoSchedules(t *testing.T) {
	s := valby()
	weekdays := [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}
	sfo := &site.Schedule{ID: "sfo", Weekly: []site.WeeklyPeriod{{Days: weekdays, From: clk("14:00"), To: clk("17:00")}}}
	room := s.Space("room-12")
	room.Schedules = append(room.Schedules, sfo)
	c := NewCompiler(s, at(t, "2026-12-23 00:00"), at(t, "2026-12-25 00:00"))
	c.SetBookings(nil)
	requireWindows(t, c, "room-12", [][3]string{
		{"2026-12-23 08:00", "2026-12-23 17:00", "schedule school_day; schedule sfo"},
		{"2026-12-24 14:00", "2026-12-24 17:00", "schedule sfo"},
	})
}

// TestReadsBeforeSetBookings reads a new compiler from several goroutines
// at once: the first read builds the base schedules, once.
func TestReadsBeforeSetBookings(t *testing.T) {
	c := NewCompiler(valby(), at(t, "2026-11-26 00:00"), at(t, "2026-11-27 00:00"))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c.Windows("room-12")
			c.Timeline("room-12.mode")
			c.ValueAt("room-12.mode", at(t, "2026-11-26 12:00"))
			c.Stats()
		})
	}
	wg.Wait()
	requireWindows(t, c, "room-12", [][3]string{{"2026-11-26 08:00", "2026-11-26 15:00", "schedule school_day"}})
	ch, ok := c.ValueAt("wing-a.ahu.mode", at(t, "2026-11-26 12:00"))
	require.True(t, ok)
	require.Equal(t, comfort, ch.Value)
}

// TestApplyReachesPastTheChange removes the first booking of a window
// that the minimum window had stretched: the window now starts later, so
// its minimum length would end later, and it joins the next window that
// used to stand apart. An incremental build must follow the change past
// the booking it removed.
func TestApplyReachesPastTheChange(t *testing.T) {
	a := book(t, "valby-room-12", "a", "", "2026-11-28 10:00", "2026-11-28 10:05")
	b := book(t, "valby-room-12", "b", "", "2026-11-28 10:30", "2026-11-28 10:35")
	c := book(t, "valby-room-12", "c", "", "2026-11-28 11:55", "2026-11-28 12:10")
	d := book(t, "valby-room-12", "d", "", "2026-11-28 16:00", "2026-11-28 17:00")
	inc := NewCompiler(valby(), at(t, "2026-11-28 00:00"), at(t, "2026-11-29 00:00"))
	inc.SetBookings([]booking.Booking{a, b, c, d})
	requireWindows(t, inc, "room-12", [][3]string{
		{"2026-11-28 10:00", "2026-11-28 11:00", "booking leisure:a; booking leisure:b"},
		{"2026-11-28 11:55", "2026-11-28 12:55", "booking leisure:c"},
		{"2026-11-28 16:00", "2026-11-28 17:00", "booking leisure:d"},
	})
	inc.Apply(nil, []BookingKey{KeyOf(a)})
	want := [][3]string{
		{"2026-11-28 10:30", "2026-11-28 12:10", "booking leisure:b; booking leisure:c"},
		{"2026-11-28 16:00", "2026-11-28 17:00", "booking leisure:d"},
	}
	requireWindows(t, inc, "room-12", want)
	full := NewCompiler(valby(), at(t, "2026-11-28 00:00"), at(t, "2026-11-29 00:00"))
	full.SetBookings([]booking.Booking{b, c, d})
	requireWindows(t, full, "room-12", want)
	require.Equal(t, full.Timeline("wing-a.ahu.mode"), inc.Timeline("wing-a.ahu.mode"))
	require.Equal(t, full.Timeline("room-12.mode"), inc.Timeline("room-12.mode"))
}
