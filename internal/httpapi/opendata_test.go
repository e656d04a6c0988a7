package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/energy"
)

func init() {
	calls["GET /api/opendata"] = endpointCall{http.MethodGet, "/api/opendata?site=valby-skole&from=2026-11-26&to=2026-11-27", nil, 200}
}

// OpenData computes the reference site's open data with internal/energy
// from the compiled season (no no-show events: every booking counts as
// used).
func (b *refBackend) OpenData(_ context.Context, siteID string, from, to time.Time) ([]energy.SpaceDay, error) {
	s, err := b.site(siteID)
	if err != nil {
		return nil, err
	}
	spec := energy.SpecOf(s)
	c, err := b.compiler(siteID, from, to)
	if err != nil {
		return nil, err
	}
	return energy.DailyOpenData(spec, c, b.bookings[siteID], nil, nil, from, to)
}

// TestOpenData: the open data of the reference Thursday as CSV and JSON,
// for a viewer, with the gym's booked hours and no organiser anywhere.
func TestOpenData(t *testing.T) {
	a := newTestAPI(t)
	code, body, _ := a.do(http.MethodGet, "/api/opendata?site=valby-skole&from=2026-11-26&to=2026-11-27&format=csv", a.tok[RoleViewer], nil)
	require.Equal(t, 200, code, body)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Contains(t, lines[0], "booked_hours")
	var gym string
	for _, l := range lines {
		if strings.Contains(l, ",gym,") {
			gym = l
		}
	}
	require.Contains(t, gym, "2026-11-26", "the gym's Thursday row")
	var days struct{ Days []energy.SpaceDay }
	a.get(RoleViewer, "/api/opendata?site=valby-skole&from=2026-11-26&to=2026-11-27", &days)
	var booked float64
	for _, d := range days.Days {
		if d.Space == "gym" {
			booked = d.BookedHours
		}
	}
	require.Equal(t, 2.0, booked, "the volleyball club's 19:00-21:00")
	for _, s := range []string{"valby-volley", "valby-skak", "leisure:"} {
		require.NotContains(t, string(body), s, "no organiser or booking id in open data")
	}
	code, body, _ = a.do(http.MethodGet, "/api/opendata?from=2026-11-27&to=2026-11-26", a.tok[RoleViewer], nil)
	require.Equal(t, 400, code, body)
}
