package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Listen says where the API listens and with which certificate.
type Listen struct {
	// Addr is host:port, e.g. "0.0.0.0:8443" or "127.0.0.1:8080".
	Addr string
	// CertFile and KeyFile are the PEM certificate (with its chain) and
	// key for HTTPS. Both empty: plain HTTP, allowed on a loopback
	// address only.
	CertFile, KeyFile string
}

// ErrPlainHTTP is returned by Bind for plain HTTP on an address that is
// not loopback: tokens would cross the network in the clear.
var ErrPlainHTTP = errors.New("plain HTTP is allowed on a loopback address only")

// Bind checks l, loads its certificate and opens its listener, TLS (1.2
// or later) when a certificate is given; the certificate files are
// reread when they change (see certificate). The errors say what to fix: a
// certificate without a key, a file that does not load, plain HTTP on an
// address others can reach.
func (s *Server) Bind(l Listen) (net.Listener, error) {
	host, _, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return nil, fmt.Errorf("http api: listen address %q: use host:port, e.g. 127.0.0.1:8080: %w", l.Addr, err)
	}
	var cfg *tls.Config
	switch {
	case (l.CertFile == "") != (l.KeyFile == ""):
		return nil, fmt.Errorf("http api: give both a certificate and a key file, or neither for plain HTTP on loopback")
	case l.CertFile != "":
		cert, err := loadCertificate(l.CertFile, l.KeyFile, s.log)
		if err != nil {
			return nil, err
		}
		cfg = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.get, NextProtos: []string{"h2", "http/1.1"}}
	case !loopback(host):
		return nil, fmt.Errorf("http api: %s: %w; configure a certificate and key for HTTPS, or listen on 127.0.0.1 or [::1] behind a TLS proxy", l.Addr, ErrPlainHTTP)
	}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return nil, fmt.Errorf("http api: %w", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

// loopback reports whether host names a loopback address only. An empty
// host or 0.0.0.0 listens on every interface, so it is not loopback;
// "localhost" counts only if every address it resolves to is loopback.
func loopback(host string) bool {
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return ip.IsLoopback()
	}
	if !strings.EqualFold(host, "localhost") {
		return false
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// shutdownGrace bounds how long Serve waits for requests in flight when
// ctx is done.
const shutdownGrace = 5 * time.Second

// Serve serves the API on ln until ctx is done, then shuts down: event
// streams end at once, other requests get shutdownGrace to finish. It
// returns nil after a clean shutdown, or why it could not serve.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := make(chan struct{})
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 16,
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), stopKey{}, stop)
		},
		// TLS handshakes that fail (scanners, wrong clients) would
		// flood the log at a higher level.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv.RegisterOnShutdown(func() { close(stop) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("http api: shutdown: %w", err)
	}
	return nil
}

// ListenAndServe binds l (see Bind) and serves until ctx is done (see
// Serve).
func (s *Server) ListenAndServe(ctx context.Context, l Listen) error {
	ln, err := s.Bind(l)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}
