package sitegen

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/site"
)

// TestWriteFilesRoundTrip writes generated data sets as files, loads
// them with the gateway's loader, and requires the same sites and, over
// the whole season, the same point writes. Every site's model is
// compared; compiling a season costs about a second per site under
// -race, so of the 72 schools the first, the last and two between are
// compiled, besides all of the small set.
func TestWriteFilesRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		compile func(i, n int) bool
	}{
		{"3 schools", Config{Schools: 3, Seed: 7}, func(int, int) bool { return true }},
		{"default 72 schools", Config{}, func(i, n int) bool { return i%(n/3) == 0 || i == n-1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Generate(tt.cfg)
			require.NoError(t, err)
			dir := t.TempDir()
			require.NoError(t, ds.WriteFiles(dir))
			g, err := config.Load(filepath.Join(dir, GatewayFileName))
			require.NoError(t, err)

			require.Len(t, g.Sources, 1)
			src := g.Sources[0]
			require.Equal(t, ds.Source, src.ID)
			require.NotNil(t, src.ICal)
			require.Equal(t, filepath.Join(dir, FeedFileName), src.ICal.File)
			require.Equal(t, "LOCATION", src.ICal.ResourceProperty)
			require.Equal(t, "X-ASSOCIATION-ID", src.ICal.OrganiserProperty)
			require.Equal(t, filepath.Join(dir, "var"), g.StateDir)
			fi, err := os.Stat(src.ICal.File)
			require.NoError(t, err)
			require.Greater(t, fi.Size(), int64(len(ds.Series))*200, "feed.ics holds every series")

			require.Len(t, g.Sites, len(ds.Sites))
			from, to := seasonRange(ds)
			compiled := 0
			for i, want := range ds.Sites {
				got := g.Site(want.ID)
				require.NotNil(t, got, "site %s", want.ID)
				l, err := newLayout(want)
				require.NoError(t, err)
				requireRenamedAHUsOnly(t, l.ids)
				requireSameSite(t, want, got, l.ids)
				for _, sp := range want.Spaces {
					require.Equal(t, sp.Profile.ID, got.Space(sp.ID).Profile.ID, "%s/%s: the model's profile ids are valid and kept", want.ID, sp.ID)
				}
				if tt.compile(i, len(ds.Sites)) {
					requireSamePlan(t, want, got, l.ids, siteBookings(ds, want.ID), from, to)
					compiled++
				}
			}
			require.GreaterOrEqual(t, compiled, 3)
		})
	}
}

// requireRenamedAHUsOnly checks the one rename sitegen's data needs:
// the loader takes a dotted point id for <device>.<point>, so the air
// handlers' "wing-a.ahu.mode" loads as device "wing-a-ahu".
func requireRenamedAHUsOnly(t *testing.T, ids map[string]string) {
	t.Helper()
	for from, to := range ids {
		if dev, ok := strings.CutSuffix(from, ".ahu.mode"); ok {
			require.Equal(t, dev+"-ahu.mode", to)
			continue
		}
		require.Equal(t, from, to)
	}
}

func seasonRange(ds *Dataset) (time.Time, time.Time) {
	from, to := ds.SeasonStart, ds.SeasonEnd.AddDays(1)
	return time.Date(from.Year, from.Month, from.Day, 0, 0, 0, 0, ds.Location),
		time.Date(to.Year, to.Month, to.Day, 0, 0, 0, 0, ds.Location)
}

// siteBookings returns the bookings of the series of one site. A
// compiler ignores bookings of other resources; leaving them out only
// saves time.
func siteBookings(ds *Dataset, id string) []booking.Booking {
	var out []booking.Booking
	for i := range ds.Series {
		if ds.Series[i].Site == id {
			out = ds.Series[i].appendOccurrences(out, ds.Source, ds.Location)
		}
	}
	return out
}

// requireSameSite compares a model site with the one loaded from its
// files; ids maps the model's point ids to the files'.
func requireSameSite(t *testing.T, want, got *site.Site, ids map[string]string) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Name, got.Name)
	require.Equal(t, want.Location.String(), got.Location.String())
	require.Equal(t, want.Sources, got.Sources)

	// The model's connections load as they are; those only named by
	// points are invented, on loopback.
	named := map[string]bool{}
	for _, p := range want.Points {
		named[p.Connection] = true
	}
	for id := range want.Connections {
		named[id] = true
	}
	require.Len(t, got.Connections, len(named), "site %s", want.ID)
	for id := range named {
		gc := got.Connections[id]
		require.NotNil(t, gc, "site %s: connection %s", want.ID, id)
		if wc := want.Connections[id]; wc != nil {
			require.Equal(t, wc, gc, "site %s: connection %s", want.ID, id)
			continue
		}
		if gc.OPCUA != nil {
			require.Regexp(t, `^opc\.tcp://127\.0\.0\.1:\d+$`, gc.OPCUA.Endpoint)
			require.Equal(t, "none", gc.OPCUA.SecurityPolicy)
			require.Equal(t, "none", gc.OPCUA.SecurityMode)
		} else {
			require.Regexp(t, `^tcp://127\.0\.0\.1:\d+$`, gc.Modbus.URL)
		}
	}

	require.Len(t, got.Points, len(want.Points), "site %s", want.ID)
	for id, wp := range want.Points {
		gp := got.Points[ids[id]]
		require.NotNil(t, gp, "site %s: point %s (as %s) was not loaded", want.ID, id, ids[id])
		w := *wp
		w.ID = ids[id]
		// The loader sets Device for template points only: the part of the
		// id before the dot.
		w.Device, _, _ = strings.Cut(w.ID, ".")
		if !strings.Contains(w.ID, ".") {
			w.Device = ""
		}
		require.Equal(t, w, *gp, "site %s: point %s", want.ID, id)
	}

	require.Len(t, got.Spaces, len(want.Spaces), "site %s", want.ID)
	for i, ws := range want.Spaces {
		gs := got.Spaces[i]
		at := want.ID + "/" + ws.ID
		require.Equal(t, ws.ID, gs.ID, at)
		require.Equal(t, ws.Name, gs.Name, at)
		require.Equal(t, cmp.Or(ws.Kind, site.KindRoom), gs.Kind, at)
		require.Equal(t, spaceID(ws.Parent), spaceID(gs.Parent), at)
		require.Equal(t, spaceIDs(ws.Children), spaceIDs(gs.Children), at)
		require.Equal(t, ws.Resources, gs.Resources, at)
		wp, gp := ws.Profile, gs.Profile
		wp.ID, gp.ID = "", ""
		require.Equal(t, wp, gp, "%s: profile timings", at)
		require.Equal(t, scheduleIDs(ws.Schedules), scheduleIDs(gs.Schedules), at)
		require.Len(t, gs.Bindings, len(ws.Bindings), at)
		for j, wb := range ws.Bindings {
			gb := gs.Bindings[j]
			require.Equal(t, ids[wb.Point.ID], gb.Point.ID, at)
			require.Same(t, got.Points[gb.Point.ID], gb.Point, at)
			require.Equal(t, wb.Occupied, gb.Occupied, "%s: %s occupied", at, wb.Point.ID)
			require.Equal(t, wb.Vacant, gb.Vacant, "%s: %s vacant", at, wb.Point.ID)
			require.Equal(t, wb.Lead, gb.Lead, "%s: %s lead", at, wb.Point.ID)
			require.Equal(t, wb.Lag, gb.Lag, "%s: %s lag", at, wb.Point.ID)
		}
	}
	// Schedules with their weekly periods and exception calendars, and
	// the calendars with every day, hours included.
	require.Equal(t, want.Schedules, got.Schedules, "site %s", want.ID)
	require.Equal(t, want.Calendars, got.Calendars, "site %s", want.ID)
}

func spaceID(sp *site.Space) string {
	if sp == nil {
		return ""
	}
	return sp.ID
}

func spaceIDs(sps []*site.Space) []string {
	var out []string
	for _, sp := range sps {
		out = append(out, sp.ID)
	}
	return out
}

func scheduleIDs(scs []*site.Schedule) []string {
	var out []string
	for _, sc := range scs {
		out = append(out, sc.ID)
	}
	return out
}

// write is the part of a schedule.Change that reaches the BMS.
type write struct {
	At       int64 // Unix nanoseconds
	Point    string
	Value    site.Value
	Occupied bool
}

// requireSamePlan compiles both sites over [from, to) and requires the
// same Changes. They are sorted by time and point id, and renamed ids
// sort differently, so both lists are sorted again after renaming.
func requireSamePlan(t *testing.T, want, got *site.Site, ids map[string]string, bookings []booking.Booking, from, to time.Time) {
	t.Helper()
	writes := func(s *site.Site, rename func(string) string) []write {
		c := schedule.NewCompiler(s, from, to)
		c.SetBookings(bookings)
		changes := c.Changes()
		out := make([]write, len(changes))
		for i, ch := range changes {
			out[i] = write{ch.At.UnixNano(), rename(ch.Point.ID), ch.Value, ch.Occupied}
		}
		slices.SortFunc(out, func(a, b write) int {
			return cmp.Or(cmp.Compare(a.At, b.At), strings.Compare(a.Point, b.Point))
		})
		return out
	}
	w := writes(want, func(id string) string { return ids[id] })
	g := writes(got, func(id string) string { return id })
	require.NotEmpty(t, w, "site %s: no writes at all", want.ID)
	require.Len(t, g, len(w), "site %s", want.ID)
	for i := range w {
		// One require per write would cost more than the compile.
		if w[i] != g[i] {
			require.Equal(t, w[i], g[i], "site %s: write %d at %s", want.ID, i, time.Unix(0, w[i].At).In(want.Location))
		}
	}
}

func TestWriteFilesDeterministic(t *testing.T) {
	ds, err := Generate(Config{Schools: 3})
	require.NoError(t, err)
	a, b := t.TempDir(), t.TempDir()
	require.NoError(t, ds.WriteFiles(a))
	require.NoError(t, ds.WriteFiles(b))
	files := func(dir string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			rel, _ := filepath.Rel(dir, path)
			out[rel] = data
			return err
		})
		require.NoError(t, err)
		return out
	}
	fa := files(a)
	require.Equal(t, fa, files(b))
	require.Equal(t, ds.Feed(), fa[FeedFileName])
	require.Contains(t, fa, "mappings/skole-01.yaml")
	require.Contains(t, fa, "templates/mode-setpoint-lights-opcua.yaml")
	// Written again into the same directory, nothing changes.
	require.NoError(t, ds.WriteFiles(a))
	require.Equal(t, fa, files(a))
}

func TestWriteFilesLayout(t *testing.T) {
	ds, err := Generate(Config{Schools: 1})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, ds.WriteFiles(dir))
	gw, err := os.ReadFile(filepath.Join(dir, GatewayFileName))
	require.NoError(t, err)
	require.Contains(t, string(gw), "\nstate_dir: var\ntime_zone: Europe/Copenhagen\ntemplates: [templates/*.yaml]\nsites: [mappings/*.yaml]\n")
	m, err := os.ReadFile(filepath.Join(dir, "mappings", "skole-01.yaml"))
	require.NoError(t, err)
	for _, want := range []string{
		"\nsite:\n  id: skole-01\n  name: Valby Skole\n  time_zone: Europe/Copenhagen\n\nsources:\n",
		"\n  - id: room-01\n    template: mode-setpoint-lights-opcua\n    connection: bms\n    node_id_prefix: ns=2;s=skole-01.room-01.\n    overrides:\n      - {point: mode, description: HVAC mode of Klasselokale 1}\n",
		"\n  - {id: classroom, lead: 30m, lag: 15m, merge_gap: 30m, min_window: 1h}\n",
		"\n      - {point: room-01.mode, occupied: comfort, vacant: economy}\n      - {point: room-01.setpoint, occupied: 21, vacant: 17}\n      - {point: room-01.lights, occupied: true, vacant: false, lead: 0s, lag: 0s}\n",
		"\n      - {days: [mon, tue, wed, thu, fri], from: \"08:00\", to: \"15:00\"}\n",
		"\n      - {date: 2026-12-18, name: Juleafslutning, hours: [{from: \"08:00\", to: \"12:00\"}]}\n",
		"\n      - {from: 2026-12-19, to: 2027-01-03, name: Juleferie}\n",
	} {
		require.Contains(t, string(m), want)
	}
	tpl, err := os.ReadFile(filepath.Join(dir, "templates", "mode-opcua.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(tpl), "\n  - {id: mode, opcua: {node_id: mode}, type: uint16, access: write, labels: {\"off\": 0, economy: 1, comfort: 2}}\n")
}

func TestWriteFilesStaleMapping(t *testing.T) {
	dir := t.TempDir()
	big, err := Generate(Config{Schools: 3})
	require.NoError(t, err)
	require.NoError(t, big.WriteFiles(dir))
	small, err := Generate(Config{Schools: 2})
	require.NoError(t, err)
	err = small.WriteFiles(dir)
	require.ErrorContains(t, err, "skole-03.yaml is not part of this data set but gateway.yaml would load it")
}

// handmade is a site with what sitegen does not generate: Modbus points
// with unit ids, bits, word orders, scale and offset; points declared
// directly; ids the loader refuses; OPC UA node ids without a common
// prefix; profiles that share an id or have none; a parent declared after
// its children.
func handmade(loc *time.Location, source string) *site.Site {
	minSP, maxSP := 14.0, 23.0
	modbus := func(table site.ModbusTable, addr uint16, unit uint8) *site.ModbusAddress {
		return &site.ModbusAddress{Table: table, Address: addr, Bit: -1, UnitID: unit, ByteOrder: site.BigEndian, WordOrder: site.BigEndian}
	}
	labels := func() map[string]float64 { return map[string]float64{"standby": 0, "comfort": 2} }
	pts := []*site.Point{
		{ID: "pitch_floodlight", Connection: "plc", Description: "Floodlight", Type: site.TypeBool, Access: site.AccessWrite, Scale: 1, Modbus: modbus(site.Coil, 7, 3)},
		{ID: "Hall AHU.mode", Device: "Hall AHU", Connection: "plc", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1, Labels: labels(), Modbus: modbus(site.HoldingRegister, 100, 5)},
		{ID: "Hall AHU.setpoint", Device: "Hall AHU", Connection: "plc", Description: "Setpoint", Type: site.TypeFloat32, Access: site.AccessWrite, Scale: 1, Unit: "°C", Min: &minSP, Max: &maxSP,
			Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: 102, Bit: -1, UnitID: 5, ByteOrder: site.LittleEndian, WordOrder: site.LittleEndian}},
		{ID: "Hall AHU.lights", Device: "Hall AHU", Connection: "plc", Type: site.TypeBool, Access: site.AccessWrite, Scale: 1,
			Modbus: &site.ModbusAddress{Table: site.HoldingRegister, Address: 104, Bit: 3, UnitID: 5, ByteOrder: site.BigEndian, WordOrder: site.BigEndian}},
		{ID: "Hall AHU.co2", Device: "Hall AHU", Connection: "plc", Type: site.TypeUint16, Access: site.AccessRead, Scale: 1, Unit: "ppm", Modbus: modbus(site.InputRegister, 200, 6)},
		{ID: "heating", Connection: "plc", Type: site.TypeInt16, Access: site.AccessWrite, Scale: 0.5, Offset: -10, Modbus: modbus(site.HoldingRegister, 300, 5)},
		{ID: "gym.ahu.mode", Device: "gym.ahu", Connection: "bms", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1, Labels: labels(), OPCUA: &site.OPCUAAddress{NodeID: "ns=3;s=Gym.AHU.mode"}},
		{ID: "pool.ahu.mode", Device: "pool.ahu", Connection: "bms", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1, Labels: labels(), OPCUA: &site.OPCUAAddress{NodeID: "ns=3;s=Pool.AHU.mode"}},
		{ID: "pool.fan", Device: "", Connection: "bms", Type: site.TypeBool, Access: site.AccessWrite, Scale: 1, OPCUA: &site.OPCUAAddress{NodeID: "ns=3;i=1001"}},
		{ID: "pool.pump", Device: "", Connection: "bms", Type: site.TypeBool, Access: site.AccessWrite, Scale: 1, OPCUA: &site.OPCUAAddress{NodeID: "ns=3;i=1002"}},
		{ID: "Gym Lights!", Connection: "bms", Type: site.TypeBool, Access: site.AccessWrite, Scale: 1, OPCUA: &site.OPCUAAddress{NodeID: "ns=3;i=2000"}},
	}
	s := &site.Site{
		ID: "handmade", Name: "Handmade", Location: loc,
		Sources: []site.SourceRef{{Source: source, Precedence: 5}},
		Connections: map[string]*site.Connection{
			"plc":   {ID: "plc", Modbus: &site.ModbusConnection{URL: "tcp://10.0.0.5:502", UnitID: 3}},
			"rs485": {ID: "rs485", Modbus: &site.ModbusConnection{URL: "rtu:///dev/ttyUSB0", UnitID: 1, BaudRate: 9600, DataBits: 8, StopBits: 2, Parity: "none"}},
			"head":  {ID: "head", OPCUA: &site.OPCUAConnection{Endpoint: "opc.tcp://bms.example:4840/ua", SecurityPolicy: "none", SecurityMode: "none"}},
		},
		Points:    map[string]*site.Point{},
		Schedules: map[string]*site.Schedule{},
		Calendars: map[string]*site.Calendar{},
	}
	for _, p := range pts {
		s.Points[p.ID] = p
	}
	d := func(y int, m time.Month, day int) site.Date { return site.Date{Year: y, Month: m, Day: day} }
	closed := &site.Calendar{ID: "closed", Days: []site.ExceptionDay{
		{From: d(2026, 12, 24), To: d(2027, 1, 1), Name: "Christmas"},
		{From: d(2026, 11, 27), To: d(2026, 11, 27), Name: "Open day", Hours: []site.Period{{From: 9 * 60, To: 12 * 60}, {From: 13 * 60, To: 24 * 60}}},
	}}
	unused := &site.Calendar{ID: "unused", Days: []site.ExceptionDay{{From: d(2026, 10, 1), To: d(2026, 10, 1), Name: ""}}}
	week := &site.Schedule{ID: "week", Weekly: []site.WeeklyPeriod{
		{Days: [7]bool{time.Monday: true, time.Wednesday: true, time.Friday: true}, From: 7*60 + 30, To: 16 * 60},
		{Days: [7]bool{time.Saturday: true}, From: 10 * 60, To: 14 * 60},
	}, Exceptions: []*site.Calendar{closed}}
	s.Schedules["week"] = week
	s.Calendars["closed"], s.Calendars["unused"] = closed, unused

	hallProfile := site.Profile{ID: "hall", Lead: time.Hour, Lag: 15 * time.Minute, MergeGap: 45 * time.Minute, MinWindow: time.Hour}
	otherHall := site.Profile{ID: "hall", Lead: 30 * time.Minute}
	bad := site.Profile{ID: "Bad Id", Lag: 10 * time.Minute}
	p := s.Points
	hall := &site.Space{ID: "hall", Name: "Hall", Kind: site.KindHall, Resources: []string{"r-hall"}, Profile: hallProfile, Bindings: []site.Binding{
		{Point: p["Hall AHU.mode"], Occupied: site.Value{Num: 2, Label: "comfort"}, Vacant: site.Value{Num: 0, Label: "standby"}, Lead: time.Hour, Lag: 15 * time.Minute},
		{Point: p["Hall AHU.setpoint"], Occupied: site.Value{Num: 20.5}, Vacant: site.Value{Num: 16}, Lead: 2 * time.Hour, Lag: 15 * time.Minute},
		{Point: p["Hall AHU.lights"], Occupied: site.Value{Num: 1}, Vacant: site.Value{Num: 0}},
		{Point: p["heating"], Occupied: site.Value{Num: 20}, Vacant: site.Value{Num: -2.5}, Lead: time.Hour, Lag: 15 * time.Minute},
	}}
	gym := &site.Space{ID: "gym", Name: "Gym", Kind: site.KindGym, Resources: []string{"r-gym", "r-gym-b"}, Profile: otherHall, Schedules: []*site.Schedule{week}, Bindings: []site.Binding{
		{Point: p["gym.ahu.mode"], Occupied: site.Value{Num: 2, Label: "comfort"}, Vacant: site.Value{Num: 0, Label: "standby"}, Lead: 30 * time.Minute},
		{Point: p["Gym Lights!"], Occupied: site.Value{Num: 1}, Vacant: site.Value{Num: 0}, Lag: 5 * time.Minute},
	}}
	pool := &site.Space{ID: "pool", Name: "Pool", Kind: site.KindRoom, Resources: []string{"r-pool"}, Profile: bad, Bindings: []site.Binding{
		{Point: p["pool.ahu.mode"], Occupied: site.Value{Num: 2, Label: "comfort"}, Vacant: site.Value{Num: 0, Label: "standby"}, Lag: 10 * time.Minute},
		{Point: p["pool.fan"], Occupied: site.Value{Num: 1}, Vacant: site.Value{Num: 0}, Lag: 10 * time.Minute},
		{Point: p["pool.pump"], Occupied: site.Value{Num: 1}, Vacant: site.Value{Num: 0}, Lag: 10 * time.Minute},
	}}
	pitch := &site.Space{ID: "pitch", Name: "Pitch", Kind: site.KindPitch, Resources: []string{"r-pitch"}, Bindings: []site.Binding{
		{Point: p["pitch_floodlight"], Occupied: site.Value{Num: 1}, Vacant: site.Value{Num: 0}, Lead: 10 * time.Minute},
	}}
	wing := &site.Space{ID: "wing", Name: "Wing", Kind: site.KindWing, Children: []*site.Space{hall, gym}}
	hall.Parent, gym.Parent = wing, wing
	s.Spaces = []*site.Space{hall, gym, pool, pitch, wing}
	return s
}

func handmadeDataset(t *testing.T) *Dataset {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Copenhagen")
	require.NoError(t, err)
	ds := &Dataset{
		Source: "test-feed", Location: loc,
		SeasonStart: site.Date{Year: 2026, Month: time.November, Day: 2},
		SeasonEnd:   site.Date{Year: 2026, Month: time.December, Day: 31},
	}
	ds.Sites = []*site.Site{handmade(loc, ds.Source)}
	for i, r := range []string{"r-hall", "r-gym", "r-gym-b", "r-pool", "r-pitch"} {
		first := site.Date{Year: 2026, Month: time.November, Day: 2 + i}
		ds.Series = append(ds.Series, Series{
			UID: "s" + r, Site: "handmade", Resource: r, Organiser: "assoc-1", Summary: "x", Status: booking.Confirmed,
			Start: 17*60 + site.Clock(30*i), Duration: 90 * time.Minute, First: first, Until: first.AddDays(7 * 7),
		})
	}
	return ds
}

func TestWriteFilesHandmade(t *testing.T) {
	ds := handmadeDataset(t)
	dir := t.TempDir()
	require.NoError(t, ds.WriteFiles(dir))
	g, err := config.Load(filepath.Join(dir, GatewayFileName))
	require.NoError(t, err)
	want, got := ds.Sites[0], g.Sites[0]
	l, err := newLayout(want)
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"pitch_floodlight":  "pitch_floodlight",
		"Hall AHU.mode":     "hall-ahu.mode",
		"Hall AHU.setpoint": "hall-ahu.setpoint",
		"Hall AHU.lights":   "hall-ahu.lights",
		"Hall AHU.co2":      "hall-ahu.co2",
		"heating":           "heating",
		"gym.ahu.mode":      "gym-ahu.mode",
		"pool.ahu.mode":     "pool-ahu.mode",
		"pool.fan":          "pool.fan",
		"pool.pump":         "pool.pump",
		"Gym Lights!":       "gym-lights-",
	}, l.ids)
	requireSameSite(t, want, got, l.ids)
	requireSamePlan(t, want, got, l.ids, ds.Bookings(), time.Date(2026, 11, 1, 0, 0, 0, 0, ds.Location), time.Date(2027, 1, 5, 0, 0, 0, 0, ds.Location))

	profiles := map[string]string{}
	for _, sp := range got.Spaces {
		profiles[sp.ID] = sp.Profile.ID
	}
	require.Equal(t, map[string]string{"hall": "hall", "gym": "hall-2", "pool": "bad-id", "pitch": "", "wing": ""}, profiles)

	// gym-ahu and pool-ahu share a template; pool's node ids have no
	// common prefix, so its template holds them whole.
	require.Len(t, g.Templates, 3)
	m, err := os.ReadFile(filepath.Join(dir, "mappings", "handmade.yaml"))
	require.NoError(t, err)
	for _, want := range []string{
		"\n  - id: bms\n    opcua:\n      endpoint: opc.tcp://127.0.0.1:48400\n      security_policy: none\n",
		"\n  - id: head\n    opcua:\n      endpoint: opc.tcp://bms.example:4840/ua\n      security_policy: none\n      security_mode: none\n",
		"\n  - id: plc\n    modbus:\n      url: tcp://10.0.0.5:502\n      unit_id: 3\n",
		"\n  - id: rs485\n    modbus:\n      url: rtu:///dev/ttyUSB0\n      unit_id: 1\n      serial: {baud_rate: 9600, data_bits: 8, parity: none, stop_bits: 2}\n",
		"\n  - id: hall-ahu\n    template: mode-setpoint-lights-etc-modbus\n    connection: plc\n    unit_id: 5\n    address_offset: 100\n",
		"\n    modbus: {table: coil, address: 7}\n",
		"\n    modbus: {table: holding_register, address: 300, unit_id: 5}\n",
		"\n  - {id: bad-id, lag: 10m}\n",
	} {
		require.Contains(t, string(m), want)
	}
	tpl, err := os.ReadFile(filepath.Join(dir, "templates", "mode-setpoint-lights-etc-modbus.yaml"))
	require.NoError(t, err)
	for _, want := range []string{
		"{id: setpoint, description: Setpoint, modbus: {table: holding_register, address: 2, byte_order: little, word_order: little}",
		"{id: lights, modbus: {table: holding_register, address: 4, bit: 3}, type: bool, access: write}",
		"{id: co2, modbus: {table: input_register, address: 100, unit_id: 6}, type: uint16, unit: ppm}",
		"labels: {standby: 0, comfort: 2}",
	} {
		require.Contains(t, string(tpl), want)
	}
}

func TestWriteFilesErrors(t *testing.T) {
	ds := handmadeDataset(t)
	ds.Sites[0].Points["pool.fan"].Connection = "plc"
	err := ds.WriteFiles(t.TempDir())
	require.ErrorContains(t, err, `point "pool.fan" is addressed by opcua but connection "plc" is modbus`)

	ds = handmadeDataset(t)
	ds.Sites[0].Points["heating"].Connection = "bms"
	err = ds.WriteFiles(t.TempDir())
	require.ErrorContains(t, err, `point "heating" is addressed by modbus but other points of connection "bms" by opcua; a connection speaks one protocol`)

	ds = handmadeDataset(t)
	ds.Sites[0].Connections["head"].OPCUA.Username = "bmsgw"
	ds.Sites[0].Connections["head"].OPCUA.Password = "hunter2"
	err = ds.WriteFiles(t.TempDir())
	require.ErrorContains(t, err, `connection "head" has a password`)
	require.NotContains(t, err.Error(), "hunter2")

	ds = handmadeDataset(t)
	ds.Sites[0].Points["pool.fan"].Connection = "head"
	ds.Sites[0].Points["pool.fan"].OPCUA, ds.Sites[0].Points["pool.fan"].Modbus = nil, &site.ModbusAddress{Table: site.Coil, Bit: -1}
	require.ErrorContains(t, ds.WriteFiles(t.TempDir()), `point "pool.fan" is addressed by modbus but connection "head" is opcua`)

	ds = handmadeDataset(t)
	ds.Sites[0].ID = "Handmade"
	require.ErrorContains(t, ds.WriteFiles(t.TempDir()), `site id "Handmade" must use lower case letters`)
}

// BenchmarkLoadCopenhagen loads the files of the default data set, 72
// schools, as the gateway does at start and on every reload.
func BenchmarkLoadCopenhagen(b *testing.B) {
	ds, err := Generate(Config{})
	require.NoError(b, err)
	dir := b.TempDir()
	require.NoError(b, ds.WriteFiles(dir))
	var size int64
	err = filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".yaml") {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return err
	})
	require.NoError(b, err)
	b.SetBytes(size)
	path := filepath.Join(dir, GatewayFileName)
	for b.Loop() {
		if _, err := config.Load(path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
}
