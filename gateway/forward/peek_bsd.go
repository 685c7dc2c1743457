//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package forward

import "syscall"

// peekSocket is a non-blocking MSG_PEEK recv(2).
func peekSocket(fd uintptr, b []byte) error {
	_, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err
}
