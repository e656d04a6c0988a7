package httpapi

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckEvery bounds how often a handshake looks at the certificate
// files (a variable for tests).
var certCheckEvery = 5 * time.Second

// certificate serves the certificate and key files of the API and
// rereads them when either changes, so that a renewed certificate (from
// certbot, an ACME client or a copy by hand) is used from the next
// connection on, without a restart. A pair that does not load, such as
// a new certificate whose key is not written yet, leaves the last good
// pair in use; it is logged once per change of the files.
type certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	every             time.Duration
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	loaded  [2]fileStamp // of the pair in use
	tried   [2]fileStamp // of the last pair that failed to load
	checked time.Time
}

// fileStamp is what tells a rewritten file apart.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// loadCertificate loads the pair for the first time; an error here stops
// the start.
func loadCertificate(certFile, keyFile string, log *slog.Logger) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile, log: log, every: certCheckEvery, now: time.Now}
	stamps, err := c.stamps()
	if err == nil {
		err = c.load(stamps)
	}
	if err != nil {
		return nil, fmt.Errorf("http api: load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

func (c *certificate) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	var err error
	if s[0], err = stampOf(c.certFile); err != nil {
		return s, err
	}
	s[1], err = stampOf(c.keyFile)
	return s, err
}

func (c *certificate) load(stamps [2]fileStamp) error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.cert, c.loaded = &pair, stamps
	return nil
}

// get is tls.Config.GetCertificate: the pair in use, reread first if the
// files changed since it was loaded.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.checked) < c.every {
		return c.cert, nil
	}
	c.checked = now
	stamps, err := c.stamps()
	if err != nil || stamps == c.loaded || stamps == c.tried {
		return c.cert, nil // a file missing for a moment: keep serving
	}
	if err := c.load(stamps); err != nil {
		c.tried = stamps
		c.log.Warn("http api: renewed certificate does not load; still serving the previous one",
			"certificate", c.certFile, "key", c.keyFile, "err", err)
		return c.cert, nil
	}
	c.log.Info("http api: certificate reloaded", "certificate", c.certFile, "not_after", c.cert.Leaf.NotAfter)
	return c.cert, nil
}
