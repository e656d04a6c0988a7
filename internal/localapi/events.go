package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

// EventSource is implemented by a Backend whose events the API serves
// (GET /v1/events and /v1/events/stream). A Backend without it, or whose
// Events returns nil, answers those with 503.
type EventSource interface {
	Events() *events.Bus
}

// Limits of GET /v1/events.
const (
	DefaultEventLimit = 1000
	MaxEventLimit     = 10000
)

// streamPage is how many stored events a stream replays per query.
const streamPage = 500

// keepAlive is how often an idle stream gets a comment, so that proxies
// and the client see the connection is alive. A variable for tests.
var keepAlive = 15 * time.Second

// ErrBadQuery is returned by ParseEventQuery for a query it cannot use.
var ErrBadQuery = errors.New("bad event query")

// ParseEventQuery reads an event filter from the parameters of GET
// /v1/events and /v1/events/stream:
//
//	since     a time (RFC 3339) or a duration back from now (90m, 24h)
//	until     likewise, exclusive
//	since_id  only events after this journal id
//	kind      comma-separated kinds (door_forced,panic)
//	site      a site id
//	space     a space id
//	severity  the lowest severity (info, warning, alarm, critical)
//	limit     the latest n events (GET /v1/events only)
//
// Unknown parameters are refused, so that a typo does not widen a
// query unnoticed.
func ParseEventQuery(q url.Values, now time.Time) (events.Filter, error) {
	var (
		f    events.Filter
		errs []error
	)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	when := func(name string) time.Time {
		s := q.Get(name)
		if s == "" {
			return time.Time{}
		}
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			return now.Add(-d)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			bad("%s %q: use a time (RFC 3339, 2026-11-26T18:00:00+01:00) or a duration back from now (90m, 24h)", name, s)
		}
		return t
	}
	num := func(name string) int64 {
		s := q.Get(name)
		if s == "" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			bad("%s %q: use a whole number, 0 or more", name, s)
		}
		return n
	}
	for name, vs := range q {
		switch name {
		case "since", "until", "since_id", "kind", "site", "space", "severity", "limit":
			if len(vs) > 1 {
				bad("%s given %d times", name, len(vs))
			}
		default:
			bad("unknown parameter %q; use since, until, since_id, kind, site, space, severity, limit", name)
		}
	}
	f.Since, f.Until = when("since"), when("until")
	f.SinceID = num("since_id")
	f.Site, f.Space = q.Get("site"), q.Get("space")
	var err error
	if f.Kinds, err = events.ParseKinds(q.Get("kind")); err != nil {
		errs = append(errs, err)
	}
	if f.MinSeverity, err = events.ParseSeverity(q.Get("severity")); err != nil {
		errs = append(errs, err)
	}
	f.Limit = int(min(num("limit"), MaxEventLimit+1))
	if f.Limit > MaxEventLimit {
		bad("limit %s: at most %d; page with since_id", q.Get("limit"), MaxEventLimit)
	}
	if len(errs) == 0 {
		errs = append(errs, f.Validate())
	}
	if err := errors.Join(errs...); err != nil {
		return events.Filter{}, fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	return f, nil
}

// EventQuery is the inverse of ParseEventQuery, for clients.
func EventQuery(f events.Filter) url.Values {
	q := url.Values{}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.SinceID > 0 {
		q.Set("since_id", strconv.FormatInt(f.SinceID, 10))
	}
	if len(f.Kinds) > 0 {
		ks := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			ks[i] = string(k)
		}
		q.Set("kind", strings.Join(ks, ","))
	}
	if f.Site != "" {
		q.Set("site", f.Site)
	}
	if f.Space != "" {
		q.Set("space", f.Space)
	}
	if f.MinSeverity != "" {
		q.Set("severity", string(f.MinSeverity))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// bus returns the backend's event bus, or answers 503.
func (s *Server) bus(w http.ResponseWriter) *events.Bus {
	if es, ok := s.b.(EventSource); ok {
		if b := es.Events(); b != nil {
			return b
		}
	}
	fail(w, http.StatusServiceUnavailable, errors.New("this gateway does not record events"))
	return nil
}

// listEvents answers GET /v1/events: the stored events that match, as a
// JSON array, oldest first, never with card holders.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	b := s.bus(w)
	if b == nil {
		return
	}
	f, err := ParseEventQuery(r.URL.Query(), time.Now())
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if f.Limit == 0 {
		f.Limit = DefaultEventLimit
	}
	evs, err := b.Query(r.Context(), f)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	if evs == nil {
		evs = []events.Event{}
	}
	reply(w, http.StatusOK, evs) // Event's JSON has no card holder
}

// streamEvents answers GET /v1/events/stream with server-sent events:
// id is the journal id, event the kind, data the event as JSON (never
// with its card holder). With Last-Event-ID, since_id or since it first
// replays the stored events after that point, then goes live; without,
// it starts with the events stored from now on. A stream that falls
// behind resumes from the journal by itself, so it loses nothing.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	b := s.bus(w)
	if b == nil {
		return
	}
	f, err := ParseEventQuery(r.URL.Query(), time.Now())
	if err == nil && f.Limit > 0 {
		err = fmt.Errorf("%w: limit applies to GET /v1/events, not to a stream", ErrBadQuery)
	}
	if h := r.Header.Get("Last-Event-ID"); h != "" && err == nil {
		// A reconnecting EventSource sends the last id it saw; it wins
		// over the since_id of the original URL.
		id, perr := strconv.ParseInt(h, 10, 64)
		if perr != nil || id < 0 {
			err = fmt.Errorf("%w: Last-Event-ID %q is not a journal id", ErrBadQuery, h)
		}
		f.SinceID = id
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	ServeEventStream(r.Context(), w, b, f, s.stop, keepAlive, s.log)
}

// Events fetches the stored events that match f (at most
// MaxEventLimit; the latest DefaultEventLimit when f.Limit is 0).
func (c *Client) Events(ctx context.Context, f events.Filter) ([]events.Event, error) {
	var evs []events.Event
	err := c.call(ctx, http.MethodGet, "/v1/events?"+EventQuery(f).Encode(), nil, &evs)
	return evs, err
}

// ErrStreamEnded is returned by StreamEvents when the gateway ends the
// stream: it stopped, or could not go on.
var ErrStreamEnded = errors.New("event stream ended")

// StreamEvents follows the gateway's event stream with filter f (Since
// and SinceID replay stored events first) and calls fn with every event
// in id order, until ctx is done (nil), fn returns an error (that
// error), or the gateway ends the stream (ErrStreamEnded with its
// reason). To resume, call it again with SinceID set to the last id fn
// saw.
func (c *Client) StreamEvents(ctx context.Context, f events.Filter, fn func(events.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://bmsgw/v1/events/stream?"+EventQuery(f).Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Transport: c.hc.Transport} // no overall timeout: a stream lasts
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return notRunning(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return replyError(resp)
	}
	err = readStream(resp.Body, fn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// readStream parses server-sent events and calls fn with each event.
func readStream(r io.Reader, fn func(events.Event) error) error {
	br := bufio.NewReader(r)
	var (
		kind string
		data strings.Builder
	)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: the gateway closed it", ErrStreamEnded)
			}
			return fmt.Errorf("%w: %w", ErrStreamEnded, err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" { // dispatch
			if data.Len() > 0 {
				if kind == "error" {
					var e struct{ Error string }
					_ = json.Unmarshal([]byte(data.String()), &e)
					return fmt.Errorf("%w: %s", ErrStreamEnded, e.Error)
				}
				var e events.Event
				if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
					return fmt.Errorf("%w: bad event %q: %w", ErrStreamEnded, data.String(), err)
				}
				if err := fn(e); err != nil {
					return err
				}
			}
			kind = ""
			data.Reset()
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			kind = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
		// "id" is in the data too; "retry" and comments (keep-alives)
		// need nothing.
	}
}
