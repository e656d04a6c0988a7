package httpapi

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/sitemon"
)

// The web page's endpoints join the role table of
// TestEveryEndpointEveryRole.
func init() {
	calls["GET /api/sites/{site}/bookings"] = endpointCall{http.MethodGet, "/api/sites/valby-skole/bookings?from=2026-11-23&to=2026-11-30", nil, 200}
	calls["GET /api/sites/{site}/security"] = endpointCall{http.MethodGet, "/api/sites/valby-skole/security", nil, 200}
	calls["GET /api/reports/energy.xlsx"] = endpointCall{http.MethodGet, "/api/reports/energy.xlsx?site=valby-skole&week=2026-W48", nil, 200}
	calls["GET /api/reports/noshows.xlsx"] = endpointCall{http.MethodGet, "/api/reports/noshows.xlsx?since=2026-11-23&site=valby-skole", nil, 200}
}

// Bookings lists the merged season bookings of the site that overlap
// [from, to).
func (b *refBackend) Bookings(_ context.Context, siteID string, from, to time.Time) ([]booking.Booking, error) {
	if _, err := b.site(siteID); err != nil {
		return nil, err
	}
	var out []booking.Booking
	for _, bk := range b.bookings[siteID] {
		if bk.End.After(from) && bk.Start.Before(to) {
			out = append(out, bk)
		}
	}
	return out, nil
}

// refReadings are the door and area inputs the test's security monitor
// has read at testNow: the gym entrance closed and locked, the gym
// side door held open by a bin (contact loop open, bolt not thrown), the
// gym wing disarmed and wing B armed.
var refReadings = map[string]float64{
	"gym_entrance_contact": 0, "gym_entrance_bolt": 1, "gym_entrance_unlock": 0, "gym_entrance_grants": 0,
	"gym_side_loop": 0, "gym_side_bolt": 0, "gym_side_handle": 0,
	"gym_wing_armed": 0, "wing_b_armed": 1,
}

// Security runs the site's real security monitor on refReadings.
func (b *refBackend) Security(_ context.Context, siteID string) (SiteSecurity, error) {
	s, err := b.site(siteID)
	if err != nil {
		return SiteSecurity{}, err
	}
	m, err := security.NewMonitor(s.ID, sitemon.SecuritySpec(s), s.Location)
	if err != nil {
		return SiteSecurity{}, err
	}
	at := b.now.Add(-10 * time.Minute)
	m.Advance(at)
	for _, p := range slices.Sorted(maps.Keys(refReadings)) {
		if s.Points[p] != nil {
			m.Observe(p, refReadings[p], true, at)
		}
	}
	m.Advance(b.now)
	return SiteSecurity{Doors: m.Doors(), Areas: m.Areas(), Detectors: m.Detectors()}, nil
}

var (
	_ BookingLister    = (*refBackend)(nil)
	_ SecurityReporter = (*refBackend)(nil)
)

// TestBookingsOfTheWeek: the reference Thursday's volleyball booking in
// the gym is in the week's bookings, with the space it occupies and the
// association's pseudonymous id only.
func TestBookingsOfTheWeek(t *testing.T) {
	a := newTestAPI(t)
	var bs []BookingInfo
	a.get(RoleViewer, "/api/sites/valby-skole/bookings?from=2026-11-23&to=2026-11-30", &bs)
	require.NotEmpty(t, bs)
	i := slices.IndexFunc(bs, func(b BookingInfo) bool { return b.Organiser == "valby-volley" })
	require.GreaterOrEqual(t, i, 0, "the volleyball booking")
	v := bs[i]
	require.Equal(t, []string{"gym"}, v.Spaces)
	require.True(t, v.Start.Equal(thursday.Add(19*time.Hour)), "%s", v.Start)
	require.True(t, v.End.Equal(thursday.Add(21*time.Hour)), "%s", v.End)
	for j := 1; j < len(bs); j++ {
		require.False(t, bs[j].Start.Before(bs[j-1].Start), "sorted by start")
	}
	for _, b := range bs {
		require.True(t, b.End.After(thursday.AddDate(0, 0, -3)) && b.Start.Before(thursday.AddDate(0, 0, 4)), "in the week: %v", b)
	}

	var gym []BookingInfo
	a.get(RoleViewer, "/api/sites/valby-skole/bookings?from=2026-11-23&to=2026-11-30&space=gym", &gym)
	require.NotEmpty(t, gym)
	require.Less(t, len(gym), len(bs))
	for _, b := range gym {
		require.Contains(t, b.Spaces, "gym")
	}
	code, body, _ := a.do(http.MethodGet, "/api/sites/valby-skole/bookings?space=attic", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusNotFound, code, "%s", body)
	code, body, _ = a.do(http.MethodGet, "/api/sites/valby-skole/bookings?form=2026-11-23", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	requireError(t, body, `unknown parameter "form"`)
	a.requireNothingPersonal()
}

// TestSecurityStatusWindow: the doors and areas as the site's real
// monitor sees the readings, with what the site model adds.
func TestSecurityStatusWindow(t *testing.T) {
	a := newTestAPI(t)
	var st SecurityStatus
	a.get(RoleViewer, "/api/sites/valby-skole/security", &st)
	require.Equal(t, "valby-skole", st.Site)
	ids := func() (out []string) {
		for _, d := range st.Doors {
			out = append(out, d.ID)
		}
		return out
	}()
	require.Equal(t, []string{"gym_entrance", "gym_side", "wing_b_entrance", "pitch_gate"}, ids)
	door := func(id string) DoorInfo {
		return st.Doors[slices.IndexFunc(st.Doors, func(d DoorInfo) bool { return d.ID == id })]
	}
	require.True(t, door("gym_entrance").Secured, "%+v", door("gym_entrance"))
	require.False(t, door("gym_side").Secured, "%+v", door("gym_side"))
	require.NotEqual(t, "unknown", door("gym_side").State)
	require.Equal(t, "unknown", door("pitch_gate").State, "never read")
	require.Len(t, st.Areas, 2)
	gw := st.Areas[0]
	require.Equal(t, "gym_wing", gw.ID)
	require.True(t, gw.ArmedKnown)
	require.False(t, gw.Armed)
	require.Equal(t, "gym_wing_authorised", gw.Authorisation)
	require.Equal(t, []string{"gym_entrance", "gym_side"}, gw.Doors)
	require.True(t, st.Areas[1].Armed)
	require.Len(t, st.Detectors, 4)

	code, body, _ := a.do(http.MethodGet, "/api/sites/nowhere/security", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusNotFound, code, "%s", body)
}

// TestWebUIEndpointsWithoutSupport: a Backend that neither lists
// bookings nor watches doors gets 503 with a reason, not a crash.
func TestWebUIEndpointsWithoutSupport(t *testing.T) {
	a := newTestAPI(t)
	s, err := New(Options{Backend: struct{ Backend }{a.b}, Tokens: a.s.tokens.Load(), Now: a.s.now})
	require.NoError(t, err)
	for path, want := range map[string]string{
		"/api/sites/valby-skole/bookings": "does not list bookings",
		"/api/sites/valby-skole/security": "does not report doors",
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+a.tok[RoleViewer])
		rec := &captured{header: http.Header{}}
		s.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusServiceUnavailable, rec.code, path)
		requireError(t, rec.body.Bytes(), want)
	}
}

// TestReportWorkbooks: the XLSX workbooks hold the JSON reports' numbers,
// read back with excelize; bad parameters get the JSON endpoints' errors.
func TestReportWorkbooks(t *testing.T) {
	a := newTestAPI(t)
	var rep EnergyReport
	a.get(RoleViewer, "/api/reports/energy?site=valby-skole&week=2026-W48", &rep)
	code, body, hdr := a.do(http.MethodGet, "/api/reports/energy.xlsx?site=valby-skole&week=2026-W48", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Equal(t, xlsxContentType, hdr.Get("Content-Type"))
	require.Contains(t, hdr.Get("Content-Disposition"), `filename="valby-skole-energy-2026-W48.xlsx"`)
	rows := readSheet(t, body, "Energy 2026-W48")
	require.Equal(t, []string{"space", "name", "comfort_hours", "baseline_hours", "saved_hours", "heating_kw", "lighting_kw", "saved_heating_kwh", "saved_lighting_kwh"}, rows[0])
	require.Len(t, rep.Spaces, 2)
	for i, e := range rep.Spaces {
		r := rows[i+1]
		require.Equal(t, e.Space, r[0])
		requireCell(t, e.ComfortHours, r[2])
		requireCell(t, e.BaselineHours, r[3])
		requireCell(t, e.SavedHeatingKWh, r[7])
	}
	total := rows[len(rep.Spaces)+1]
	require.Equal(t, "TOTAL", total[0])
	requireCell(t, rep.Total.SavedHours, total[4])

	a.publish(thursday.Add(19*time.Hour+20*time.Minute), "no_show", "info", "room12", chessBooking, "valby-skak")
	var ns NoShowReport
	a.get(RoleViewer, "/api/reports/noshows?since=2026-11-23&site=valby-skole", &ns)
	code, body, _ = a.do(http.MethodGet, "/api/reports/noshows.xlsx?since=2026-11-23&site=valby-skole", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	rows = readSheet(t, body, "No-shows")
	require.Equal(t, []string{"organiser", "bookings", "no_shows", "late", "rate"}, rows[0])
	require.NotEmpty(t, ns.Organisers)
	for i, o := range ns.Organisers {
		require.Equal(t, o.Organiser, rows[i+1][0])
		requireCell(t, float64(o.Bookings), rows[i+1][1])
		requireCell(t, float64(o.NoShows), rows[i+1][2])
	}
	chess := slices.IndexFunc(ns.Organisers, func(o NoShowCount) bool { return o.Organiser == "valby-skak" })
	require.GreaterOrEqual(t, chess, 0)
	require.Equal(t, 1, ns.Organisers[chess].NoShows)

	code, body, _ = a.do(http.MethodGet, "/api/reports/noshows.xlsx?since=yesterday", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	requireError(t, body, "since")
	code, body, _ = a.do(http.MethodGet, "/api/reports/energy.xlsx?site=valby-skole&week=2026-W54", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	code, body, _ = a.do(http.MethodGet, "/api/reports/energy.xlsx?week=2026-W48", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	requireError(t, body, "site is required")
}

func readSheet(t *testing.T, data []byte, sheet string) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(data))
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, []string{sheet}, f.GetSheetList())
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	require.NoError(t, err)
	return rows
}

func requireCell(t *testing.T, want float64, cell string) {
	t.Helper()
	got, err := strconv.ParseFloat(cell, 64)
	require.NoError(t, err, "cell %q", cell)
	require.InDelta(t, want, got, 1e-9, "cell %q", cell)
}
