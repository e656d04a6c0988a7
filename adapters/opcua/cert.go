package opcua

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names of the files EnsureCertificate keeps in its folder.
const (
	CertificateFileName = "client_cert.pem"
	PrivateKeyFileName  = "client_key.pem"
)

// EnsureCertificate returns the client certificate and private key files
// in dir, creating a self-signed pair first if neither exists: RSA 2048,
// SHA-256, valid for ten years, with appURI as the subject alternative
// name URI (servers check it against the application URI of the session)
// and the host name as DNS name. An existing certificate must carry
// appURI; a folder with only one of the two files is an error.
func EnsureCertificate(dir, appURI string) (certFile, keyFile string, err error) {
	u, err := url.Parse(appURI)
	if appURI == "" || err != nil || u.Scheme == "" {
		return "", "", fmt.Errorf("application URI %q is not a URI", appURI)
	}
	certFile = filepath.Join(dir, CertificateFileName)
	keyFile = filepath.Join(dir, PrivateKeyFileName)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		_, cert, err := loadCertificate(certFile)
		if err != nil {
			return "", "", err
		}
		if !hasURI(cert, appURI) {
			return "", "", fmt.Errorf("certificate %s is for application URI %s, not %s; delete it and its key to make a new one", certFile, certURIs(cert), appURI)
		}
		return certFile, keyFile, nil
	case certErr == nil || keyErr == nil:
		return "", "", fmt.Errorf("found only one of %s and %s; delete it or supply the other", certFile, keyFile)
	case !errors.Is(certErr, os.ErrNotExist):
		return "", "", fmt.Errorf("certificate file: %w", certErr)
	case !errors.Is(keyErr, os.ErrNotExist):
		return "", "", fmt.Errorf("private key file: %w", keyErr)
	}

	certPEM, keyPEM, err := generateCertificate(appURI, 10*365*24*time.Hour)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create certificate folder: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("write private key: %w", err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		os.Remove(keyFile)
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	return certFile, keyFile, nil
}

// generateCertificate makes a self-signed application instance
// certificate (Part 6, 6.2.2) and its key, both PEM.
func generateCertificate(appURI string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	uri, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, fmt.Errorf("application URI %q: %w", appURI, err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial number: %w", err)
	}
	dns := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		dns = append(dns, h)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "bmsgw", Organization: []string{"bmsgw"}},
		NotBefore:    now.Add(-time.Hour), // tolerate a server clock a little behind
		NotAfter:     now.Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
		DNSNames:              dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return certPEM, keyPEM, nil
}

// loadCertificate reads a PEM or DER certificate file and returns its DER
// bytes and parsed form.
func loadCertificate(file string) ([]byte, *x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	der, err := certificateDER(b)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	return der, cert, nil
}

// certificateDER returns the DER bytes of a PEM or DER certificate.
func certificateDER(b []byte) ([]byte, error) {
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block is %q, not CERTIFICATE", block.Type)
		}
		return block.Bytes, nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		return nil, errors.New("malformed PEM")
	}
	return b, nil
}

// loadPrivateKey reads an RSA private key file: PEM (PKCS #1 or #8) or DER.
func loadPrivateKey(file string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	der := b
	if block, _ := pem.Decode(b); block != nil {
		if strings.Contains(block.Type, "ENCRYPTED") {
			return nil, fmt.Errorf("private key %s is encrypted; store it unencrypted with mode 0600", file)
		}
		der = block.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key %s is not an RSA key in PKCS #1 or #8 form", file)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key %s is a %T, OPC UA needs RSA", file, k)
	}
	return rk, nil
}

// keyPair is a loaded certificate and its key.
type keyPair struct {
	der  []byte
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// loadKeyPair loads a certificate and key and checks that they match.
func loadKeyPair(certFile, keyFile string) (*keyPair, error) {
	der, cert, err := loadCertificate(certFile)
	if err != nil {
		return nil, err
	}
	key, err := loadPrivateKey(keyFile)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("private key %s does not belong to certificate %s", keyFile, certFile)
	}
	return &keyPair{der: der, cert: cert, key: key}, nil
}

// hasURI reports whether the certificate names uri in its SAN.
func hasURI(cert *x509.Certificate, uri string) bool {
	return slices.Contains(certURIs(cert), uri)
}

// certURIs lists the SAN URIs of a certificate.
func certURIs(cert *x509.Certificate) []string {
	out := make([]string, len(cert.URIs))
	for i, u := range cert.URIs {
		out[i] = u.String()
	}
	return out
}

// thumbprint is the SHA-1 thumbprint OPC UA identifies certificates by,
// in upper-case hex.
func thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}
