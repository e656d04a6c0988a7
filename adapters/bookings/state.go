package bookings

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/statefile"
)

// stateVersion is bumped when the state file changes incompatibly; a file
// of another version is ignored.
const stateVersion = 1

// persisted is the state file of one source: the last good feed, its
// validators, and the bookings kept while missing from the feed.
type persisted struct {
	Version int    `json:"version"`
	Source  string `json:"source"`
	// Feed fingerprints format and target, so that a source pointed at
	// another feed does not serve the old feed's bookings.
	Feed         string         `json:"feed"`
	Body         []byte         `json:"body"`
	ETag         string         `json:"etag,omitempty"`
	LastModified string         `json:"last_modified,omitempty"`
	FetchedAt    time.Time      `json:"fetched_at"`
	LastSuccess  time.Time      `json:"last_success"`
	GoodCount    int            `json:"good_count"`
	Missing      []missingEntry `json:"missing,omitempty"`
}

// missingEntry is a booking absent from the last Polls consecutive good
// polls, as it was when last seen.
type missingEntry struct {
	Booking booking.Booking `json:"booking"`
	Polls   int             `json:"polls"`
}

// feedFingerprint identifies a feed without storing its URL, whose query
// may hold a token.
func feedFingerprint(o Options) string {
	sum := sha256.Sum256([]byte(string(o.Format) + "\n" + o.Path + o.URL))
	return hex.EncodeToString(sum[:])
}

// loadState reads the state file at path. A missing file gives
// (nil, nil).
func loadState(path string) (*persisted, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var p persisted
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode state %s: %w", path, err)
	}
	return &p, nil
}

// saveState writes the state file atomically.
func saveState(path string, p *persisted) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return statefile.WriteAtomic(path, data, 0o600)
}
