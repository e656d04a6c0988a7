// Package localapi is the operator's channel to a running gateway: an
// HTTP API on a Unix socket in the gateway's state directory, guarded by
// the socket's file mode and a bearer token in a file beside it, so only
// the gateway's own user can reach it. The CLI (bmsgw status, override,
// reload) finds the daemon from its config through these two files.
package localapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/control"
)

// File names in the state directory.
const (
	SocketName = "bmsgw.sock"
	TokenName  = "api.token"
)

// Backend is what the API exposes of the running gateway.
type Backend interface {
	Status(ctx context.Context) (control.Status, error)
	SetOverride(ctx context.Context, o control.Override) error
	ClearOverride(ctx context.Context, site, point, who string) error
	// Reload validates the config again and applies it, or returns why
	// not; the running config stays on error. It returns what changed,
	// one line each. With check it applies nothing and returns what a
	// reload would change.
	Reload(ctx context.Context, check bool) ([]string, error)
}

// Server serves the API.
type Server struct {
	dir   string
	token string
	b     Backend
	log   *slog.Logger
	srv   *http.Server
	ln    net.Listener
	// stop is closed when shutdown begins, to end the event streams,
	// which would otherwise hold Shutdown until its deadline.
	stop chan struct{}
}

// Listen creates the token file (0600) and the socket (0600) in dir. A
// stale socket from a crashed daemon is removed; a live one is an error,
// because two gateways must not drive the same buildings.
func Listen(dir string, b Backend, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local api: %w", err)
	}
	sock := filepath.Join(dir, SocketName)
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("local api: a gateway is already running on %s", sock)
	}
	_ = os.Remove(sock)
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(raw)
	if err := os.WriteFile(filepath.Join(dir, TokenName), []byte(token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("local api: write token: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("local api: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local api: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{dir: dir, token: token, b: b, log: log, ln: ln, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/overrides", s.setOverride)
	mux.HandleFunc("DELETE /v1/overrides/{site}/{point}", s.clearOverride)
	mux.HandleFunc("POST /v1/reload", s.reload)
	mux.HandleFunc("GET /v1/events", s.listEvents)
	mux.HandleFunc("GET /v1/events/stream", s.streamEvents)
	mux.HandleFunc("POST /v1/round/{site}", s.round)
	s.srv = &http.Server{Handler: s.auth(mux), ReadHeaderTimeout: 5 * time.Second}
	s.srv.RegisterOnShutdown(func() { close(s.stop) })
	return s, nil
}

// Serve serves until ctx is done, then shuts down within 5 s and removes
// the socket and token.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-errc
	_ = os.Remove(filepath.Join(s.dir, SocketName))
	_ = os.Remove(filepath.Join(s.dir, TokenName))
	return err
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			http.Error(w, `{"error":"missing or wrong token"}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, err error) {
	reply(w, code, map[string]string{"error": err.Error()})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Status(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err)
		return
	}
	reply(w, http.StatusOK, st)
}

func (s *Server) setOverride(w http.ResponseWriter, r *http.Request) {
	var o control.Override
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("override: %w", err))
		return
	}
	if o.Who == "" || o.Why == "" {
		fail(w, http.StatusBadRequest, errors.New("override: who and why are required"))
		return
	}
	if err := s.b.SetOverride(r.Context(), o); err != nil {
		fail(w, http.StatusUnprocessableEntity, err)
		return
	}
	reply(w, http.StatusOK, o)
}

func (s *Server) clearOverride(w http.ResponseWriter, r *http.Request) {
	who := r.URL.Query().Get("who")
	if who == "" {
		fail(w, http.StatusBadRequest, errors.New("clear override: who is required"))
		return
	}
	if err := s.b.ClearOverride(r.Context(), r.PathValue("site"), r.PathValue("point"), who); err != nil {
		fail(w, http.StatusNotFound, err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"cleared": r.PathValue("site") + "/" + r.PathValue("point")})
}

// ReloadReply is the reply to a reload: "reloaded" (or "checked" when
// nothing was applied) and what changed.
type ReloadReply struct {
	Result  string   `json:"result"`
	Changes []string `json:"changes"`
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	check := r.URL.Query().Get("check") == "1"
	changes, err := s.b.Reload(r.Context(), check)
	if err != nil {
		fail(w, http.StatusUnprocessableEntity, err)
		return
	}
	res := ReloadReply{Result: "reloaded", Changes: changes}
	if check {
		res.Result = "checked"
	}
	if res.Changes == nil {
		res.Changes = []string{}
	}
	reply(w, http.StatusOK, res)
}

// Client talks to a running gateway through its state directory.
type Client struct {
	token string
	hc    *http.Client
}

// ErrNotRunning means no gateway listens in the state directory.
var ErrNotRunning = errors.New("no gateway is running for this config")

// Dial prepares a client for the gateway whose state directory is dir.
func Dial(dir string) (*Client, error) {
	sock := filepath.Join(dir, SocketName)
	tok, err := os.ReadFile(filepath.Join(dir, TokenName))
	if err != nil {
		return nil, fmt.Errorf("%w (no %s in %s)", ErrNotRunning, TokenName, dir)
	}
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	return &Client{token: strings.TrimSpace(string(tok)), hc: hc}, nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://bmsgw"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return notRunning(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return replyError(resp)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Status fetches the gateway's status.
func (c *Client) Status(ctx context.Context) (control.Status, error) {
	var st control.Status
	err := c.call(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// SetOverride sets an override.
func (c *Client) SetOverride(ctx context.Context, o control.Override) error {
	return c.call(ctx, http.MethodPost, "/v1/overrides", o, nil)
}

// ClearOverride clears an override.
func (c *Client) ClearOverride(ctx context.Context, site, point, who string) error {
	return c.call(ctx, http.MethodDelete, "/v1/overrides/"+url.PathEscape(site)+"/"+url.PathEscape(point)+"?who="+url.QueryEscape(who), nil, nil)
}

// Reload asks the gateway to reload its config and returns what changed.
func (c *Client) Reload(ctx context.Context) ([]string, error) {
	var res ReloadReply
	err := c.call(ctx, http.MethodPost, "/v1/reload", nil, &res)
	return res.Changes, err
}

// CheckReload asks the gateway what a reload of its config would change,
// without applying anything.
func (c *Client) CheckReload(ctx context.Context) ([]string, error) {
	var res ReloadReply
	err := c.call(ctx, http.MethodPost, "/v1/reload?check=1", nil, &res)
	return res.Changes, err
}

// notRunning tells a gateway that is not there from other failures.
func notRunning(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("%w: %v", ErrNotRunning, op.Err)
	}
	return err
}

// replyError is the error of a reply other than 200.
func replyError(resp *http.Response) error {
	var e struct{ Error string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
	if e.Error == "" {
		e.Error = resp.Status
	}
	return errors.New(e.Error)
}
