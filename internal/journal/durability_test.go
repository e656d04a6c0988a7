//go:build unix

package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/store"
)

// helperEnv names the database the helper process appends to; it is set
// only in the child that TestDurableAcrossKill starts.
const helperEnv = "BMSGW_JOURNAL_HELPER_DB"

// TestHelperProcess is not a test: run as a child process by
// TestDurableAcrossKill, it appends entries from 8 goroutines forever and
// prints the id of every entry whose Append has returned, one per line,
// until it is killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	ctx := context.Background()
	db, err := store.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	j, err := Open(ctx, db, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var mu sync.Mutex // one line per write(2), never interleaved
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id, err := j.Append(ctx, Entry{Write: &WriteEntry{
					Site: "durability", Point: fmt.Sprintf("p%d", w), Source: SourceBooking,
					Reason: fmt.Sprintf("worker %d append %d", w, i), Attempt: 1,
				}})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				_, err = fmt.Fprintf(os.Stdout, "%d\n", id)
				mu.Unlock()
				if err != nil {
					os.Exit(3)
				}
			}
		})
	}
	wg.Wait()
}

// TestDurableAcrossKill kills a process that is appending with SIGKILL at
// a random moment, several times over on the same database, and requires
// every id the process reported as committed to be in the database, and
// the database to pass PRAGMA integrity_check.
//
// A killed process loses what it had not handed to the kernel; this
// proves that an entry is in the database file or its WAL by the time
// Append returns. (synchronous=FULL also fsyncs it, for power cuts,
// which a test cannot cut.)
func TestDurableAcrossKill(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "journal.db")
	total := 0
	for round := range 3 {
		reported := killMidStream(t, path, 200+rand.IntN(1500))
		require.NotEmpty(t, reported)

		db, err := store.Open(ctx, path)
		require.NoError(t, err, "round %d: reopen after kill", round)
		require.NoError(t, db.CheckIntegrity(ctx), "round %d", round)
		entries, err := Query(ctx, db, Filter{})
		require.NoError(t, err)
		present := make(map[int64]bool, len(entries))
		for _, e := range entries {
			present[e.ID] = true
		}
		var missing []int64
		for _, id := range reported {
			if !present[id] {
				missing = append(missing, id)
			}
		}
		require.Empty(t, missing, "round %d: reported committed but not in the database", round)
		require.GreaterOrEqual(t, len(entries), total+len(reported))
		t.Logf("round %d: killed after %d reported ids; %d entries in the database", round, len(reported), len(entries))
		total = len(entries)
		require.NoError(t, db.Close())
	}
}

// killMidStream runs the helper process on path, SIGKILLs it once it has
// reported n ids, and returns every id it reported in a complete line.
func killMidStream(t *testing.T, path string, n int) []int64 {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	var ids []int64
	killed := false
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			// A fragment without its newline may be a cut-off id; only
			// whole lines were reported.
			require.ErrorIs(t, err, io.EOF)
			break
		}
		id, perr := strconv.ParseInt(string(bytes.TrimSuffix(line, []byte("\n"))), 10, 64)
		if perr != nil {
			continue // test framework output
		}
		ids = append(ids, id)
		if !killed && len(ids) >= n {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
		}
	}
	err = cmd.Wait()
	require.True(t, killed, "helper exited by itself: %v\n%s", err, stderr.String())
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "%v", err)
	ws, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.Equal(t, syscall.SIGKILL, ws.Signal(), "helper: %s", stderr.String())
	return ids
}
