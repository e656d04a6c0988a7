package bookings

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/booking"
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

// thursday is the reference day of DOMAIN.md, at noon.
var thursday = time.Date(2026, 11, 26, 12, 0, 0, 0, cph)

// window is the poll window the tests use unless they move it: the
// reference Thursday and the next six days.
var (
	winFrom = time.Date(2026, 11, 26, 0, 0, 0, 0, cph)
	winTo   = winFrom.AddDate(0, 0, 7)
)

// clock is an injectable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: thursday} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// syncBuffer is a bytes.Buffer safe for a logger used from several
// goroutines.
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

// testLogger logs at debug level into a buffer the test can search.
func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// newTestSource builds a source with test defaults for the fields the
// options leave zero.
func newTestSource(t *testing.T, o Options) (*Source, *syncBuffer) {
	t.Helper()
	if o.ID == "" {
		o.ID = "cbs"
	}
	if o.Location == nil {
		o.Location = cph
	}
	if o.Now == nil {
		o.Now = newClock().Now
	}
	logger, buf := testLogger()
	s, err := New(o, logger)
	require.NoError(t, err)
	return s, buf
}

// feedServer serves a booking feed that a test can change between polls.
type feedServer struct {
	srv *httptest.Server

	mu      sync.Mutex
	status  int    // reply status; 0 means 200
	body    string // reply body
	etag    string // ETag of body; If-None-Match with it gets 304
	lastMod string // Last-Modified of body
	block   bool   // hold the request until the client gives up
	headers []http.Header

	// arrived gets a value for each request, if there is room.
	arrived chan struct{}
}

func newFeedServer(t *testing.T, body string) *feedServer {
	f := &feedServer{body: body, arrived: make(chan struct{}, 100)}
	release := make(chan struct{})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.headers = append(f.headers, r.Header.Clone())
		status, body, etag, lastMod, block := f.status, f.body, f.etag, f.lastMod, f.block
		f.mu.Unlock()
		select {
		case f.arrived <- struct{}{}:
		default:
		}
		if block {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		if status != 0 && status != http.StatusOK {
			http.Error(w, "broken", status)
			return
		}
		if lastMod != "" {
			w.Header().Set("Last-Modified", lastMod)
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		fmt.Fprint(w, body)
	}))
	// Close runs after the release, so that a blocked handler cannot hold
	// up Close.
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(release) })
	return f
}

func (f *feedServer) set(fn func(f *feedServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// waitRequest waits for the next request to arrive.
func (f *feedServer) waitRequest(t *testing.T) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	select {
	case <-f.arrived:
	case <-deadline.C:
		t.Fatal("no request within 10s")
	}
}

// requests returns the headers of the requests received so far.
func (f *feedServer) requests() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.headers...)
}

// csvFeed renders bookings as a CSV feed with the default columns.
func csvFeed(rows ...string) string {
	return "id,resource,organiser,start,end,status\n" + strings.Join(rows, "\n") + "\n"
}

// csvRow renders one CSV row of a booking on the reference Thursday plus
// day days, from hour h1 to hour h2 local time.
func csvRow(id, resource string, day, h1, h2 int) string {
	d := winFrom.AddDate(0, 0, day)
	return fmt.Sprintf("%s,%s,assoc-%s,%s,%s,confirmed", id, resource, id,
		d.Add(time.Duration(h1)*time.Hour).Format("2006-01-02 15:04"),
		d.Add(time.Duration(h2)*time.Hour).Format("2006-01-02 15:04"))
}

// manyRows returns n CSV rows of distinct bookings.
func manyRows(n int) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = csvRow(fmt.Sprintf("b%02d", i), fmt.Sprintf("room%d", i%5), i%7, 18, 20)
	}
	return rows
}

func ids(bs []booking.Booking) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

func statusOf(t *testing.T, bs []booking.Booking, id string) booking.Status {
	t.Helper()
	for _, b := range bs {
		if b.ID == id {
			return b.Status
		}
	}
	t.Fatalf("booking %q not served; have %v", id, ids(bs))
	return ""
}
