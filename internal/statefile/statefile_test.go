package statefile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

type state struct {
	Header
	Doors []string `json:"doors"`
}

func TestDecode(t *testing.T) {
	var s state
	require.NoError(t, Decode([]byte(`{"version":2,"site":"valby","doors":["side"]}`), "security", "valby", 2, &s))
	require.Equal(t, []string{"side"}, s.Doors)
	require.EqualError(t, Decode([]byte(`{"version":1,"site":"valby"}`), "security", "valby", 2, &state{}),
		`restore security of site "valby": snapshot version 1, want 2`)
	require.EqualError(t, Decode([]byte(`{"version":2,"site":"other"}`), "security", "valby", 2, &state{}),
		`restore security of site "valby": the snapshot is of site "other"`)
	require.ErrorContains(t, Decode([]byte(`{`), "occupancy", "valby", 2, &state{}), `restore occupancy of site "valby": `)
}

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "security", "valby.json")
	require.NoError(t, Write(path, []byte("one")))
	require.NoError(t, Write(path, []byte("two")))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two", string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	_, err = os.Stat(path + ".tmp")
	require.True(t, os.IsNotExist(err), "no temporary file is left")
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	require.NoError(t, WriteAtomic(path, []byte("one"), 0o640))
	require.NoError(t, WriteAtomic(path, []byte("two"), 0o640))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two", string(data))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files are left behind")

	err = WriteAtomic(filepath.Join(dir, "missing", "state.json"), []byte("x"), 0o600)
	require.Error(t, err)
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}
