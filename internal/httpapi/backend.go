package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/schedule"
	"github.com/bmsgw/bmsgw/internal/security"
	"github.com/bmsgw/bmsgw/internal/site"
)

// Backend is what the API serves of the running gateway; the daemon
// implements it. Its methods are called concurrently, from the request
// goroutines, with the request's context.
//
// Errors: wrap ErrNotFound for an unknown site, space or point (404),
// ErrBadRequest for a request the gateway cannot answer as asked, e.g. a
// period outside the compiled plan (422), ErrUnavailable for something
// the gateway does not do or cannot do now (503). Any other error is a
// 500 for reads and a 422 for SetOverride and ClearOverride, which the
// engine refuses with a reason (a value beyond the point's limits).
type Backend interface {
	// Sites returns the site model in force (after the last reload), in
	// config order. The API lists sites, spaces and points from it.
	Sites() []*site.Site
	// Ready returns nil once the gateway serves: the journal is open and
	// the plans are compiled; otherwise why not (for /readyz).
	Ready(ctx context.Context) error
	// Plan returns the point changes of a site in [from, to) with their
	// reasons: what `bmsgw plan --site` prints, from the gateway's live
	// plan (bookings as last polled, no-show releases included).
	Plan(ctx context.Context, site string, from, to time.Time) ([]schedule.Change, error)
	// Windows returns the occupancy windows of a space of a site that
	// overlap [from, to).
	Windows(ctx context.Context, site, space string, from, to time.Time) ([]schedule.Window, error)
	// Status returns the gateway's status: devices, points and feeds.
	Status(ctx context.Context) (control.Status, error)
	// Feeds returns the health of each booking source, without the
	// engine's status of every point.
	Feeds() []control.FeedStatus
	// SetOverride sets an override; Who is the name of the token that
	// asked, Until is in the future.
	SetOverride(ctx context.Context, o control.Override) error
	// ClearOverride clears the override of a point; who is the name of
	// the token that asked.
	ClearOverride(ctx context.Context, site, point, who string) error
	// Events returns the gateway's event bus, nil when it records none
	// (the event endpoints then answer 503).
	Events() *events.Bus
	// Round runs the virtual patrol round of a site now.
	Round(ctx context.Context, site string) (security.RoundReport, error)
	// NoShowReport returns the booking office's no-show report of the
	// bookings due in [from, to), of one site or of all ("").
	NoShowReport(ctx context.Context, from, to time.Time, site string) (NoShowReport, error)
	// EnergyReport returns the energy report of a site for an ISO week.
	EnergyReport(ctx context.Context, site string, week Week) (EnergyReport, error)
}

// Errors a Backend wraps to choose the status code.
var (
	ErrNotFound    = errors.New("not found")
	ErrBadRequest  = errors.New("bad request")
	ErrUnavailable = errors.New("unavailable")
)

// NoShowReport is the booking office's no-show report: per organiser, the
// watched bookings due in the period, the no-shows, the late arrivals
// and the no-show rate, as `bmsgw report noshows --format json` prints
// it. Organiser is the booking feed's pseudonymous association id;
// nothing else about people is in it.
type NoShowReport struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Site is the site reported on, "" for all.
	Site       string        `json:"site,omitempty"`
	Organisers []NoShowCount `json:"organisers"`
	// Complete is false when a booking feed failed without a saved copy,
	// so that some bookings are missing from the counts.
	Complete bool `json:"complete"`
	// Notes say what the counts leave out and why, e.g. bookings that
	// began before the gateway watched the site.
	Notes []string `json:"notes,omitempty"`
}

// NoShowCount is one organiser's line of the no-show report.
type NoShowCount struct {
	Organiser string `json:"organiser"`
	// Bookings counts the watched bookings due: shown, no-show and late.
	Bookings int `json:"bookings"`
	// NoShows counts those with no evidence from their deadline on.
	NoShows int `json:"no_shows"`
	// Late counts no-shows that evidence later brought back; they are
	// not in NoShows.
	Late int `json:"late"`
	// Rate is NoShows / Bookings, rounded to 4 decimals.
	Rate float64 `json:"rate"`
}

// EnergyReport is the energy staff's report of a site for one ISO week:
// per space, the hours of comfort the gateway ran under bookings against
// the baseline of the old practice (comfort through the whole lending
// period), and the energy saved, estimated from the space's declared
// heating and lighting power. Hours are real elapsed hours, so a week
// with a DST change has 167 or 169 of them.
type EnergyReport struct {
	Site string `json:"site"`
	// Week is the ISO week, e.g. "2026-W48".
	Week string `json:"week"`
	// From and To bound the week, Monday 00:00 to the next Monday 00:00
	// in the site's zone.
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Spaces []EnergySpace `json:"spaces"`
	Total  EnergyTotal   `json:"total"`
}

// EnergySpace is one space's line of the energy report.
type EnergySpace struct {
	Space string `json:"space"`
	Name  string `json:"name,omitempty"`
	// ComfortHours: hours the space's heating ran at comfort under the
	// gateway (the union of its heating points' occupied windows).
	ComfortHours float64 `json:"comfort_hours"`
	// BaselineHours: hours of the lending period in the week.
	BaselineHours float64 `json:"baseline_hours"`
	// SavedHours is BaselineHours - ComfortHours (negative when the
	// bookings ran beyond the lending period).
	SavedHours float64 `json:"saved_hours"`
	// HeatingKW and LightingKW are the declared powers of the space.
	HeatingKW  float64 `json:"heating_kw"`
	LightingKW float64 `json:"lighting_kw"`
	// SavedHeatingKWh and SavedLightingKWh estimate the energy saved:
	// saved hours of each times its power.
	SavedHeatingKWh  float64 `json:"saved_heating_kwh"`
	SavedLightingKWh float64 `json:"saved_lighting_kwh"`
}

// EnergyTotal sums the spaces of the energy report.
type EnergyTotal struct {
	ComfortHours     float64 `json:"comfort_hours"`
	BaselineHours    float64 `json:"baseline_hours"`
	SavedHours       float64 `json:"saved_hours"`
	SavedHeatingKWh  float64 `json:"saved_heating_kwh"`
	SavedLightingKWh float64 `json:"saved_lighting_kwh"`
}

// Week is an ISO 8601 week: weeks start on Monday, and week 1 holds the
// year's first Thursday.
type Week struct {
	Year, Week int
}

// WeekOf returns the ISO week of t (in t's location).
func WeekOf(t time.Time) Week {
	y, w := t.ISOWeek()
	return Week{y, w}
}

// ParseWeek parses "2026-W48" (or "2026-w48", "2026W48").
func ParseWeek(s string) (Week, error) {
	y, w, ok := strings.Cut(strings.ToUpper(s), "W")
	y = strings.TrimSuffix(y, "-")
	year, err1 := strconv.Atoi(y)
	week, err2 := strconv.Atoi(w)
	if !ok || err1 != nil || err2 != nil || year < 1970 || year > 9999 || week < 1 || week > 53 {
		return Week{}, fmt.Errorf("week %q: use an ISO week such as 2026-W48", s)
	}
	wk := Week{year, week}
	if WeekOf(wk.Start(time.UTC)) != wk {
		return Week{}, fmt.Errorf("week %q: %d has no week %d", s, year, week)
	}
	return wk, nil
}

// String returns the week as "2026-W48".
func (w Week) String() string { return fmt.Sprintf("%04d-W%02d", w.Year, w.Week) }

// Start returns Monday 00:00 of the week in loc.
func (w Week) Start(loc *time.Location) time.Time {
	// 4 January is always in week 1.
	jan4 := time.Date(w.Year, time.January, 4, 0, 0, 0, 0, loc)
	monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
	return monday.AddDate(0, 0, 7*(w.Week-1))
}

// End returns Monday 00:00 of the next week in loc.
func (w Week) End(loc *time.Location) time.Time { return w.Start(loc).AddDate(0, 0, 7) }
