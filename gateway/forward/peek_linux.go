package forward

import (
	"syscall"
	"unsafe"
)

// peekSocket is a non-blocking MSG_PEEK recv(2), made raw for the reason
// gateway/rawio gives: it runs once per request on a reused connection.
func peekSocket(fd uintptr, b []byte) error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
