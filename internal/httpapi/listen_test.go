package httpapi

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns the files and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeSelfSigned(t, certFile, keyFile)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// writeSelfSigned writes a new key and a certificate for 127.0.0.1 to the
// files and returns the certificate.
func writeSelfSigned(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bmsgw test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

// TestTLSListener serves the API over a real TLS listener on 127.0.0.1
// with a generated certificate: a client that trusts it gets in with its
// token, TLS below 1.2 is refused, and shutting down ends an open event
// stream with a reason instead of waiting for it.
func TestTLSListener(t *testing.T) {
	a := newTestAPI(t)
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	ln, err := a.s.Bind(Listen{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.s.Serve(ctx, ln) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-served
		}
	}()
	base := "https://" + ln.Addr().String()

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+a.tok[RoleViewer])
		return hc.Do(req)
	}
	resp, err := get("/api/whoami")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"name":"energy-office","role":"viewer"}`, string(body))
	require.NotNil(t, resp.TLS)
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))

	// Plain HTTP to the TLS port gets no API.
	plain, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	body, _ = io.ReadAll(plain.Body)
	plain.Body.Close()
	require.Equal(t, http.StatusBadRequest, plain.StatusCode, "Go's TLS server answers plain HTTP with 400")
	require.Contains(t, string(body), "HTTPS server")

	// A TLS 1.1 client is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	_, err = old.Get(base + "/healthz")
	require.Error(t, err)
	require.Contains(t, err.Error(), "protocol version")

	// An open stream ends when the server shuts down.
	resp, err = get("/api/events/stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "retry: 2000\n", line)
	cancel()
	rest, _ := io.ReadAll(br)
	require.Contains(t, string(rest), "event: error\ndata: {\"error\":\"the gateway is shutting down\"}")
	stopped = true
	require.NoError(t, <-served, "a clean shutdown")
}

// TestPlainHTTPOnlyOnLoopback: without a certificate the API listens on
// loopback only, and a half or broken TLS setup is a clear error.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	a := newTestAPI(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.10:8080", "gateway.example:8080"} {
		_, err := a.s.Bind(Listen{Addr: addr})
		require.ErrorIs(t, err, ErrPlainHTTP, addr)
		require.Contains(t, err.Error(), "configure a certificate and key for HTTPS", addr)
	}
	_, err := a.s.Bind(Listen{Addr: "127.0.0.1"})
	require.ErrorContains(t, err, "use host:port")

	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	_, err = a.s.Bind(Listen{Addr: "0.0.0.0:0", CertFile: certFile})
	require.ErrorContains(t, err, "give both a certificate and a key file")
	_, err = a.s.Bind(Listen{Addr: "0.0.0.0:0", CertFile: certFile, KeyFile: filepath.Join(t.TempDir(), "missing.pem")})
	require.ErrorContains(t, err, "load certificate")
	require.ErrorContains(t, err, "missing.pem")
	_, err = a.s.Bind(Listen{Addr: "0.0.0.0:0", CertFile: keyFile, KeyFile: certFile})
	require.ErrorContains(t, err, "load certificate")

	// Plain HTTP on 127.0.0.1 serves.
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := a.s.Bind(Listen{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- a.s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	http.DefaultClient.CloseIdleConnections()
	cancel()
	require.NoError(t, <-served)

	// ListenAndServe reports a port that is taken.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	err = a.s.ListenAndServe(t.Context(), Listen{Addr: busy.Addr().String()})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "address already in use"), err.Error())
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "localhost": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "gateway.example": false,
	} {
		require.Equal(t, want, loopback(host), host)
	}
}

// TestCertificateRenewal: a renewed certificate is served from the next
// connection on without a restart; a half-written renewal (the new
// certificate before its key) keeps the previous pair in use.
func TestCertificateRenewal(t *testing.T) {
	every := certCheckEvery
	certCheckEvery = 50 * time.Millisecond
	t.Cleanup(func() { certCheckEvery = every })
	a := newTestAPI(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeSelfSigned(t, certFile, keyFile)
	ln, err := a.s.Bind(Listen{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-served
	}()
	// served returns the certificate a new connection is shown.
	served1 := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // the test compares the certificate itself
		require.NoError(t, err)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	// touch gives a rewritten file a later time than any before, as a
	// renewal days later would.
	later := time.Now()
	touch := func(path string) {
		later = later.Add(time.Minute)
		require.NoError(t, os.Chtimes(path, later, later))
	}
	require.True(t, served1().Equal(first))

	// The new certificate lands before its key: the pair does not match,
	// and the first one stays in use.
	keyPEM, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	second := writeSelfSigned(t, certFile, keyFile)
	newKey, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	touch(certFile)
	touch(keyFile)
	waitCertCheck()
	require.True(t, served1().Equal(first), "a certificate without its key is not taken")

	// Then the key: the new pair is served.
	require.NoError(t, os.WriteFile(keyFile, newKey, 0o600))
	touch(keyFile)
	waitCertCheck()
	require.True(t, served1().Equal(second), "the renewed certificate is served without a restart")
	require.True(t, served1().Equal(second))
}

// waitCertCheck waits until a handshake looks at the certificate files
// again.
func waitCertCheck() { time.Sleep(certCheckEvery + 20*time.Millisecond) }
