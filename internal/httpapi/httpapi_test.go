package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/localapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testAPI is the API of the reference gateway on a real socket on
// 127.0.0.1, with one token per role.
type testAPI struct {
	t       *testing.T
	b       *refBackend
	s       *Server
	url     string
	metrics *Metrics
	tok     map[Role]string
	// bodies collects every response body, to check that nothing
	// personal was in any.
	bodies *bytes.Buffer
}

// Holders of the test tokens.
var holderOf = map[Role]string{RoleViewer: "energy-office", RoleOperator: "ops-townhall", RoleAdmin: "it-admin"}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	a := &testAPI{t: t, b: newRefBackend(t), tok: map[Role]string{}, bodies: &bytes.Buffer{}}
	var entries []TokenEntry
	for _, r := range Roles {
		tok, hash, err := GenerateToken()
		require.NoError(t, err)
		a.tok[r] = tok
		entries = append(entries, TokenEntry{Name: holderOf[r], Role: r.String(), TokenSHA256: hash})
	}
	tokens, err := NewTokens(entries)
	require.NoError(t, err)
	a.metrics, err = NewMetrics(nil)
	require.NoError(t, err)
	a.s, err = New(Options{Backend: a.b, Tokens: tokens, Metrics: a.metrics, Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	srv := httptest.NewServer(a.s.Handler())
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// do sends a request with the token (none when ""), and returns the
// status, the body and the header.
func (a *testAPI) do(method, path, token string, body any) (int, []byte, http.Header) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		switch v := body.(type) {
		case string:
			rd = strings.NewReader(v)
		default:
			b, err := json.Marshal(v)
			require.NoError(a.t, err)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, rd)
	require.NoError(a.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	a.bodies.Write(out)
	return resp.StatusCode, out, resp.Header
}

// get fetches path as role and decodes the 200 answer into v.
func (a *testAPI) get(role Role, path string, v any) {
	a.t.Helper()
	code, body, _ := a.do(http.MethodGet, path, a.tok[role], nil)
	require.Equal(a.t, http.StatusOK, code, "GET %s: %s", path, body)
	require.NoError(a.t, json.Unmarshal(body, v), "GET %s: %s", path, body)
}

// publish stores an event with a card holder, as a door with a reader
// of a site that keeps card holders reports it.
func (a *testAPI) publish(at time.Time, kind events.Kind, sev events.Severity, space, booking, organiser string) events.Event {
	a.t.Helper()
	e, err := a.b.bus.Publish(a.t.Context(), events.Event{
		Time: at, Site: "valby-skole", Space: space, Kind: kind, Severity: sev, Subject: space + "_door",
		Points: []string{space + "_door.contact"}, Booking: booking, Organiser: organiser,
		Message: string(kind) + " at " + space, CardHolder: "Jens Jensen 4711",
	})
	require.NoError(a.t, err)
	require.Equal(a.t, "Jens Jensen 4711", e.CardHolder, "the journal keeps it")
	return e
}

// Personal data that exists in the test's inputs: the iCalendar feed's
// ORGANIZER (a person's name and address) and the events' card holder.
var personal = []string{"Mette Hansen", "mette.hansen", "example.org", "mailto:", "Jens Jensen", "4711", "card_holder", "CardHolder"}

func (a *testAPI) requireNothingPersonal() {
	a.t.Helper()
	require.NotZero(a.t, a.bodies.Len())
	for _, p := range personal {
		require.NotContains(a.t, a.bodies.String(), p, "personal data in a response")
	}
}

const chessBooking = "leisure:chess-room12@booking.kk.dk/20261126T180000Z"

// endpointCall is how the role table calls an endpoint.
type endpointCall struct {
	method, path string
	body         any
	// ok is the status of a call allowed by its role.
	ok int
}

// calls has one call per route of the server; the table test fails if a
// route has none, so a new endpoint cannot miss its role test.
var calls = map[string]endpointCall{
	"GET /healthz":                  {http.MethodGet, "/healthz", nil, 200},
	"GET /readyz":                   {http.MethodGet, "/readyz", nil, 200},
	"GET /metrics":                  {http.MethodGet, "/metrics", nil, 200},
	"GET /api/whoami":               {http.MethodGet, "/api/whoami", nil, 200},
	"GET /api/tokens":               {http.MethodGet, "/api/tokens", nil, 200},
	"GET /api/routes":               {http.MethodGet, "/api/routes", nil, 200},
	"GET /api/sites":                {http.MethodGet, "/api/sites", nil, 200},
	"GET /api/sites/{site}":         {http.MethodGet, "/api/sites/valby-skole", nil, 200},
	"GET /api/sites/{site}/spaces":  {http.MethodGet, "/api/sites/valby-skole/spaces", nil, 200},
	"GET /api/sites/{site}/points":  {http.MethodGet, "/api/sites/valby-skole/points", nil, 200},
	"GET /api/sites/{site}/plan":    {http.MethodGet, "/api/sites/valby-skole/plan?from=2026-11-26", nil, 200},
	"GET /api/sites/{site}/windows": {http.MethodGet, "/api/sites/valby-skole/windows?from=2026-11-23&to=2026-11-30", nil, 200},
	"POST /api/sites/{site}/round":  {http.MethodPost, "/api/sites/valby-skole/round", nil, 200},
	"GET /api/status":               {http.MethodGet, "/api/status", nil, 200},
	"GET /api/feeds":                {http.MethodGet, "/api/feeds", nil, 200},
	"GET /api/events":               {http.MethodGet, "/api/events?since=2026-11-01T00:00:00Z", nil, 200},
	"GET /api/events/stream":        {http.MethodGet, "/api/events/stream?since=2026-11-01T00:00:00Z", nil, 200},
	"GET /api/reports/noshows":      {http.MethodGet, "/api/reports/noshows?since=2026-11-23&site=valby-skole", nil, 200},
	"GET /api/reports/energy":       {http.MethodGet, "/api/reports/energy?site=valby-skole&week=2026-W48", nil, 200},
	"PUT /api/sites/{site}/points/{point}/override": {http.MethodPut, "/api/sites/valby-skole/points/gym_ahu.mode/override",
		OverrideRequest{Label: "off", For: "2h", Why: "water leak in the gym, AHU off until the plumber leaves"}, 200},
	"DELETE /api/sites/{site}/points/{point}/override": {http.MethodDelete, "/api/sites/valby-skole/points/gym_ahu.mode/override", nil, 200},
}

// TestEveryEndpointEveryRole calls every endpoint without a token, with a
// wrong one and with each role's: the roles below an endpoint's get 403,
// the others its answer; no token or a wrong one gets 401 with a
// WWW-Authenticate challenge, except on /healthz and /readyz. No answer
// holds anything personal.
func TestEveryEndpointEveryRole(t *testing.T) {
	a := newTestAPI(t)
	// Events with card holders in the journal, and the chess club's
	// no-show, so that the lists and reports have something to leak.
	a.publish(thursday.Add(19*time.Hour+20*time.Minute), events.NoShow, events.Info, "room12", chessBooking, "valby-skak")
	a.publish(thursday.Add(21*time.Hour+20*time.Minute), events.DoorHeldOpen, events.Warning, "gym", "", "")

	routes := a.s.Routes()
	require.Len(t, calls, len(routes), "every route has a call in the table and no call is stale")
	for _, rt := range routes {
		_, ok := calls[rt.Pattern]
		require.True(t, ok, "route %s has no call in the table", rt.Pattern)
	}
	wrong, _, err := GenerateToken()
	require.NoError(t, err)
	for _, who := range []struct {
		name  string
		token string
		role  Role
	}{
		{"no token", "", 0},
		{"wrong token", wrong, 0},
		{"viewer", a.tok[RoleViewer], RoleViewer},
		{"operator", a.tok[RoleOperator], RoleOperator},
		{"admin", a.tok[RoleAdmin], RoleAdmin},
	} {
		// The routes in order for each holder: an allowed PUT sets the
		// override that the DELETE after it clears.
		for _, rt := range routes {
			c := calls[rt.Pattern]
			t.Run(who.name+"/"+rt.Pattern, func(t *testing.T) {
				want := c.ok
				switch {
				case rt.Role == 0:
				case who.role == 0:
					want = http.StatusUnauthorized
				case who.role < rt.Role:
					want = http.StatusForbidden
				}
				code, body, hdr := a.call(c, who.token)
				require.Equal(t, want, code, "%s as %s: %s", rt.Pattern, who.name, body)
				switch want {
				case http.StatusUnauthorized:
					require.True(t, strings.HasPrefix(hdr.Get("WWW-Authenticate"), `Bearer realm="bmsgw"`), hdr.Get("WWW-Authenticate"))
					requireError(t, body, "token")
				case http.StatusForbidden:
					requireError(t, body, "needs "+rt.Role.String())
				}
				if code == http.StatusOK && c.method == http.MethodPut {
					require.Equal(t, holderOf[who.role], a.b.overrides["valby-skole/gym_ahu.mode"].Who)
				}
			})
		}
	}
	require.Equal(t, []string{
		"set valby-skole/gym_ahu.mode ops-townhall", "clear valby-skole/gym_ahu.mode ops-townhall",
		"set valby-skole/gym_ahu.mode it-admin", "clear valby-skole/gym_ahu.mode it-admin",
	}, a.b.journal, "only the operator and the admin reached the backend, under their own names")
	a.requireNothingPersonal()
}

// call makes an endpoint call; a stream is read up to its first event.
func (a *testAPI) call(c endpointCall, token string) (int, []byte, http.Header) {
	a.t.Helper()
	if !strings.Contains(c.path, "/stream") {
		return a.do(c.method, c.path, token, c.body)
	}
	ctx, cancel := context.WithCancel(a.t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, a.url+c.path, nil)
	require.NoError(a.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		a.bodies.Write(body)
		return resp.StatusCode, body, resp.Header
	}
	// The replay of the stored events: up to the first event's data.
	var got bytes.Buffer
	br := bufio.NewReader(resp.Body)
	for !strings.Contains(got.String(), "data: ") {
		line, err := br.ReadString('\n')
		require.NoError(a.t, err)
		got.WriteString(line)
	}
	a.bodies.Write(got.Bytes())
	return resp.StatusCode, got.Bytes(), resp.Header
}

func requireError(t *testing.T, body []byte, contains string) {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.Contains(t, e.Error, contains)
}

func TestWrongTokens(t *testing.T) {
	a := newTestAPI(t)
	op := a.tok[RoleOperator]
	for name, header := range map[string]string{
		"unknown token":       "Bearer bmsgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"the hash, not token": "Bearer " + HashToken(op),
		"token in upper case": "Bearer " + strings.ToUpper(op),
		"token cut short":     "Bearer " + op[:len(op)-1],
		"basic scheme":        "Basic " + op,
		"no token":            "Bearer ",
		"token only":          op,
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+"/api/sites", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", header)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", body)
			require.Equal(t, `Bearer realm="bmsgw", error="invalid_token"`, resp.Header.Get("WWW-Authenticate"))
		})
	}
	// A token works again once it is given in full, and a scheme in
	// another case is still Bearer (RFC 9110: schemes are case-insensitive).
	code, body, _ := a.do(http.MethodGet, "/api/whoami", op, nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"name":"ops-townhall","role":"operator"}`, string(body))

	// SetTokens takes a token away at once.
	a.s.SetTokens(nil)
	code, _, _ = a.do(http.MethodGet, "/api/whoami", op, nil)
	require.Equal(t, http.StatusUnauthorized, code)
}

// TestViewerCannotOverrideOperatorCan: the energy office may look, not
// touch; the operator's override reaches the backend under the token's
// name, whatever the body says, and shows in the status.
func TestViewerCannotOverrideOperatorCan(t *testing.T) {
	a := newTestAPI(t)
	path := "/api/sites/valby-skole/points/room12.heat_setpoint/override"
	req := OverrideRequest{Value: ptr(19.5), Until: testNow.Add(3 * time.Hour), Why: "chess club asked for a cooler room"}

	code, body, _ := a.do(http.MethodPut, path, a.tok[RoleViewer], req)
	require.Equal(t, http.StatusForbidden, code, "%s", body)
	requireError(t, body, "energy-office has role viewer; this needs operator")
	require.Empty(t, a.b.overrides, "a viewer's override never reaches the backend")

	// Who cannot be given: it is the token's holder.
	code, body, _ = a.do(http.MethodPut, path, a.tok[RoleOperator],
		`{"value": 19.5, "for": "3h", "why": "x", "who": "someone-else"}`)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	requireError(t, body, `unknown field "who"`)

	code, body, _ = a.do(http.MethodPut, path, a.tok[RoleOperator], req)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var got control.Override
	require.NoError(t, json.Unmarshal(body, &got))
	want := control.Override{Site: "valby-skole", Point: "room12.heat_setpoint", Value: 19.5, Until: req.Until, Who: "ops-townhall", Why: req.Why, Set: testNow}
	require.True(t, want.Until.Equal(got.Until))
	got.Until, want.Until, got.Set, want.Set = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	require.Equal(t, want, got)
	require.Equal(t, "ops-townhall", a.b.overrides["valby-skole/room12.heat_setpoint"].Who)
	require.Equal(t, 19.5, a.b.overrides["valby-skole/room12.heat_setpoint"].Value)

	var st control.Status
	a.get(RoleViewer, "/api/status?site=valby-skole", &st)
	var found bool
	for _, p := range st.Points {
		require.Equal(t, "valby-skole", p.Site, "status filtered by site")
		if p.Point == "room12.heat_setpoint" {
			found = true
			require.Equal(t, control.SourceOverride, p.Source)
			require.Equal(t, "ops-townhall", p.Override.Who)
		}
	}
	require.True(t, found)

	code, _, _ = a.do(http.MethodDelete, path, a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusForbidden, code)
	require.Len(t, a.b.overrides, 1)
	code, body, _ = a.do(http.MethodDelete, path, a.tok[RoleOperator], nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Empty(t, a.b.overrides)
	require.Equal(t, []string{"set valby-skole/room12.heat_setpoint ops-townhall", "clear valby-skole/room12.heat_setpoint ops-townhall"}, a.b.journal)
}

func ptr[T any](v T) *T { return &v }

// TestOverrideRefusals: a bad override gets a clear error, and nothing
// reaches the backend.
func TestOverrideRefusals(t *testing.T) {
	a := newTestAPI(t)
	point := "/api/sites/valby-skole/points/gym_ahu.mode/override"
	for _, c := range []struct {
		name, path string
		body       any
		code       int
		msg        string
	}{
		{"not json", point, `{"value":`, 400, "body"},
		{"unknown field", point, `{"value":1,"for":"1h","why":"x","priority":9}`, 400, `unknown field "priority"`},
		{"value and label", point, OverrideRequest{Value: ptr(1.0), Label: "off", For: "1h", Why: "x"}, 400, "value or label, not both"},
		{"no value", point, OverrideRequest{For: "1h", Why: "x"}, 400, "value or label is required"},
		{"unknown label", point, OverrideRequest{Label: "turbo", For: "1h", Why: "x"}, 400, `no label "turbo"; labels: comfort, economy, off`},
		{"no end", point, OverrideRequest{Label: "off", Why: "x"}, 400, "until or for is required"},
		{"until and for", point, OverrideRequest{Label: "off", For: "1h", Until: testNow.Add(time.Hour), Why: "x"}, 400, "until or for, not both"},
		{"past", point, OverrideRequest{Label: "off", Until: testNow.Add(-time.Minute), Why: "x"}, 400, "not in the future"},
		{"bad duration", point, OverrideRequest{Label: "off", For: "-1h", Why: "x"}, 400, "positive duration"},
		{"no why", point, OverrideRequest{Label: "off", For: "1h", Why: "  "}, 400, "why is required"},
		{"all at once", point, `{}`, 400, "value or label is required\nuntil or for is required"},
		{"out of range", "/api/sites/valby-skole/points/gym_ahu.setpoint/override", OverrideRequest{Value: ptr(35.0), For: "1h", Why: "x"}, 422, control.ErrOutOfRange.Error()},
		{"read-only point", "/api/sites/valby-skole/points/gym_entrance_contact/override", OverrideRequest{Value: ptr(1.0), For: "1h", Why: "x"}, 422, "not writable"},
		{"unknown point", "/api/sites/valby-skole/points/nope/override", OverrideRequest{Value: ptr(1.0), For: "1h", Why: "x"}, 404, `no point "nope"`},
		{"unknown site", "/api/sites/nowhere/points/gym_ahu.mode/override", OverrideRequest{Value: ptr(1.0), For: "1h", Why: "x"}, 404, `no site "nowhere"; sites: valby-skole, oerestad-skole`},
		{"too big", point, `{"why":"` + strings.Repeat("x", maxBody) + `"}`, 400, "body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := a.do(http.MethodPut, c.path, a.tok[RoleOperator], c.body)
			require.Equal(t, c.code, code, "%s", body)
			requireError(t, body, c.msg)
		})
	}
	require.Empty(t, a.b.overrides)
	code, body, _ := a.do(http.MethodDelete, point, a.tok[RoleOperator], nil)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	requireError(t, body, "no override on that point")
}

// TestPlanIsBmsgwPlan: the API's plan of the reference Thursday is what
// `bmsgw plan -c configs/season.yaml --from 2026-11-26 --site
// valby-skole --format json` printed (testdata/plan-valby-2026-11-26.json).
func TestPlanIsBmsgwPlan(t *testing.T) {
	a := newTestAPI(t)
	raw, err := os.ReadFile(filepath.Join("testdata", "plan-valby-2026-11-26.json"))
	require.NoError(t, err)
	var want []PlanChange
	require.NoError(t, json.Unmarshal(raw, &want))
	require.NotEmpty(t, want)

	var got []PlanChange
	a.get(RoleViewer, "/api/sites/valby-skole/plan?from=2026-11-26", &got)
	require.Equal(t, want, got)
	// The volleyball club's comfort at 18:00 (DOMAIN.md section 5).
	require.Contains(t, got, PlanChange{Time: "2026-11-26T18:00:00+01:00", Site: "valby-skole", Spaces: []string{"gym"}, Point: "gym_ahu.mode",
		Value: 2, Label: "comfort", Display: "comfort", Occupied: true,
		Reasons: []PlanReason{{Kind: "booking", Ref: "leisure:volley-gym-thu@booking.kk.dk/20261126T180000Z", Organiser: "valby-volley"}}})

	// Filters, as bmsgw plan's flags.
	var gym []PlanChange
	a.get(RoleViewer, "/api/sites/valby-skole/plan?from=2026-11-26&to=2026-11-27&space=gym&no_initial=true", &gym)
	var wantGym []PlanChange
	for _, c := range want {
		if !c.Initial && strings.Contains(strings.Join(c.Spaces, ","), "gym") && !strings.Contains(strings.Join(c.Spaces, ","), "gym_wing") {
			wantGym = append(wantGym, c)
		}
	}
	require.Equal(t, wantGym, gym)
	var one []PlanChange
	a.get(RoleViewer, "/api/sites/valby-skole/plan?from=2026-11-26T17:00&to=2026-11-26T22:00&point=room12.mode", &one)
	require.Len(t, one, 3, "in force at 17:00, occupied at 18:30, vacant at 21:00: %v", one)
	require.Equal(t, "2026-11-26T18:30:00+01:00", one[1].Time)

	// The default is today in the site's zone: the Friday of testNow.
	var today []PlanChange
	a.get(RoleViewer, "/api/sites/valby-skole/plan", &today)
	require.Equal(t, "2026-11-27T00:00:00+01:00", today[0].Time)

	for _, c := range []struct{ query, msg string }{
		{"from=26-11-2026", "neither a date"},
		{"from=2026-11-27&to=2026-11-26", "is not after"},
		{"from=2026-01-01&to=2027-01-01", "longer than 92 days"},
		{"from=2026-11-26&site=x", `unknown parameter "site"`},
		{"from=2026-11-26&from=2026-11-27", "given 2 times"},
		{"no_initial=maybe", "true or false"},
	} {
		code, body, _ := a.do(http.MethodGet, "/api/sites/valby-skole/plan?"+c.query, a.tok[RoleViewer], nil)
		require.Equal(t, http.StatusBadRequest, code, c.query)
		requireError(t, body, c.msg)
	}
	code, body, _ := a.do(http.MethodGet, "/api/sites/valby-skole/plan?space=attic", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusNotFound, code)
	requireError(t, body, `no space "attic"`)
}

func TestSitesSpacesPointsWindows(t *testing.T) {
	a := newTestAPI(t)
	var sites []SiteInfo
	a.get(RoleViewer, "/api/sites", &sites)
	require.Len(t, sites, 2)
	require.Equal(t, "valby-skole", sites[0].ID)
	require.Equal(t, "Europe/Copenhagen", sites[0].TimeZone)
	require.Equal(t, len(a.b.g.Site("valby-skole").Points), sites[0].Points)

	var spaces []SpaceInfo
	a.get(RoleViewer, "/api/sites/valby-skole/spaces", &spaces)
	var gym, room12 SpaceInfo
	for _, sp := range spaces {
		switch sp.ID {
		case "gym":
			gym = sp
		case "room12":
			room12 = sp
		}
	}
	require.Equal(t, "gym_wing", gym.Parent)
	require.Equal(t, []string{"gym_ahu.mode", "gym_ahu.setpoint", "gym_lights_enable"}, gym.Points)
	require.True(t, room12.NoShow, "room 12 is watched for no-shows")

	var points []PointInfo
	a.get(RoleViewer, "/api/sites/valby-skole/points", &points)
	var mode PointInfo
	for _, p := range points {
		if p.ID == "gym_ahu.mode" {
			mode = p
		}
	}
	require.True(t, mode.Writable)
	require.Equal(t, 2.0, mode.Labels["comfort"])
	require.Equal(t, []string{"gym"}, mode.Spaces)

	// The gym's windows of the reference Thursday: the school day and
	// the volleyball club.
	var wins []SpaceWindow
	a.get(RoleViewer, "/api/sites/valby-skole/windows?from=2026-11-26&space=gym", &wins)
	require.NotEmpty(t, wins)
	var volley *SpaceWindow
	for i, w := range wins {
		require.Equal(t, "gym", w.Space)
		for _, r := range w.Reasons {
			if r.Organiser == "valby-volley" {
				volley = &wins[i]
			}
		}
	}
	require.NotNil(t, volley, "%v", wins)
	require.True(t, volley.Start.Equal(thursday.Add(19*time.Hour)), "%v", volley.Start)
	require.True(t, volley.End.Equal(thursday.Add(21*time.Hour)), "%v", volley.End)

	code, body, _ := a.do(http.MethodGet, "/api/sites/nowhere/spaces", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusNotFound, code)
	requireError(t, body, "sites: valby-skole, oerestad-skole")
	code, body, _ = a.do(http.MethodGet, "/api/nothing-here", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusNotFound, code)
	requireError(t, body, "GET /api/routes lists them")
}

// TestEventsNeverCarryCardHolders: the list and the stream show the
// events the journal holds, without the card holder it keeps.
func TestEventsNeverCarryCardHolders(t *testing.T) {
	a := newTestAPI(t)
	ns := a.publish(thursday.Add(19*time.Hour+20*time.Minute), events.NoShow, events.Info, "room12", chessBooking, "valby-skak")
	held := a.publish(thursday.Add(21*time.Hour+20*time.Minute), events.DoorHeldOpen, events.Warning, "gym", "", "")

	var evs []events.Event
	a.get(RoleViewer, "/api/events?since=2026-11-26T00:00:00Z", &evs)
	require.Len(t, evs, 2)
	want := ns
	want.CardHolder = ""
	require.Equal(t, want, evs[0])
	a.get(RoleViewer, "/api/events?severity=warning&since=2026-11-26T00:00:00Z", &evs)
	require.Equal(t, []int64{held.ID}, []int64{evs[0].ID})

	code, body, _ := a.do(http.MethodGet, "/api/events?kind=door_exploded", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusBadRequest, code)
	requireError(t, body, `unknown event kind "door_exploded"`)
	a.requireNothingPersonal()
}

// TestStreamDeliversPublishedEvents: a stream replays from Last-Event-ID,
// then delivers an event published while it is open.
func TestStreamDeliversPublishedEvents(t *testing.T) {
	a := newTestAPI(t)
	first := a.publish(thursday.Add(19*time.Hour), events.DoorOpened, events.Info, "gym", "", "")
	second := a.publish(thursday.Add(19*time.Hour+time.Minute), events.DoorClosed, events.Info, "gym", "", "")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/api/events/stream?site=valby-skole", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.tok[RoleViewer])
	req.Header.Set("Last-Event-ID", strconv.FormatInt(first.ID, 10))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	got := make(chan events.Event)
	done := make(chan error, 1)
	go func() {
		done <- readSSE(resp.Body, func(e events.Event) error {
			select {
			case got <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	next := func() events.Event {
		t.Helper()
		select {
		case e := <-got:
			return e
		case err := <-done:
			t.Fatalf("stream ended: %v", err)
		}
		return events.Event{}
	}
	e := next()
	require.Equal(t, second.ID, e.ID, "replayed after Last-Event-ID")
	require.Empty(t, e.CardHolder)

	live := a.publish(thursday.Add(21*time.Hour+20*time.Minute), events.DoorHeldOpen, events.Warning, "gym", "", "")
	e = next()
	require.Equal(t, live.ID, e.ID)
	require.Equal(t, events.DoorHeldOpen, e.Kind)
	cancel()
	<-done
}

// readSSE parses a server-sent event stream, keeping the raw text out of
// the way of the JSON decoding: an event's data must decode into Event
// with no field left over.
func readSSE(r io.Reader, fn func(events.Event) error) error {
	br := bufio.NewReader(r)
	var data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			for _, p := range personal {
				if strings.Contains(data, p) {
					return fmt.Errorf("personal data %q in %s", p, data)
				}
			}
			dec := json.NewDecoder(strings.NewReader(data))
			dec.DisallowUnknownFields()
			var e events.Event
			if err := dec.Decode(&e); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
			data = ""
		}
	}
}

func TestRoundAndReports(t *testing.T) {
	a := newTestAPI(t)
	var round localapi.RoundReport
	code, body, _ := a.do(http.MethodPost, "/api/sites/valby-skole/round", a.tok[RoleOperator], nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.NoError(t, json.Unmarshal(body, &round))
	require.Equal(t, "valby-skole", round.Site)
	require.NotEmpty(t, round.Checks)
	require.Equal(t, len(round.Checks), round.Findings, "nothing has been read, so every check is a finding")

	// The chess club did not show on Thursday (DOMAIN.md section 5).
	a.publish(thursday.Add(19*time.Hour+20*time.Minute), events.NoShow, events.Info, "room12", chessBooking, "valby-skak")
	var ns NoShowReport
	a.get(RoleViewer, "/api/reports/noshows?since=2026-11-26&until=2026-11-27&site=valby-skole", &ns)
	require.Equal(t, []NoShowCount{{Organiser: "valby-skak", Bookings: 1, NoShows: 1, Rate: 1}}, ns.Organisers)
	require.True(t, ns.Since.Equal(thursday))
	// until is never later than now: the Friday at noon.
	a.get(RoleViewer, "/api/reports/noshows?since=1d&until=2026-12-31", &ns)
	require.True(t, ns.Until.Equal(testNow), "%v", ns.Until)
	require.True(t, ns.Since.Equal(testNow.Add(-24*time.Hour)))
	code, body, _ = a.do(http.MethodGet, "/api/reports/noshows?since=yesterday", a.tok[RoleViewer], nil)
	require.Equal(t, http.StatusBadRequest, code)
	requireError(t, body, "neither a duration")

	// Week 48: Monday 23 to Monday 30 November. The lending period is 5
	// weekdays × 5 h + 2 weekend days × 14 h = 53 h for each space.
	var er EnergyReport
	a.get(RoleViewer, "/api/reports/energy?site=valby-skole&week=2026-W48", &er)
	require.Equal(t, "2026-W48", er.Week)
	require.True(t, er.From.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, copenhagen)))
	require.True(t, er.To.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, copenhagen)))
	require.Len(t, er.Spaces, 2)
	for _, sp := range er.Spaces {
		require.Equal(t, 53.0, sp.BaselineHours, sp.Space)
		require.Positive(t, sp.ComfortHours, sp.Space)
		require.InDelta(t, (53-sp.ComfortHours)*testPowers[sp.Space][0], sp.SavedHeatingKWh, 1e-9)
	}
	require.InDelta(t, er.Spaces[0].SavedHours+er.Spaces[1].SavedHours, er.Total.SavedHours, 1e-9)
	// The default week is the current one in the site's zone.
	a.get(RoleViewer, "/api/reports/energy?site=valby-skole", &er)
	require.Equal(t, "2026-W48", er.Week)
	for query, msg := range map[string]string{
		"week=2026-W48":                  "site is required",
		"site=valby-skole&week=48":       "use an ISO week",
		"site=valby-skole&week=2027-W53": "2027 has no week 53",
	} {
		code, body, _ := a.do(http.MethodGet, "/api/reports/energy?"+query, a.tok[RoleViewer], nil)
		require.Equal(t, http.StatusBadRequest, code, query)
		requireError(t, body, msg)
	}
	a.requireNothingPersonal()
}

func TestHealthAndReadiness(t *testing.T) {
	a := newTestAPI(t)
	code, body, _ := a.do(http.MethodGet, "/healthz", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok"}`, string(body))
	code, body, _ = a.do(http.MethodGet, "/readyz", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ready"}`, string(body))

	a.b.mu.Lock()
	a.b.notReady = errJournal
	a.b.mu.Unlock()
	code, body, _ = a.do(http.MethodGet, "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"not ready","error":"journal not open yet"}`, string(body))
	code, _, _ = a.do(http.MethodGet, "/healthz", "", nil)
	require.Equal(t, http.StatusOK, code, "alive though not ready")
}

var errJournal = errorString("journal not open yet")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestWeeks(t *testing.T) {
	for s, want := range map[string]time.Time{
		"2026-W48": time.Date(2026, 11, 23, 0, 0, 0, 0, copenhagen),
		"2026-w01": time.Date(2025, 12, 29, 0, 0, 0, 0, copenhagen),
		"2026W53":  time.Date(2026, 12, 28, 0, 0, 0, 0, copenhagen),
		"2027-W01": time.Date(2027, 1, 4, 0, 0, 0, 0, copenhagen),
	} {
		w, err := ParseWeek(s)
		require.NoError(t, err, s)
		require.Equal(t, want, w.Start(copenhagen), s)
		require.Equal(t, w, WeekOf(want))
	}
	// DST ends on Sunday 25 October 2026, in week 43: it has 169 hours.
	w, err := ParseWeek("2026-W43")
	require.NoError(t, err)
	require.Equal(t, 169*time.Hour, w.End(copenhagen).Sub(w.Start(copenhagen)))
	for _, bad := range []string{"", "2026", "W48", "2026-W0", "2026-W54", "2027-W53", "2026-Wx", "１２３４-W01"} {
		_, err := ParseWeek(bad)
		require.Error(t, err, bad)
	}
}
