package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bmsgw/bmsgw/internal/energy"
)

// OpenDataSource is implemented by a Backend that exports open data:
// GET /api/opendata answers 503 without it.
type OpenDataSource interface {
	// OpenData returns per space per day of [from, to) the booked hours,
	// hours in use, no-shows and comfort hours of a site ("" for all); no
	// personal data.
	OpenData(ctx context.Context, site string, from, to time.Time) ([]energy.SpaceDay, error)
}

func (s *Server) openDataRoutes() {
	s.handle("GET /api/opendata", RoleViewer, "open data per space per day: booked hours, hours in use, no-shows, comfort hours (format=json|csv)", s.openData)
}

// maxOpenDataDays bounds one export.
const maxOpenDataDays = 400

func (s *Server) openData(w http.ResponseWriter, r *http.Request) {
	src, ok := s.b.(OpenDataSource)
	if !ok {
		fail(w, http.StatusServiceUnavailable, errors.New("this gateway does not export open data"))
		return
	}
	q := r.URL.Query()
	// Days are the site's (the first site's when all are asked for).
	loc := time.UTC
	for _, st := range s.b.Sites() {
		if q.Get("site") == "" || st.ID == q.Get("site") {
			loc = st.Location
			break
		}
	}
	now := s.now()
	day := func(key string, def time.Time) (time.Time, error) {
		v := q.Get(key)
		if v == "" {
			return def, nil
		}
		t, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q: use YYYY-MM-DD", key, v)
		}
		return t, nil
	}
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	from, err1 := day("from", today.AddDate(0, 0, -7))
	to, err2 := day("to", today)
	if err := errors.Join(err1, err2); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if !to.After(from) || to.Sub(from) > maxOpenDataDays*24*time.Hour {
		fail(w, http.StatusBadRequest, fmt.Errorf("from %s to %s: to must be after from, and at most %d days later", q.Get("from"), q.Get("to"), maxOpenDataDays))
		return
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		fail(w, http.StatusBadRequest, fmt.Errorf("format %q: use json or csv", format))
		return
	}
	days, err := src.OpenData(r.Context(), q.Get("site"), from, to)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="opendata.csv"`)
		_ = energy.WriteDaysCSV(w, days)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = energy.WriteDaysJSON(w, days)
}
