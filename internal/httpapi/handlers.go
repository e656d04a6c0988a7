package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/site"
)

// findSite returns the site of the path, or answers 404 with the sites
// there are.
func (s *Server) findSite(w http.ResponseWriter, r *http.Request) *site.Site {
	id := r.PathValue("site")
	sites := s.b.Sites()
	for _, st := range sites {
		if st.ID == id {
			return st
		}
	}
	ids := make([]string, len(sites))
	for i, st := range sites {
		ids[i] = st.ID
	}
	fail(w, http.StatusNotFound, fmt.Errorf("no site %q; sites: %s", id, strings.Join(ids, ", ")))
	return nil
}

// checkParams refuses parameters the endpoint does not know, so that a
// typo does not widen a query unnoticed.
func checkParams(w http.ResponseWriter, q url.Values, known ...string) bool {
	for name, vs := range q {
		if !slices.Contains(known, name) {
			fail(w, http.StatusBadRequest, fmt.Errorf("unknown parameter %q; this endpoint takes %s", name, strings.Join(known, ", ")))
			return false
		}
		if len(vs) > 1 {
			fail(w, http.StatusBadRequest, fmt.Errorf("parameter %q given %d times", name, len(vs)))
			return false
		}
	}
	return true
}

func (s *Server) sites(w http.ResponseWriter, _ *http.Request) {
	out := []SiteInfo{}
	for _, st := range s.b.Sites() {
		out = append(out, siteInfo(st))
	}
	reply(w, http.StatusOK, out)
}

func (s *Server) site(w http.ResponseWriter, r *http.Request) {
	if st := s.findSite(w, r); st != nil {
		reply(w, http.StatusOK, siteInfo(st))
	}
}

func (s *Server) spaces(w http.ResponseWriter, r *http.Request) {
	st := s.findSite(w, r)
	if st == nil {
		return
	}
	out := make([]SpaceInfo, 0, len(st.Spaces))
	for _, sp := range st.Spaces {
		out = append(out, spaceInfo(sp))
	}
	reply(w, http.StatusOK, out)
}

func (s *Server) points(w http.ResponseWriter, r *http.Request) {
	if st := s.findSite(w, r); st != nil {
		reply(w, http.StatusOK, pointInfos(st))
	}
}

// parseWhen parses a date (midnight in loc), an RFC 3339 time or a local
// "2006-01-02T15:04", as bmsgw plan does.
func parseWhen(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04", s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a date (2026-11-26) nor an RFC 3339 time (2026-11-26T18:00:00+01:00)", s)
}

// period reads from and to as bmsgw plan does: from defaults to today's
// midnight in the site's zone, to to one day after from; it answers 400
// for a bad or too long period.
func (s *Server) period(w http.ResponseWriter, q url.Values, loc *time.Location) (from, to time.Time, ok bool) {
	var err error
	if v := q.Get("from"); v == "" {
		y, m, d := s.now().In(loc).Date()
		from = time.Date(y, m, d, 0, 0, 0, 0, loc)
	} else if from, err = parseWhen(v, loc); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("from: %w", err))
		return
	}
	if v := q.Get("to"); v == "" {
		y, m, d := from.In(loc).Date()
		to = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	} else if to, err = parseWhen(v, loc); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("to: %w", err))
		return
	}
	switch {
	case !to.After(from):
		fail(w, http.StatusBadRequest, fmt.Errorf("to %s is not after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339)))
		return
	case to.Sub(from) > s.max:
		fail(w, http.StatusBadRequest, fmt.Errorf("from %s to %s is longer than %s; ask for less at a time", from.Format(time.RFC3339), to.Format(time.RFC3339), days(s.max)))
		return
	}
	return from, to, true
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

func boolParam(w http.ResponseWriter, q url.Values, name string) (bool, bool) {
	v := q.Get(name)
	if v == "" {
		return false, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("%s %q: use true or false", name, v))
		return false, false
	}
	return b, true
}

// plan answers GET /api/sites/{site}/plan: the rows of `bmsgw plan
// --site ID --format json` for [from, to), optionally of one space or
// point, optionally without the values in force at from.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkParams(w, q, "from", "to", "space", "point", "no_initial") {
		return
	}
	st := s.findSite(w, r)
	if st == nil {
		return
	}
	from, to, ok := s.period(w, q, st.Location)
	if !ok {
		return
	}
	noInitial, ok := boolParam(w, q, "no_initial")
	if !ok {
		return
	}
	space, point := q.Get("space"), q.Get("point")
	if space != "" && st.Space(space) == nil {
		fail(w, http.StatusNotFound, fmt.Errorf("site %s has no space %q", st.ID, space))
		return
	}
	if point != "" && st.Points[point] == nil {
		fail(w, http.StatusNotFound, fmt.Errorf("site %s has no point %q", st.ID, point))
		return
	}
	changes, err := s.b.Plan(r.Context(), st.ID, from, to)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return
	}
	out := []PlanChange{}
	for _, ch := range changes {
		if noInitial && ch.Initial ||
			point != "" && ch.Point.ID != point ||
			space != "" && !slices.ContainsFunc(ch.Spaces, func(sp *site.Space) bool { return sp.ID == space }) {
			continue
		}
		out = append(out, PlanChangeOf(ch))
	}
	reply(w, http.StatusOK, out)
}

// windows answers GET /api/sites/{site}/windows: the occupancy windows
// that overlap [from, to) of every space of the site, or of one.
func (s *Server) windows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkParams(w, q, "from", "to", "space") {
		return
	}
	st := s.findSite(w, r)
	if st == nil {
		return
	}
	from, to, ok := s.period(w, q, st.Location)
	if !ok {
		return
	}
	spaces := st.Spaces
	if id := q.Get("space"); id != "" {
		sp := st.Space(id)
		if sp == nil {
			fail(w, http.StatusNotFound, fmt.Errorf("site %s has no space %q", st.ID, id))
			return
		}
		spaces = []*site.Space{sp}
	}
	out := []SpaceWindow{}
	for _, sp := range spaces {
		ws, err := s.b.Windows(r.Context(), st.ID, sp.ID, from, to)
		if err != nil {
			failBackend(w, err, http.StatusInternalServerError)
			return
		}
		for _, win := range ws {
			if win.End.After(from) && win.Start.Before(to) {
				out = append(out, SpaceWindow{Space: sp.ID, Start: win.Start, End: win.End, Reasons: reasons(win.Reasons)})
			}
		}
	}
	reply(w, http.StatusOK, out)
}

// feeds answers GET /api/feeds.
func (s *Server) feeds(w http.ResponseWriter, _ *http.Request) {
	fs := s.b.Feeds()
	if fs == nil {
		fs = []control.FeedStatus{}
	}
	reply(w, http.StatusOK, fs)
}

// status answers GET /api/status, of every site or of one.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkParams(w, q, "site") {
		return
	}
	st, err := s.b.Status(r.Context())
	if err != nil {
		failBackend(w, err, http.StatusServiceUnavailable)
		return
	}
	if id := q.Get("site"); id != "" {
		st.Devices = slices.DeleteFunc(st.Devices, func(d control.DeviceStatus) bool { return d.Site != id })
		st.Points = slices.DeleteFunc(st.Points, func(p control.PointStatus) bool { return p.Site != id })
	}
	if st.Devices == nil {
		st.Devices = []control.DeviceStatus{}
	}
	if st.Points == nil {
		st.Points = []control.PointStatus{}
	}
	reply(w, http.StatusOK, st)
}

// OverrideRequest is the body of PUT .../points/{point}/override. Give
// the value as a number or, for a point with labels, by its label; and
// the end as a time or a duration from now. Who is the token's holder.
type OverrideRequest struct {
	Value *float64 `json:"value,omitempty"`
	Label string   `json:"label,omitempty"`
	// Until is when the override ends (RFC 3339).
	Until time.Time `json:"until,omitzero"`
	// For is how long it lasts from now, e.g. "2h" or "90m".
	For string `json:"for,omitempty"`
	// Why is required: the journal keeps it beside the holder's name.
	Why string `json:"why"`
}

// maxBody bounds request bodies: an override is a few hundred bytes.
const maxBody = 1 << 16

func (s *Server) setOverride(w http.ResponseWriter, r *http.Request) {
	st := s.findSite(w, r)
	if st == nil {
		return
	}
	p := st.Points[r.PathValue("point")]
	if p == nil {
		fail(w, http.StatusNotFound, fmt.Errorf("site %s has no point %q", st.ID, r.PathValue("point")))
		return
	}
	var req OverrideRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("override: body: %w", err))
		return
	}
	now := s.now()
	o := control.Override{Site: st.ID, Point: p.ID, Who: holder(r).Name, Why: strings.TrimSpace(req.Why), Until: req.Until}
	var errs []error
	switch {
	case req.Value != nil && req.Label != "":
		errs = append(errs, errors.New("give value or label, not both"))
	case req.Value != nil:
		o.Value = *req.Value
	case req.Label != "":
		v, ok := p.Labels[req.Label]
		if !ok {
			errs = append(errs, fmt.Errorf("point %s has no label %q; labels: %s", p.ID, req.Label, labelList(p)))
		}
		o.Value = v
	default:
		errs = append(errs, errors.New("value or label is required"))
	}
	switch {
	case !req.Until.IsZero() && req.For != "":
		errs = append(errs, errors.New("give until or for, not both"))
	case req.For != "":
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("for %q: use a positive duration such as 2h or 90m", req.For))
		}
		o.Until = now.Add(d)
	case req.Until.IsZero():
		errs = append(errs, errors.New("until or for is required: an override ends by itself"))
	case !req.Until.After(now):
		errs = append(errs, fmt.Errorf("until %s is not in the future", req.Until.Format(time.RFC3339)))
	}
	if o.Why == "" {
		errs = append(errs, errors.New("why is required: the journal keeps it with your name"))
	}
	if len(errs) > 0 {
		fail(w, http.StatusBadRequest, fmt.Errorf("override %s/%s: %w", st.ID, p.ID, errors.Join(errs...)))
		return
	}
	if !p.Writable() {
		fail(w, http.StatusUnprocessableEntity, fmt.Errorf("override %s/%s: %w", st.ID, p.ID, control.ErrNotWritable))
		return
	}
	if err := s.b.SetOverride(r.Context(), o); err != nil {
		failBackend(w, err, http.StatusUnprocessableEntity)
		return
	}
	o.Set = now
	reply(w, http.StatusOK, o)
}

func labelList(p *site.Point) string {
	names := make([]string, 0, len(p.Labels))
	for n := range p.Labels {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none (give a value)"
	}
	return strings.Join(names, ", ")
}

func (s *Server) clearOverride(w http.ResponseWriter, r *http.Request) {
	st := s.findSite(w, r)
	if st == nil {
		return
	}
	id := r.PathValue("point")
	if st.Points[id] == nil {
		fail(w, http.StatusNotFound, fmt.Errorf("site %s has no point %q", st.ID, id))
		return
	}
	if err := s.b.ClearOverride(r.Context(), st.ID, id, holder(r).Name); err != nil {
		failBackend(w, err, http.StatusUnprocessableEntity)
		return
	}
	reply(w, http.StatusOK, map[string]string{"cleared": st.ID + "/" + id, "who": holder(r).Name})
}

// round answers POST /api/sites/{site}/round with the round's report,
// in the local API's shape.
func (s *Server) round(w http.ResponseWriter, r *http.Request) {
	st := s.findSite(w, r)
	if st == nil {
		return
	}
	rep, err := s.b.Round(r.Context(), st.ID)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return
	}
	reply(w, http.StatusOK, localapi.ReportOf(rep))
}

// parseBack parses a time for the reports: a duration back from now
// (30d, 12h, 90m), a date (midnight in loc), a local "2006-01-02T15:04"
// or RFC 3339.
func parseBack(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 && d <= 3660 {
			return now.Add(-time.Duration(d) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := parseWhen(s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration back from now (30d, 12h) nor a time (2026-11-01, 2026-11-01T18:00, RFC 3339)", s)
	}
	return t, nil
}

// noShows answers GET /api/reports/noshows: since (default 30d) and
// until (default now, never later) bound the bookings' deadlines.
func (s *Server) noShows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkParams(w, q, "since", "until", "site") {
		return
	}
	loc := time.Local
	id := q.Get("site")
	if id != "" {
		r.SetPathValue("site", id)
		st := s.findSite(w, r)
		if st == nil {
			return
		}
		loc = st.Location
	} else if sites := s.b.Sites(); len(sites) > 0 {
		loc = sites[0].Location
	}
	now := s.now()
	since, until := now.Add(-30*24*time.Hour), now
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = parseBack(v, now, loc); err != nil {
			fail(w, http.StatusBadRequest, fmt.Errorf("since: %w", err))
			return
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = parseBack(v, now, loc); err != nil {
			fail(w, http.StatusBadRequest, fmt.Errorf("until: %w", err))
			return
		}
	}
	// A booking not yet due has not been judged.
	if until.After(now) {
		until = now
	}
	if !until.After(since) {
		fail(w, http.StatusBadRequest, fmt.Errorf("until %s is not after since %s", until.Format(time.RFC3339), since.Format(time.RFC3339)))
		return
	}
	rep, err := s.b.NoShowReport(r.Context(), since, until, id)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return
	}
	if rep.Organisers == nil {
		rep.Organisers = []NoShowCount{}
	}
	reply(w, http.StatusOK, rep)
}

// energyReport answers the query of the energy report endpoints:
// ?site=ID&week=2026-W48 (default the current week in the site's zone).
// On a bad query or a backend error it has answered, and ok is false.
func (s *Server) energyReport(w http.ResponseWriter, r *http.Request) (rep EnergyReport, ok bool) {
	q := r.URL.Query()
	if !checkParams(w, q, "site", "week") {
		return rep, false
	}
	if q.Get("site") == "" {
		fail(w, http.StatusBadRequest, errors.New("site is required: the energy report is per site"))
		return rep, false
	}
	r.SetPathValue("site", q.Get("site"))
	st := s.findSite(w, r)
	if st == nil {
		return rep, false
	}
	week := WeekOf(s.now().In(st.Location))
	if v := q.Get("week"); v != "" {
		var err error
		if week, err = ParseWeek(v); err != nil {
			fail(w, http.StatusBadRequest, err)
			return rep, false
		}
	}
	rep, err := s.b.EnergyReport(r.Context(), st.ID, week)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return rep, false
	}
	return rep, true
}

// energy answers GET /api/reports/energy?site=ID&week=2026-W48 (default
// the current week in the site's zone).
func (s *Server) energy(w http.ResponseWriter, r *http.Request) {
	rep, ok := s.energyReport(w, r)
	if !ok {
		return
	}
	if rep.Spaces == nil {
		rep.Spaces = []EnergySpace{}
	}
	reply(w, http.StatusOK, rep)
}
