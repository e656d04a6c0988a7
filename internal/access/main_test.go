package access_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/access/acssim"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/site"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var cph = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at returns the wall-clock time h:m on the reference Thursday of
// DOMAIN.md (2026-11-26) plus day days, in Copenhagen.
func at(day, h, m int) time.Time {
	return time.Date(2026, 11, 26+day, h, m, 0, 0, cph)
}

// schoolDay is the PIN schedule: Monday to Friday 08:00-15:00, closed on
// the Friday after the reference Thursday (a teachers' day).
func schoolDay() *site.Schedule {
	var days [7]bool
	for d := time.Monday; d <= time.Friday; d++ {
		days[d] = true
	}
	return &site.Schedule{
		ID:     "school_day",
		Weekly: []site.WeeklyPeriod{{Days: days, From: 8 * 60, To: 15 * 60}},
		Exceptions: []*site.Calendar{{ID: "closures", Days: []site.ExceptionDay{{
			From: site.Date{Year: 2026, Month: 11, Day: 27}, To: site.Date{Year: 2026, Month: 11, Day: 27}, Name: "teachers' day",
		}}}},
	}
}

// spec is the reference site's access section: the gym's two doors,
// classroom 12's door, and the volleyball club mapped to group G1041.
func spec(limit int) access.Spec {
	return access.Spec{
		Site:         "valby",
		Location:     cph,
		MarginBefore: 15 * time.Minute,
		MarginAfter:  15 * time.Minute,
		PinSchedule:  schoolDay(),
		Groups:       map[string]string{"valby-volley": "G1041"},
		Spaces: []access.SpaceDoors{
			{Space: "gym", Resources: []string{"res-gym"}, Doors: []string{"gym_entrance", "gym_side"}},
			{Space: "room12", Resources: []string{"res-room12"}, Doors: []string{"wing_b_entrance"}},
			{Space: "pitch", Resources: []string{"res-pitch"}},
		},
		MaxPerGroupDoor: limit,
	}
}

func bk(id, resource, org string, start, end time.Time) booking.Booking {
	return booking.Booking{Source: "leisure", ID: id, Resource: resource, Organiser: org,
		Start: start, End: end, Status: booking.Confirmed}
}

// horizon is the range the tests compute grants for: the reference week.
var horizonFrom, horizonTo = at(0, 0, 0), at(7, 0, 0)

// clock is an injectable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// syncBuffer is a bytes.Buffer safe for a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// acs is an emulated ACS on loopback.
type acs struct {
	*acssim.Server
	URL string
}

const token = "Bearer s3cr3t-acs-token"

func newACS(t *testing.T, limit int) *acs {
	t.Helper()
	sim := acssim.New(acssim.Options{MaxPerGroupDoor: limit, Headers: map[string]string{"Authorization": token}})
	srv := httptest.NewServer(sim)
	// Cleanups run last first: release hung requests, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	return &acs{Server: sim, URL: srv.URL + "/api/grants"}
}

// pusher is an HTTP output under test with its log.
type pusher struct {
	*access.HTTP
	log *syncBuffer
}

func newPusher(t *testing.T, a *acs, dir string, limit int, now func() time.Time, tweak ...func(*access.HTTPOptions)) *pusher {
	t.Helper()
	o := access.HTTPOptions{
		ID:              "acs",
		URL:             a.URL,
		Headers:         map[string]string{"Authorization": token},
		Timeout:         5 * time.Second,
		MaxPerGroupDoor: limit,
		StateDir:        dir,
		RetryMin:        time.Millisecond,
		RetryMax:        4 * time.Millisecond,
		Now:             now,
	}
	for _, f := range tweak {
		f(&o)
	}
	buf := &syncBuffer{}
	h, err := access.NewHTTP(o, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return &pusher{HTTP: h, log: buf}
}
