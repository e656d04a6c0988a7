package config

import (
	"net"
	"regexp"
)

// HTTPServer is the gateway's HTTP API and web page (see docs/http-api.md).
type HTTPServer struct {
	// host:port to listen on, e.g. 0.0.0.0:8443. Plain HTTP only on a loopback address; anything else needs tls.
	Listen string `yaml:"listen" jsonschema:"required"`
	// HTTPS certificate and key (PEM), relative to this file.
	TLS *HTTPTLS `yaml:"tls,omitempty"`
	// API tokens: who holds each, their role, and the SHA-256 of the token (never the token itself; make one with bmsgw token new).
	Tokens []HTTPToken `yaml:"tokens,omitempty"`
	// A file of more tokens, one "name role sha256" per line, relative to this file; it must not be writable by others.
	TokensFile string `yaml:"tokens_file,omitempty"`
}

// HTTPTLS is the certificate of the HTTP server.
type HTTPTLS struct {
	// Certificate with its chain (PEM).
	CertificateFile string `yaml:"certificate_file" jsonschema:"required"`
	// Private key (PEM).
	PrivateKeyFile string `yaml:"private_key_file" jsonschema:"required"`
}

// HTTPToken is one API token.
type HTTPToken struct {
	// Holder's name (lower case letters, digits and ._@-); overrides are journalled with it.
	Name string `yaml:"name" jsonschema:"required"`
	// viewer (energy staff, booking office), operator (overrides, rounds) or admin.
	Role HTTPRole `yaml:"role" jsonschema:"required"`
	// SHA-256 of the token in hex (64 digits).
	TokenSHA256 string `yaml:"token_sha256" jsonschema:"required"`
}

// HTTPRole is viewer, operator or admin.
type HTTPRole string

func (HTTPRole) enumValues() []string { return []string{"viewer", "operator", "admin"} }

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (l *loader) httpServer(g *Gateway, gf *GatewayFile, pos *Positions, dir string) {
	h := gf.HTTP
	if h == nil {
		return
	}
	_, _, err := net.SplitHostPort(h.Listen)
	if err != nil {
		l.errs.add(pos.Key(h, "listen"), "http listen %q is not host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8443", h.Listen)
	} else if h.TLS == nil && !loopback(h.Listen) {
		l.errs.add(pos.Key(h, "listen"), "http listen %q is not a loopback address, so it needs tls: (certificate_file, private_key_file); tokens must not cross the network in the clear", h.Listen)
	}
	if t := h.TLS; t != nil {
		t.CertificateFile = resolvePath(dir, t.CertificateFile)
		t.PrivateKeyFile = resolvePath(dir, t.PrivateKeyFile)
	}
	names := map[string]Pos{}
	for i := range h.Tokens {
		tk := &h.Tokens[i]
		l.uniqueID(names, tk.Name, pos.Key(tk, "name"), "token holder")
		if !sha256Hex.MatchString(tk.TokenSHA256) {
			l.errs.add(pos.Key(tk, "token_sha256"), "token of %q: token_sha256 must be 64 lower-case hex digits (the SHA-256 of the token, as bmsgw token new prints it), never the token itself", tk.Name)
		}
	}
	if h.TokensFile != "" {
		h.TokensFile = resolvePath(dir, h.TokensFile)
	}
	if len(h.Tokens) == 0 && h.TokensFile == "" {
		if gf.Simulate == nil {
			l.errs.add(pos.Key(h, "listen"), "http has no tokens: and no tokens_file:, so nobody could use the API; make one with bmsgw token new --name NAME --role viewer")
		} else if !loopback(h.Listen) {
			l.errs.add(pos.Key(h, "listen"), "a demo (simulate:) without tokens gets a one-time token, and only on a loopback address; listen on 127.0.0.1")
		}
	}
	g.HTTP = h
}
