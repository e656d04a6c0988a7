//go:build !linux

package uaserver

import "os/exec"

// setParentDeath does nothing here: the child still exits when the
// socket closes.
func setParentDeath(*exec.Cmd) {}
