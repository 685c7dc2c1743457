//go:build linux

package sticktable

import (
	"os/exec"
	"syscall"
)

// setPdeathsig has the kernel kill the server when the test binary dies,
// as a timed-out test binary runs no cleanups.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
