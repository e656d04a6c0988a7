package acssim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/access/acssim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func body(group, from, to, key string) string {
	return `{"group":"` + group + `","door":"gym_entrance","from":"` + from + `","to":"` + to + `","mode":"card","key":"` + key + `"}`
}

// The emulator must be able to refuse, or the tests that count its
// refusals prove nothing.
func TestEmulatorEnforcesItsRules(t *testing.T) {
	sim := acssim.New(acssim.Options{MaxPerGroupDoor: 1, Headers: map[string]string{"Authorization": "Bearer t"}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	do := func(method, path, b string, auth bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(b))
		require.NoError(t, err)
		if auth {
			req.Header.Set("Authorization", "Bearer t")
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(data)
	}
	const p = "/api/grants"
	st, ans := do("POST", p, body("G1", "2026-11-26T18:45:00+01:00", "2026-11-26T21:15:00+01:00", "k1"), true)
	require.Equal(t, http.StatusCreated, st)
	require.JSONEq(t, `{"id":"p-1"}`, ans)

	st, _ = do("POST", p, body("G1", "2026-11-26T21:00:00+01:00", "2026-11-26T22:00:00+01:00", "k2"), true)
	require.Equal(t, http.StatusConflict, st, "a second permission of G1 at the door at 21:00")
	st, _ = do("POST", p, body("G1", "2026-11-26T21:15:00+01:00", "2026-11-26T22:00:00+01:00", "k2"), true)
	require.Equal(t, http.StatusCreated, st, "touching is not simultaneous")
	st, _ = do("POST", p, body("G2", "2026-11-26T18:45:00+01:00", "2026-11-26T21:15:00+01:00", "k3"), true)
	require.Equal(t, http.StatusCreated, st, "another group")
	st, _ = do("POST", p, body("G2", "2026-11-27T18:45:00+01:00", "2026-11-27T21:15:00+01:00", "k3"), true)
	require.Equal(t, http.StatusUnprocessableEntity, st, "a key already held")

	st, _ = do("PUT", p+"/p-1", body("G1", "2026-11-26T18:00:00+01:00", "2026-11-26T21:30:00+01:00", "k1"), true)
	require.Equal(t, http.StatusConflict, st, "an update onto p-2")
	st, _ = do("PUT", p+"/p-1", body("G1", "2026-11-26T18:00:00+01:00", "2026-11-26T21:15:00+01:00", "k1"), true)
	require.Equal(t, http.StatusOK, st, "an update that does not collide with itself")
	st, _ = do("PUT", p+"/p-9", body("G1", "2026-11-26T18:00:00+01:00", "2026-11-26T19:00:00+01:00", "k1"), true)
	require.Equal(t, http.StatusNotFound, st)

	st, _ = do("POST", p, `{"group":"G1","door":"d","from":"2026-11-28T10:00:00Z","to":"2026-11-28T11:00:00Z","mode":"card","key":"k9","name":"Jens"}`, true)
	require.Equal(t, http.StatusBadRequest, st, "unknown fields are refused")
	st, _ = do("POST", p, body("G1", "2026-11-28T10:00:00Z", "2026-11-28T09:00:00Z", "k9"), true)
	require.Equal(t, http.StatusBadRequest, st)
	st, _ = do("POST", p, body("G1", "2026-11-28T10:00:00Z", "2026-11-28T11:00:00Z", "k9"), false)
	require.Equal(t, http.StatusUnauthorized, st)

	st, _ = do("DELETE", p+"/p-1", "", true)
	require.Equal(t, http.StatusNoContent, st)
	st, _ = do("DELETE", p+"/p-1", "", true)
	require.Equal(t, http.StatusNotFound, st)

	sim.FailNext(http.StatusServiceUnavailable, 1)
	st, _ = do("DELETE", p+"/p-2", "", true)
	require.Equal(t, http.StatusServiceUnavailable, st)
	require.Len(t, sim.Grants(), 2)
	require.Equal(t, 2, sim.Count(http.StatusConflict))
}

// A demo runs for days: its emulator keeps only the latest requests.
func TestEmulatorKeepsTheLatestRequests(t *testing.T) {
	sim := acssim.New(acssim.Options{KeepRequests: 10})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	for i := range 25 {
		resp, err := client.Get(srv.URL + "/api/grants/p-" + strconv.Itoa(i))
		require.NoError(t, err)
		resp.Body.Close()
		require.LessOrEqual(t, len(sim.Requests()), 10, "after request %d", i)
	}
	got := sim.Requests()
	require.NotEmpty(t, got)
	for k, r := range got {
		require.Equal(t, "/api/grants/p-"+strconv.Itoa(25-len(got)+k), r.Path, "the latest, in order")
	}
	st := got[0].Status
	require.NotZero(t, st)
	require.Equal(t, len(got), sim.Count(st), "Count sees the kept requests")
}
