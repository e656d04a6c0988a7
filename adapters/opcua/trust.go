package opcua

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bmsgw/bmsgw/internal/statefile"
)

// trustStore decides whether a server certificate is trusted. gopcua's
// client checks nothing: it takes the certificate from the (unsecured)
// GetEndpoints answer and uses it, so without this store any server, or
// anyone in between, would be accepted.
type trustStore struct {
	dir    string
	tofu   bool
	logger *slog.Logger
	now    func() time.Time

	// mu serialises pinning, so two connects cannot pin two certificates.
	mu sync.Mutex
}

// trustExts are the file name extensions of trusted certificates.
var trustExts = map[string]bool{".der": true, ".cer": true, ".crt": true, ".pem": true}

// check returns nil if der may be used for endpoint: it is within its
// validity period and it is in the trust folder, or trust on first use
// is on and the endpoint has no pinned certificate yet (it is pinned now).
func (t *trustStore) check(endpoint string, der []byte) error {
	if len(der) == 0 {
		return fmt.Errorf("%w: the server sent no certificate", ErrUntrustedCertificate)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: cannot parse the server certificate: %w", ErrUntrustedCertificate, err)
	}
	now := t.now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("%w: server certificate %s is valid from %s to %s, not now",
			ErrUntrustedCertificate, thumbprint(der), cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	trusted, err := t.load()
	if err != nil {
		return err
	}
	for _, c := range trusted {
		if bytes.Equal(c, der) {
			return nil
		}
	}
	pin := filepath.Join(t.dir, pinName(endpoint))
	if old, err := os.ReadFile(pin); err == nil {
		t.reject(der)
		oldTP := "unreadable"
		if d, err := certificateDER(old); err == nil {
			oldTP = thumbprint(d)
		}
		return fmt.Errorf("%w: %s presented certificate %s (%s), but %s was pinned in %s; if the server's certificate was renewed on purpose, replace that file with the new one (saved in %s)",
			ErrCertificateChanged, endpoint, thumbprint(der), describe(cert), oldTP, pin, filepath.Join(t.dir, "rejected"))
	}
	if !t.tofu {
		saved := t.reject(der)
		return fmt.Errorf("%w: %s presented certificate %s (%s); to trust it, copy %s into %s or enable trust_on_first_use",
			ErrUntrustedCertificate, endpoint, thumbprint(der), describe(cert), saved, t.dir)
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return fmt.Errorf("create trust folder: %w", err)
	}
	if err := statefile.WriteAtomic(pin, der, 0o644); err != nil {
		return fmt.Errorf("pin server certificate: %w", err)
	}
	t.logger.Warn("trusted opc ua server certificate on first use",
		"thumbprint", thumbprint(der), "subject", cert.Subject.String(), "file", pin)
	return nil
}

// load reads the certificates in the trust folder. A missing folder holds
// nothing; an unreadable file is an error, so a typo cannot silently
// distrust a server.
func (t *trustStore) load() ([][]byte, error) {
	entries, err := os.ReadDir(t.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trust folder: %w", err)
	}
	var out [][]byte
	for _, e := range entries {
		if e.IsDir() || !trustExts[strings.ToLower(filepath.Ext(e.Name()))] {
			continue
		}
		file := filepath.Join(t.dir, e.Name())
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read trusted certificate: %w", err)
		}
		der, err := certificateDER(b)
		if err != nil {
			return nil, fmt.Errorf("trusted certificate %s: %w", file, err)
		}
		out = append(out, der)
	}
	return out, nil
}

// reject saves a refused certificate to the rejected folder for review
// and returns its path (or a hint if it could not be saved).
func (t *trustStore) reject(der []byte) string {
	dir := filepath.Join(t.dir, "rejected")
	file := filepath.Join(dir, thumbprint(der)+".der")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "the server's certificate"
	}
	if err := statefile.WriteAtomic(file, der, 0o644); err != nil {
		return "the server's certificate"
	}
	return file
}

// pinName is the file a pinned certificate of an endpoint is saved as.
func pinName(endpoint string) string {
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return "pinned-" + b.String() + ".der"
}

// describe names a certificate for people.
func describe(cert *x509.Certificate) string {
	s := "subject " + cert.Subject.String()
	if uris := certURIs(cert); len(uris) > 0 {
		s += ", application URI " + strings.Join(uris, " ")
	}
	return s
}
