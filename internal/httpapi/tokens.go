package httpapi

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Role is what a token may do. Roles are ordered: an operator may do
// everything a viewer may, an admin everything an operator may.
type Role int

// Roles, lowest first. The zero Role is no role: nothing but the
// endpoints that need no token.
const (
	// RoleViewer reads: sites, plans, windows, status, events, reports
	// (energy staff, the booking office).
	RoleViewer Role = iota + 1
	// RoleOperator also acts: overrides and patrol rounds (operators at
	// the town hall).
	RoleOperator
	// RoleAdmin also sees who may use the API (the gateway's owners).
	RoleAdmin
)

// Roles lists the roles, lowest first.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

// String returns the role's name as the config writes it.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// MarshalText writes the role's name, so JSON shows "operator".
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a role's name, for clients of the API.
func (r *Role) UnmarshalText(b []byte) error {
	role, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = role
	return nil
}

// ParseRole parses a role name, with a clear error for one that does not
// exist.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q; use viewer, operator or admin", s)
}

// TokenEntry is one API token as the config or a token file declares it:
// who holds it, what they may do, and the SHA-256 of the token in hex.
// The token itself is never stored: it is shown once, when generated.
type TokenEntry struct {
	// Name names the holder, e.g. "energy-office"; overrides are
	// journalled with it as their who.
	Name string `json:"name" yaml:"name"`
	// Role is viewer, operator or admin.
	Role string `json:"role" yaml:"role"`
	// TokenSHA256 is HashToken of the token: 64 lower-case hex digits.
	TokenSHA256 string `json:"token_sha256" yaml:"token_sha256"`
}

// ErrBadToken is wrapped by the errors of NewTokens and ParseTokenFile.
var ErrBadToken = errors.New("bad API token entry")

var tokenName = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// Tokens are the tokens the API accepts. A Tokens is immutable and safe
// for concurrent use.
type Tokens struct {
	list []token
}

type token struct {
	name string
	role Role
	hash [sha256.Size]byte
}

// Holder is the holder of a token that was accepted.
type Holder struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// NewTokens checks the entries and returns the tokens they declare. It
// reports every bad entry at once: a name that is not lower-case
// letters, digits and ._@- (or is used twice), an unknown role, or a
// hash that is not 64 hex digits (or is used twice: two holders with
// one token could not be told apart).
func NewTokens(entries []TokenEntry) (*Tokens, error) {
	var (
		errs  []error
		t     Tokens
		names = map[string]bool{}
		seen  = map[[sha256.Size]byte]string{}
	)
	for i, e := range entries {
		where := fmt.Sprintf("token %d", i+1)
		if e.Name != "" {
			where = fmt.Sprintf("token %q", e.Name)
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: %s: %s", ErrBadToken, where, fmt.Sprintf(format, args...)))
		}
		switch {
		case !tokenName.MatchString(e.Name):
			bad("name %q: use 1-64 lower-case letters, digits and . _ @ -, starting with a letter or digit", e.Name)
		case names[e.Name]:
			bad("name used twice")
		}
		names[e.Name] = true
		role, err := ParseRole(e.Role)
		if err != nil {
			bad("%v", err)
		}
		raw, err := hex.DecodeString(strings.ToLower(e.TokenSHA256))
		if err != nil || len(raw) != sha256.Size {
			bad("token_sha256 must be the SHA-256 of the token in hex (64 digits), e.g. from `bmsgw token`; got %d characters", len(e.TokenSHA256))
			continue
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		if other, dup := seen[h]; dup {
			bad("same token as %q; give every holder their own token", other)
			continue
		}
		seen[h] = e.Name
		t.list = append(t.list, token{name: e.Name, role: role, hash: h})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &t, nil
}

// Holders lists the holders, in the order they were declared.
func (t *Tokens) Holders() []Holder {
	if t == nil {
		return nil
	}
	out := make([]Holder, len(t.list))
	for i, k := range t.list {
		out[i] = Holder{Name: k.name, Role: k.role}
	}
	return out
}

// Lookup returns the holder of a presented token. It hashes the token and
// compares the hash with every entry in constant time, so neither the
// answer's timing nor its absence tells how close a guess was.
func (t *Tokens) Lookup(presented string) (Holder, bool) {
	if t == nil || presented == "" {
		return Holder{}, false
	}
	h := sha256.Sum256([]byte(presented))
	found := -1
	for i := range t.list {
		if subtle.ConstantTimeCompare(h[:], t.list[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Holder{}, false
	}
	return Holder{Name: t.list[found].name, Role: t.list[found].role}, true
}

// HashToken returns the SHA-256 of a token in lower-case hex: what the
// config and token files store. A plain hash is enough because tokens
// are 256 random bits (GenerateToken), not passwords that could be
// guessed from a dictionary.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// TokenPrefix begins every generated token, so that a leaked one is easy
// to recognise in a log or a paste (secret scanners look for prefixes).
const TokenPrefix = "bmsgw_"

// GenerateToken returns a new random token (TokenPrefix and 256 bits in
// base64url) and its HashToken. Show the token once to its holder and
// store only the hash.
func GenerateToken() (token, hash string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	return token, HashToken(token), nil
}

// ParseTokenFile reads token entries from a file of lines
// "name role sha256hex"; blank lines and lines starting with # are
// ignored. file names the source in errors. Every bad line is reported,
// with its number; NewTokens checks the entries themselves.
func ParseTokenFile(r io.Reader, file string) ([]TokenEntry, error) {
	var (
		out  []TokenEntry
		errs []error
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			errs = append(errs, fmt.Errorf("%w: %s:%d: want \"name role sha256hex\", got %d fields", ErrBadToken, file, n, len(f)))
			continue
		}
		out = append(out, TokenEntry{Name: f[0], Role: f[1], TokenSHA256: f[2]})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read %s: %w", file, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// LoadTokens reads the tokens of the config (entries) and of token files
// (paths) together, so that a name or a token used in both is reported.
// A token file must not be writable by others than its owner: whoever
// can write it can make themselves an admin. (Readable is fine: it holds
// hashes only.)
func LoadTokens(entries []TokenEntry, paths ...string) (*Tokens, error) {
	all := slices.Clone(entries)
	var errs []error
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("token file: %w", err))
			continue
		}
		st, err := f.Stat()
		if err == nil && st.Mode().Perm()&0o022 != 0 {
			err = fmt.Errorf("token file %s is writable by others (mode %v); chmod go-w it", p, st.Mode().Perm())
		}
		if err == nil {
			var es []TokenEntry
			if es, err = ParseTokenFile(f, p); err == nil {
				all = append(all, es...)
			}
		}
		f.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewTokens(all)
}
