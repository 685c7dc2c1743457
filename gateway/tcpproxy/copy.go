package tcpproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/sekisho/sekisho/balancer"
)

// bufSize is the copy loop's buffer, taken from a pool for the
// connection's copying stage (TLS connections, or without splice).
const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// bytesReportEvery spaces the byte counts fed to least_bandwidth, whose
// rate would otherwise see a long connection only when it ends.
const bytesReportEvery = time.Second

// session is one connection's copying stage.
type session struct {
	client, server net.Conn
	srv            *balancer.Server
	idle           time.Duration
	splice         bool // between TCP sockets, where the system has it
	start          time.Time
	last           atomic.Int64 // time.Since(start) of the last byte read or written, either way

	in, out int64 // client→server and back; each written by its own pump only

	mu      sync.Mutex
	cause   string
	err     error
	aborted bool // both conns are being closed: errors from now on are ours
	done    bool
	timer   *time.Timer
}

// run copies both ways until both directions have ended or the session
// was aborted.
func (x *session) run(ctx context.Context) {
	if x.idle > 0 {
		x.mu.Lock()
		x.timer = time.AfterFunc(x.idle, x.checkIdle)
		x.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, func() { x.abort(Shutdown) })
	var wg sync.WaitGroup
	wg.Go(func() { x.in = x.pump(x.server, x.client, clientSide) })
	x.out = x.pump(x.client, x.server, serverSide)
	wg.Wait()
	stop()
	x.mu.Lock()
	x.done = true
	if x.timer != nil {
		x.timer.Stop()
	}
	x.mu.Unlock()
}

type side int

const (
	clientSide side = iota
	serverSide
)

func (s side) closed() string {
	if s == clientSide {
		return ClientClosed
	}
	return ServerClosed
}

func (s side) other() side { return 1 - s }

func (s side) failed() string {
	if s == clientSide {
		return ClientError
	}
	return ServerError
}

// pump copies from src (the from side) to dst until src ends or either
// fails, and returns the bytes written. Between two TCP sockets it
// splices (Linux), else it copies through a buffer.
func (x *session) pump(dst, src net.Conn, from side) int64 {
	m := meter{x: x}
	defer m.flush()
	if x.splice {
		if d, s := tcpOf(dst), tcpOf(src); d != nil && s != nil {
			if pc, ok := src.(*proxyproto.Conn); ok && !x.drain(dst, pc, from, &m) {
				return m.total
			}
			if x.spliceLoop(d, s, from, &m) {
				return m.total
			}
			// Splicing could not go on (no pipe to be had): what was
			// read has been delivered, the buffer takes over.
		}
	}
	x.copyLoop(dst, src, from, &m)
	return m.total
}

// copyLoop copies through a pooled buffer.
func (x *session) copyLoop(dst, src net.Conn, from side, m *meter) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			x.touch()
			nw, werr := dst.Write(buf[:nr])
			m.moved(nw)
			if werr != nil {
				x.fail(from.other(), werr)
				return
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				x.finish(from, dst)
			} else {
				x.fail(from, rerr)
			}
			return
		}
	}
}

// drain passes on what go-proxyproto read past the client's PROXY header
// into its buffer, before splicing from the socket below it: with a
// deadline in the past, its Read serves the buffer, then fails without
// reading the socket. False when the session ended.
func (x *session) drain(dst net.Conn, pc *proxyproto.Conn, from side, m *meter) bool {
	if err := pc.SetReadDeadline(time.Unix(1, 0)); err != nil {
		x.fail(from, err)
		return false
	}
	var buf [512]byte
	for {
		n, err := pc.Read(buf[:])
		if n > 0 {
			x.touch()
			nw, werr := dst.Write(buf[:n])
			m.moved(nw)
			if werr != nil {
				x.fail(from.other(), werr)
				return false
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if err := pc.SetReadDeadline(time.Time{}); err != nil {
				x.fail(from, err)
				return false
			}
			return true
		}
		if err != nil { // the session is being torn down
			x.fail(from, err)
			return false
		}
	}
}

// meter counts one direction's bytes, keeps the idle clock and feeds
// least_bandwidth.
type meter struct {
	x                 *session
	total, unreported int64
	reported          time.Duration
}

func (m *meter) moved(n int) {
	now := m.x.touch()
	m.total += int64(n)
	m.unreported += int64(n)
	if now-m.reported >= bytesReportEvery {
		m.flush()
		m.reported = now
	}
}

func (m *meter) flush() {
	if m.unreported > 0 {
		m.x.srv.ObserveBytes(m.unreported)
		m.unreported = 0
	}
}

// tcpOf is the TCP socket under c, if c is one or a go-proxyproto conn
// over one; nil for TLS and anything else.
func tcpOf(c net.Conn) *net.TCPConn {
	switch v := c.(type) {
	case *net.TCPConn:
		return v
	case *proxyproto.Conn:
		tc, _ := v.TCPConn()
		return tc
	}
	return nil
}

// touch records activity now, and returns now as time since the start.
func (x *session) touch() time.Duration {
	now := time.Since(x.start)
	x.last.Store(int64(now))
	return now
}

// finish passes on a side's EOF as a half-close of the other side's
// write, so that side can still answer (a shutdown(SHUT_WR) client waits
// for the server's last bytes).
func (x *session) finish(from side, dst net.Conn) {
	x.mu.Lock()
	if x.cause == "" {
		x.cause = from.closed()
	}
	aborted := x.aborted
	x.mu.Unlock()
	if aborted {
		return
	}
	if err := closeWrite(dst); err != nil {
		// A peer that cannot be half-closed must still learn that nothing
		// more comes; the other direction ends with it.
		closeNow(dst)
	}
}

// fail ends the session for an error on side s.
func (x *session) fail(s side, err error) {
	x.mu.Lock()
	if x.cause == "" {
		x.cause = s.failed()
	}
	if x.err == nil && !x.aborted {
		x.err = err
	}
	x.mu.Unlock()
	x.abort("")
}

// abort closes both sides at once, recording cause unless an earlier
// event decided the termination.
func (x *session) abort(cause string) {
	x.mu.Lock()
	if x.cause == "" {
		x.cause = cause
	}
	already := x.aborted
	x.aborted = true
	x.mu.Unlock()
	if !already {
		closeNow(x.client)
		closeNow(x.server)
	}
}

// checkIdle runs when the idle timeout may have passed: it aborts the
// session if nothing moved since, or waits for the rest of the timeout.
func (x *session) checkIdle() {
	quiet := time.Since(x.start) - time.Duration(x.last.Load())
	if quiet >= x.idle {
		x.abort(IdleTimeout)
		return
	}
	x.mu.Lock()
	if !x.done {
		x.timer.Reset(x.idle - quiet)
	}
	x.mu.Unlock()
}

// closeWrite half-closes c: a TLS close_notify, then a TCP FIN.
func closeWrite(c net.Conn) error {
	switch v := c.(type) {
	case *tls.Conn:
		if err := v.CloseWrite(); err != nil {
			return err
		}
		// After close_notify the client's TLS library reports EOF; the
		// FIN tells the same to whatever reads the socket below it.
		return closeWrite(v.NetConn())
	case *proxyproto.Conn:
		// Its own conn does the half-close: go-proxyproto's Conn has no CloseWrite.
		return closeWrite(v.Raw())
	case interface{ CloseWrite() error }:
		return v.CloseWrite()
	}
	return errors.ErrUnsupported
}

// closeNow closes c without a TLS close_notify, which could wait up to
// 5 s on a peer that does not read: the session is being torn down.
func closeNow(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		tc.NetConn().Close()
		return
	}
	c.Close()
}
