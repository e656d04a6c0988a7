package modbus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/modbus/modbussim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue signs a leaf certificate for 127.0.0.1 and returns it with its
// key as PEM.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// TestTLS talks Modbus/TCP Security (mutual TLS) to the simulator with
// certificates made for the test.
func TestTLS(t *testing.T) {
	ca := newCA(t, "site ca")
	srvCert, srvKey := ca.issue(t, "plc", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	require.NoError(t, err)
	sim := startSim(t, modbussim.Config{URL: "tcp+tls://127.0.0.1:0", Certificate: &pair, ClientCAs: ca.pool()})
	require.Contains(t, sim.URL(), "tcp+tls://127.0.0.1:")

	dir := t.TempDir()
	cliCert, cliKey := ca.issue(t, "bmsgw", x509.ExtKeyUsageClientAuth)
	opts := Options{
		URL:             sim.URL(),
		CertificateFile: writeFile(t, dir, "client.pem", cliCert),
		PrivateKeyFile:  writeFile(t, dir, "client.key", cliKey),
		CAFile:          writeFile(t, dir, "ca.pem", ca.pem),
	}
	c, _ := newClient(t, opts)
	p := hr("sp", 3, site.TypeFloat32)
	require.NoError(t, sim.SetPoint(p, 19.5))
	require.Equal(t, 19.5, readOne(t, c, p))
	require.NoError(t, c.Write(testCtx(t), []control.Write{{Point: p, Value: 22}})[0])
	v, err := sim.PointValue(p)
	require.NoError(t, err)
	require.Equal(t, 22.0, v)

	t.Run("client certificate from another CA is refused", func(t *testing.T) {
		other := newCA(t, "rogue ca")
		cert, key := other.issue(t, "intruder", x509.ExtKeyUsageClientAuth)
		o := opts
		o.CertificateFile = writeFile(t, dir, "rogue.pem", cert)
		o.PrivateKeyFile = writeFile(t, dir, "rogue.key", key)
		rogue, _ := newClient(t, o)
		sim.ResetCounts()
		r := rogue.Read(testCtx(t), []*site.Point{p})[0]
		require.Error(t, r.Err)
		require.Zero(t, sim.Counts().Total())
	})

	t.Run("server certificate from another CA is refused", func(t *testing.T) {
		other := newCA(t, "other ca")
		o := opts
		o.CAFile = writeFile(t, dir, "other-ca.pem", other.pem)
		c, _ := newClient(t, o)
		r := c.Read(testCtx(t), []*site.Point{p})[0]
		require.ErrorContains(t, r.Err, "certificate")
	})
}
