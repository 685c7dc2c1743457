//go:build !race

package rawio

import (
	"syscall"
	"unsafe"
)

// sysRead is read(2), raw.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// sysWrite is send(2) with MSG_NOSIGNAL, raw: a peer that has gone gives
// EPIPE, not a SIGPIPE.
func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		syscall.MSG_NOSIGNAL, 0, 0)
	return int(r), e
}
