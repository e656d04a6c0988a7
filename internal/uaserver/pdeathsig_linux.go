package uaserver

import (
	"os/exec"
	"syscall"
)

// setParentDeath kills the child when the gateway dies without closing
// the socket (SIGKILL of the gateway), so no orphan keeps the port.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
