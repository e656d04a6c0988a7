package access

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTPOptions configure an HTTP output (gateway config access_outputs[]
// with http:).
type HTTPOptions struct {
	// ID is the output's id; it names the state file.
	ID string
	// URL is the grants collection: POST URL creates a grant and answers
	// {"id": ref}, PUT URL/ref updates it, DELETE URL/ref revokes it.
	URL string
	// Headers are sent with every request, with secrets already
	// resolved. They are never logged or written anywhere.
	Headers map[string]string
	// Timeout bounds each request. Default 10s.
	Timeout time.Duration
	// MaxPerGroupDoor is the target's limit of simultaneous permissions
	// per group and door; the output never sends a request that would
	// exceed it. 0 means no limit.
	MaxPerGroupDoor int
	// StateDir is where the output keeps its state file,
	// access-<id>.json (0600). Created if missing.
	StateDir string
	// Attempts is how often a request is tried when it fails
	// transiently (5xx, 408, 429, timeouts, refused connections).
	// Default 4.
	Attempts int
	// RetryMin and RetryMax bound the backoff between attempts, which
	// doubles from RetryMin. Defaults 1s and 30s.
	RetryMin, RetryMax time.Duration
	// Client sends the requests, e.g. with the ACS's CA. Nil means a
	// client of its own. Redirects are never followed.
	Client *http.Client
	// Now tells the time, for expiry. Nil means time.Now.
	Now func() time.Time
}

// LogValue keeps the headers, which hold secrets, out of logs.
func (o HTTPOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", o.ID), slog.String("url", redactURL(o.URL)))
}

// HTTP is an output that pushes grants to an ACS's JSON API and keeps,
// in a state file, the ACS's reference for each grant it pushed. It is
// safe for concurrent use.
type HTTP struct {
	opts      HTTPOptions
	base      string // URL without a trailing slash
	target    string // URL for messages, without query or user info
	statePath string
	client    *http.Client
	log       *slog.Logger

	mu    sync.Mutex
	state *stateFile
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// NewHTTP checks the options, applies defaults and loads the state file.
// A state file that cannot be read is an error: without it the output
// cannot know which grants the ACS already holds.
func NewHTTP(o HTTPOptions, log *slog.Logger) (*HTTP, error) {
	var errs []error
	if !idPattern.MatchString(o.ID) {
		errs = append(errs, fmt.Errorf("access output id %q must be letters, digits, '_', '.' or '-'", o.ID))
	}
	u, err := url.Parse(o.URL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("access output %s: url is not a URL", o.ID))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		errs = append(errs, fmt.Errorf("access output %s: url %q must be http:// or https:// with a host", o.ID, redactURL(o.URL)))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("access output %s: url must not have a query or fragment, as references are appended to its path", o.ID))
	}
	for _, name := range sortedKeys(o.Headers) {
		if name == "" || strings.ContainsAny(name, " :\r\n\t") {
			errs = append(errs, fmt.Errorf("access output %s: header name %q is not valid", o.ID, name))
		}
		if strings.ContainsAny(o.Headers[name], "\r\n") {
			// The value is a secret: name the header only.
			errs = append(errs, fmt.Errorf("access output %s: value of header %q has a line break", o.ID, name))
		}
	}
	if o.Timeout < 0 || o.RetryMin < 0 || o.RetryMax < 0 || o.Attempts < 0 || o.MaxPerGroupDoor < 0 {
		errs = append(errs, fmt.Errorf("access output %s: timeout, retries, attempts and max_per_group_door must not be negative", o.ID))
	}
	if o.StateDir == "" {
		errs = append(errs, fmt.Errorf("access output %s: no state directory", o.ID))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Attempts == 0 {
		o.Attempts = 4
	}
	if o.RetryMin == 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax == 0 {
		o.RetryMax = 30 * time.Second
	}
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	if o.Now == nil {
		o.Now = time.Now
	}
	client := &http.Client{}
	if o.Client != nil {
		c := *o.Client
		client = &c
	}
	// A redirect would resend the secrets to another place and turn a
	// POST into a GET; the ACS's URL is declared, so none is expected.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &HTTP{
		opts:      o,
		base:      strings.TrimRight(o.URL, "/"),
		target:    redactURL(o.URL),
		statePath: filepath.Join(o.StateDir, "access-"+o.ID+".json"),
		client:    client,
		log:       log.With("output", o.ID),
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("access output %s: %w", o.ID, err)
	}
	st, err := loadState(h.statePath)
	if err != nil {
		return nil, fmt.Errorf("access output %s: %w", o.ID, err)
	}
	fp := fingerprint(h.target)
	if st.Target != "" && st.Target != fp {
		h.log.Warn("access output points at another endpoint; forgetting the references of the old one",
			"url", h.target, "grants", len(st.Grants))
		st.Grants = map[string]stateGrant{}
	}
	st.Version, st.Output, st.Target = stateVersion, o.ID, fp
	h.state = st
	return h, nil
}

// ID returns the output's id.
func (h *HTTP) ID() string { return h.opts.ID }

// Close drops the idle connections to the ACS.
func (h *HTTP) Close() error {
	h.client.CloseIdleConnections()
	return nil
}

// Sentinel errors of pushes.
var (
	// ErrLimit: the grant would give its group more simultaneous
	// permissions at its door than the target allows, given what the
	// target holds now.
	ErrLimit = errors.New("would exceed the target's max_per_group_door")
	// ErrInvalidGrant: the grant is malformed (no group or door, no
	// time, unknown mode) or its key is not unique.
	ErrInvalidGrant = errors.New("invalid grant")
	// ErrNoRef: the ACS accepted a create but returned no reference, so
	// the gateway cannot update or revoke that grant.
	ErrNoRef = errors.New("no reference in the answer")
)

// StatusError is a non-2xx answer of the ACS.
type StatusError struct {
	Method string
	Status int
	// Body is the start of the answer, quoted, for people.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s answered %d", e.Method, e.Status)
	}
	return fmt.Sprintf("%s answered %d: %s", e.Method, e.Status, e.Body)
}

// transientStatus reports whether an answer with this status may succeed
// when tried again.
func transientStatus(s int) bool {
	return s >= 500 || s == http.StatusRequestTimeout || s == http.StatusTooManyRequests
}

// wireGrant is the JSON body of a create or update: only pseudonymous ids
// and times.
type wireGrant struct {
	Group string `json:"group"`
	Door  string `json:"door"`
	From  string `json:"from"`
	To    string `json:"to"`
	Mode  Mode   `json:"mode"`
	Key   string `json:"key"`
}

func toWire(g Grant) wireGrant {
	return wireGrant{Group: g.Group, Door: g.Door, From: g.From.Format(time.RFC3339),
		To: g.To.Format(time.RFC3339), Mode: g.Mode, Key: g.Key}
}

func encodeGrant(g Grant) (body []byte, hash string) {
	body, err := json.Marshal(toWire(g))
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	sum := sha256.Sum256(body)
	return body, hex.EncodeToString(sum[:])
}

func checkGrant(g Grant) error {
	switch {
	case g.Key == "":
		return fmt.Errorf("%w: no key", ErrInvalidGrant)
	case g.Group == "" || g.Door == "":
		return fmt.Errorf("%w: no group or door", ErrInvalidGrant)
	case !g.To.After(g.From):
		return fmt.Errorf("%w: does not end after it starts", ErrInvalidGrant)
	case !g.Mode.Valid():
		return fmt.Errorf("%w: mode %q", ErrInvalidGrant, g.Mode)
	}
	return nil
}

// pending is a create or update waiting for room under the limit.
type pending struct {
	g    Grant
	body []byte
	hash string
}

// Push makes the ACS hold exactly the desired grants that have not ended.
//
// Grants the state does not know are created; grants whose body changed
// are updated through their reference; grants no longer desired are
// revoked through it (a reference the ACS no longer knows counts as
// revoked); grants that have ended are forgotten without a request.
// Revokes go first, then updates and creates in an order that never has
// the ACS hold more than MaxPerGroupDoor grants of a group at a door at
// once; a change that cannot be made without exceeding it fails with
// ErrLimit. Transient failures are retried with backoff; every failure is
// reported in the Result, per grant. The state file is rewritten after
// every change, so a restart neither repeats nor forgets one.
//
// The error is non-nil only when the state cannot be saved or ctx is done;
// the Result then holds what was done before.
func (h *HTTP) Push(ctx context.Context, desired []Grant) (Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	res := Result{Output: h.opts.ID}
	st := h.state

	want := map[string]pending{}
	var order []string
	for _, g := range desired {
		if !g.To.After(now) {
			continue
		}
		if err := checkGrant(g); err != nil {
			res.Ops = append(res.Ops, Op{Action: Create, Grant: g, Err: err, Permanent: true})
			continue
		}
		if _, dup := want[g.Key]; dup {
			res.Ops = append(res.Ops, Op{Action: Create, Grant: g, Err: fmt.Errorf("%w: key %s is not unique", ErrInvalidGrant, g.Key), Permanent: true})
			continue
		}
		body, hash := encodeGrant(g)
		want[g.Key] = pending{g: g, body: body, hash: hash}
		order = append(order, g.Key)
	}
	slices.SortFunc(order, func(a, b string) int { return compareGrants(want[a].g, want[b].g) })

	dirty := false
	// Ended grants lapse in the ACS by themselves.
	for _, key := range sortedKeys(st.Grants) {
		sg := st.Grants[key]
		if _, ok := want[key]; !ok && !sg.To.After(now) {
			delete(st.Grants, key)
			res.Ops = append(res.Ops, Op{Action: Expire, Grant: sg.grant(key), Ref: sg.Ref})
			dirty = true
		}
	}

	// Revokes first: they only make room.
	var revokes []string
	for key := range st.Grants {
		if _, ok := want[key]; !ok {
			revokes = append(revokes, key)
		}
	}
	slices.SortFunc(revokes, func(a, b string) int {
		return compareGrants(st.Grants[a].grant(a), st.Grants[b].grant(b))
	})
	for _, key := range revokes {
		if err := h.revoke(ctx, key, &res); err != nil {
			return res, err
		}
	}

	var todo []pending
	for _, key := range order {
		p := want[key]
		if sg, ok := st.Grants[key]; ok && sg.Hash == p.hash {
			res.Unchanged++
			continue
		}
		todo = append(todo, p)
	}
	todo, err := h.apply(ctx, todo, &res)
	if err != nil {
		return res, err
	}
	if len(todo) > 0 {
		// Updates that wait only for each other (two grants swapping
		// their times) are made by revoking the old grants and creating
		// them anew. One held up by anything else (a grant whose revoke
		// failed) keeps its old version rather than losing it.
		stuck := map[string]bool{}
		for _, p := range todo {
			if _, ok := st.Grants[p.g.Key]; ok {
				stuck[p.g.Key] = true
			}
		}
		for _, p := range todo {
			if stuck[p.g.Key] && h.fits(p.g, stuck) {
				if err := h.revoke(ctx, p.g.Key, &res); err != nil {
					return res, err
				}
			}
		}
		if todo, err = h.apply(ctx, todo, &res); err != nil {
			return res, err
		}
		for _, p := range todo {
			res.Ops = append(res.Ops, Op{Action: h.actionFor(p.g.Key), Grant: p.g, Ref: st.Grants[p.g.Key].Ref,
				Err: fmt.Errorf("%w (%d)", ErrLimit, h.opts.MaxPerGroupDoor), Permanent: true})
		}
	}
	if dirty {
		if err := st.save(h.statePath); err != nil {
			return res, fmt.Errorf("access output %s: %w", h.opts.ID, err)
		}
	}
	return res, nil
}

func (h *HTTP) actionFor(key string) Action {
	if _, ok := h.state.Grants[key]; ok {
		return Update
	}
	return Create
}

// apply makes the creates and updates that fit under the limit, in
// passes, until no more fit; it returns those that do not.
func (h *HTTP) apply(ctx context.Context, todo []pending, res *Result) ([]pending, error) {
	for len(todo) > 0 {
		var rest []pending
		for _, p := range todo {
			if !h.fits(p.g, nil) {
				rest = append(rest, p)
				continue
			}
			if err := h.put(ctx, p, res); err != nil {
				return nil, err
			}
		}
		if len(rest) == len(todo) {
			return rest, nil
		}
		todo = rest
	}
	return nil, nil
}

// fits reports whether the ACS would hold at most MaxPerGroupDoor grants
// of g's group at g's door at any instant if g replaced the grant of its
// key and the grants of the keys in without were gone. Grants are
// half-open: one ending when the next starts is not simultaneous with it.
func (h *HTTP) fits(g Grant, without map[string]bool) bool {
	limit := h.opts.MaxPerGroupDoor
	if limit <= 0 {
		return true
	}
	type edge struct {
		at    time.Time
		delta int
	}
	edges := []edge{{g.From, 1}, {g.To, -1}}
	for key, sg := range h.state.Grants {
		if key == g.Key || without[key] || sg.Group != g.Group || sg.Door != g.Door {
			continue
		}
		if sg.From.Before(g.To) && sg.To.After(g.From) {
			edges = append(edges, edge{sg.From, 1}, edge{sg.To, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // ends before starts at one instant
	})
	n := 0
	for _, e := range edges {
		n += e.delta
		if n > limit {
			return false
		}
	}
	return true
}

// put creates or updates one grant and records it in the state.
func (h *HTTP) put(ctx context.Context, p pending, res *Result) error {
	st := h.state
	sg, known := st.Grants[p.g.Key]
	op := Op{Action: Create, Grant: p.g}
	if known {
		op.Action, op.Ref = Update, sg.Ref
		r := h.send(ctx, http.MethodPut, h.base+"/"+url.PathEscape(sg.Ref), p.body, "")
		op.Attempts, op.Status = r.attempts, r.status
		switch {
		case r.ctxErr != nil:
			return r.ctxErr
		case r.err == nil:
			return h.record(p, sg.Ref, op, res)
		case r.status == http.StatusNotFound || r.status == http.StatusGone:
			// Removed in the ACS by hand: create it again below.
			h.log.Warn("access grant unknown to the ACS; creating it again", "key", p.g.Key, "ref", sg.Ref)
			delete(st.Grants, p.g.Key)
			if err := st.save(h.statePath); err != nil {
				return fmt.Errorf("access output %s: %w", h.opts.ID, err)
			}
		default:
			op.Err, op.Permanent = r.err, r.permanent
			res.Ops = append(res.Ops, op)
			return nil
		}
	}
	r := h.send(ctx, http.MethodPost, h.base, p.body, idempotencyKey())
	op.Attempts += r.attempts
	op.Status = r.status
	if r.ctxErr != nil {
		return r.ctxErr
	}
	if r.err != nil {
		op.Err, op.Permanent = r.err, r.permanent
		res.Ops = append(res.Ops, op)
		return nil
	}
	ref, err := refOf(r.body)
	if err != nil {
		op.Err, op.Permanent = err, true
		res.Ops = append(res.Ops, op)
		return nil
	}
	op.Ref = ref
	return h.record(p, ref, op, res)
}

func (h *HTTP) record(p pending, ref string, op Op, res *Result) error {
	h.state.Grants[p.g.Key] = stateGrant{Ref: ref, Hash: p.hash, Group: p.g.Group, Door: p.g.Door,
		From: p.g.From, To: p.g.To, Mode: p.g.Mode, Bookings: p.g.Bookings, Organisers: p.g.Organisers}
	res.Ops = append(res.Ops, op)
	h.log.Info("access grant pushed", "action", op.Action, "key", p.g.Key, "ref", ref,
		"group", p.g.Group, "door", p.g.Door, "from", p.g.From, "to", p.g.To, "mode", p.g.Mode)
	if err := h.state.save(h.statePath); err != nil {
		return fmt.Errorf("access output %s: %w", h.opts.ID, err)
	}
	return nil
}

// revoke deletes the grant of key in the ACS and forgets it.
func (h *HTTP) revoke(ctx context.Context, key string, res *Result) error {
	st := h.state
	sg := st.Grants[key]
	r := h.send(ctx, http.MethodDelete, h.base+"/"+url.PathEscape(sg.Ref), nil, "")
	op := Op{Action: Revoke, Grant: sg.grant(key), Ref: sg.Ref, Attempts: r.attempts, Status: r.status}
	if r.ctxErr != nil {
		return r.ctxErr
	}
	if r.err != nil && r.status != http.StatusNotFound && r.status != http.StatusGone {
		op.Err, op.Permanent = r.err, r.permanent
		res.Ops = append(res.Ops, op)
		return nil
	}
	delete(st.Grants, key)
	res.Ops = append(res.Ops, op)
	h.log.Info("access grant revoked", "key", key, "ref", sg.Ref, "group", sg.Group, "door", sg.Door, "status", r.status)
	if err := st.save(h.statePath); err != nil {
		return fmt.Errorf("access output %s: %w", h.opts.ID, err)
	}
	return nil
}

// refOf reads the reference from a create's answer, {"id": "..."} or
// {"id": 123}.
func refOf(body []byte) (string, error) {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil || len(v.ID) == 0 {
		return "", fmt.Errorf("%w: %s", ErrNoRef, quoteStart(body))
	}
	var s string
	if err := json.Unmarshal(v.ID, &s); err == nil && s != "" {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(v.ID, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("%w: %s", ErrNoRef, quoteStart(body))
}

// reply is how a request ended, after retries.
type reply struct {
	status    int
	body      []byte
	attempts  int
	err       error // the last failure, nil on a 2xx answer
	permanent bool
	ctxErr    error // ctx was done: the push stops
}

// idempotencyKey names one create, random so that a grant revoked and
// wanted again is created anew. A create whose answer was lost (a
// timeout) is retried with the same key, so an ACS that honours the
// header answers with the grant it already made instead of making a
// second one.
func idempotencyKey() string { return rand.Text() }

// send makes one request, retrying transient failures with backoff.
func (h *HTTP) send(ctx context.Context, method, target string, body []byte, idemKey string) reply {
	var r reply
	delay := h.opts.RetryMin
	for r.attempts < h.opts.Attempts {
		if r.attempts > 0 {
			h.log.Warn("access request failed; retrying", "method", method, "attempt", r.attempts,
				"status", r.status, "error", r.err, "backoff", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				r.ctxErr = fmt.Errorf("access output %s: %w", h.opts.ID, ctx.Err())
				return r
			case <-t.C:
			}
			delay = min(2*delay, h.opts.RetryMax)
		}
		r.attempts++
		r.status, r.body, r.err = h.once(ctx, method, target, body, idemKey)
		if ctx.Err() != nil {
			r.ctxErr = fmt.Errorf("access output %s: %w", h.opts.ID, ctx.Err())
			return r
		}
		if r.err == nil {
			return r
		}
		if r.status != 0 && !transientStatus(r.status) {
			r.permanent = true
			return r
		}
	}
	r.err = fmt.Errorf("gave up after %d attempts: %w", r.attempts, r.err)
	return r
}

// once makes one request. Errors name the method and the URL without
// query or user info, never the headers.
func (h *HTTP) once(ctx context.Context, method, target string, body []byte, idemKey string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, h.target, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	for k, v := range h.opts.Headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message would repeat the URL
		}
		return 0, nil, fmt.Errorf("%s %s: %w", method, h.target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read answer: %w", method, h.target, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, data, &StatusError{Method: method, Status: resp.StatusCode, Body: quoteStart(data)}
	}
	return resp.StatusCode, data, nil
}

// quoteStart quotes the start of an answer for an error message.
func quoteStart(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 200 {
		return strconv.Quote(string(b[:200])) + "..."
	}
	return strconv.Quote(string(b))
}

// redactURL drops user info, query and fragment, which may hold tokens.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable url]"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}

func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// Interface guards.
var _ Output = (*HTTP)(nil)
