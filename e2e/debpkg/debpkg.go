// Package debpkg gives tests the programs they run as real peers
// (redis-server, HAProxy, BIND, Chromium, systemd-analyze), installing
// Debian's package when one is missing.
//
// go test runs the packages of a module in parallel, and each may find the
// same program missing at the same moment: dpkg takes one installer at a
// time and refuses the others at once. Installs here wait their turn, on a
// file lock of their own across test processes and on dpkg's lock.
package debpkg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Need returns the path of bin, installing Debian's package pkg when bin is
// not on PATH; the test fails with how to get it when that is not possible.
func Need(tb testing.TB, bin, pkg string) string {
	tb.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	out, err := install(bin, pkg)
	if p, lerr := exec.LookPath(bin); lerr == nil {
		return p
	}
	tb.Fatalf("%s is needed and could not be installed (%v): run `apt-get update && apt-get install -y %s` as root\n%s", bin, err, pkg, tail(out))
	return ""
}

// install runs apt-get under a lock shared by the test processes; the
// package lists are fetched only when the install fails without them.
func install(bin, pkg string) ([]byte, error) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "sekisho-apt.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(bin); err == nil {
		return nil, nil // another test process installed it meanwhile
	}
	apt := func(args ...string) ([]byte, error) {
		cmd := exec.Command("apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := apt("install", "-y", pkg)
	if err == nil {
		return out, nil
	}
	o, _ := apt("update")
	out = append(out, o...)
	o, err = apt("install", "-y", pkg)
	return append(out, o...), err
}

// tail is the end of an installer's output, where its error is.
func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		return fmt.Sprintf("...%s", b[len(b)-n:])
	}
	return string(b)
}
