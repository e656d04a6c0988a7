package access_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/booking"
)

func newFile(t *testing.T, format access.Format, now func() time.Time) (*access.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "var", "access", "grants."+string(format))
	f, err := access.NewFile(access.FileOptions{ID: "export", Path: path, Format: format, Now: now}, nil)
	require.NoError(t, err)
	return f, path
}

func exportBookings() []booking.Booking {
	return []booking.Booking{
		bk("jens.hansen@example.org", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0)),
		bk("chess-1", "res-room12", "chess", at(0, 14, 0), at(0, 16, 0)),
	}
}

func TestFileExportCSV(t *testing.T) {
	f, path := newFile(t, access.FormatCSV, func() time.Time { return morning })
	gs := access.Grants(spec(1), exportBookings(), horizonFrom, horizonTo)
	res, err := f.Push(context.Background(), gs)
	require.NoError(t, err)
	require.True(t, res.Written)
	require.Equal(t, 4, res.Count(access.Create))

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.Equal(t, "key,group,door,from,to,mode", lines[0])
	var rows []string
	for _, l := range lines[1:] {
		rows = append(rows, l[strings.Index(l, ",")+1:]) // without the key
	}
	require.Equal(t, []string{
		"G1041,gym_entrance,2026-11-26T18:45:00+01:00,2026-11-26T21:15:00+01:00,card",
		"G1041,gym_side,2026-11-26T18:45:00+01:00,2026-11-26T21:15:00+01:00,card",
		"org-chess,wing_b_entrance,2026-11-26T13:45:00+01:00,2026-11-26T15:00:00+01:00,card_pin",
		"org-chess,wing_b_entrance,2026-11-26T15:00:00+01:00,2026-11-26T16:15:00+01:00,card",
	}, rows)
	for i, g := range gs {
		require.True(t, strings.HasPrefix(lines[i+1], g.Key+","))
	}
	assertNoPersonalData(t, string(data))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), info.Mode().Perm())

	// Unchanged: not rewritten.
	before := info.ModTime()
	require.NoError(t, os.Chtimes(path, before.Add(-time.Hour), before.Add(-time.Hour)))
	res, err = f.Push(context.Background(), gs)
	require.NoError(t, err)
	require.False(t, res.Written)
	require.Equal(t, 4, res.Unchanged)
	info, err = os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, before.Add(-time.Hour).Unix(), info.ModTime().Unix(), "file untouched")

	// The chess club cancels, the volleyball club moves.
	bs := exportBookings()
	bs[0].Start = at(0, 18, 0)
	bs[1].Status = booking.Cancelled
	gs2 := access.Grants(spec(1), bs, horizonFrom, horizonTo)
	res, err = f.Push(context.Background(), gs2)
	require.NoError(t, err)
	require.True(t, res.Written)
	require.Equal(t, 2, res.Count(access.Update))
	require.Equal(t, 2, res.Count(access.Revoke))
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(data), "\n"))
	require.Contains(t, string(data), "G1041,gym_entrance,2026-11-26T17:45:00+01:00,2026-11-26T21:15:00+01:00,card")

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left")
}

func TestFileExportJSON(t *testing.T) {
	c := &clock{now: morning}
	f, path := newFile(t, access.FormatJSON, c.Now)
	gs := access.Grants(spec(1), exportBookings()[:1], horizonFrom, horizonTo)
	_, err := f.Push(context.Background(), gs)
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, `[
  {
    "group": "G1041",
    "door": "gym_entrance",
    "from": "2026-11-26T18:45:00+01:00",
    "to": "2026-11-26T21:15:00+01:00",
    "mode": "card",
    "key": "`+gs[0].Key+`"
  },
  {
    "group": "G1041",
    "door": "gym_side",
    "from": "2026-11-26T18:45:00+01:00",
    "to": "2026-11-26T21:15:00+01:00",
    "mode": "card",
    "key": "`+gs[1].Key+`"
  }
]
`, string(data))
	assertNoPersonalData(t, string(data))

	// After the grants end they leave the file, reported as expired.
	c.Set(at(0, 21, 15))
	res, err := f.Push(context.Background(), gs)
	require.NoError(t, err)
	require.True(t, res.Written)
	require.Equal(t, 2, res.Count(access.Expire))
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "[]\n", string(data))
}

func TestFileExportRecoversFromAForeignFile(t *testing.T) {
	f, path := newFile(t, access.FormatCSV, func() time.Time { return morning })
	require.NoError(t, os.WriteFile(path, []byte("not,our\nformat"), 0o640))
	gs := access.Grants(spec(1), exportBookings(), horizonFrom, horizonTo)
	res, err := f.Push(context.Background(), gs)
	require.NoError(t, err)
	require.True(t, res.Written)
	require.Equal(t, len(gs), res.Count(access.Create))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(data), "key,group,door,from,to,mode\n"))
}

func TestFileOptions(t *testing.T) {
	_, err := access.NewFile(access.FileOptions{ID: "", Format: "xml"}, nil)
	require.ErrorContains(t, err, `access output id ""`)
	require.ErrorContains(t, err, "no file path")
	require.ErrorContains(t, err, `format "xml" is not csv or json`)
}

// assertNoPersonalData checks that an export holds no organiser that has
// a group, booking id, resource or booking source.
func assertNoPersonalData(t *testing.T, s string) {
	t.Helper()
	for _, f := range []string{"jens", "example.org", "valby-volley", "res-gym", "res-room12", "leisure", "chess-1", "s3cr3t"} {
		require.NotContains(t, s, f)
	}
}
