package occupancy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzRestore: no snapshot, however broken, crashes the tracker; one that
// is accepted snapshots again and restores to the same state.
func FuzzRestore(f *testing.F) {
	tr := newTracker(f, referenceSpec())
	tr.Advance(at(f, "17:00"))
	require.NoError(f, tr.SetWindows("room12", []Window{win(f, "leisure:chess-0412", "org-chess", "19:00", "21:00")}))
	require.NoError(f, tr.SetWindows("pitch", []Window{win(f, "leisure:football-0412", "org-valby-bk", "18:00", "20:00")}))
	tr.Observe("wing_b_water", 0, true, at(f, "17:00"))
	tr.Observe("room12_co2", 430, true, at(f, "17:30"))
	tr.Grant("pitch_gate", at(f, "18:03"))
	tr.Advance(at(f, "19:20"))
	tr.Grant("room12_door", at(f, "19:40"))
	tr.Advance(at(f, "19:55"))
	blob, err := tr.Snapshot()
	require.NoError(f, err)
	f.Add(blob)
	f.Add([]byte(`{"version":1,"site":"valby"}`))
	f.Add([]byte(`{"version":1,"site":"valby","samples":{"room12_pir":[{"t":"2026-11-26T19:00:00Z","v":1,"ok":true},{"t":"0001-01-01T00:00:00Z"}]}}`))
	f.Add([]byte(`{"version":1,"site":"valby","windows":{"pitch":[{"booking":"a","start":"2026-11-26T19:00:00Z","end":"2026-11-26T20:00:00Z"},{"booking":"a","start":"2026-11-26T18:00:00Z","end":"2026-11-26T20:00:00Z"}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := newTracker(t, referenceSpec())
		if tr.Restore(data) != nil {
			return
		}
		// Whatever was accepted works.
		tr.Advance(at(t, "19:00"))
		tr.Observe("room12_pir", 1, true, at(t, "19:01"))
		tr.Grant("pitch_gate", at(t, "19:02"))
		tr.Adjustments()
		tr.State()
		tr.Next()
		tr.Report(time.Time{}, at(t, "2030-01-01 00:00"))
		first, err := tr.Snapshot()
		require.NoError(t, err)
		again := newTracker(t, referenceSpec())
		require.NoError(t, again.Restore(first))
		second, err := again.Snapshot()
		require.NoError(t, err)
		require.JSONEq(t, string(first), string(second))
	})
}
