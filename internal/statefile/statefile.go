// Package statefile reads and writes the gateway's saved state (the
// occupancy tracker's and the door monitor's snapshots): JSON stamped
// with a format version and the site it belongs to, replaced atomically.
package statefile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Header starts every saved state: embed it first in the state's struct.
type Header struct {
	Version int    `json:"version"`
	Site    string `json:"site"`
}

// Stamped is a state that embeds a Header.
type Stamped interface{ header() *Header }

func (h *Header) header() *Header { return h }

// Decode unmarshals data into v and checks that it is of version and of
// site; what names the state in errors ("occupancy", "security").
func Decode(data []byte, what, site string, version int, v Stamped) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("restore %s of site %q: %w", what, site, err)
	}
	h := v.header()
	if h.Version != version {
		return fmt.Errorf("restore %s of site %q: snapshot version %d, want %d", what, site, h.Version, version)
	}
	if h.Site != site {
		return fmt.Errorf("restore %s of site %q: the snapshot is of site %q", what, site, h.Site)
	}
	return nil
}

// Write replaces the file at path with data (mode 0600, its directory
// made 0700 if missing) through a temporary file, so that a crash leaves
// the old file or the new one, never a part.
func Write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
