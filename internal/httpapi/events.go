package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/localapi"
)

// streamPage is how many stored events a stream replays per query.
const streamPage = 500

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
	ctx := r.Context()
	stop := stopping(ctx)
	replay := f.SinceID > 0 || !f.Since.IsZero()

	rc := http.NewResponseController(w)
	// A stream outlives the server's read and write deadlines.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	if _, err := io.WriteString(bw, "retry: 2000\n\n"); err != nil || flush() != nil {
		return
	}
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	for {
		sub, err := b.Subscribe(events.Filter{Kinds: f.Kinds, Site: f.Site, Space: f.Space, MinSeverity: f.MinSeverity, Until: f.Until})
		if err != nil {
			streamEnd(bw, flush, err)
			return
		}
		// Subscribed first, then read the journal: an event committed
		// meanwhile is in both, and the live copy is skipped by id.
		if replay {
			if f.SinceID, err = replayEvents(ctx, b, f, bw, flush); err != nil {
				sub.Cancel()
				streamEnd(bw, flush, err)
				return
			}
		} else {
			f.SinceID = sub.AfterID
			replay = true // from now on, resume after the last id sent
		}
		lagged, err := liveEvents(ctx, stop, sub, &f, bw, flush, ticker)
		sub.Cancel()
		if !lagged {
			streamEnd(bw, flush, err)
			return
		}
		s.log.Debug("event stream fell behind; resuming from the journal", "after_id", f.SinceID, "holder", holder(r).Name)
	}
}

// replayEvents writes the stored events after f.SinceID that match f,
// page by page, and returns the last id written (f.SinceID if none).
func replayEvents(ctx context.Context, b *events.Bus, f events.Filter, bw *bufio.Writer, flush func() error) (int64, error) {
	for {
		page := f
		page.First, page.Personal = streamPage, false
		evs, err := b.Query(ctx, page)
		if err != nil {
			return f.SinceID, err
		}
		for _, e := range evs {
			if err := writeEvent(bw, e); err != nil {
				return f.SinceID, err
			}
			f.SinceID = e.ID
		}
		if err := flush(); err != nil {
			return f.SinceID, err
		}
		if len(evs) < streamPage {
			return f.SinceID, nil
		}
	}
}

// liveEvents forwards the subscription's events after f.SinceID,
// updating it, until the client leaves, the server shuts down or the
// subscription ends. It reports whether the subscription was dropped for
// lagging.
func liveEvents(ctx context.Context, stop <-chan struct{}, sub *events.Subscription, f *events.Filter, bw *bufio.Writer, flush func() error, ticker *time.Ticker) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-stop:
			return false, errors.New("the gateway is shutting down")
		case <-ticker.C:
			if _, err := io.WriteString(bw, ": keep-alive\n\n"); err != nil {
				return false, err
			}
			if err := flush(); err != nil {
				return false, err
			}
		case e, ok := <-sub.C:
			if !ok {
				err := sub.Err()
				return errors.Is(err, events.ErrLagged), err
			}
			if !f.Match(e) {
				continue // replayed already, or outside since
			}
			if err := writeEvent(bw, e); err != nil {
				return false, err
			}
			f.SinceID = e.ID
			// Flush once the burst is written: many events, one write.
			if len(sub.C) == 0 {
				if err := flush(); err != nil {
					return false, err
				}
			}
		}
	}
}

// streamEnd tells the client why the stream ends, where it still can.
func streamEnd(bw *bufio.Writer, flush func() error, err error) {
	if err == nil {
		return
	}
	msg, _ := json.Marshal(apiError{Error: err.Error()})
	_, _ = fmt.Fprintf(bw, "event: error\ndata: %s\n\n", msg)
	_ = flush()
}

func writeEvent(w io.Writer, e events.Event) error {
	e.CardHolder = "" // not in JSON anyway; never let it near a stream
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, data)
	return err
}
