package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGenerateAndHashTokens(t *testing.T) {
	tok, hash, err := GenerateToken()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(tok, TokenPrefix))
	require.Len(t, tok, len(TokenPrefix)+43, "256 bits in base64url")
	sum := sha256.Sum256([]byte(tok))
	require.Equal(t, hex.EncodeToString(sum[:]), hash)
	require.Equal(t, hash, HashToken(tok))
	other, _, err := GenerateToken()
	require.NoError(t, err)
	require.NotEqual(t, tok, other)

	ts, err := NewTokens([]TokenEntry{{Name: "ops", Role: "operator", TokenSHA256: strings.ToUpper(hash)}})
	require.NoError(t, err, "hex in either case")
	h, ok := ts.Lookup(tok)
	require.True(t, ok)
	require.Equal(t, Holder{Name: "ops", Role: RoleOperator}, h)
	for _, bad := range []string{"", other, hash, tok + " ", strings.ToUpper(tok)} {
		_, ok := ts.Lookup(bad)
		require.False(t, ok, bad)
	}
	var none *Tokens
	_, ok = none.Lookup(tok)
	require.False(t, ok)
}

func TestNewTokensReportsEveryProblem(t *testing.T) {
	_, h1, _ := GenerateToken()
	_, h2, _ := GenerateToken()
	_, err := NewTokens([]TokenEntry{
		{Name: "energy-office", Role: "viewer", TokenSHA256: h1},
		{Name: "Energy Office", Role: "viewer", TokenSHA256: h2},
		{Name: "energy-office", Role: "viewer", TokenSHA256: strings.Repeat("ab", 32)},
		{Name: "boss", Role: "root", TokenSHA256: strings.Repeat("cd", 32)},
		{Name: "short", Role: "admin", TokenSHA256: "abc"},
		{Name: "copy", Role: "admin", TokenSHA256: h1},
		{Role: "viewer", TokenSHA256: strings.Repeat("ef", 32)},
	})
	require.ErrorIs(t, err, ErrBadToken)
	for _, msg := range []string{
		`token "Energy Office": name "Energy Office": use 1-64 lower-case letters`,
		`token "energy-office": name used twice`,
		`token "boss": unknown role "root"; use viewer, operator or admin`,
		`token "short": token_sha256 must be the SHA-256 of the token in hex (64 digits)`,
		`token "copy": same token as "energy-office"`,
		`token 7: name "": use`,
	} {
		require.Contains(t, err.Error(), msg)
	}
	require.NotContains(t, err.Error(), h1, "errors never show hashes")
}

func TestTokenFiles(t *testing.T) {
	_, h1, _ := GenerateToken()
	_, h2, _ := GenerateToken()
	dir := t.TempDir()
	good := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(good, []byte("# who may use the API\n\nbooking-office viewer "+h1+"\n  ops-townhall   operator "+h2+"  \n"), 0o600))
	ts, err := LoadTokens([]TokenEntry{{Name: "it-admin", Role: "admin", TokenSHA256: strings.Repeat("0f", 32)}}, good)
	require.NoError(t, err)
	require.Equal(t, []Holder{{"it-admin", RoleAdmin}, {"booking-office", RoleViewer}, {"ops-townhall", RoleOperator}}, ts.Holders())

	// A name in both the config and the file is reported.
	_, err = LoadTokens([]TokenEntry{{Name: "ops-townhall", Role: "admin", TokenSHA256: strings.Repeat("0f", 32)}}, good)
	require.ErrorContains(t, err, `token "ops-townhall": name used twice`)

	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("ok viewer "+h1+"\nnot enough\nfour fields here now\n"), 0o600))
	_, err = LoadTokens(nil, bad)
	require.ErrorIs(t, err, ErrBadToken)
	require.ErrorContains(t, err, bad+`:2: want "name role sha256hex", got 2 fields`)
	require.ErrorContains(t, err, bad+":3:")

	open := filepath.Join(dir, "open")
	require.NoError(t, os.WriteFile(open, []byte("ok viewer "+h1+"\n"), 0o600))
	require.NoError(t, os.Chmod(open, 0o666))
	_, err = LoadTokens(nil, open)
	require.ErrorContains(t, err, "is writable by others (mode -rw-rw-rw-); chmod go-w it")
	require.NoError(t, os.Chmod(open, 0o644))
	_, err = LoadTokens(nil, open)
	require.NoError(t, err, "readable is fine: it holds hashes")

	_, err = LoadTokens(nil, filepath.Join(dir, "missing"))
	require.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
}

func TestRoles(t *testing.T) {
	for _, r := range Roles {
		got, err := ParseRole(r.String())
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
	require.Less(t, RoleViewer, RoleOperator)
	require.Less(t, RoleOperator, RoleAdmin)
	_, err := ParseRole("Operator")
	require.ErrorContains(t, err, `unknown role "Operator"`)
}

// TestAdminSeesHoldersNeverTokens: the token list names holders and
// roles; neither tokens nor their hashes leave the gateway.
func TestAdminSeesHoldersNeverTokens(t *testing.T) {
	a := newTestAPI(t)
	var hs []Holder
	a.get(RoleAdmin, "/api/tokens", &hs)
	require.Equal(t, []Holder{{"energy-office", RoleViewer}, {"ops-townhall", RoleOperator}, {"it-admin", RoleAdmin}}, hs)
	var routes []routeJSON
	a.get(RoleViewer, "/api/routes", &routes)
	require.Len(t, routes, len(a.s.Routes()))
	for _, tok := range a.tok {
		require.NotContains(t, a.bodies.String(), tok)
		require.NotContains(t, a.bodies.String(), HashToken(tok))
	}
	code, _, _ := a.do(http.MethodGet, "/api/tokens", a.tok[RoleOperator], nil)
	require.Equal(t, http.StatusForbidden, code)
}
