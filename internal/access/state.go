package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/statefile"
)

// stateVersion is bumped when the state file changes incompatibly.
const stateVersion = 1

// stateFile is what an HTTP output remembers between pushes and across
// restarts: for each grant key, the ACS's reference and what was pushed.
type stateFile struct {
	Version int    `json:"version"`
	Output  string `json:"output"`
	// Target fingerprints the endpoint (without query or user info), so
	// that an output pointed at another ACS does not reuse references
	// that belong to the old one.
	Target string                `json:"target"`
	Grants map[string]stateGrant `json:"grants"`
}

// stateGrant is one grant the ACS holds, as pushed.
type stateGrant struct {
	Ref string `json:"ref"`
	// Hash is the SHA-256 of the request body last accepted for the
	// grant; a desired grant with another hash is updated.
	Hash  string    `json:"hash"`
	Group string    `json:"group"`
	Door  string    `json:"door"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Mode  Mode      `json:"mode"`
	// Bookings and Organisers are kept so a revoke can name its reasons
	// in the journal; they never go to the ACS.
	Bookings   []booking.Key `json:"bookings,omitempty"`
	Organisers []string      `json:"organisers,omitempty"`
}

func (s stateGrant) grant(key string) Grant {
	return Grant{Key: key, Group: s.Group, Door: s.Door, From: s.From, To: s.To, Mode: s.Mode,
		Bookings: s.Bookings, Organisers: s.Organisers}
}

// loadState reads the state file at path; a missing file gives an empty
// state.
func loadState(path string) (*stateFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &stateFile{Version: stateVersion, Grants: map[string]stateGrant{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read access state: %w", err)
	}
	var s stateFile
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode access state %s: %w; the gateway cannot know which grants the ACS holds: fix the file, or revoke the gateway's grants in the ACS and remove it", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("access state %s has version %d, this gateway reads version %d", path, s.Version, stateVersion)
	}
	if s.Grants == nil {
		s.Grants = map[string]stateGrant{}
	}
	return &s, nil
}

// save writes the state file atomically, readable by its owner only.
func (s *stateFile) save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode access state: %w", err)
	}
	return statefile.WriteAtomic(path, append(data, '\n'), 0o600)
}
