package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/localapi"
)

// keepAlive is how often an idle stream gets a comment, so that proxies
// and the client see the connection is alive. A variable for tests.
var keepAlive = 15 * time.Second

// stopKey holds, in a request's context, a channel that is closed when
// the server that took the request begins to shut down: event streams
// end then, rather than hold Shutdown until its deadline.
type stopKey struct{}

func stopping(ctx context.Context) <-chan struct{} {
	c, _ := ctx.Value(stopKey{}).(chan struct{})
	return c // nil (never ready) under a server of the caller's own
}

// bus returns the backend's event bus, or answers 503.
func (s *Server) bus(w http.ResponseWriter) *events.Bus {
	if b := s.b.Events(); b != nil {
		return b
	}
	fail(w, http.StatusServiceUnavailable, errors.New("this gateway does not record events"))
	return nil
}

// listEvents answers GET /api/events with the stored events that match,
// as a JSON array, oldest first. The parameters are those of the local
// API (localapi.ParseEventQuery): since, until, since_id, kind, site,
// space, severity, limit. Events never carry card holders: the Event
// type leaves them out of JSON, and the query never asks for them.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	b := s.bus(w)
	if b == nil {
		return
	}
	f, err := localapi.ParseEventQuery(r.URL.Query(), s.now())
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if f.Limit == 0 {
		f.Limit = localapi.DefaultEventLimit
	}
	f.Personal = false
	evs, err := b.Query(r.Context(), f)
	if err != nil {
		failBackend(w, err, http.StatusInternalServerError)
		return
	}
	if evs == nil {
		evs = []events.Event{}
	}
	reply(w, http.StatusOK, evs)
}

// streamEvents answers GET /api/events/stream with server-sent events: id
// is the journal id, event the kind, data the event as JSON. With
// Last-Event-ID (a browser's EventSource sends it when it reconnects),
// since_id or since it first replays the stored events after that point,
// then goes live; without, it starts with the events stored from now on.
// A stream that falls behind resumes from the journal by itself, so it
// loses nothing.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	b := s.bus(w)
	if b == nil {
		return
	}
	f, err := localapi.ParseEventQuery(r.URL.Query(), s.now())
	if err == nil && f.Limit > 0 {
		err = errors.New("limit applies to GET /api/events, not to a stream")
	}
	if h := r.Header.Get("Last-Event-ID"); h != "" && err == nil {
		id, perr := strconv.ParseInt(h, 10, 64)
		if perr != nil || id < 0 {
			err = fmt.Errorf("Last-Event-ID %q is not a journal id", h)
		}
		f.SinceID = id
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	localapi.ServeEventStream(r.Context(), w, b, f, stopping(r.Context()), keepAlive, s.log.With("holder", holder(r).Name))
}
