// Package statefile reads and writes the gateway's saved state (the
// occupancy tracker's and the door monitor's snapshots): JSON stamped
// with a format version and the site it belongs to, replaced atomically.
package statefile

import (
	"encoding/json"
	"fmt"
	"io/fs"
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
// made 0700 if missing) as WriteAtomic does.
func Write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return WriteAtomic(path, data, 0o600)
}

// WriteAtomic replaces path with data so that a crash leaves either the
// old or the new file, never a torn one: it writes a temporary file in
// the same directory with mode perm, syncs it, renames it over path and
// syncs the directory. The directory must exist.
func WriteAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
