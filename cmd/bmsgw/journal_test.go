package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/site"
	"github.com/bmsgw/bmsgw/internal/store"
)

// journalConfig writes a copy of configs/season.yaml whose state
// directory is private to the test, and returns its path and the state
// directory.
func journalConfig(t *testing.T) (string, string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "configs", "season.yaml"))
	require.NoError(t, err)
	state := t.TempDir()
	cfg := strings.ReplaceAll(string(b), "../", root+"/")
	cfg = strings.Replace(cfg, "state_dir: "+root+"/var/season", "state_dir: "+state, 1)
	require.Contains(t, cfg, "state_dir: "+state)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	return path, state
}

func runJournal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cmdJournal(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// seedJournal appends the entries of a small evening at valby-skole
// through the journal package and returns the open journal; the test
// closes it.
func seedJournal(t *testing.T, state string, now time.Time) (*journal.Journal, *store.DB) {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(state, "journal.db"))
	require.NoError(t, err)
	j, err := journal.Open(ctx, db, journal.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	entries := []journal.Entry{
		{Time: now.Add(-30 * time.Hour), Write: &journal.WriteEntry{Site: "valby-skole", Point: "gym_ahu.mode",
			Old: &site.Value{Num: 2, Label: "comfort"}, New: site.Value{Num: 1, Label: "economy"}, Source: journal.SourceDefault, Attempt: 1}},
		{Time: now.Add(-3 * time.Hour), Write: &journal.WriteEntry{Site: "valby-skole", Point: "gym_ahu.mode",
			Old: &site.Value{Num: 1, Label: "economy"}, New: site.Value{Num: 2, Label: "comfort"},
			Reason: "booking 4711 Badminton (org 12) 18:00–20:00", Source: journal.SourceBooking, Attempt: 1}},
		{Time: now.Add(-150 * time.Minute), Write: &journal.WriteEntry{Site: "valby-skole", Point: "gym_ahu.setpoint",
			New: site.Value{Num: 20}, Source: journal.SourceBooking, Err: "modbus: exception 6\n(server device busy)", Attempt: 2}},
		{Time: now.Add(-90 * time.Minute), Override: &journal.OverrideEntry{Site: "valby-skole", Point: "gym_ahu.mode",
			Action: journal.OverrideSet, Value: site.Value{Num: 0, Label: "off"}, Until: now.Add(time.Hour), Who: "alice", Why: "floor being varnished"}},
		{Time: now.Add(-60 * time.Minute), Device: &journal.DeviceEntry{Site: "valby-skole", Connection: "rooms", Device: "unit 30", Err: "i/o timeout"}},
		{Time: now.Add(-30 * time.Minute), Event: &journal.EventEntry{Site: "valby-skole", Space: "gym", Kind: "external_change",
			Severity: journal.SeverityInfo, Message: "gym_ahu.mode changed to comfort at the BMS"}},
		{Time: now.Add(-10 * time.Minute), Write: &journal.WriteEntry{Site: "valby-skole", Point: "gym_lights_enable",
			Old: &site.Value{Num: math.NaN()}, New: site.Value{Num: 1}, Source: journal.SourceBooking, Attempt: 1, DryRun: true}},
	}
	for _, e := range entries {
		_, err := j.Append(ctx, e)
		require.NoError(t, err)
	}
	return j, db
}

func TestJournalCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg, state := journalConfig(t)

	t.Run("no journal yet", func(t *testing.T) {
		code, out, errOut := runJournal(t, "-c", cfg)
		require.Equal(t, 1, code)
		require.Empty(t, out)
		require.Contains(t, errOut, "no journal at "+filepath.Join(state, "journal.db"))
		require.Contains(t, errOut, "has not run")
		require.NoFileExists(t, filepath.Join(state, "journal.db"), "reading creates nothing")
	})

	now := time.Now()
	j, db := seedJournal(t, state, now)
	// The journal stays open while the command reads, as when the gateway
	// runs.
	defer func() {
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	}()

	t.Run("table", func(t *testing.T) {
		code, out, errOut := runJournal(t, "-c", cfg)
		require.Equal(t, 0, code, errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 7, out) // header and the 6 entries of the last 24h
		require.Regexp(t, `^TIME\s+KIND\s+SITE\s+POINT\s+CHANGE\s+WHY\s+RESULT$`, lines[0])
		cph, err := time.LoadLocation("Europe/Copenhagen")
		require.NoError(t, err)
		stamp := now.Add(-3 * time.Hour).In(cph).Format("2006-01-02 15:04:05 MST")
		require.Regexp(t, `^`+stamp+`\s+write\s+valby-skole\s+gym_ahu.mode\s+economy → comfort\s+booking: booking 4711 Badminton \(org 12\) 18:00–20:00\s+ok$`, lines[1])
		require.Regexp(t, `gym_ahu.setpoint\s+\? → 20 °C\s+booking\s+error: modbus: exception 6 \(server device busy\) \(attempt 2\)$`, lines[2])
		require.Regexp(t, `override\s+valby-skole\s+gym_ahu.mode\s+override → off until \d{4}-\d\d-\d\d \d\d:\d\d\s+alice: floor being varnished`, lines[3])
		require.Regexp(t, `device\s+valby-skole\s+rooms/unit 30\s+down\s+i/o timeout`, lines[4])
		require.Regexp(t, `event\s+valby-skole\s+gym\s+external_change\s+gym_ahu.mode changed to comfort at the BMS\s+info$`, lines[5])
		require.Regexp(t, `gym_lights_enable\s+NaN → true\s+booking\s+dry run$`, lines[6])
	})

	t.Run("json", func(t *testing.T) {
		code, out, errOut := runJournal(t, "-c", cfg, "--since", "2026-01-01", "--format", "json")
		require.Equal(t, 0, code, errOut)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		require.Len(t, rows, 7)
		w := rows[1]
		require.Equal(t, "write", w["kind"])
		require.Equal(t, "gym_ahu.mode", w["point"])
		require.Equal(t, map[string]any{"value": 1.0, "label": "economy", "display": "economy"}, w["old"])
		require.Equal(t, map[string]any{"value": 2.0, "label": "comfort", "display": "comfort"}, w["new"])
		require.Equal(t, "booking", w["source"])
		require.Equal(t, true, w["ok"])
		tm, err := time.Parse(time.RFC3339Nano, w["time"].(string))
		require.NoError(t, err)
		require.True(t, tm.Equal(now.Add(-3*time.Hour).Round(0)), "time to the nanosecond, in UTC")
		require.True(t, strings.HasSuffix(w["time"].(string), "Z"))
		require.Greater(t, w["id"], rows[0]["id"])
		require.Equal(t, "alice", rows[3]["who"])
		require.Equal(t, "set", rows[3]["action"])
		require.Equal(t, "down", rows[4]["state"])
		require.Equal(t, "unit 30", rows[4]["device"])
		require.Equal(t, map[string]any{"value": nil, "display": "NaN"}, rows[6]["old"])
	})

	t.Run("csv", func(t *testing.T) {
		code, out, errOut := runJournal(t, "-c", cfg, "--format", "csv", "--kind", "write")
		require.Equal(t, 0, code, errOut)
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Len(t, recs, 4)
		require.Equal(t, journalCSVHeader, recs[0])
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		r := recs[2]
		require.Equal(t, "gym_ahu.setpoint", r[col["point"]])
		require.Equal(t, "20 °C", r[col["new"]])
		require.Equal(t, "20", r[col["new_value"]])
		require.Equal(t, "false", r[col["ok"]])
		require.Equal(t, "2", r[col["attempt"]])
		require.Equal(t, "modbus: exception 6\n(server device busy)", r[col["error"]], "CSV keeps the text as it was")
	})

	for _, tc := range []struct {
		name   string
		args   []string
		points []string // the point (or subject) of each entry, in order
	}{
		{"since duration", []string{"--since", "2h"}, []string{"gym_ahu.mode", "rooms", "gym", "gym_lights_enable"}},
		{"since days", []string{"--since", "2d"}, []string{"gym_ahu.mode", "gym_ahu.mode", "gym_ahu.setpoint", "gym_ahu.mode", "rooms", "gym", "gym_lights_enable"}},
		{"until", []string{"--since", "4h", "--until", "75m"}, []string{"gym_ahu.mode", "gym_ahu.setpoint", "gym_ahu.mode"}},
		{"point", []string{"--point", "gym_ahu.mode"}, []string{"gym_ahu.mode", "gym_ahu.mode"}},
		{"kinds", []string{"--kind", "device,event"}, []string{"rooms", "gym"}},
		{"limit", []string{"--limit", "2"}, []string{"gym", "gym_lights_enable"}},
		{"site", []string{"--site", "valby-skole", "--kind", "override"}, []string{"gym_ahu.mode"}},
		{"other site", []string{"--site", "oerestad-skole"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runJournal(t, append([]string{"-c", cfg, "--format", "json"}, tc.args...)...)
			require.Equal(t, 0, code, errOut)
			var rows []struct{ Point, Connection, Space string }
			require.NoError(t, json.Unmarshal([]byte(out), &rows))
			var got []string
			for _, r := range rows {
				got = append(got, r.Point+r.Connection+r.Space)
			}
			require.Equal(t, tc.points, got)
		})
	}

	t.Run("nothing in the window", func(t *testing.T) {
		code, out, _ := runJournal(t, "-c", cfg, "--since", "5m")
		require.Equal(t, 0, code)
		require.Regexp(t, `^no journal entries between \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ and now\n$`, out)
	})

	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"bad format", []string{"--format", "xml"}, `--format "xml"`},
		{"bad kind", []string{"--kind", "write,writes"}, `--kind "writes"`},
		{"bad since", []string{"--since", "yesterday"}, `"yesterday" is neither a duration`},
		{"negative since", []string{"--since", "-2h"}, "cannot be negative"},
		{"until before since", []string{"--since", "1h", "--until", "2h"}, "is not after"},
		{"negative limit", []string{"--limit", "-1"}, "--limit -1"},
		{"stray argument", []string{"everything"}, "usage: bmsgw journal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runJournal(t, append([]string{"-c", cfg}, tc.args...)...)
			require.Equal(t, 2, code)
			require.Empty(t, out)
			require.Contains(t, errOut, tc.msg)
		})
	}
}

func TestJournalCommandMissingConfig(t *testing.T) {
	code, _, errOut := runJournal(t, "-c", filepath.Join(t.TempDir(), "nope.yaml"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "nope.yaml")
}

// TestJournalForEngine checks the adapter bmsgw run hands the control
// engine: records land in the journal with the points' labels.
func TestJournalForEngine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg, _ := journalConfig(t)
	g, ok := loadConfig(cfg, os.Stderr)
	require.True(t, ok)
	ctx := t.Context()
	jr, _, closeJournal, err := openJournal(ctx, g, func() *config.Gateway { return g }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	at := time.Now().Add(-time.Minute).UTC()
	old := 1.0
	require.NoError(t, jr.Writes(ctx, []control.WriteRecord{{Time: at, Site: "valby-skole", Point: "gym_ahu.mode", Old: &old, New: 2,
		Reason: "booking 4711", Source: control.SourceOccupancy, Attempt: 1}}))
	require.NoError(t, jr.Override(ctx, control.OverrideRecord{Time: at, Site: "valby-skole", Point: "gym_ahu.mode", Action: "clear", Who: "bob"}))
	require.NoError(t, jr.Device(ctx, control.DeviceRecord{Time: at, Site: "valby-skole", Connection: "rooms", Up: true}))
	require.NoError(t, jr.Event(ctx, control.EventRecord{Time: at, Site: "valby-skole", Kind: "external_change", Severity: "info", Message: "m"}))
	closeJournal()

	code, out, errOut := runJournal(t, "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "economy → comfort")
	require.Contains(t, out, "occupancy: booking 4711")
	require.Contains(t, out, "override cleared")
	require.Regexp(t, `device\s+valby-skole\s+rooms\s+up`, out)
}
