package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/serial/serialsim"
	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/localapi"
	"github.com/bmsgw/bmsgw/internal/store"
)

const serialSite = `site: {id: hall, time_zone: Europe/Copenhagen}
connections:
  - id: panel
    serial:
      device: DEVICE
      reply_timeout: 1s
      poll: {command: "STATUS?", interval: 1s}
      events:
        - pattern: 'DOOR (?P<door>\d+) (?P<state>OPEN|CLOSED)'
          set: [{point: "door{door}_contact", value: "{state}", map: {OPEN: 1, CLOSED: 0}}]
        - pattern: 'DOOR (?P<door>\d+) (?P<state>LOCKED|UNLOCKED)'
          set: [{point: "door{door}_unlocked", value: "{state}", map: {UNLOCKED: 1, LOCKED: 0}}]
        - pattern: 'GRANT (?P<door>\d+) (?P<card>\d+)'
          set:
            - {point: "door{door}_card", value: "{card}"}
            - {point: "door{door}_grant", value: "1", pulse: 2s}
        - pattern: 'AREA (?P<area>\d+) (?P<state>ARMED|DISARMED)'
          set: [{point: "area{area}_armed", value: "{state}", map: {ARMED: 1, DISARMED: 0}}]
points:
  - {id: door3_contact, connection: panel, type: bool}
  - {id: door3_unlocked, connection: panel, type: bool}
  - {id: door3_grant, connection: panel, type: bool}
  - {id: door3_card, connection: panel, type: uint32}
  - {id: area2_armed, connection: panel, type: bool}
  - {id: door3_unlock, connection: panel, type: uint16, access: write, min: 1, max: 3600, serial: {command: "UNLOCK 3 {value}"}}
spaces:
  - {id: hall, resources: [hall]}
doors:
  - {id: door3, name: Hall entrance, space: hall, area: a2, contact: {point: door3_contact}, unlock: {point: door3_unlocked}, reader: {point: door3_grant}, card: door3_card}
areas:
  - {id: a2, space: hall, armed: {point: area2_armed}}
privacy: {keep_card_holder: true}
`

// TestRunSerialPanel runs the gateway against a simulated alarm panel on
// a socat pty pair: door and card lines become door and access events
// (the card number kept as personal data, because the mapping says so),
// and an operator override becomes a command line the panel receives.
func TestRunSerialPanel(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("socat"); err != nil {
		t.Fatal("this test needs socat for its pty pair: run .ci/install-test-deps (apt-get install -y socat)")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	socat := exec.Command("socat", "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	require.NoError(t, socat.Start())
	t.Cleanup(func() {
		_ = socat.Process.Signal(syscall.SIGTERM)
		_ = socat.Wait()
	})
	require.Eventually(t, func() bool {
		_, e1 := os.Stat(a)
		_, e2 := os.Stat(b)
		return e1 == nil && e2 == nil
	}, 10*time.Second, 20*time.Millisecond, "socat made no pty pair")

	panel, err := serialsim.New(serialsim.Config{Areas: map[int][]int{2: {3}}}, nil)
	require.NoError(t, err)
	port, err := serialsim.Open(b, 9600)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- panel.Serve(ctx, port) }()
	defer func() {
		cancel()
		_ = port.Close()
		<-served
	}()

	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(strings.Replace(serialSite, "DEVICE", a, 1)), 0o644))
	cfg := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state_dir: state\nsites: [site.yaml]\njournal: {card_holder_retention: 24h}\n"), 0o644))
	g, err := config.Load(cfg)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runGateway(gctx, g, runFlags{cfg: cfg}, control.RealClock{}, logger) }()
	var api *localapi.Client
	require.Eventually(t, func() bool {
		c, err := localapi.Dial(g.StateDir)
		if err != nil {
			return false
		}
		st, err := c.Status(ctx)
		if err != nil || len(st.Devices) == 0 || !st.Devices[0].Up {
			return false
		}
		api = c
		return true
	}, 20*time.Second, 50*time.Millisecond, "gateway up and the panel answering")

	// A member's card, then the door opens.
	require.NoError(t, panel.ShowCard(3, "4711"))
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, panel.OpenDoor(3))
	require.Eventually(t, func() bool {
		evs, err := api.Events(ctx, events.Filter{Kinds: []events.Kind{events.DoorOpened}})
		return err == nil && len(evs) == 1 && evs[0].Subject == "door3"
	}, 10*time.Second, 50*time.Millisecond, "door_opened from the panel's DOOR 3 OPEN")

	// The patrol round on demand finds the door open.
	runCmd := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := runCmd("round", "hall", "-c", cfg)
	require.Equal(t, 1, code, "findings: exit 1; %s", errOut)
	require.Regexp(t, `(?m)^FINDING\s+door\s+door3\s+hall\s+open`, out)
	code, out, _ = runCmd("round", "hall", "-c", cfg, "--format", "json")
	require.Equal(t, 1, code)
	require.Contains(t, out, `"subject": "door3"`)
	code, _, errOut = runCmd("round", "nowhere", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no site "nowhere"`)

	// An operator unlocks the door for 5 s through the gateway.
	require.NoError(t, api.SetOverride(ctx, control.Override{Site: "hall", Point: "door3_unlock", Value: 5,
		Until: time.Now().Add(time.Hour), Who: "test", Why: "let the caretaker in"}))
	require.Eventually(t, func() bool { return slices.Contains(panel.Received(), "UNLOCK 3 5") }, 10*time.Second, 20*time.Millisecond,
		"the panel received UNLOCK 3 5; it got %v", panel.Received())

	stop()
	require.NoError(t, <-done)
	db, err := store.OpenReadOnly(context.Background(), journalFile(g))
	require.NoError(t, err)
	defer db.Close()
	granted, err := events.Query(context.Background(), db, events.Filter{Kinds: []events.Kind{events.AccessGranted}, Personal: true})
	require.NoError(t, err)
	require.Len(t, granted, 1)
	require.Equal(t, "door3", granted[0].Subject)
	require.Equal(t, "4711", granted[0].CardHolder, "kept: the mapping allows it")
	forced, err := events.Query(context.Background(), db, events.Filter{Kinds: []events.Kind{events.DoorForced}})
	require.NoError(t, err)
	require.Empty(t, forced, "the door opened after a grant")
	// Exports never carry it.
	code, out, errOut = runEvents(context.Background(), "-c", cfg, "--format", "json", "--since", "1h")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "access_granted")
	require.NotContains(t, out, "4711")
}

// TestValidateRunsTheSerialAdapterChecks: what only the serial adapter
// can judge is reported by bmsgw validate too, naming file and connection.
func TestValidateRunsTheSerialAdapterChecks(t *testing.T) {
	dir := t.TempDir()
	site := strings.Replace(strings.Replace(serialSite, "DEVICE", "/dev/null", 1), "reply_timeout: 1s", "reply_timeout: 1s\n      max_line: -5", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o644))
	cfg := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state_dir: state\nsites: [site.yaml]\n"), 0o644))
	code, _, errOut := bmsgw(t, "validate", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `site.yaml: connection "panel": serial options for hall/panel: max_line -5 is not positive`)
}
