//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package forward

import (
	"syscall"
	"unsafe"
)

const canPeek = true

// peek looks at the socket without reading or blocking: quiet when there
// is nothing to read (EAGAIN), not when the server closed the connection
// (0 bytes) or sent something. A raw call, for the reason rawio gives.
func (c *conn) peek(fd uintptr) bool {
	_, _, err := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	c.peekQuiet = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true
}
