// Package testpeers starts the third-party peers the tests talk to. It is
// for tests only; nothing in the gateway imports it.
package testpeers

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// NodeOPCUAVersion is the node-opcua the tests are written against
// (.ci/peers/opcua/package-lock.json; newer ones need Node 22).
const NodeOPCUAVersion = "2.182.2"

// NodeOPCUAInstallHint says how to install node-opcua for the tests.
const NodeOPCUAInstallHint = "run .ci/peers/opcua/install (it installs nodejs and npm from Debian if missing, then npm ci in .ci/peers/opcua)"

// NodeOPCUA returns a command that runs the test's script with node and
// the pinned node-opcua of .ci/peers/opcua (NODE_PATH set); moduleRoot is
// the module's root relative to the test's package. It fails the test,
// saying how to install them, when node or node-opcua is missing or
// node-opcua is not the pinned version: nothing is skipped.
func NodeOPCUA(t testing.TB, moduleRoot, script string) *exec.Cmd {
	t.Helper()
	peers, err := filepath.Abs(filepath.Join(moduleRoot, ".ci", "peers", "opcua"))
	require.NoError(t, err)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %s", NodeOPCUAInstallHint)
	}
	b, err := os.ReadFile(filepath.Join(peers, "node_modules", "node-opcua", "package.json"))
	if err != nil {
		t.Fatalf("node-opcua is not installed in %s/node_modules: %s", peers, NodeOPCUAInstallHint)
	}
	var pkg struct{ Version string }
	require.NoError(t, json.Unmarshal(b, &pkg))
	if pkg.Version != NodeOPCUAVersion {
		t.Fatalf("node-opcua %s is installed, the tests need %s: %s", pkg.Version, NodeOPCUAVersion, NodeOPCUAInstallHint)
	}
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(peers, "node_modules"))
	return cmd
}
