package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// bmsgw runs the command line in-process from the repository root, as a
// user would, and returns exit code, stdout and stderr.
func bmsgw(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Chdir(repoRoot)
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// season runs a command against a copy of the season config whose state
// directory is private to the test.
func season(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := repoRoot
	b, err := os.ReadFile(filepath.Join(root, "configs", "season.yaml"))
	require.NoError(t, err)
	cfg := strings.ReplaceAll(string(b), "../", root+"/")
	cfg = strings.Replace(cfg, "state_dir: "+root+"/var/season", "state_dir: "+t.TempDir(), 1)
	path := filepath.Join(t.TempDir(), "season.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	return bmsgw(t, append(args, "-c", path)...)
}

// repoRoot is the repository root; tests run commands from there.
var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

type planRow struct {
	Time     string   `json:"time"`
	Site     string   `json:"site"`
	Spaces   []string `json:"spaces"`
	Point    string   `json:"point"`
	Display  string   `json:"display"`
	Occupied bool     `json:"occupied"`
	Initial  bool     `json:"initial"`
	Reasons  []struct {
		Kind      string `json:"kind"`
		Ref       string `json:"ref"`
		Organiser string `json:"organiser"`
	} `json:"reasons"`
}

func planRows(t *testing.T, from, to string, extra ...string) ([]planRow, string) {
	t.Helper()
	args := append([]string{"plan", "--site", "valby-skole", "--from", from, "--to", to, "--format", "json", "--no-initial"}, extra...)
	code, out, errOut := season(t, args...)
	require.Equal(t, 0, code, errOut)
	var rows []planRow
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	return rows, errOut
}

// writes lists "time point=value" for the rows of one point.
func writes(rows []planRow, point string) []string {
	var out []string
	for _, r := range rows {
		if r.Point == point {
			out = append(out, r.Time+" "+r.Display)
		}
	}
	return out
}

// TestPlanReferenceScenario checks the Thursday of DOMAIN.md section 5 at
// Valby Skole.
func TestPlanReferenceScenario(t *testing.T) {
	rows, _ := planRows(t, "2026-11-26", "2026-11-27")
	require.Equal(t, []string{
		"2026-11-26T06:30:00+01:00 comfort", // school day 07:30 less the hall's 1 h lead
		"2026-11-26T15:45:00+01:00 economy", // school day ends 15:30 plus 15 min lag
		"2026-11-26T18:00:00+01:00 comfort", // pre-heat for Valby Volley's 19:00 booking
		"2026-11-26T21:15:00+01:00 economy",
	}, writes(rows, "gym_ahu.mode"))
	require.Equal(t, []string{
		"2026-11-26T18:00:00+01:00 true", // Valby BK has the pitch 18-20, no lead or lag
		"2026-11-26T20:00:00+01:00 false",
	}, writes(rows, "pitch_floodlight_enable"))
	require.Equal(t, []string{
		"2026-11-26T07:15:00+01:00 true",
		"2026-11-26T15:45:00+01:00 false",
		"2026-11-26T18:45:00+01:00 true", // the binding's own 15 min lead
		"2026-11-26T21:15:00+01:00 false",
	}, writes(rows, "gym_lights_enable"))
	require.Equal(t, []string{
		"2026-11-26T07:00:00+01:00 occupied",
		"2026-11-26T15:30:00+01:00 unoccupied",
		"2026-11-26T18:30:00+01:00 occupied", // chess club 19:00, classroom lead 30 min
		"2026-11-26T21:00:00+01:00 unoccupied",
	}, writes(rows, "room12.mode"))

	for _, r := range rows {
		if r.Point == "gym_ahu.mode" && r.Time == "2026-11-26T18:00:00+01:00" {
			require.Len(t, r.Reasons, 1)
			require.Equal(t, "booking", r.Reasons[0].Kind)
			require.Equal(t, "leisure:volley-gym-thu@booking.kk.dk/20261126T180000Z", r.Reasons[0].Ref)
			require.Equal(t, "valby-volley", r.Reasons[0].Organiser)
		}
	}
}

func TestPlanTableIsReadable(t *testing.T) {
	code, out, errOut := season(t, "plan", "--site", "valby-skole", "--from", "2026-11-26", "--to", "2026-11-27", "--point", "gym_ahu.mode")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "TIME")
	require.Regexp(t, `Thu 2026-11-26 18:00 \+01:00\s+valby-skole\s+gym\s+gym_ahu.mode\s+comfort\s+booking leisure:volley-gym-thu@booking.kk.dk/20261126T180000Z \(org valby-volley\)`, out)
	require.NotContains(t, out, "mette", "no personal data from ORGANIZER")
}

func TestPlanCSV(t *testing.T) {
	code, out, errOut := season(t, "plan", "--site", "valby-skole", "--from", "2026-11-26", "--to", "2026-11-27", "--format", "csv", "--point", "pitch_floodlight_enable")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, `time,site,spaces,point,value,label,occupied,initial,reason
2026-11-26T00:00:00+01:00,valby-skole,pitch,pitch_floodlight_enable,0,,false,true,in force at start: vacant
2026-11-26T18:00:00+01:00,valby-skole,pitch,pitch_floodlight_enable,1,,true,false,booking leisure:valbybk-pitch-thu@booking.kk.dk/20261126T170000Z (org valby-bk)
2026-11-26T20:00:00+01:00,valby-skole,pitch,pitch_floodlight_enable,0,,false,false,ended: booking leisure:valbybk-pitch-thu@booking.kk.dk/20261126T170000Z (org valby-bk)
`, out)
}

// TestPlanAcrossDST checks both DST transitions of Europe/Copenhagen: the
// offset of each write and lead times that span the change.
func TestPlanAcrossDST(t *testing.T) {
	// Sunday 2026-03-29, clocks go 02:00 → 03:00: the badminton booking at
	// 19:00 CEST is pre-heated from 18:00 CEST.
	rows, _ := planRows(t, "2026-03-29", "2026-03-30")
	require.Equal(t, []string{"2026-03-29T18:00:00+02:00 comfort", "2026-03-29T21:15:00+02:00 economy"}, writes(rows, "gym_ahu.mode"))

	// Sunday 2026-10-25, clocks go 03:00 → 02:00. The youth club's LAN
	// night runs 22:00 CEST to 06:00 CET: 9 hours, not 8.
	rows, _ = planRows(t, "2026-10-24", "2026-10-26")
	require.Equal(t, []string{
		"2026-10-24T21:30:00+02:00 occupied",
		"2026-10-25T06:00:00+01:00 unoccupied",
	}, writes(rows, "room14.mode"))
	require.Equal(t, []string{"2026-10-25T18:00:00+01:00 comfort", "2026-10-25T21:15:00+01:00 economy"}, writes(rows, "gym_ahu.mode"))
}

func TestPlanExceptionsAndOverrides(t *testing.T) {
	// Autumn holiday: no school day, and the volleyball EXDATE; the
	// pitch series has no exception that day.
	rows, _ := planRows(t, "2026-10-15", "2026-10-16")
	require.Empty(t, writes(rows, "gym_ahu.mode"))
	require.Equal(t, []string{"2026-10-15T18:30:00+02:00 occupied", "2026-10-15T21:00:00+02:00 unoccupied"}, writes(rows, "room12.mode"),
		"only the chess club, no school day")
	require.Equal(t, []string{"2026-10-15T18:00:00+02:00 true", "2026-10-15T20:00:00+02:00 false"}, writes(rows, "pitch_floodlight_enable"))

	// A moved instance (RECURRENCE-ID): 2026-11-19 the volleyball club
	// plays 17:00-19:00 instead of 19:00-21:00.
	rows, _ = planRows(t, "2026-11-19", "2026-11-20")
	// Pre-heating from 16:00 would leave the air handler off for only
	// 15 minutes after the school day (15:45): the merge gap joins them.
	require.Equal(t, []string{"2026-11-19T06:30:00+01:00 comfort", "2026-11-19T19:15:00+01:00 economy"}, writes(rows, "gym_ahu.mode"))
	require.Equal(t, []string{
		"2026-11-19T07:15:00+01:00 true", "2026-11-19T15:45:00+01:00 false",
		"2026-11-19T16:45:00+01:00 true", "2026-11-19T19:15:00+01:00 false",
	}, writes(rows, "gym_lights_enable"), "the lights have their own 15 min lead: 16:45 for the moved 17:00 booking")

	// The school's timetable (precedence 20) has the gym 17:00-19:30 on
	// 2026-12-03; the leisure booking 19:00-21:00 loses and is reported.
	rows, errOut := planRows(t, "2026-12-03", "2026-12-04")
	require.Equal(t, []string{"2026-12-03T06:30:00+01:00 comfort", "2026-12-03T19:45:00+01:00 economy"}, writes(rows, "gym_ahu.mode"),
		"school day merged with the timetable booking (16:00-19:45); the superseded 19:00-21:00 booking does not extend it")
	require.Contains(t, errOut, "superseded")
	require.Contains(t, errOut, "valby-gym")

	// The one-off Christmas fair runs the school-day schedule 10-14 on a
	// Saturday.
	rows, _ = planRows(t, "2026-12-05", "2026-12-06")
	require.Equal(t, []string{"2026-12-05T09:30:00+01:00 occupied", "2026-12-05T14:00:00+01:00 unoccupied"}, writes(rows, "room12.mode"))
}

func TestValidateExitCodes(t *testing.T) {
	code, out, errOut := bmsgw(t, "validate", "-c", "configs/season.yaml")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "configs/season.yaml: ok: 2 site(s)")

	code, _, errOut = bmsgw(t, "validate", "-c", "testdata/mappings/source-errors/gateway.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "testdata/mappings/source-errors/gateway.yaml:9:5: source id \"leisure\" is already used")
	require.Contains(t, errOut, "nothing was changed")

	code, _, _ = bmsgw(t, "validate", "extra-arg")
	require.Equal(t, 2, code)
	code, _, _ = bmsgw(t, "frobnicate")
	require.Equal(t, 2, code)
}

func TestBookingsList(t *testing.T) {
	code, out, errOut := season(t, "bookings", "list", "--site", "valby-skole", "--from", "2026-12-03", "--to", "2026-12-04", "--format", "json")
	require.Equal(t, 0, code, errOut)
	var rows []struct {
		Site, Source, ID, Resource, Organiser, Status string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	got := map[string]string{}
	for _, r := range rows {
		require.Equal(t, "valby-skole", r.Site)
		got[r.Source+":"+r.ID] = r.Status
	}
	require.Equal(t, "superseded", got["leisure:volley-gym-thu@booking.kk.dk/20261203T180000Z"])
	require.Equal(t, "confirmed", got["timetable:tt-2026-12-03-gym"])
	require.Equal(t, "confirmed", got["leisure:chess-room12@booking.kk.dk/20261203T180000Z"])
	require.NotContains(t, out, "mette")
}

func TestSchemaCommand(t *testing.T) {
	code, out, _ := bmsgw(t, "schema", "mapping")
	require.Equal(t, 0, code)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.Equal(t, "bmsgw site mapping", v["title"])
}

func TestPlanRequests(t *testing.T) {
	code, out, errOut := season(t, "plan", "--requests", "--site", "oerestad-skole")
	require.Equal(t, 0, code, errOut)
	// The hall PLC's four points (40, 42-43, 50 bit 0 and bit 1) are read in
	// one request through the unused registers 44-49.
	require.Regexp(t, `oerestad-skole\s+hall_plc\s+1\s+fc3 read_holding_registers\s+40-50\s+11\s+hall_ventilation_stage, hall_supply_setpoint, hall_lights_zone_a, hall_lights_zone_b`, out)
	require.Contains(t, out, "7 requests read 14 Modbus points")
}
