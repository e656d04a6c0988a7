package opcua

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/testpeers"
)

// Interop tests against node-opcua, an independent implementation with a
// working Basic256Sha256 server (gopcua's server offers security None
// only). A missing peer fails the test with the install command.

const (
	peerUser     = "operator"
	peerPassword = "correct horse battery staple"
)

// peer is a running node-opcua server (testdata/interop_server.js).
type peer struct {
	endpoint string
	certDER  []byte
}

// startPeer starts the node-opcua server and stops it when the test ends.
func startPeer(t *testing.T) *peer {
	t.Helper()
	cmd := testpeers.NodeOPCUA(t, filepath.Join("..", ".."), filepath.Join("testdata", "interop_server.js"))
	cmd.Env = append(cmd.Env,
		"PKI_DIR="+t.TempDir(),
		"OPCUA_USER="+peerUser,
		"OPCUA_PASSWORD="+peerPassword,
		"MAX_NODES=3",
	)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	// The server prints a JSON line once it listens (node-opcua may print
	// warnings before it); the rest of its output is drained until it
	// exits.
	lines := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), `{"port"`) {
				lines <- sc.Text()
				break
			}
			stderr.Write(append(sc.Bytes(), '\n'))
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	})
	t.Cleanup(func() {
		stdin.Close() // the script exits when its input closes
		done := make(chan struct{})
		go func() {
			defer close(done)
			wg.Wait()
		}()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			cmd.Process.Kill()
			<-done
		}
		cmd.Wait()
	})

	timer := time.NewTimer(90 * time.Second)
	defer timer.Stop()
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("node-opcua server exited before listening:\n%s", stderr.String())
		}
		line = l
	case <-timer.C:
		t.Fatalf("node-opcua server did not start within 90s:\n%s", stderr.String())
	}
	var ready struct {
		Port        int    `json:"port"`
		Certificate string `json:"certificate"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &ready), "server said %q", line)
	_, cert, err := loadCertificate(ready.Certificate)
	require.NoError(t, err)
	return &peer{endpoint: "opc.tcp://127.0.0.1:" + strconv.Itoa(ready.Port), certDER: cert.Raw}
}

// lockedBuffer is a bytes.Buffer safe for the process's writer goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestInteropNodeOPCUA(t *testing.T) {
	p := startPeer(t)
	certDir := t.TempDir()
	certFile, keyFile, err := EnsureCertificate(certDir, "urn:bmsgw:interop-test")
	require.NoError(t, err)

	options := func(trustDir string, tofu bool) Options {
		return Options{
			Name:               "peer",
			Endpoint:           p.endpoint,
			SecurityPolicy:     PolicyBasic256Sha256,
			SecurityMode:       ModeSignAndEncrypt,
			Username:           peerUser,
			Password:           peerPassword,
			CertificateFile:    certFile,
			PrivateKeyFile:     keyFile,
			TrustDir:           trustDir,
			TrustOnFirstUse:    tofu,
			RequestTimeout:     10 * time.Second,
			BackoffMin:         50 * time.Millisecond,
			BackoffMax:         time.Second,
			PublishingInterval: 50 * time.Millisecond,
			StaleAfter:         time.Hour,
		}
	}
	pt := func(name string, typ site.DataType) *site.Point {
		return point(name, typ, "ns=1;s=Test."+name)
	}
	pts := []*site.Point{
		pt("Bool", site.TypeBool), pt("Int16", site.TypeInt16), pt("UInt16", site.TypeUint16),
		pt("Int32", site.TypeInt32), pt("UInt32", site.TypeUint32), pt("Float", site.TypeFloat32),
		pt("Double", site.TypeFloat64),
	}
	initial := []float64{0, -5, 7, -70000, 70000, 1.5, 21.25}
	counter := pt("Counter", site.TypeUint32)
	counter.Access = site.AccessRead

	trustDir := t.TempDir()

	t.Run("untrusted server certificate is refused", func(t *testing.T) {
		dir := t.TempDir()
		c := newClient(t, options(dir, false), newTestLogger(t).Logger)
		r := c.Read(t.Context(), pts[:1])
		require.ErrorIs(t, r[0].Err, ErrUntrustedCertificate)
		require.ErrorContains(t, r[0].Err, "enable trust_on_first_use")
		st := c.States()[0]
		require.False(t, st.Up)
		require.Contains(t, st.LastError, "not trusted")
		rejected, err := os.ReadFile(filepath.Join(dir, "rejected", thumbprint(p.certDER)+".der"))
		require.NoError(t, err, "refused certificate saved for review")
		require.Equal(t, p.certDER, rejected)
	})

	t.Run("trust on first use: read, write, subscribe", func(t *testing.T) {
		c := newClient(t, options(trustDir, true), newTestLogger(t).Logger)
		rs := c.Read(t.Context(), append(pts, counter))
		for i, r := range rs[:len(pts)] {
			require.NoError(t, r.Err, pts[i].ID)
			require.Equal(t, initial[i], r.Value, pts[i].ID)
			require.False(t, r.Time.IsZero())
		}
		require.NoError(t, rs[len(pts)].Err)
		c.mu.Lock()
		lim := c.sess.limits
		c.mu.Unlock()
		require.Equal(t, limits{read: 3, write: 3, monitor: 3}, lim, "the peer's operation limits, so requests were chunked")

		pinned, err := os.ReadFile(filepath.Join(trustDir, pinName(p.endpoint)))
		require.NoError(t, err)
		require.Equal(t, p.certDER, pinned, "certificate pinned")

		values := []float64{1, -300, 65535, 123456, 4000000000, -2.5, 19.125}
		ws := make([]control.Write, len(pts))
		for i, pt := range pts {
			ws[i] = control.Write{Point: pt, Value: values[i]}
		}
		for i, err := range c.Write(t.Context(), ws) {
			require.NoError(t, err, pts[i].ID)
		}
		for i, r := range c.Read(t.Context(), pts) {
			require.NoError(t, r.Err)
			require.Equal(t, values[i], r.Value, pts[i].ID)
		}
		require.ErrorIs(t, c.Write(t.Context(), []control.Write{{Point: counter, Value: 1}})[0], control.ErrNotWritable)

		out := watch(t, c, append([]*site.Point{counter}, pts...))
		first := expect(t, out, "counter", func(r control.Reading) bool { return r.Point == "Counter" && r.Err == nil })
		expect(t, out, "counter moving", func(r control.Reading) bool {
			return r.Point == "Counter" && r.Err == nil && r.Value > first.Value
		})
		require.NoError(t, c.Write(t.Context(), []control.Write{{Point: pts[6], Value: 22.75}})[0])
		expect(t, out, "written value notified", valueOf("Double", 22.75))
	})

	t.Run("pinned certificate is trusted without first use", func(t *testing.T) {
		c := newClient(t, options(trustDir, false), nil)
		r := c.Read(t.Context(), pts[6:])
		require.NoError(t, r[0].Err)
		require.True(t, c.States()[0].Up)
	})

	t.Run("changed certificate is refused", func(t *testing.T) {
		dir := t.TempDir()
		other, _, err := generateCertificate("urn:impostor", time.Hour)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, pinName(p.endpoint)), other, 0o644))
		c := newClient(t, options(dir, true), nil)
		r := c.Read(t.Context(), pts[:1])
		require.ErrorIs(t, r[0].Err, ErrCertificateChanged)
		require.False(t, c.States()[0].Up)
	})

	t.Run("wrong password is refused", func(t *testing.T) {
		opts := options(trustDir, false)
		opts.Password = "wrong"
		c := newClient(t, opts, nil)
		r := c.Read(t.Context(), pts[:1])
		require.Error(t, r[0].Err)
		t.Log(r[0].Err)
		require.True(t, errors.Is(r[0].Err, ua.StatusBadUserAccessDenied) || errors.Is(r[0].Err, ua.StatusBadIdentityTokenRejected),
			"got %v", r[0].Err)
		require.False(t, c.States()[0].Up)
	})

	t.Run("user certificate", func(t *testing.T) {
		userCert, userKey, err := EnsureCertificate(t.TempDir(), "urn:bmsgw:interop-user")
		require.NoError(t, err)
		opts := options(trustDir, false)
		opts.Username, opts.Password = "", ""
		opts.UserCertificateFile, opts.UserPrivateKeyFile = userCert, userKey
		c := newClient(t, opts, nil)
		r := c.Read(t.Context(), pts[6:])
		require.NoError(t, r[0].Err)
	})

	t.Run("anonymous is refused", func(t *testing.T) {
		opts := options(trustDir, false)
		opts.Username, opts.Password = "", ""
		c := newClient(t, opts, nil)
		r := c.Read(t.Context(), pts[:1])
		require.ErrorIs(t, r[0].Err, ErrNoEndpoint)
		require.ErrorContains(t, r[0].Err, "does not accept anonymous authentication; it accepts certificate, user name")
	})

	t.Run("sign only is not offered", func(t *testing.T) {
		opts := options(trustDir, false)
		opts.SecurityMode = ModeSign
		c := newClient(t, opts, nil)
		r := c.Read(t.Context(), pts[:1])
		require.ErrorIs(t, r[0].Err, ErrNoEndpoint)
		require.ErrorContains(t, r[0].Err, "it offers basic256sha256/sign_and_encrypt")
	})
}
