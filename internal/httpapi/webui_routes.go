package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/security"
)

// The endpoints the web page (internal/webui) needs beyond the rest of
// the API: a site's bookings for the week view, the status window of its
// doors and alarm areas, and the reports as XLSX workbooks. The first two
// are optional parts of a Backend (BookingLister and SecurityReporter),
// so a Backend without them still compiles and those endpoints answer
// 503.

// BookingLister is implemented by a Backend that can list the bookings
// of a site: GET /api/sites/{site}/bookings answers 503 without it.
type BookingLister interface {
	// Bookings returns the site's merged bookings (the feeds as last
	// polled, after precedence) that overlap [from, to), cancelled ones
	// included with their status.
	Bookings(ctx context.Context, site string, from, to time.Time) ([]booking.Booking, error)
}

// SecurityReporter is implemented by a Backend that watches doors and
// alarm areas: GET /api/sites/{site}/security answers 503 without it.
type SecurityReporter interface {
	// Security returns the state of the site's doors, alarm areas and
	// detectors, as the site's security monitor sees them now.
	Security(ctx context.Context, site string) (SiteSecurity, error)
}

// SiteSecurity is what a SecurityReporter returns: the monitor's status
// lists (security.Monitor's Doors, Areas and Detectors).
type SiteSecurity struct {
	Doors     []security.DoorStatus
	Areas     []security.AreaStatus
	Detectors []security.DetectorStatus
}

// BookingInfo is a booking as GET /api/sites/{site}/bookings lists it:
// the booking with the spaces of the site its resource occupies.
// Organiser is the feed's pseudonymous association id; nothing about
// people is in it.
type BookingInfo struct {
	booking.Booking
	Spaces []string `json:"spaces"`
}

// SecurityStatus is the status window of a site: every door and alarm
// area at a glance, as GET /api/sites/{site}/security answers it.
type SecurityStatus struct {
	Site      string         `json:"site"`
	Doors     []DoorInfo     `json:"doors"`
	Areas     []AreaInfo     `json:"areas"`
	Detectors []DetectorInfo `json:"detectors"`
	Time      time.Time      `json:"time"`
}

// DoorInfo is a door's line of the status window.
type DoorInfo struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Space string `json:"space,omitempty"`
	Area  string `json:"area,omitempty"`
	// State is closed_locked, open, ... or unknown while an input cannot
	// be used (security.DoorState).
	State          string    `json:"state"`
	Since          time.Time `json:"since,omitzero"`
	Secured        bool      `json:"secured"`
	UnsecuredSince time.Time `json:"unsecured_since,omitzero"`
	HeldOpen       bool      `json:"held_open"`
	Forced         bool      `json:"forced"`
	LeftUnlocked   bool      `json:"left_unlocked"`
	Fault          string    `json:"fault,omitempty"`
	Problem        string    `json:"problem,omitempty"`
	Description    string    `json:"description"`
}

// AreaInfo is an alarm area's line of the status window. Authorisation
// is the writable point the gateway hands the panel, the one an
// operator overrides to disarm or arm the area by hand.
type AreaInfo struct {
	ID            string    `json:"id"`
	Name          string    `json:"name,omitempty"`
	Space         string    `json:"space,omitempty"`
	Control       string    `json:"control"`
	Armed         bool      `json:"armed"`
	ArmedKnown    bool      `json:"armed_known"`
	Since         time.Time `json:"since,omitzero"`
	Scheduled     bool      `json:"scheduled"`
	InWindow      bool      `json:"in_window"`
	ArmAt         time.Time `json:"arm_at,omitzero"`
	Mismatch      string    `json:"mismatch,omitempty"`
	MismatchSince time.Time `json:"mismatch_since,omitzero"`
	ArmFailed     bool      `json:"arm_failed"`
	Problem       string    `json:"problem,omitempty"`
	Authorisation string    `json:"authorisation,omitempty"`
	Doors         []string  `json:"doors"`
}

// DetectorInfo is a detector's line of the status window.
type DetectorInfo struct {
	ID      string  `json:"id"`
	Kind    string  `json:"kind"`
	Area    string  `json:"area,omitempty"`
	Active  bool    `json:"active"`
	Value   float64 `json:"value"`
	Leak    bool    `json:"leak"`
	Problem string  `json:"problem,omitempty"`
}

// webUIRoutes registers the web page's endpoints; New calls it.
func (s *Server) webUIRoutes() {
	s.handle("GET /api/sites/{site}/bookings", RoleViewer, "the bookings of a site that overlap a period, with the spaces they occupy", s.bookings)
	s.handle("GET /api/sites/{site}/security", RoleViewer, "the status window: doors, alarm areas and detectors of a site", s.security)
	s.handle("GET /api/reports/energy.xlsx", RoleViewer, "the energy report as an XLSX workbook", s.energyXLSX)
	s.handle("GET /api/reports/noshows.xlsx", RoleViewer, "the no-show report as an XLSX workbook", s.noShowsXLSX)
}

// bookings answers GET /api/sites/{site}/bookings?from&to (the period
// as for the plan), optionally of one space.
func (s *Server) bookings(w http.ResponseWriter, r *http.Request) {
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
	space := q.Get("space")
	if space != "" && st.Space(space) == nil {
		fail(w, http.StatusNotFound, fmt.Errorf("site %s has no space %q", st.ID, space))
		return
	}
	bl, ok := s.b.(BookingLister)
	if !ok {
		fail(w, http.StatusServiceUnavailable, errors.New("this gateway does not list bookings"))
		return
	}
	bs, err := bl.Bookings(r.Context(), st.ID, from, to)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return
	}
	out := []BookingInfo{}
	for _, b := range bs {
		if !b.End.After(from) || !b.Start.Before(to) {
			continue
		}
		bi := BookingInfo{Booking: b, Spaces: []string{}}
		for _, sp := range st.Spaces {
			if slices.Contains(sp.Resources, b.Resource) {
				bi.Spaces = append(bi.Spaces, sp.ID)
			}
		}
		if space != "" && !slices.Contains(bi.Spaces, space) {
			continue
		}
		out = append(out, bi)
	}
	slices.SortStableFunc(out, func(a, b BookingInfo) int { return a.Start.Compare(b.Start) })
	reply(w, http.StatusOK, out)
}

// security answers GET /api/sites/{site}/security.
func (s *Server) security(w http.ResponseWriter, r *http.Request) {
	if !checkParams(w, r.URL.Query()) {
		return
	}
	st := s.findSite(w, r)
	if st == nil {
		return
	}
	sr, ok := s.b.(SecurityReporter)
	if !ok {
		fail(w, http.StatusServiceUnavailable, errors.New("this gateway does not report doors and areas"))
		return
	}
	sec, err := sr.Security(r.Context(), st.ID)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return
	}
	out := SecurityStatus{Site: st.ID, Doors: []DoorInfo{}, Areas: []AreaInfo{}, Detectors: []DetectorInfo{}, Time: s.now()}
	for _, d := range sec.Doors {
		out.Doors = append(out.Doors, DoorInfo{ID: d.ID, Name: d.Name, Space: d.Space, Area: d.Area, State: string(d.State), Since: d.Since,
			Secured: d.Secured, UnsecuredSince: d.UnsecuredSince, HeldOpen: d.HeldOpen, Forced: d.Forced, LeftUnlocked: d.LeftUnlocked,
			Fault: d.Fault, Problem: d.Problem, Description: d.Description})
	}
	for _, a := range sec.Areas {
		ai := AreaInfo{ID: a.ID, Name: a.Name, Control: string(a.Control), Armed: a.Armed, ArmedKnown: a.ArmedKnown, Since: a.Since,
			Scheduled: a.Scheduled, InWindow: a.InWindow, ArmAt: a.ArmAt, Mismatch: string(a.Mismatch), MismatchSince: a.MismatchSince,
			ArmFailed: a.ArmFailed, Problem: a.Problem, Doors: []string{}}
		// The site model adds what the monitor does not keep: the
		// area's space, authorisation point and doors.
		for _, sa := range st.Areas {
			if sa.ID != a.ID {
				continue
			}
			if sa.Space != nil {
				ai.Space = sa.Space.ID
			}
			if sa.Authorisation != nil {
				ai.Authorisation = sa.Authorisation.ID
			}
			for _, d := range sa.Doors {
				ai.Doors = append(ai.Doors, d.ID)
			}
		}
		out.Areas = append(out.Areas, ai)
	}
	for _, d := range sec.Detectors {
		out.Detectors = append(out.Detectors, DetectorInfo{ID: d.ID, Kind: string(d.Kind), Area: d.Area, Active: d.Active,
			Value: d.Value, Leak: d.Leak, Problem: d.Problem})
	}
	reply(w, http.StatusOK, out)
}

// energyXLSX answers GET /api/reports/energy.xlsx?site&week with the
// numbers of GET /api/reports/energy as a workbook.
func (s *Server) energyXLSX(w http.ResponseWriter, r *http.Request) {
	rep, ok := s.energyReport(w, r)
	if !ok {
		return
	}
	sh := xlsxSheet{Name: "Energy " + rep.Week, Head: []string{"space", "name", "comfort_hours", "baseline_hours", "saved_hours",
		"heating_kw", "lighting_kw", "saved_heating_kwh", "saved_lighting_kwh"}}
	for _, e := range rep.Spaces {
		sh.Rows = append(sh.Rows, []any{e.Space, e.Name, e.ComfortHours, e.BaselineHours, e.SavedHours, e.HeatingKW, e.LightingKW,
			e.SavedHeatingKWh, e.SavedLightingKWh})
	}
	tt := rep.Total
	sh.Total = []any{"TOTAL", "", tt.ComfortHours, tt.BaselineHours, tt.SavedHours, nil, nil, tt.SavedHeatingKWh, tt.SavedLightingKWh}
	sh.Notes = []string{fmt.Sprintf("Site %s, ISO week %s: %s to %s", rep.Site, rep.Week, rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))}
	writeXLSX(w, fmt.Sprintf("%s-energy-%s.xlsx", rep.Site, rep.Week), sh)
}

// noShowsXLSX answers GET /api/reports/noshows.xlsx with the numbers of
// GET /api/reports/noshows as a workbook; it takes the same parameters.
func (s *Server) noShowsXLSX(w http.ResponseWriter, r *http.Request) {
	rec := &captured{header: http.Header{}}
	s.noShows(rec, r)
	if rec.code != http.StatusOK {
		copyAnswer(w, rec)
		return
	}
	var rep NoShowReport
	if err := json.Unmarshal(rec.body.Bytes(), &rep); err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	sh := xlsxSheet{Name: "No-shows", Head: []string{"organiser", "bookings", "no_shows", "late", "rate"}}
	for _, o := range rep.Organisers {
		sh.Rows = append(sh.Rows, []any{o.Organiser, o.Bookings, o.NoShows, o.Late, o.Rate})
	}
	var bk, ns, late int
	for _, o := range rep.Organisers {
		bk, ns, late = bk+o.Bookings, ns+o.NoShows, late+o.Late
	}
	rate := 0.0
	if bk > 0 {
		rate = float64(ns) / float64(bk)
	}
	sh.Total = []any{"TOTAL", bk, ns, late, float64(int(rate*1e4+0.5)) / 1e4}
	where := rep.Site
	if where == "" {
		where = "all sites"
	}
	sh.Notes = []string{fmt.Sprintf("%s: bookings due from %s to %s", where, rep.Since.Format(time.RFC3339), rep.Until.Format(time.RFC3339))}
	if !rep.Complete {
		sh.Notes = append(sh.Notes, "Incomplete: a booking feed failed without a saved copy.")
	}
	sh.Notes = append(sh.Notes, rep.Notes...)
	name := "noshows.xlsx"
	if rep.Site != "" {
		name = rep.Site + "-noshows.xlsx"
	}
	writeXLSX(w, name, sh)
}

// captured keeps an answer of a JSON handler, so that an XLSX endpoint
// can reuse its parameter checks and errors.
type captured struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (c *captured) Header() http.Header         { return c.header }
func (c *captured) Write(b []byte) (int, error) { return c.body.Write(b) }
func (c *captured) WriteHeader(code int)        { c.code = code }

func copyAnswer(w http.ResponseWriter, c *captured) {
	for k, v := range c.header {
		w.Header()[k] = v
	}
	w.WriteHeader(c.code)
	_, _ = w.Write(c.body.Bytes())
}

// xlsxSheet is one report as a sheet: a header row, rows of strings and
// numbers (nil for an empty cell), a bold total row, and notes below.
type xlsxSheet struct {
	Name  string
	Head  []string
	Rows  [][]any
	Total []any
	Notes []string
}

// xlsxContentType is the media type of an XLSX workbook.
const xlsxContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

func writeXLSX(w http.ResponseWriter, filename string, sh xlsxSheet) {
	var buf bytes.Buffer
	if err := buildXLSX(&buf, sh); err != nil {
		fail(w, http.StatusInternalServerError, fmt.Errorf("xlsx: %w", err))
		return
	}
	w.Header().Set("Content-Type", xlsxContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(filename, `"`, "")+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func buildXLSX(buf *bytes.Buffer, sh xlsxSheet) (err error) {
	f := excelize.NewFile()
	defer func() { err = errors.Join(err, f.Close()) }()
	// Sheet names are at most 31 characters and some are forbidden.
	name := strings.Map(func(r rune) rune {
		if strings.ContainsRune(`:\/?*[]`, r) {
			return '-'
		}
		return r
	}, sh.Name)
	if len([]rune(name)) > 31 {
		name = string([]rune(name)[:31])
	}
	if err := f.SetSheetName("Sheet1", name); err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"EEF1F5"}}})
	if err != nil {
		return err
	}
	num, err := f.NewStyle(&excelize.Style{NumFmt: 4}) // #,##0.00
	if err != nil {
		return err
	}
	boldNum, err := f.NewStyle(&excelize.Style{NumFmt: 4, Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	row := 1
	put := func(vals []any, head bool) error {
		for i, v := range vals {
			cell, err := excelize.CoordinatesToCellName(i+1, row)
			if err != nil {
				return err
			}
			if v != nil {
				if err := f.SetCellValue(name, cell, v); err != nil {
					return err
				}
			}
			style := 0
			_, isFloat := v.(float64)
			switch {
			case head && isFloat:
				style = boldNum
			case head:
				style = bold
			case isFloat:
				style = num
			}
			if style != 0 {
				if err := f.SetCellStyle(name, cell, cell, style); err != nil {
					return err
				}
			}
		}
		row++
		return nil
	}
	head := make([]any, len(sh.Head))
	for i, h := range sh.Head {
		head[i] = h
	}
	if err := put(head, true); err != nil {
		return err
	}
	for _, r := range sh.Rows {
		if err := put(r, false); err != nil {
			return err
		}
	}
	if sh.Total != nil {
		if err := put(sh.Total, true); err != nil {
			return err
		}
	}
	row++
	for _, n := range sh.Notes {
		if err := put([]any{n}, false); err != nil {
			return err
		}
	}
	last, err := excelize.ColumnNumberToName(max(1, len(sh.Head)))
	if err != nil {
		return err
	}
	if err := f.SetColWidth(name, "A", last, 16); err != nil {
		return err
	}
	if err := f.SetPanes(name, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	_, err = f.WriteTo(buf)
	return err
}
