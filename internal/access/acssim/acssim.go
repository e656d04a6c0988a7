// Package acssim emulates an access-control system's grant API for tests
// and demos: it stores grants, enforces a limit of simultaneous
// permissions per group and door, checks request headers and bodies
// strictly, and can be told to fail or hang.
//
// The API is the one the gateway's HTTP access output speaks: POST
// <path> with a grant creates it and answers 201 {"id": ref}; PUT
// <path>/<ref> replaces it (404 if unknown); DELETE <path>/<ref> removes
// it (404 if unknown). A create with a key already held is refused with
// 422, as a second copy of one grant, unless it repeats the
// Idempotency-Key header of a create already made: then it gets that
// create's answer again. A grant that would give its group more than
// MaxPerGroupDoor simultaneous permissions at its door is refused with
// 409 Conflict. Serve it with net/http/httptest or an http.Server.
package acssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure the emulator.
type Options struct {
	// MaxPerGroupDoor is the limit of simultaneous permissions per group
	// and door; 0 means no limit. Grants are half-open: one ending when
	// the next starts is not simultaneous with it.
	MaxPerGroupDoor int
	// Headers must be present with these values on every request, or it
	// is refused with 401.
	Headers map[string]string
	// Path is the grant collection. Default "/api/grants".
	Path string
	// KeepRequests bounds the requests Requests and Count see to the
	// latest ones, between half of it and all of it (the oldest half goes
	// at once); 0 keeps all, as tests want. A long-running demo sets it,
	// so the log of what it was asked does not grow without end.
	KeepRequests int
}

// Grant is a permission the emulator holds.
type Grant struct {
	ID    string    `json:"id"`
	Group string    `json:"group"`
	Door  string    `json:"door"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Mode  string    `json:"mode"`
	Key   string    `json:"key"`
}

// Request is a request the emulator received, with its answer's status.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Status int
}

// Server is the emulator. It is safe for concurrent use.
type Server struct {
	opts Options

	mu       sync.Mutex
	grants   map[string]Grant
	next     int
	requests []Request
	failNext []int // statuses for the next requests
	hangNext int
	loseNext int
	// answered holds the answers to creates by Idempotency-Key.
	answered map[string]answer
	release  chan struct{}
	closed   bool
}

// New returns an emulator without grants.
func New(o Options) *Server {
	if o.Path == "" {
		o.Path = "/api/grants"
	}
	o.Path = strings.TrimRight(o.Path, "/")
	return &Server{opts: o, grants: map[string]Grant{}, answered: map[string]answer{}, release: make(chan struct{})}
}

// Close releases hung requests; call it before closing the HTTP server.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.release)
	}
}

// FailNext answers the next n requests with status, before looking at
// them.
func (s *Server) FailNext(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, status)
	}
}

// HangNext holds the next n requests without an answer until the client
// gives up (or Close).
func (s *Server) HangNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangNext += n
}

// LoseNextAnswer processes the next n requests but holds their answers
// until the client gives up (or Close), as when a reply is lost on the
// way back.
func (s *Server) LoseNextAnswer(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseNext += n
}

// answer is a status and body.
type answer struct {
	status int
	body   []byte
}

// Remove deletes a grant as an operator would in the ACS's own UI.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.grants, id)
}

// Grants returns the grants held, sorted by group, door, start and id.
func (s *Server) Grants() []Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grantsLocked()
}

func (s *Server) grantsLocked() []Grant {
	out := make([]Grant, 0, len(s.grants))
	for _, g := range s.grants {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Grant) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		if c := strings.Compare(a.Door, b.Door); c != 0 {
			return c
		}
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Requests returns the requests received so far, in order (only the
// latest when KeepRequests is set).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns how many requests got the status.
func (s *Server) Count(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Status == status {
			n++
		}
	}
	return n
}

// body is the only accepted request body.
type body struct {
	Group string `json:"group"`
	Door  string `json:"door"`
	From  string `json:"from"`
	To    string `json:"to"`
	Mode  string `json:"mode"`
	Key   string `json:"key"`
}

// ServeHTTP implements the grant API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: data}
	if k := s.opts.KeepRequests; k > 0 && len(s.requests) >= k {
		// Drop the oldest half (at least enough for this one): one copy
		// per k/2 requests rather than one per request.
		drop := len(s.requests) - k + 1
		if half := k / 2; drop < half {
			drop = half
		}
		s.requests = slices.Delete(s.requests, 0, drop)
	}
	idx := len(s.requests)
	s.requests = append(s.requests, req)
	if s.hangNext > 0 {
		s.hangNext--
		release := s.release
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return // status stays 0: no answer
	}
	status, out := s.handle(r, data)
	s.requests[idx].Status = status
	lose := s.loseNext > 0
	if lose {
		s.loseNext--
		s.requests[idx].Status = 0 // the client never sees it
	}
	release := s.release
	s.mu.Unlock()
	if lose {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return
	}
	if out != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(out)
		return
	}
	w.WriteHeader(status)
}

// handle runs a request with s.mu held and returns the status and body.
func (s *Server) handle(r *http.Request, data []byte) (int, []byte) {
	msg := func(format string, args ...any) []byte {
		b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
		return b
	}
	if len(s.failNext) > 0 {
		st := s.failNext[0]
		s.failNext = s.failNext[1:]
		return st, msg("injected failure")
	}
	for k, v := range s.opts.Headers {
		if r.Header.Get(k) != v {
			return http.StatusUnauthorized, msg("missing or wrong %s", k)
		}
	}
	var id string
	switch {
	case r.URL.Path == s.opts.Path:
	case strings.HasPrefix(r.URL.Path, s.opts.Path+"/"):
		id = strings.TrimPrefix(r.URL.Path, s.opts.Path+"/")
	default:
		return http.StatusNotFound, msg("no such path")
	}
	switch {
	case r.Method == http.MethodGet && id == "":
		// What the emulator holds, for people trying the demo.
		body, _ := json.Marshal(s.grantsLocked())
		return http.StatusOK, body
	case r.Method == http.MethodPost && id == "":
		idem := r.Header.Get("Idempotency-Key")
		if a, ok := s.answered[idem]; ok && idem != "" {
			return a.status, a.body // a retried create: the same answer
		}
		g, err := decode(data)
		if err != nil {
			return http.StatusBadRequest, msg("%v", err)
		}
		for _, o := range s.grants {
			if o.Key == g.Key {
				// A second create of one grant: the client lost track.
				return http.StatusUnprocessableEntity, msg("key %s is already held by %s", g.Key, o.ID)
			}
		}
		if !s.fits(g) {
			return http.StatusConflict, msg("group %s already has %d permission(s) at door %s then", g.Group, s.opts.MaxPerGroupDoor, g.Door)
		}
		s.next++
		g.ID = "p-" + strconv.Itoa(s.next)
		s.grants[g.ID] = g
		b, _ := json.Marshal(map[string]string{"id": g.ID})
		if idem != "" {
			s.answered[idem] = answer{http.StatusCreated, b}
		}
		return http.StatusCreated, b
	case r.Method == http.MethodPut && id != "":
		if _, ok := s.grants[id]; !ok {
			return http.StatusNotFound, msg("no grant %s", id)
		}
		g, err := decode(data)
		if err != nil {
			return http.StatusBadRequest, msg("%v", err)
		}
		g.ID = id
		if !s.fits(g) {
			return http.StatusConflict, msg("group %s already has %d permission(s) at door %s then", g.Group, s.opts.MaxPerGroupDoor, g.Door)
		}
		s.grants[id] = g
		return http.StatusOK, msg("updated")
	case r.Method == http.MethodDelete && id != "":
		if _, ok := s.grants[id]; !ok {
			return http.StatusNotFound, msg("no grant %s", id)
		}
		delete(s.grants, id)
		return http.StatusNoContent, nil
	}
	return http.StatusMethodNotAllowed, msg("%s %s not allowed", r.Method, r.URL.Path)
}

// decode reads a grant strictly: exactly the known fields, all set.
func decode(data []byte) (Grant, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b body
	if err := dec.Decode(&b); err != nil {
		return Grant{}, fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return Grant{}, fmt.Errorf("body: trailing data")
	}
	if b.Group == "" || b.Door == "" || b.Key == "" {
		return Grant{}, fmt.Errorf("group, door and key are required")
	}
	if b.Mode != "card" && b.Mode != "card_pin" {
		return Grant{}, fmt.Errorf("mode %q is not card or card_pin", b.Mode)
	}
	from, err := time.Parse(time.RFC3339, b.From)
	if err != nil {
		return Grant{}, fmt.Errorf("from: %w", err)
	}
	to, err := time.Parse(time.RFC3339, b.To)
	if err != nil {
		return Grant{}, fmt.Errorf("to: %w", err)
	}
	if !to.After(from) {
		return Grant{}, fmt.Errorf("to is not after from")
	}
	return Grant{Group: b.Group, Door: b.Door, From: from, To: to, Mode: b.Mode, Key: b.Key}, nil
}

// fits reports whether g (new, or replacing the grant of its id) keeps
// every instant within the limit.
func (s *Server) fits(g Grant) bool {
	if s.opts.MaxPerGroupDoor <= 0 {
		return true
	}
	type edge struct {
		at    time.Time
		delta int
	}
	edges := []edge{{g.From, 1}, {g.To, -1}}
	for id, o := range s.grants {
		if id == g.ID || o.Group != g.Group || o.Door != g.Door {
			continue
		}
		if o.From.Before(g.To) && o.To.After(g.From) {
			edges = append(edges, edge{o.From, 1}, edge{o.To, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	n := 0
	for _, e := range edges {
		n += e.delta
		if n > s.opts.MaxPerGroupDoor {
			return false
		}
	}
	return true
}

// Interface guard.
var _ http.Handler = (*Server)(nil)
