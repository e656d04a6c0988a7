// Package httpapi is the gateway's HTTP API for people and their tools:
// sites, spaces, points, the plan, occupancy windows, status, overrides,
// events (with a live stream), patrol rounds and reports, as JSON under
// /api/, for bearer tokens with roles; /metrics for Prometheus; and
// /healthz and /readyz for the service manager.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	// Backend is the running gateway. Required.
	Backend Backend
	// Tokens are the tokens the API accepts; SetTokens replaces them on
	// a reload. nil accepts none: only /healthz and /readyz answer.
	Tokens *Tokens
	// Logger receives refused requests (Warn) and served ones (Debug).
	// Tokens are never logged, only their holders' names. Default: none.
	Logger *slog.Logger
	// Metrics are served at /metrics and count the API's requests.
	// Default: NewMetrics(nil), a registry of its own.
	Metrics *Metrics
	// Now is the clock for default periods (today, this week, the last
	// 30 days). Default: time.Now.
	Now func() time.Time
	// MaxPeriod is the longest period a plan or windows request may ask
	// for. Default: DefaultMaxPeriod.
	MaxPeriod time.Duration
	// Page, if set, is served for every path the API does not route (the
	// web page, internal/webui); without it those answer 404.
	Page http.Handler
}

// DefaultMaxPeriod is the default of Options.MaxPeriod: a quarter, enough
// for a term's plan, short enough that one request cannot make the
// gateway compile a decade.
const DefaultMaxPeriod = 92 * 24 * time.Hour

// Server serves the API. It is safe for concurrent use; one Server may
// serve several listeners (a TLS one for the network and a plain one on
// loopback, say).
type Server struct {
	b       Backend
	tokens  atomic.Pointer[Tokens]
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	max     time.Duration
	mux     *http.ServeMux
	routes  []Route
}

// Route is one endpoint and the least role that may call it (0: no
// token needed).
type Route struct {
	// Pattern is the standard library's ServeMux pattern, e.g.
	// "GET /api/sites/{site}/plan".
	Pattern string
	Role    Role
	// Doc says what it does, for the docs and the endpoint list.
	Doc string
}

// New builds the server and its routes.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("http api: a backend is required")
	}
	s := &Server{b: opts.Backend, log: opts.Logger, metrics: opts.Metrics, now: opts.Now, max: opts.MaxPeriod, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.max <= 0 {
		s.max = DefaultMaxPeriod
	}
	s.tokens.Store(opts.Tokens)

	s.handle("GET /healthz", 0, "the process is alive", s.healthz)
	s.handle("GET /readyz", 0, "the gateway serves: journal open, plans compiled", s.readyz)
	s.handle("GET /metrics", RoleViewer, "Prometheus metrics", s.metrics.handler().ServeHTTP)

	s.handle("GET /api/whoami", RoleViewer, "the token's holder and role", s.whoami)
	s.handle("GET /api/tokens", RoleAdmin, "the holders of tokens and their roles (never tokens or hashes)", s.listTokens)
	s.handle("GET /api/routes", RoleViewer, "the endpoints and the role each needs", s.listRoutes)

	s.handle("GET /api/sites", RoleViewer, "the sites", s.sites)
	s.handle("GET /api/sites/{site}", RoleViewer, "one site", s.site)
	s.handle("GET /api/sites/{site}/spaces", RoleViewer, "the spaces of a site", s.spaces)
	s.handle("GET /api/sites/{site}/points", RoleViewer, "the points of a site", s.points)
	s.handle("GET /api/sites/{site}/plan", RoleViewer, "the plan: point changes with reasons, as bmsgw plan", s.plan)
	s.handle("GET /api/sites/{site}/windows", RoleViewer, "occupancy windows of the spaces", s.windows)
	s.handle("POST /api/sites/{site}/round", RoleOperator, "run the virtual patrol round now", s.round)
	s.handle("PUT /api/sites/{site}/points/{point}/override", RoleOperator, "set an override", s.setOverride)
	s.handle("DELETE /api/sites/{site}/points/{point}/override", RoleOperator, "clear an override", s.clearOverride)

	s.handle("GET /api/status", RoleViewer, "devices and points: desired, actual, why", s.status)
	s.handle("GET /api/feeds", RoleViewer, "the booking sources' health", s.feeds)
	s.handle("GET /api/events", RoleViewer, "stored events", s.listEvents)
	s.handle("GET /api/events/stream", RoleViewer, "events as server-sent events, live", s.streamEvents)
	s.handle("GET /api/reports/noshows", RoleViewer, "the no-show report per organiser", s.noShows)
	s.handle("GET /api/reports/energy", RoleViewer, "the energy report of a site for a week", s.energy)

	s.webUIRoutes()
	s.openDataRoutes()

	s.handle("/api/", 0, "", s.notFound)
	if opts.Page != nil {
		s.mux.Handle("/", opts.Page)
	}
	return s, nil
}

// SetTokens replaces the tokens the API accepts, e.g. after a reload;
// requests in flight finish with the tokens they were let in by.
func (s *Server) SetTokens(t *Tokens) { s.tokens.Store(t) }

// Routes lists the endpoints with their roles, in registration order.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.routes {
		if r.Doc != "" {
			out = append(out, r)
		}
	}
	return out
}

// Handler returns the API's handler, for a server of the caller's own or
// a test.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		s.mux.ServeHTTP(w, r)
	})
}

type holderKey struct{}

// holder returns the holder of the request's token.
func holder(r *http.Request) Holder {
	h, _ := r.Context().Value(holderKey{}).(Holder)
	return h
}

// handle registers an endpoint behind the role check.
func (s *Server) handle(pattern string, role Role, doc string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Pattern: pattern, Role: role, Doc: doc})
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		defer func() { s.metrics.request(pattern, rec.code) }()
		if role > 0 {
			hd, ok := s.authenticate(rec, r, role)
			if !ok {
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), holderKey{}, hd))
		}
		h(rec, r)
		s.log.Debug("api request", "route", pattern, "path", r.URL.Path, "holder", holder(r).Name, "code", rec.code)
	}))
}

// authenticate answers 401 for a missing or unknown token and 403 for a
// role below need; otherwise it returns the token's holder.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, need Role) (Holder, bool) {
	auth := r.Header.Get("Authorization")
	scheme, presented, _ := strings.Cut(auth, " ")
	if auth == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bmsgw"`)
		fail(w, http.StatusUnauthorized, errors.New("a bearer token is required (Authorization: Bearer <token>)"))
		s.log.Warn("api request refused", "reason", "no token", "remote", r.RemoteAddr, "path", r.URL.Path)
		return Holder{}, false
	}
	h, ok := s.tokens.Load().Lookup(strings.TrimSpace(presented))
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bmsgw", error="invalid_token"`)
		fail(w, http.StatusUnauthorized, errors.New("the token is not valid"))
		s.log.Warn("api request refused", "reason", "unknown token", "remote", r.RemoteAddr, "path", r.URL.Path)
		return Holder{}, false
	}
	if h.Role < need {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bmsgw", error="insufficient_scope"`)
		fail(w, http.StatusForbidden, fmt.Errorf("%s has role %s; this needs %s", h.Name, h.Role, need))
		s.log.Warn("api request refused", "reason", "role", "holder", h.Name, "role", h.Role.String(), "need", need.String(), "path", r.URL.Path)
		return Holder{}, false
	}
	return h, true
}

// recorder remembers the status code for metrics and logs, and passes
// Flush on, for event streams.
type recorder struct {
	http.ResponseWriter
	code    int
	written bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.code, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.written = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's Flush.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError is the body of every answer other than 2xx.
type apiError struct {
	Error string `json:"error"`
}

func fail(w http.ResponseWriter, code int, err error) {
	reply(w, code, apiError{Error: err.Error()})
}

// failBackend answers a backend's error with the code it wraps, or other.
func failBackend(w http.ResponseWriter, err error, other int) {
	code := other
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrBadRequest):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnavailable):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	fail(w, code, err)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	fail(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s; GET /api/routes lists them", r.Method, r.URL.Path))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Ready(r.Context()); err != nil {
		reply(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	reply(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, holder(r))
}

func (s *Server) listTokens(w http.ResponseWriter, _ *http.Request) {
	hs := s.tokens.Load().Holders()
	if hs == nil {
		hs = []Holder{}
	}
	reply(w, http.StatusOK, hs)
}

type routeJSON struct {
	Pattern string `json:"pattern"`
	Role    string `json:"role"`
	Doc     string `json:"doc"`
}

func (s *Server) listRoutes(w http.ResponseWriter, _ *http.Request) {
	out := []routeJSON{}
	for _, r := range s.Routes() {
		role := "none"
		if r.Role > 0 {
			role = r.Role.String()
		}
		out = append(out, routeJSON{r.Pattern, role, r.Doc})
	}
	reply(w, http.StatusOK, out)
}
