package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/bmsgw/bmsgw/internal/events"
)

// ServeEventStream answers with server-sent events (id: the journal id,
// event: the kind, data: the event as JSON, never with card holders) of
// the bus's events that match f: first the stored ones after f.SinceID
// (or since f.Since) when either is set, then live ones, until ctx is
// done or stop is closed (the server shuts down). A stream that falls
// behind the bus resumes from the journal by itself, so it loses nothing.
// Idle streams get a comment every keepAlive. The local API and the HTTP
// API both serve their streams with it.
func ServeEventStream(ctx context.Context, w http.ResponseWriter, b *events.Bus, f events.Filter, stop <-chan struct{}, keepAlive time.Duration, log *slog.Logger) {
	replay := f.SinceID > 0 || !f.Since.IsZero()
	rc := http.NewResponseController(w)
	// A stream outlives a server's read and write deadlines.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	// A reconnecting client waits 2 s, not the browser default of 3.
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
			replay = true // from now on, resume from the last id sent
		}
		lagged, err := liveEvents(ctx, stop, sub, &f, bw, flush, ticker)
		sub.Cancel()
		if !lagged {
			streamEnd(bw, flush, err)
			return
		}
		log.Debug("event stream fell behind; resuming from the journal", "after_id", f.SinceID)
	}
}

// replay writes the stored events after f.SinceID that match f, page by
// page, and returns the last id written (f.SinceID if none).
func replayEvents(ctx context.Context, b *events.Bus, f events.Filter, bw *bufio.Writer, flush func() error) (int64, error) {
	for {
		page := f
		page.First = streamPage
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

// live forwards the subscription's events after f.SinceID, updating it,
// until the client leaves, the server shuts down or the subscription
// ends. It reports whether the subscription was dropped for lagging.
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
			// Flush only once the burst is written: many events, one write.
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
	msg, _ := json.Marshal(map[string]string{"error": err.Error()})
	_, _ = fmt.Fprintf(bw, "event: error\ndata: %s\n\n", msg)
	_ = flush()
}

func writeEvent(w io.Writer, e events.Event) error {
	e.CardHolder = ""            // not in JSON anyway; never let it near a stream
	data, err := json.Marshal(e) // no card holder: its field is json:"-"
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, data)
	return err
}
