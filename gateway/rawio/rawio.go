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
//
// A raw call cannot be handed to another thread while it runs, but none runs
// long: on a non-blocking socket one call moves at most what the socket's
// buffer holds (a few MiB at most), about as long as a raw read of the same
// size, and far less than the 10 ms the runtime lets user code run before it
// preempts it. Writes of any size are therefore raw: in the 1 MiB upload
// benchmark, 1 MiB writes made through the syscall package kept sysmon
// polling for the whole upload.
package rawio

import (
	"net"
	"syscall"
)

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
