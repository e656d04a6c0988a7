package opcua

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnsureCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	certFile, keyFile, err := EnsureCertificate(dir, "urn:bmsgw:valby")
	require.NoError(t, err)

	kp, err := loadKeyPair(certFile, keyFile)
	require.NoError(t, err, "the key belongs to the certificate")
	require.Equal(t, []string{"urn:bmsgw:valby"}, certURIs(kp.cert), "application URI in the SAN")
	require.Contains(t, kp.cert.DNSNames, "localhost")
	require.NotZero(t, kp.cert.KeyUsage&x509.KeyUsageDataEncipherment)
	require.True(t, kp.cert.NotAfter.After(time.Now().AddDate(9, 0, 0)))
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "private key readable by the owner only")

	// A second call keeps the pair.
	der := kp.der
	certFile2, _, err := EnsureCertificate(dir, "urn:bmsgw:valby")
	require.NoError(t, err)
	got, _, err := loadCertificate(certFile2)
	require.NoError(t, err)
	require.Equal(t, der, got)

	_, _, err = EnsureCertificate(dir, "urn:bmsgw:other")
	require.ErrorContains(t, err, "is for application URI [urn:bmsgw:valby], not urn:bmsgw:other")

	require.NoError(t, os.Remove(keyFile))
	_, _, err = EnsureCertificate(dir, "urn:bmsgw:valby")
	require.ErrorContains(t, err, "found only one of")

	_, _, err = EnsureCertificate(dir, "not a uri")
	require.ErrorContains(t, err, "is not a URI")
}

func TestLoadPrivateKeyForms(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, err := EnsureCertificate(dir, "urn:bmsgw:keys")
	require.NoError(t, err)
	kp, err := loadKeyPair(certFile, keyFile)
	require.NoError(t, err)

	pkcs8, err := x509.MarshalPKCS8PrivateKey(kp.key)
	require.NoError(t, err)
	forms := map[string][]byte{
		"pkcs8.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"pkcs1.der": x509.MarshalPKCS1PrivateKey(kp.key),
		"cert.der":  kp.der,
	}
	for name, b := range forms {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	for _, name := range []string{"pkcs8.pem", "pkcs1.der"} {
		_, err := loadKeyPair(filepath.Join(dir, "cert.der"), filepath.Join(dir, name))
		require.NoError(t, err, name)
	}
	other, _, err := EnsureCertificate(t.TempDir(), "urn:bmsgw:keys")
	require.NoError(t, err)
	_, err = loadKeyPair(other, keyFile)
	require.ErrorContains(t, err, "does not belong to certificate")
}

func TestTrustStore(t *testing.T) {
	certPEM, _, err := generateCertificate("urn:server:a", time.Hour)
	require.NoError(t, err)
	serverA, err := certificateDER(certPEM)
	require.NoError(t, err)
	certPEM, _, err = generateCertificate("urn:server:b", time.Hour)
	require.NoError(t, err)
	serverB, err := certificateDER(certPEM)
	require.NoError(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const ep = "opc.tcp://bms.valby:4840"

	t.Run("trusted file", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bms.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverA}), 0o644))
		ts := &trustStore{dir: dir, logger: quiet, now: time.Now}
		require.NoError(t, ts.check(ep, serverA))
		require.ErrorIs(t, ts.check(ep, serverB), ErrUntrustedCertificate)
		_, err := os.Stat(filepath.Join(dir, "rejected", thumbprint(serverB)+".der"))
		require.NoError(t, err)
	})

	t.Run("first use pins", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "trust")
		ts := &trustStore{dir: dir, tofu: true, logger: quiet, now: time.Now}
		require.NoError(t, ts.check(ep, serverA))
		pinned, err := os.ReadFile(filepath.Join(dir, "pinned-bms.valby_4840.der"))
		require.NoError(t, err)
		require.Equal(t, serverA, pinned)
		require.NoError(t, ts.check(ep, serverA))
		err = ts.check(ep, serverB)
		require.ErrorIs(t, err, ErrCertificateChanged)
		require.ErrorContains(t, err, thumbprint(serverA))
		// Another endpoint is a first use of its own.
		require.NoError(t, ts.check("opc.tcp://lights.valby:4840", serverB))
	})

	t.Run("validity period", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "a.der"), serverA, 0o644))
		ts := &trustStore{dir: dir, logger: quiet, now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
		err := ts.check(ep, serverA)
		require.ErrorIs(t, err, ErrUntrustedCertificate)
		require.ErrorContains(t, err, "not now")
	})

	t.Run("broken trusted file", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.pem"), []byte("-----BEGIN CERT"), 0o644))
		ts := &trustStore{dir: dir, logger: quiet, now: time.Now}
		require.ErrorContains(t, ts.check(ep, serverA), "broken.pem")
	})

	t.Run("no certificate", func(t *testing.T) {
		ts := &trustStore{dir: t.TempDir(), tofu: true, logger: quiet, now: time.Now}
		require.ErrorIs(t, ts.check(ep, nil), ErrUntrustedCertificate)
	})
}
