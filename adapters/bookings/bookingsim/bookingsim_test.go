package bookingsim

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/bookings/icalendar"
)

func TestFeedParsesAndIsRelativeToStart(t *testing.T) {
	start := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	cal, err := icalendar.Parse(bytes.NewReader(Feed(start, Evening)))
	require.NoError(t, err)
	occ, err := cal.Expand(start, start.Add(24*time.Hour), time.UTC)
	require.NoError(t, err)
	require.Len(t, occ, len(Evening))
	require.Equal(t, start.Add(5*time.Minute), occ[0].Start, "the pitch booking starts five minutes in")
	require.Equal(t, "valby-pitch-1", occ[0].Location)
	require.Equal(t, "valby-bk", occ[0].Props["X-ASSOCIATION-ID"])
}

func TestHandlerConditionalGET(t *testing.T) {
	srv := httptest.NewServer(Handler(time.Now(), Evening))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/leisure.ics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/leisure.ics", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
}
