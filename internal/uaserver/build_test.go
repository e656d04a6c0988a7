package uaserver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

func TestBuild(t *testing.T) {
	ahu := &site.Point{ID: "gym.ahu.mode", Type: site.TypeUint16}
	lights := &site.Point{ID: "gym.lights", Type: site.TypeBool}
	hb := &site.Point{ID: "heartbeat", Type: site.TypeUint16}
	gym := &site.Space{ID: "gym", Name: "Gym", Bindings: []site.Binding{{Point: ahu}, {Point: lights}, {Point: ahu}}}
	room := &site.Space{ID: "room12"}
	st := &site.Site{ID: "valby", Name: "Valby Skole", Spaces: []*site.Space{gym, room},
		Points: map[string]*site.Point{ahu.ID: ahu, lights.ID: lights, hb.ID: hb}}
	now := day.Add(18*time.Hour + 30*time.Minute)
	windows := map[string][]schedule.Window{
		"gym": {
			{Start: day.Add(8 * time.Hour), End: day.Add(15 * time.Hour), Reasons: []schedule.Reason{{Kind: schedule.ReasonSchedule, Ref: "school_day"}}},
			{Start: day.Add(18 * time.Hour), End: day.Add(21 * time.Hour), Reasons: []schedule.Reason{{Kind: schedule.ReasonBooking, Ref: "leisure:1", Organiser: "valby-volley"}}},
			{Start: day.Add(32 * time.Hour), End: day.Add(39 * time.Hour), Reasons: []schedule.Reason{{Kind: schedule.ReasonSchedule, Ref: "school_day"}}},
		},
	}
	var evs []events.Event
	for i := range 7 {
		evs = append(evs, events.Event{Time: day.Add(time.Duration(i) * time.Minute), Site: "valby", Space: "gym", Kind: events.DoorOpened, Message: "door", CardHolder: "secret"})
	}
	evs = append(evs, events.Event{Time: day, Site: "valby", Kind: events.RoundDone, Message: "round done"})
	snap := Build(BuildInput{
		Now: now, Sites: []*site.Site{st},
		Status: control.Status{
			Points: []control.PointStatus{
				{Site: "valby", Point: "gym.ahu.mode", Desired: f(2), Actual: f(0), Source: control.SourceBooking, Override: &control.Override{Value: 3}},
				{Site: "valby", Point: "gym.lights", Desired: f(1), Actual: f(1), Source: control.SourceBooking, InSync: true},
				{Site: "valby", Point: "heartbeat", Desired: f(1)},
			},
			Devices: []control.DeviceStatus{{Site: "valby", Connection: "bms", Device: "plc1", Up: true}, {Site: "other", Connection: "x", Device: "y"}},
		},
		Windows: func(siteID, spaceID string) []schedule.Window { return windows[spaceID] },
		Events:  evs,
		Feeds: []control.FeedStatus{{Source: "leisure", ConsecutiveFailures: 2, LastError: "503", FromCache: true,
			FetchedAt: day, LastSuccess: day, Bookings: 12}},
	})
	require.NoError(t, snap.Check())
	s := snap.Sites[0]
	g := s.Spaces[0]
	require.True(t, g.Occupied)
	require.Equal(t, &Window{Start: day.Add(18 * time.Hour), End: day.Add(21 * time.Hour)}, g.Current)
	require.Equal(t, &Window{Start: day.Add(32 * time.Hour), End: day.Add(39 * time.Hour)}, g.Next)
	require.Equal(t, "valby-volley", g.Organiser)
	require.Equal(t, "booking", g.Source)
	require.Len(t, g.Points, 2, "a point bound twice appears once")
	require.Equal(t, 3.0, *g.Points[0].Override)
	require.True(t, g.Points[1].Bool)
	require.Len(t, g.Events, EventSlots)
	require.Equal(t, day.Add(6*time.Minute), g.Events[0].Time, "newest first")
	require.False(t, s.Spaces[1].Occupied)
	require.Nil(t, s.Spaces[1].Current)
	require.Equal(t, []Point{{ID: "heartbeat", Desired: f(1)}}, s.Points, "unbound points at site level")
	require.Equal(t, []Event{{Time: day, Kind: "round_done", Message: "round done"}}, s.Events)
	require.Equal(t, []Device{{Connection: "bms", Device: "plc1", Up: true}}, s.Devices)
	require.Equal(t, []control.FeedStatus{{Source: "leisure", ConsecutiveFailures: 2, LastError: "503", FromCache: true, FetchedAt: day, LastSuccess: day, Bookings: 12}}, snap.Feeds)
}

// TestBuildDeviceNames: the engine's device names as the drivers give
// them ("plc/unit 12" for a Modbus unit, "" for a whole link) make a
// snapshot that Check accepts; with them as node ids it was refused
// whole, and the server showed nothing.
func TestBuildDeviceNames(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)
	s := &site.Site{ID: "hall", Location: loc, Points: map[string]*site.Point{}}
	snap := Build(BuildInput{Now: time.Now(), Sites: []*site.Site{s}, Status: control.Status{Devices: []control.DeviceStatus{
		{Site: "hall", Connection: "plc", Device: "127.0.0.1:502/unit 12", Up: true},
		{Site: "hall", Connection: "plc", Device: "/dev/ttyUSB0/unit 13", Up: false},
		{Site: "hall", Connection: "bms", Device: "", Up: true},
	}}})
	require.NoError(t, snap.Check())
	var names []string
	for _, d := range snap.Sites[0].Devices {
		names = append(names, d.Connection+"/"+d.Device)
	}
	require.Equal(t, []string{"plc/unit 12", "plc/unit 13", "bms/link"}, names)
}
