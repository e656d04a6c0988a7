package bookings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/booking"
)

func TestConditionalGET(t *testing.T) {
	const etag = `"v1"`
	const lastMod = "Wed, 25 Nov 2026 10:00:00 GMT"
	feed := newFeedServer(t, csvFeed(csvRow("b1", "gym", 0, 19, 21), csvRow("b2", "pitch", 0, 18, 20)))
	feed.set(func(f *feedServer) { f.etag, f.lastMod = etag, lastMod })
	s, _ := newTestSource(t, Options{Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client()})

	first, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	require.Equal(t, []string{"b2", "b1"}, ids(first.Bookings))
	req := feed.requests()[0]
	require.Empty(t, req.Get("If-None-Match"), "first request must be unconditional")
	require.Empty(t, req.Get("If-Modified-Since"))

	second, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	req = feed.requests()[1]
	require.Equal(t, etag, req.Get("If-None-Match"))
	require.Equal(t, lastMod, req.Get("If-Modified-Since"))
	require.Equal(t, first.Bookings, second.Bookings)
	require.False(t, second.Changed)
	require.True(t, second.Status.Healthy())
	require.False(t, second.Status.FromCache)
	require.Equal(t, first.Status.FetchedAt, second.Status.FetchedAt)

	// A 304 re-expands the cached feed for the new window.
	snap, err := s.Poll(context.Background(), winFrom.Add(19*time.Hour), winTo)
	require.NoError(t, err)
	require.Equal(t, []string{"b2", "b1"}, ids(snap.Bookings))
	snap, err = s.Poll(context.Background(), winFrom.Add(20*time.Hour), winTo)
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings), "b2 ended at 20:00")
}

func TestFailedPollKeepsLastGood(t *testing.T) {
	good := csvFeed(manyRows(30)...)
	tests := []struct {
		name   string
		opts   Options
		break_ func(f *feedServer)
		is     error  // errors.Is target, if any
		msg    string // substring of the error
	}{
		{name: "http 500", break_: func(f *feedServer) { f.status = http.StatusInternalServerError }, msg: "http status 500 Internal Server Error"},
		{name: "http 401", break_: func(f *feedServer) { f.status = http.StatusUnauthorized }, msg: "http status 401"},
		{name: "timeout", opts: Options{Timeout: 50 * time.Millisecond}, break_: func(f *feedServer) { f.block = true }, is: ErrTimeout, msg: "no complete reply within 50ms"},
		{name: "garbage", break_: func(f *feedServer) { f.body = "<html>oops</html>" }, msg: "csv header: no column"},
		{name: "empty feed", break_: func(f *feedServer) { f.body = csvFeed() }, is: ErrEmptyFeed},
		{name: "header only, all rows bad", break_: func(f *feedServer) { f.body = csvFeed("x,gym,,never,never,") }, is: ErrEmptyFeed},
		{name: "shrunk below half", break_: func(f *feedServer) { f.body = csvFeed(manyRows(14)...) }, is: ErrShrunk, msg: "14 bookings, the last good feed had 30"},
		{name: "too large", opts: Options{MaxBodyBytes: int64(len(good))}, break_: func(f *feedServer) { f.body = good + "\n\n" }, is: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := newFeedServer(t, good)
			tt.opts.Format, tt.opts.URL, tt.opts.Client = FormatCSV, feed.srv.URL, feed.srv.Client()
			s, logs := newTestSource(t, tt.opts)
			before, err := s.Poll(context.Background(), winFrom, winTo)
			require.NoError(t, err)
			require.Len(t, before.Bookings, 30)

			feed.set(tt.break_)
			for n := 1; n <= 2; n++ {
				snap, err := s.Poll(context.Background(), winFrom, winTo)
				require.Error(t, err)
				if tt.is != nil {
					require.ErrorIs(t, err, tt.is)
				}
				require.ErrorContains(t, err, tt.msg)
				require.Equal(t, before.Bookings, snap.Bookings)
				require.False(t, snap.Changed)
				require.True(t, snap.Status.FromCache)
				require.Equal(t, n, snap.Status.ConsecutiveFailures)
				require.Equal(t, err.Error(), "poll cbs: "+snap.Status.LastError)
				require.False(t, snap.Status.Healthy())
				require.Equal(t, before.Status.LastSuccess, snap.Status.LastSuccess)
				require.Equal(t, snap.Status, s.Status())
			}
			require.Contains(t, logs.String(), "booking feed poll failed")

			// Recovery.
			feed.set(func(f *feedServer) { f.status, f.body, f.block = 0, good, false })
			snap, err := s.Poll(context.Background(), winFrom, winTo)
			require.NoError(t, err)
			require.True(t, snap.Status.Healthy())
			require.False(t, snap.Status.FromCache)
			require.Equal(t, tt.msg != "" || tt.is != nil, snap.Status.LastError != "", "the last error stays after recovery")
			require.Contains(t, logs.String(), "booking feed recovered")
		})
	}
}

func TestFailedFirstPollServesNothing(t *testing.T) {
	feed := newFeedServer(t, "")
	feed.set(func(f *feedServer) { f.status = http.StatusServiceUnavailable })
	s, _ := newTestSource(t, Options{Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client()})
	snap, err := s.Poll(context.Background(), winFrom, winTo)
	var se *HTTPStatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusServiceUnavailable, se.Code)
	require.Empty(t, snap.Bookings)
	require.Equal(t, 1, snap.Status.ConsecutiveFailures)
}

func TestShrinkBelowMinimumIsAccepted(t *testing.T) {
	feed := newFeedServer(t, csvFeed(manyRows(ShrinkCheckMinimum-1)...))
	s, _ := newTestSource(t, Options{Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client()})
	_, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	feed.set(func(f *feedServer) { f.body = csvFeed(manyRows(1)...) })
	_, err = s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err, "a small feed may shrink")
}

func TestAcceptNextAndKnobs(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		accept bool
		body   string
		ok     bool
	}{
		{name: "shrunk", body: csvFeed(manyRows(10)...)},
		{name: "shrunk, accepted by operator", accept: true, body: csvFeed(manyRows(10)...), ok: true},
		{name: "shrunk, check disabled", opts: Options{EmptyFraction: -1}, body: csvFeed(manyRows(10)...), ok: true},
		{name: "shrunk, lower fraction", opts: Options{EmptyFraction: 0.25}, body: csvFeed(manyRows(10)...), ok: true},
		{name: "empty, accepted by operator", accept: true, body: csvFeed(), ok: true},
		{name: "empty allowed but shrunk", opts: Options{AllowEmpty: true}, body: csvFeed()},
		{name: "empty allowed, check disabled", opts: Options{AllowEmpty: true, EmptyFraction: -1}, body: csvFeed(), ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := newFeedServer(t, csvFeed(manyRows(30)...))
			tt.opts.Format, tt.opts.URL, tt.opts.Client = FormatCSV, feed.srv.URL, feed.srv.Client()
			s, _ := newTestSource(t, tt.opts)
			_, err := s.Poll(context.Background(), winFrom, winTo)
			require.NoError(t, err)
			feed.set(func(f *feedServer) { f.body = tt.body })
			if tt.accept {
				s.AcceptNext()
			}
			_, err = s.Poll(context.Background(), winFrom, winTo)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			if tt.accept {
				// The acceptance is for one poll only.
				feed.set(func(f *feedServer) { f.body = csvFeed() })
				_, err = s.Poll(context.Background(), winFrom, winTo)
				require.ErrorIs(t, err, ErrEmptyFeed)
			}
		})
	}
}

func TestRestartServesPersistedFeed(t *testing.T) {
	dir := t.TempDir()
	feed := newFeedServer(t, csvFeed(csvRow("b1", "gym", 0, 19, 21), csvRow("b2", "hall", 1, 19, 21)))
	feed.set(func(f *feedServer) { f.etag = `"abc"` })
	url, client := feed.srv.URL, feed.srv.Client()
	clk := newClock()
	opts := Options{Format: FormatCSV, URL: url, Client: client, StateDir: dir, Now: clk.Now}

	s1, _ := newTestSource(t, opts)
	good, err := s1.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	info, err := os.Stat(filepath.Join(dir, "cbs.json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	feed.srv.Close() // the feed is gone for good

	s2, logs := newTestSource(t, opts)
	require.Contains(t, logs.String(), "restored last good booking feed")
	cached := s2.Cached(winFrom, winTo)
	require.Equal(t, good.Bookings, cached.Bookings)
	require.True(t, cached.Status.FromCache)
	require.Equal(t, good.Status.FetchedAt.UTC(), cached.Status.FetchedAt.UTC())

	snap, err := s2.Poll(context.Background(), winFrom, winTo)
	require.Error(t, err)
	require.Equal(t, good.Bookings, snap.Bookings)
	require.True(t, snap.Status.FromCache)
	require.Equal(t, 1, snap.Status.ConsecutiveFailures)

	// A source pointed at another feed does not serve this one's bookings.
	other := opts
	other.URL = url + "/other"
	s3, logs := newTestSource(t, other)
	require.Contains(t, logs.String(), "ignoring booking state of another feed")
	require.Empty(t, s3.Cached(winFrom, winTo).Bookings)
}

func TestRestartSendsConditionalGET(t *testing.T) {
	dir := t.TempDir()
	feed := newFeedServer(t, csvFeed(csvRow("b1", "gym", 0, 19, 21)))
	feed.set(func(f *feedServer) { f.etag = `"abc"` })
	opts := Options{Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client(), StateDir: dir}
	s1, _ := newTestSource(t, opts)
	_, err := s1.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)

	s2, _ := newTestSource(t, opts)
	snap, err := s2.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	require.Equal(t, `"abc"`, feed.requests()[1].Get("If-None-Match"))
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
}

func TestCorruptStateIsIgnored(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cbs.json"), []byte("{torn"), 0o600))
	s, logs := newTestSource(t, Options{Format: FormatCSV, Path: "x.csv", StateDir: dir})
	require.Contains(t, logs.String(), "ignoring unreadable booking state")
	require.Empty(t, s.Cached(winFrom, winTo).Bookings)
}

func TestDisappearance(t *testing.T) {
	dir := t.TempDir()
	keep := csvRow("keep", "gym", 0, 19, 21)
	gone := csvRow("gone", "hall", 1, 19, 21)
	ended := csvRow("ended", "pitch", 0, 13, 14) // ends 14:00 on the Thursday
	feed := newFeedServer(t, csvFeed(keep, gone, ended))
	opts := Options{Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client(), StateDir: dir, MissingPolls: 3}
	s, logs := newTestSource(t, opts)
	poll := func(t *testing.T, from time.Time) (Snapshot, error) {
		t.Helper()
		return s.Poll(context.Background(), from, winTo)
	}

	_, err := poll(t, winFrom)
	require.NoError(t, err)

	// "gone" leaves the feed; "ended" leaves it too, but the window has
	// moved past its end, so it simply ended.
	later := winFrom.Add(15 * time.Hour)
	feed.set(func(f *feedServer) { f.body = csvFeed(keep) })
	for n := 1; n < opts.MissingPolls; n++ {
		snap, err := poll(t, later)
		require.NoError(t, err)
		require.Equal(t, []string{"keep", "gone"}, ids(snap.Bookings), "good poll %d", n)
		require.Equal(t, booking.Confirmed, statusOf(t, snap.Bookings, "gone"))
		require.Equal(t, 1, snap.Status.Missing)
		require.Empty(t, snap.Vanished)
	}

	// Failed polls do not count, and a restart keeps the count.
	feed.set(func(f *feedServer) { f.status = http.StatusBadGateway })
	snap, err := poll(t, later)
	require.Error(t, err)
	require.Equal(t, booking.Confirmed, statusOf(t, snap.Bookings, "gone"))
	s, logs = newTestSource(t, opts)
	snap, err = poll(t, later)
	require.Error(t, err)
	require.Equal(t, booking.Confirmed, statusOf(t, snap.Bookings, "gone"))
	require.Equal(t, []string{"keep", "gone"}, ids(snap.Bookings))

	// The MissingPolls-th good poll cancels it.
	feed.set(func(f *feedServer) { f.status = 0 })
	snap, err = poll(t, later)
	require.NoError(t, err)
	require.Equal(t, booking.Cancelled, statusOf(t, snap.Bookings, "gone"))
	require.True(t, snap.Changed)
	require.Equal(t, []string{"gone"}, ids(snap.Vanished))
	require.Equal(t, booking.Cancelled, snap.Vanished[0].Status)
	require.Equal(t, 0, snap.Status.Missing)
	require.Equal(t, 1, snap.Status.Disappeared)
	require.Contains(t, logs.String(), "booking missing from feed; counted as cancelled")

	// It stays cancelled, and is reported only once.
	snap, err = poll(t, later)
	require.NoError(t, err)
	require.Equal(t, booking.Cancelled, statusOf(t, snap.Bookings, "gone"))
	require.Empty(t, snap.Vanished)
	require.False(t, snap.Changed)

	// Back in the feed, it is active again.
	feed.set(func(f *feedServer) { f.body = csvFeed(keep, gone) })
	snap, err = poll(t, later)
	require.NoError(t, err)
	require.Equal(t, booking.Confirmed, statusOf(t, snap.Bookings, "gone"))
	require.Equal(t, 0, snap.Status.Missing+snap.Status.Disappeared)

	// Once the window has moved past it, a missing booking is dropped.
	future := csvRow("future", "gym", 3, 19, 21)
	feed.set(func(f *feedServer) { f.body = csvFeed(keep, future) })
	snap, err = poll(t, later)
	require.NoError(t, err)
	require.Equal(t, 1, snap.Status.Missing)
	snap, err = poll(t, winFrom.AddDate(0, 0, 2))
	require.NoError(t, err)
	require.Equal(t, []string{"future"}, ids(snap.Bookings))
	require.Equal(t, 0, snap.Status.Missing)
}

func TestSecretsAreNeverLogged(t *testing.T) {
	const bearer = "Bearer s3cr3t-t0ken"
	const token = "q-t0ken-123"
	feed := newFeedServer(t, csvFeed(csvRow("b1", "gym", 0, 19, 21)))
	opts := Options{
		Format: FormatCSV, URL: feed.srv.URL + "/feed.csv?token=" + token, Client: feed.srv.Client(),
		Headers: map[string]string{"Authorization": bearer}, Timeout: 50 * time.Millisecond,
		PseudonymKey: []byte("pseudonym-key"),
	}
	s, logs := newTestSource(t, opts)
	_, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	require.Equal(t, bearer, feed.requests()[0].Get("Authorization"))

	var errs []string
	for _, breakIt := range []func(f *feedServer){
		func(f *feedServer) { f.status = http.StatusForbidden },
		func(f *feedServer) { f.status, f.block = 0, true },
	} {
		feed.set(breakIt)
		_, err := s.Poll(context.Background(), winFrom, winTo)
		require.Error(t, err)
		errs = append(errs, err.Error())
	}
	feed.srv.Close() // connection refused
	_, err = s.Poll(context.Background(), winFrom, winTo)
	require.Error(t, err)
	errs = append(errs, err.Error())

	logger, buf := testLogger()
	logger.Info("options", "opts", opts)
	all := logs.String() + buf.String() + strings.Join(errs, "\n") + fmt.Sprint(s.Status())
	require.Contains(t, buf.String(), "Authorization", "header names may be logged")
	for _, secret := range []string{"s3cr3t", token, "pseudonym-key"} {
		require.NotContains(t, all, secret)
	}
	require.Contains(t, errs[2], "/feed.csv?redacted")
}

func TestRedirectToAnotherHostDropsHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		fmt.Fprint(w, csvFeed(csvRow("b1", "gym", 0, 19, 21)))
	}))
	defer target.Close()
	origin := httptest.NewServer(http.RedirectHandler(target.URL+"/feed", http.StatusFound))
	defer origin.Close()

	s, _ := newTestSource(t, Options{
		Format: FormatCSV, URL: origin.URL, Client: origin.Client(),
		Headers: map[string]string{"X-Api-Key": "secret", "Authorization": "Bearer secret"},
	})
	snap, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	h := <-got
	require.Empty(t, h.Get("X-Api-Key"))
	require.Empty(t, h.Get("Authorization"))
	origin.Client().CloseIdleConnections()
	target.Client().CloseIdleConnections()
}

func TestCancelledPollIsNotAFailure(t *testing.T) {
	feed := newFeedServer(t, csvFeed(csvRow("b1", "gym", 0, 19, 21)))
	s, _ := newTestSource(t, Options{Format: FormatCSV, URL: feed.srv.URL, Client: feed.srv.Client()})
	_, err := s.Poll(context.Background(), winFrom, winTo)
	require.NoError(t, err)
	feed.set(func(f *feedServer) { f.block = true })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	snap, err := s.Poll(ctx, winFrom, winTo)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"b1"}, ids(snap.Bookings))
	require.Equal(t, 0, s.Status().ConsecutiveFailures)
}

func TestEmptyWindowIsRefused(t *testing.T) {
	s, _ := newTestSource(t, Options{Format: FormatCSV, Path: "x.csv"})
	_, err := s.Poll(context.Background(), winTo, winFrom)
	require.ErrorContains(t, err, "is empty")
}

func TestOptions(t *testing.T) {
	valid := Options{ID: "cbs", Format: FormatCSV, Path: "x.csv", Location: cph}
	tests := []struct {
		name   string
		change func(o *Options)
		err    string
	}{
		{name: "valid", change: func(o *Options) {}},
		{name: "bad id", change: func(o *Options) { o.ID = "a/b" }, err: `id "a/b"`},
		{name: "bad format", change: func(o *Options) { o.Format = "xml" }, err: `format "xml"`},
		{name: "no target", change: func(o *Options) { o.Path = "" }, err: "set path or url"},
		{name: "both targets", change: func(o *Options) { o.URL = "http://x" }, err: "not both"},
		{name: "ftp", change: func(o *Options) { o.Path, o.URL = "", "ftp://h/f?key=secret" }, err: "url ftp://h/f?redacted: scheme must be http or https"},
		{name: "no location", change: func(o *Options) { o.Location = nil }, err: "location is required"},
		{name: "header with newline", change: func(o *Options) { o.Headers = map[string]string{"X-Key": "a\nb"} }, err: `header "X-Key": value contains a line break`},
		{name: "bad header name", change: func(o *Options) { o.Headers = map[string]string{"X Key": "v"} }, err: `header "X Key"`},
		{name: "organiser from ORGANIZER", change: func(o *Options) { o.OrganiserProperty = "organizer" }, err: "ORGANIZER may hold personal data"},
		{name: "resource from DESCRIPTION", change: func(o *Options) { o.ResourceProperty = "DESCRIPTION" }, err: `resource_property "DESCRIPTION"`},
		{name: "pseudonymise without key", change: func(o *Options) { o.PseudonymiseOrganiser = true }, err: "needs a pseudonym key"},
		{name: "fraction above 1", change: func(o *Options) { o.EmptyFraction = 2 }, err: "empty_fraction 2"},
		{name: "negative poll count", change: func(o *Options) { o.MissingPolls = -1 }, err: "missing_polls -1"},
		{name: "retry max below min", change: func(o *Options) { o.RetryMin, o.RetryMax = time.Minute, time.Second }, err: "retry_max 1s is below retry_min 1m0s"},
		{name: "bad delimiter", change: func(o *Options) { o.Delimiter = 'x' }, err: "delimiter 'x'"},
		{
			name:   "all errors at once",
			change: func(o *Options) { o.Format, o.Location = "", nil },
			err:    "booking source \"cbs\": format \"\": want ical, csv or json\nlocation is required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.change(&o)
			_, err := New(o, nil)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	s, err := New(Options{ID: "cbs", Format: FormatICal, URL: "https://cbs.example/feed.ics", Location: cph}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	o := s.opts
	require.Equal(t, DefaultInterval, o.Interval)
	require.Equal(t, DefaultTimeout, o.Timeout)
	require.Equal(t, 30*time.Second, o.RetryMin)
	require.Equal(t, 4*DefaultInterval, o.RetryMax)
	require.Equal(t, int64(DefaultMaxBodyBytes), o.MaxBodyBytes)
	require.Equal(t, DefaultMissingPolls, o.MissingPolls)
	require.Equal(t, DefaultEmptyFraction, o.EmptyFraction)
	require.Equal(t, "LOCATION", o.ResourceProperty)
	require.Equal(t, "X-ASSOCIATION-ID", o.OrganiserProperty)
	require.Equal(t, Fields{ID: "id", Resource: "resource", Organiser: "organiser", Start: "start", End: "end", Status: "status"}, o.Fields)
}

func TestBackoff(t *testing.T) {
	s, _ := newTestSource(t, Options{Format: FormatCSV, Path: "x.csv", Interval: time.Minute, RetryMin: 5 * time.Second})
	var got []time.Duration
	for n := range 7 {
		got = append(got, s.backoff(n+1))
	}
	require.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 4 * time.Minute}, got)
}

func TestSnapshotJSON(t *testing.T) {
	// The snapshot is what the web API shows; keep its shape stable.
	snap := Snapshot{Source: "cbs", Status: Status{ConsecutiveFailures: 1, LastError: "x"}}
	data, err := json.Marshal(snap)
	require.NoError(t, err)
	require.Contains(t, string(data), `"consecutive_failures":1`)
	require.Contains(t, string(data), `"from_cache":false`)
	require.True(t, errors.Is(fmt.Errorf("w: %w", ErrShrunk), ErrShrunk))
}
