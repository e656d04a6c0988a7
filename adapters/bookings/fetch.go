package bookings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
)

// Errors a failed poll wraps; test with errors.Is.
var (
	// ErrTooLarge means the feed exceeded MaxBodyBytes.
	ErrTooLarge = errors.New("feed too large")
	// ErrNotModified304 means the server answered 304 Not Modified although
	// there is no cached feed it could refer to.
	ErrNotModified304 = errors.New("304 not modified without a cached feed")
	// ErrTimeout means the feed did not arrive within Timeout.
	ErrTimeout = errors.New("timeout")
)

// HTTPStatusError is a reply with a status other than 200 or 304.
type HTTPStatusError struct {
	// Code is the HTTP status code.
	Code int
}

// Error renders the status, e.g. "http status 503 Service Unavailable".
func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("http status %d %s", e.Code, http.StatusText(e.Code))
}

// fetched is the outcome of one transport round trip.
type fetched struct {
	body         []byte
	etag         string
	lastModified string
	// notModified is set on a 304 reply; body is then empty.
	notModified bool
}

// validators come from the last good response and make the request
// conditional.
type validators struct {
	etag, lastModified string
}

// fetch reads the feed from its file or URL.
func (s *Source) fetch(ctx context.Context, v validators) (fetched, error) {
	if s.opts.Path != "" {
		return s.fetchFile()
	}
	return s.fetchHTTP(ctx, v)
}

func (s *Source) fetchFile() (fetched, error) {
	f, err := os.Open(s.opts.Path)
	if err != nil {
		return fetched{}, fmt.Errorf("read %s: %w", s.opts.Path, err)
	}
	defer f.Close()
	body, err := readLimited(f, s.opts.MaxBodyBytes)
	if err != nil {
		return fetched{}, fmt.Errorf("read %s: %w", s.opts.Path, err)
	}
	return fetched{body: body}, nil
}

func (s *Source) fetchHTTP(ctx context.Context, v validators) (fetched, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.opts.Timeout, ErrTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.URL, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("get %s: %w", s.target, err)
	}
	for k, val := range s.opts.Headers {
		req.Header.Set(k, val)
	}
	req.Header.Set("User-Agent", "bmsgw")
	req.Header.Set("Accept", acceptHeader(s.opts.Format))
	if v.etag != "" {
		req.Header.Set("If-None-Match", v.etag)
	}
	if v.lastModified != "" {
		req.Header.Set("If-Modified-Since", v.lastModified)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fetched{}, s.transportError(ctx, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if v.etag == "" && v.lastModified == "" {
			return fetched{}, fmt.Errorf("get %s: %w", s.target, ErrNotModified304)
		}
		return fetched{notModified: true}, nil
	default:
		// The body of an error reply is not read: it may echo the request.
		return fetched{}, fmt.Errorf("get %s: %w", s.target, &HTTPStatusError{Code: resp.StatusCode})
	}
	if resp.ContentLength > s.opts.MaxBodyBytes {
		return fetched{}, fmt.Errorf("get %s: %d bytes: %w (max %d)", s.target, resp.ContentLength, ErrTooLarge, s.opts.MaxBodyBytes)
	}
	body, err := readLimited(resp.Body, s.opts.MaxBodyBytes)
	if err != nil {
		return fetched{}, s.transportError(ctx, err)
	}
	return fetched{
		body:         body,
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
	}, nil
}

// transportError describes a failed round trip without the URL's query
// (net/http quotes the whole URL, which may hold a token).
func (s *Source) transportError(ctx context.Context, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(context.Cause(ctx), ErrTimeout) {
		return fmt.Errorf("get %s: no complete reply within %s: %w", s.target, s.opts.Timeout, ErrTimeout)
	}
	return fmt.Errorf("get %s: %w", s.target, err)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w (max %d bytes)", ErrTooLarge, limit)
	}
	return body, nil
}

func acceptHeader(f Format) string {
	switch f {
	case FormatICal:
		return "text/calendar, */*;q=0.1"
	case FormatCSV:
		return "text/csv, */*;q=0.1"
	default:
		return "application/json, */*;q=0.1"
	}
}

// newClient copies base (or a zero client) and makes it drop the
// configured headers when a redirect leaves the original host or
// downgrades to plain http: net/http only drops Authorization and Cookie
// by itself, and an API key header must not go to a stranger.
func newClient(base *http.Client, headers map[string]string) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		first := via[0].URL
		if req.URL.Host != first.Host || (first.Scheme == "https" && req.URL.Scheme != "https") {
			for k := range headers {
				req.Header.Del(k)
			}
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &c
}
