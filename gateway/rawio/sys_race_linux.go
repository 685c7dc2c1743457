//go:build race

package rawio

import "syscall"

// Under the race detector the calls go through the syscall package, whose
// Read and Write tell the detector that a write to one descriptor happens
// before a read from another, as net.TCPConn's do; raw calls cannot, and
// a test with both ends of a connection in one process would see false
// races.

// sysRead is read(2).
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) { return errno(syscall.Read(int(fd), p)) }

// sysWrite is write(2); the runtime turns SIGPIPE on a socket into EPIPE.
func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) { return errno(syscall.Write(int(fd), p)) }

func errno(n int, err error) (int, syscall.Errno) {
	if err != nil {
		return n, err.(syscall.Errno)
	}
	return n, 0
}
