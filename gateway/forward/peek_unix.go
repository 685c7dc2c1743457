//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package forward

import "syscall"

const canPeek = true

// peek looks at the socket without reading or blocking: quiet when there
// is nothing to read (EAGAIN), not when the server closed the connection
// (0 bytes) or sent something.
func (c *conn) peek(fd uintptr) bool {
	err := peekSocket(fd, c.peekBuf[:])
	c.peekQuiet = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true
}
