package localapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/control"
)

type backend struct {
	overrides []control.Override
	reloadErr error
}

func (b *backend) Status(context.Context) (control.Status, error) {
	return control.Status{Time: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}, nil
}
func (b *backend) SetOverride(_ context.Context, o control.Override) error {
	if o.Value > 100 {
		return control.ErrOutOfRange
	}
	b.overrides = append(b.overrides, o)
	return nil
}
func (b *backend) ClearOverride(context.Context, string, string, string) error {
	return errors.New("no override on that point")
}
func (b *backend) Reload(_ context.Context, check bool) ([]string, error) {
	if b.reloadErr != nil {
		return nil, b.reloadErr
	}
	if check {
		return []string{"would change"}, nil
	}
	return []string{"changed"}, nil
}

func serve(t *testing.T, b Backend) string {
	dir := filepath.Join(t.TempDir(), "s")
	srv, err := Listen(dir, b, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_, err := os.Stat(filepath.Join(dir, SocketName))
		require.True(t, os.IsNotExist(err), "socket removed on shutdown")
	})
	return dir
}

func TestOnlyTheTokenHolderGetsIn(t *testing.T) {
	b := &backend{}
	dir := serve(t, b)
	for _, name := range []string{SocketName, TokenName} {
		st, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "%s is private to the gateway's user", name)
	}

	c, err := Dial(dir)
	require.NoError(t, err)
	st, err := c.Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2026, st.Time.Year())

	// The same socket without the token: 401.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(dir, SocketName))
	}}}
	resp, err := hc.Get("http://bmsgw/v1/status")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestOverridesNeedWhoAndWhy(t *testing.T) {
	b := &backend{}
	c, err := Dial(serve(t, b))
	require.NoError(t, err)
	ctx := context.Background()
	err = c.SetOverride(ctx, control.Override{Site: "s", Point: "p", Value: 1, Until: time.Now().Add(time.Hour)})
	require.ErrorContains(t, err, "who and why are required")
	err = c.SetOverride(ctx, control.Override{Site: "s", Point: "p", Value: 500, Until: time.Now().Add(time.Hour), Who: "anna", Why: "test"})
	require.ErrorContains(t, err, "outside the point's limits")
	require.NoError(t, c.SetOverride(ctx, control.Override{Site: "s", Point: "p", Value: 1, Until: time.Now().Add(time.Hour), Who: "anna", Why: "test"}))
	require.Len(t, b.overrides, 1)
	require.ErrorContains(t, c.ClearOverride(ctx, "s", "p", "anna"), "no override")
	changes, err := c.Reload(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"changed"}, changes)
	changes, err = c.CheckReload(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"would change"}, changes)
	b.reloadErr = errors.New("site.yaml:3:5: bad")
	_, err = c.Reload(ctx)
	require.ErrorContains(t, err, "site.yaml:3:5: bad")
}

func TestNotRunning(t *testing.T) {
	_, err := Dial(t.TempDir())
	require.ErrorIs(t, err, ErrNotRunning)
}

func TestSecondGatewayRefused(t *testing.T) {
	dir := serve(t, &backend{})
	_, err := Listen(dir, &backend{}, nil)
	require.ErrorContains(t, err, "already running")
}
