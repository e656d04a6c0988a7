package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/httpapi"
	"github.com/bmsgw/bmsgw/internal/localapi"
)

// TestRunHTTPAPI runs the gateway with its HTTP API on loopback: a
// viewer reads but cannot override, an operator's override reaches the
// device and is journalled with the token's holder, a wrong token gets
// 401, and /readyz and /metrics answer.
func TestRunHTTPAPI(t *testing.T) {
	e := newE2E(t)
	addr := freePort(t)
	viewer, viewerHash, err := httpapi.GenerateToken()
	require.NoError(t, err)
	operator, operatorHash, err := httpapi.GenerateToken()
	require.NoError(t, err)
	b, err := os.ReadFile(e.cfg)
	require.NoError(t, err)
	cfg := string(b) + fmt.Sprintf(`http:
  listen: %s
  tokens:
    - {name: energy-office, role: viewer, token_sha256: %s}
    - {name: operator-anna, role: operator, token_sha256: %s}
`, addr, viewerHash, operatorHash)
	require.NoError(t, os.WriteFile(e.cfg, []byte(cfg), 0o644))
	e.g, err = config.Load(e.cfg)
	require.NoError(t, err)
	e.vacant()
	// 60x: the booking lasts two real minutes, so the checks below all
	// happen inside it and inside the override even on a loaded machine.
	e.speed = 60
	_, stop := e.run(cet("19:00"))
	defer stop()
	e.eventually(5*time.Second, "20 °C for the booking", func() bool { return e.value("gym_setpoint") == 20 })

	call := func(method, path, token, body string) (int, string) {
		req, err := http.NewRequestWithContext(context.Background(), method, "http://"+addr+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	code, _ := call("GET", "/readyz", "", "")
	require.Equal(t, 200, code)
	code, out := call("GET", "/api/sites", viewer, "")
	require.Equal(t, 200, code, out)
	require.Contains(t, out, `"e2e"`)
	code, out = call("GET", "/", "", "")
	require.Equal(t, 200, code, "the web page is served at /")
	require.Contains(t, strings.ToLower(out), "<html")
	code, out = call("GET", "/api/sites/e2e/bookings?from=2026-11-26&to=2026-11-27", viewer, "")
	require.Equal(t, 200, code, out)
	require.Contains(t, out, "valby-volley", "the bookings the page draws")
	code, _ = call("GET", "/api/sites", "bmsgw_wrong", "")
	require.Equal(t, 401, code)
	override := `{"value": 22.5, "for": "30m", "why": "tournament"}`
	code, _ = call("PUT", "/api/sites/e2e/points/gym_setpoint/override", viewer, override)
	require.Equal(t, 403, code, "a viewer cannot override")
	require.Equal(t, 20.0, e.value("gym_setpoint"))
	code, out = call("PUT", "/api/sites/e2e/points/gym_setpoint/override", operator, override)
	require.Equal(t, 200, code, out)
	e.eventually(5*time.Second, "the operator's override written", func() bool { return e.value("gym_setpoint") == 22.5 })
	code, out = call("GET", "/api/status", viewer, "")
	require.Equal(t, 200, code)
	require.Contains(t, out, `"who": "operator-anna"`)
	code, out = call("GET", "/api/feeds", viewer, "")
	require.Equal(t, 200, code)
	require.Contains(t, out, `"source": "feed"`, "the gateway's booking source")
	code, out = call("GET", "/metrics", viewer, "")
	require.Equal(t, 200, code)
	require.Contains(t, out, `bmsgw_writes_total{result="ok",site="e2e"}`, "the engine's writes are counted")

	// The viewer's token is revoked: a reload takes it away at once.
	revoked := strings.Replace(cfg, fmt.Sprintf("    - {name: energy-office, role: viewer, token_sha256: %s}\n", viewerHash), "", 1)
	require.NotEqual(t, cfg, revoked)
	require.NoError(t, os.WriteFile(e.cfg, []byte(revoked), 0o644))
	api, err := localapi.Dial(e.g.StateDir)
	require.NoError(t, err)
	_, err = api.Reload(context.Background())
	require.NoError(t, err)
	code, _ = call("GET", "/api/sites", viewer, "")
	require.Equal(t, 401, code, "a revoked token")
	code, _ = call("GET", "/api/sites", operator, "")
	require.Equal(t, 200, code)
}
