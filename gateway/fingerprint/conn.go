package fingerprint

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// maxRecorded bounds what a RecordingConn keeps: a ClientHello is about
// 2 KiB even with post-quantum key shares, and one not over by 16 KiB is
// not worth holding memory for.
const maxRecorded = 16 << 10

// RecordingConn is a net.Conn that keeps a copy of the first bytes read
// from it until they hold the client's ClientHello, so that a TLS
// listener served by crypto/tls can compute JA4 from the raw hello: wrap
// the accepted connection (after any PROXY protocol header) before
// tls.Server, and in GetConfigForClient find it as ClientHelloInfo.Conn.
// Recording stops at the hello's end, at 16 KiB, or at the first byte
// that cannot be TLS; from then on Read costs one atomic load. One
// goroutine may Read while others call ClientHello.
type RecordingConn struct {
	net.Conn
	done  atomic.Bool
	mu    sync.Mutex
	buf   []byte // what was read, until done
	hello []byte
	err   error
}

// NewRecordingConn wraps c to record its ClientHello.
func NewRecordingConn(c net.Conn) *RecordingConn {
	return &RecordingConn{Conn: c}
}

// NetConn returns the wrapped connection, for code that needs its own
// methods (CloseWrite, SetKeepAlive) which the wrapper hides.
func (c *RecordingConn) NetConn() net.Conn { return c.Conn }

// Read reads from the wrapped connection, recording while the hello is
// still incomplete.
func (c *RecordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.done.Load() {
		c.record(p[:n])
	}
	return n, err
}

// record appends p and ends recording once the records hold a whole
// ClientHello, cannot be one, or have reached maxRecorded.
func (c *RecordingConn) record(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p[:min(len(p), maxRecorded-len(c.buf))]...)
	msg, err := ReadClientHelloRecords(c.buf)
	switch {
	case err == nil:
		c.hello = bytes.Clone(msg)
	case !errors.Is(err, ErrIncomplete):
		c.err = err
	case len(c.buf) < maxRecorded:
		return
	default:
		c.err = fmt.Errorf("%w: not over within %d bytes", ErrTooLarge, maxRecorded)
	}
	c.buf = nil
	c.done.Store(true)
}

// ClientHello returns the recorded ClientHello handshake message, for
// ParseClientHello; it must not be modified. The error wraps
// ErrIncomplete while the hello has not all been read, and another error
// when the connection did not start with one.
func (c *RecordingConn) ClientHello() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hello == nil && c.err == nil {
		return nil, fmt.Errorf("%w: %d bytes read", ErrIncomplete, len(c.buf))
	}
	return c.hello, c.err
}
