//go:build !linux

package sticktable

import "os/exec"

// setPdeathsig has no portable equivalent: the cleanups stop the server.
func setPdeathsig(*exec.Cmd) {}
