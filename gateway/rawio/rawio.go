// Package rawio gives TCP connections a Read and Write that call the kernel
// directly, outside the Go runtime's system call accounting.
//
// Why: a goroutine entering a system call through the syscall package wakes
// the runtime's monitor thread (sysmon) if it was asleep, and sysmon then
// polls every 20 µs for the next millisecond, taking the P of any call that
// lasts longer. A gateway sleeps between requests and then makes its calls
// in bursts, so each burst paid for a wake-up and that polling: two thirds
// of the proxy's context switches in the benchmark, and about a quarter of
// its CPU for a browser GET. Reads and writes on a non-blocking socket
// return at once, so they need none of it; waiting for the socket is still
// the runtime network poller's (syscall.RawConn), which honours deadlines
// and Close as net.TCPConn does.
package rawio

import (
	"net"
	"syscall"
)

// rawWriteMax is the largest write made raw. A larger one can take long
// enough that the runtime should be free to hand the P on, and in the
// 1 MiB upload benchmark raw 64 KiB writes only moved CPU from the proxy to
// the server reading them (sharing a core), without saving any.
const rawWriteMax = 32 << 10

// Conn is a TCP connection whose Read and Write are raw system calls;
// everything else is its net.TCPConn's.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// Wrap returns c with raw reads and writes when c is a *net.TCPConn on a
// system this package supports, and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !supported {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{TCPConn: tc, rc: rc}
}

// opError wraps err as net.TCPConn would.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err // the RawConn's, whose Op is "raw-read" or "raw-write"
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
