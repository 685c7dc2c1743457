package forward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// transport is the HTTP/1.1 client side towards the servers. It replaces
// http.Transport, whose two goroutines per connection (a read loop and a
// write loop, fed through channels) cost more CPU than the proxy's own work:
// here the request's goroutine writes the request and reads the response
// itself. The framing is net/http's: (*http.Request).Write out,
// http.ReadResponse in, the functions http.Transport uses, so a request and a
// response mean the same to the server and to the client as they did.
//
// What http.Transport did that matters to a proxy is kept: persistent
// connections per server (LIFO, bounded, closed after idleTimeout), a
// connection the server closed while idle is not used (checked before each
// reuse) and a request that failed on a reused connection is sent again on
// a new one under net/http's rules, context cancellation, the response
// header timeout, the 10 MiB response header limit, header validation, 1xx
// responses (passed to the ClientTrace, as ReverseProxy wants), Expect:
// 100-continue, and 101 Switching Protocols (the connection is handed over).
type transport struct {
	dial          func(ctx context.Context, addr string) (net.Conn, error)
	headerTimeout time.Duration // 0: none
	idleTimeout   time.Duration
	maxIdle       int

	mu      sync.Mutex
	idle    map[string][]*conn // per pool key (the server's address, and the client's when connections are private), most recently used last
	janitor *time.Timer        // armed while there are idle connections
}

const (
	// maxResponseHeaderBytes is http.Transport's default bound on a
	// response's headers (MaxResponseHeaderBytes).
	maxResponseHeaderBytes = 10 << 20
	// expectContinueTimeout is how long a body with Expect: 100-continue
	// waits for the server's 100 before it is sent anyway.
	expectContinueTimeout = time.Second
	// maxWriteWait is how long a finished response waits for its
	// request's streamed body to be written before the connection is
	// given up rather than reused (http.Transport's maxWriteWaitBeforeConnReuse).
	maxWriteWait = 50 * time.Millisecond
	// janitorPeriod is how often idle connections are checked for having
	// been closed by their server or having been idle too long.
	janitorPeriod = 5 * time.Second
	// writeBufferSize holds the headers and a buffered body (bufferedBodyMax)
	// for one write.
	writeBufferSize = bufferedBodyMax + 4<<10
)

// aLongTimeAgo is a deadline in the past: it makes blocked reads and
// writes on a connection return at once.
var aLongTimeAgo = time.Unix(1, 0)

// writers are lent to a connection for the time it writes one request, so
// an idle connection holds no write buffer.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

func newTransport(dial func(ctx context.Context, addr string) (net.Conn, error), headerTimeout time.Duration, maxIdle int) *transport {
	if maxIdle <= 0 {
		maxIdle = http.DefaultMaxIdleConnsPerHost // what MaxIdleConnsPerHost 0 meant
	}
	return &transport{
		dial:          dial,
		headerTimeout: headerTimeout,
		idleTimeout:   90 * time.Second,
		maxIdle:       maxIdle,
		idle:          map[string][]*conn{},
	}
}

// conn is one connection to a server.
type conn struct {
	t   *transport
	key string // its idle pool
	nc  net.Conn
	raw syscall.RawConn // for the liveness check; nil if the conn has none
	br  *bufio.Reader   // reads through conn.Read

	idleAt time.Time
	reused bool // it carried a request before this one

	// Per request.
	readLimit int64 // bytes the response headers may still take
	nread     int64 // bytes read from the server
	nwritten  int64 // bytes written to the server (by the writing goroutine)
	aborted   atomic.Bool
	// hdrMu orders the response header deadline, which a streaming
	// writer sets when it finishes, with its removal once the headers
	// are in.
	hdrMu      sync.Mutex
	headersIn  bool
	abortFunc  func()             // c.abort, made once
	peekFunc   func(uintptr) bool // c.peek, made once
	peekBuf    [1]byte
	peekQuiet  bool       // the last peek found nothing to read and no end
	writerDone chan error // the streaming writer's result; nil when the request was written inline
}

// Read is the bufio.Reader's source: it bounds the response headers as
// http.Transport does.
func (c *conn) Read(p []byte) (int, error) {
	if c.readLimit <= 0 {
		return 0, fmt.Errorf("net/http: response headers exceed %d bytes", maxResponseHeaderBytes)
	}
	if int64(len(p)) > c.readLimit {
		p = p[:c.readLimit]
	}
	n, err := c.nc.Read(p)
	c.readLimit -= int64(n)
	c.nread += int64(n)
	return n, err
}

// Write is the lent bufio.Writer's destination.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.nwritten += int64(n)
	return n, err
}

// ReadFrom copies a streamed body to the server: the lent bufio.Writer
// hands it the body once the request's headers are out. Through a large
// copy buffer one read takes all that the client has sent so far and one
// write passes it on, much as nginx reads a body whole before sending it:
// in the 1 MiB upload benchmark the gateway makes about 12 system calls per
// request instead of about 60 with the write buffer's 68 KiB, and uses a
// third less CPU. A read returns what has arrived, without waiting for the
// buffer to fill, so a body still streams.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if copyBuffersLent.Add(1) > copyBuffersMax {
		copyBuffersLent.Add(-1)
		return io.Copy(writerOnly{c}, r)
	}
	defer copyBuffersLent.Add(-1)
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(writerOnly{c}, r, *bp)
}

const (
	// copyBufferSize is the copy buffer of a streamed request body.
	copyBufferSize = 1 << 20
	// copyBuffersMax bounds the copy buffers lent at once, and so their
	// memory (64 MiB); past it, bodies are copied 32 KiB at a time.
	copyBuffersMax = 64
)

var (
	copyBuffers     = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}
	copyBuffersLent atomic.Int32
)

// writerOnly hides a ReaderFrom, so that io.Copy uses its buffer.
type writerOnly struct{ io.Writer }

func (c *conn) close() { c.nc.Close() }

// abort runs when the request's context ends: every blocked read or write
// on the connection returns, and it will not be reused.
func (c *conn) abort() {
	c.aborted.Store(true)
	c.nc.SetDeadline(aLongTimeAgo)
}

// alive tells whether an idle connection can carry a request: nothing
// buffered, and the server has neither closed it nor sent anything
// unasked (a 408, say) since. One non-blocking peek at the socket; without
// it a POST could be sent on a connection the server had closed, and could
// then not be sent again.
func (c *conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	if err := c.raw.Read(c.peekFunc); err != nil {
		return false
	}
	return c.peekQuiet
}

// getConn takes the most recently used live idle connection of the pool
// key, or dials addr for a new one.
func (t *transport) getConn(ctx context.Context, addr, key string) (*conn, error) {
	for {
		t.mu.Lock()
		list := t.idle[key]
		n := len(list)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		c := list[n-1]
		list[n-1] = nil
		t.idle[key] = list[:n-1]
		t.mu.Unlock()
		if time.Since(c.idleAt) > t.idleTimeout || !c.alive() {
			c.close()
			continue
		}
		c.reused = true
		return c, nil
	}
	nc, err := t.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &conn{t: t, key: key, nc: nc}
	c.br = bufio.NewReaderSize(c, 4<<10) // http.Transport's default ReadBufferSize
	c.abortFunc = c.abort
	if sc, ok := nc.(syscall.Conn); ok && canPeek {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.peekFunc = c.peek
		}
	}
	return c, nil
}

// putConn keeps c for the next request to its server, or closes it.
func (t *transport) putConn(c *conn) {
	if c.br.Buffered() > 0 {
		c.close() // the server sent more than the response: unsolicited
		return
	}
	c.idleAt = time.Now()
	c.writerDone = nil
	t.mu.Lock()
	list := t.idle[c.key]
	if len(list) >= t.maxIdle {
		t.mu.Unlock()
		c.close()
		return
	}
	t.idle[c.key] = append(list, c)
	if t.janitor == nil {
		t.janitor = time.AfterFunc(janitorPeriod, t.sweep)
	}
	t.mu.Unlock()
}

// sweep closes idle connections that timed out or that their server
// closed (http.Transport noticed those at once, with a goroutine per
// connection); it stops once nothing is idle.
func (t *transport) sweep() {
	var dead []*conn
	t.mu.Lock()
	now := time.Now()
	for addr, list := range t.idle {
		kept := list[:0]
		for _, c := range list {
			if now.Sub(c.idleAt) > t.idleTimeout || !c.alive() {
				dead = append(dead, c)
				continue
			}
			kept = append(kept, c)
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = kept
		}
	}
	if len(t.idle) > 0 {
		t.janitor.Reset(janitorPeriod)
	} else {
		t.janitor = nil
	}
	t.mu.Unlock()
	for _, c := range dead {
		c.close()
	}
}

// closeIdle closes every idle connection.
func (t *transport) closeIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	if t.janitor != nil {
		t.janitor.Stop()
		t.janitor = nil
	}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.close()
		}
	}
}

// validate refuses what http.Transport refuses before sending: a method or
// header that is not a valid token or value.
func validate(req *http.Request) error {
	if req.Method != "" && !httpguts.ValidHeaderFieldName(req.Method) {
		return fmt.Errorf("net/http: invalid method %q", req.Method)
	}
	if req.URL == nil || req.URL.Host == "" {
		return errors.New("http: no Host in request URL")
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				// The value is left out: it may be a secret.
				return fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// roundTrip sends req to the server at addr, over a connection of the pool
// key, and returns its response. A body that is in memory has req.GetBody
// set; any other body is streamed.
func (t *transport) roundTrip(req *http.Request, addr, key string) (*http.Response, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	ctx := req.Context()
	for {
		c, err := t.getConn(ctx, addr, key)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		if !c.retryable(req, err) {
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// errNotSent marks a request of which no byte reached the connection.
type errNotSent struct{ error }

func (e errNotSent) Unwrap() error { return e.error }

// errNoResponse marks a request that was sent on a reused connection that
// then ended (or failed) before the first byte of a response: the server
// most likely closed it while idle, as the request went out.
type errNoResponse struct{ error }

func (e errNoResponse) Unwrap() error { return e.error }

// retryable applies http.Transport's rules for sending a request again on
// another connection: only after a failure on a reused connection; when
// nothing was written, if the body can be sent again; when the request was
// written but no byte of response came, only if it is also idempotent.
func (c *conn) retryable(req *http.Request, err error) bool {
	if !c.reused || req.Context().Err() != nil {
		return false
	}
	rewindable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var ns errNotSent
	if errors.As(err, &ns) {
		if cb, ok := req.Body.(*countingBody); ok && cb.n.Load() == 0 {
			rewindable = true // not a byte of it was read
		}
		return rewindable
	}
	var nr errNoResponse
	if !errors.As(err, &nr) || !rewindable {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// roundTrip carries one request on c. On an error c is closed.
func (c *conn) roundTrip(req *http.Request) (resp *http.Response, err error) {
	ctx := req.Context()
	c.nread, c.nwritten = 0, 0
	c.headersIn = false
	stop := context.AfterFunc(ctx, c.abortFunc)
	defer func() {
		if err != nil {
			stop()
			c.close()
			if c.aborted.Load() && ctx.Err() != nil {
				err = ctx.Err()
			}
		}
	}()

	hasBody := req.Body != nil && req.Body != http.NoBody
	expect := hasBody && expectsContinue(req.Header)
	var gate chan bool
	if hasBody && (req.GetBody == nil || expect) {
		// A streamed body is written by a goroutine of its own while the
		// response is awaited: a server may answer (a 413, say) before it
		// has read it all, and that answer is then what the client gets.
		gate = c.startWriter(req, expect)
	} else {
		if c.t.headerTimeout > 0 {
			// Writing a request held in memory takes no time; the
			// deadline covers it too in case the server reads nothing.
			c.nc.SetDeadline(time.Now().Add(c.t.headerTimeout))
		}
		bw := writers.Get().(*bufio.Writer)
		bw.Reset(c)
		err = req.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
		bw.Reset(nil)
		writers.Put(bw)
		if err != nil {
			if c.nwritten == 0 {
				return nil, errNotSent{err}
			}
			return nil, err
		}
	}

	resp, err = c.readResponse(req, gate)
	c.hdrMu.Lock()
	c.headersIn = true
	c.hdrMu.Unlock()
	if c.t.headerTimeout > 0 {
		c.nc.SetDeadline(time.Time{})
		if c.aborted.Load() {
			c.nc.SetDeadline(aLongTimeAgo) // the abort came before the reset: keep it
		}
	}
	if err != nil {
		if c.writerDone != nil {
			select {
			case werr := <-c.writerDone:
				if werr != nil && !errors.Is(werr, errSkipBody) {
					err = werr // what the writer hit explains the rest
					if c.nwritten == 0 {
						return nil, errNotSent{err}
					}
				}
			default:
			}
		}
		if c.nread == 0 && !isTimeout(err) {
			// A timeout is a server that took the request and is silent,
			// not one that had closed the connection: sending the request
			// again would double the wait and the load (retry_on:
			// response-timeout decides, in Backend.RoundTrip).
			return nil, errNoResponse{err}
		}
		return nil, err
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now belongs to whoever reads the body.
		if !stop() {
			return nil, ctx.Err()
		}
		resp.Body = &upgradedBody{br: c.br, nc: c.nc}
		return resp, nil
	}
	keep := !resp.Close && !req.Close && resp.StatusCode >= 200
	if resp.Body == http.NoBody {
		c.finish(stop, keep)
		return resp, nil
	}
	resp.Body = &responseBody{c: c, rc: resp.Body, ctx: ctx, stop: stop, keep: keep}
	return resp, nil
}

// expectsContinue tells whether a request's body waits for the server's
// 100 Continue: such a body is written by a goroutine of its own (and so
// Backend.ServeHTTP does not reuse its buffer).
func expectsContinue(h http.Header) bool {
	return httpguts.HeaderValuesContainsToken(h["Expect"], "100-continue")
}

// errSkipBody is what a body waiting for 100-continue returns when the
// server answered without asking for it: the request ends there, and so
// does the connection.
var errSkipBody = errors.New("forward: server answered before the body was sent")

// startWriter writes req on its own goroutine. With expect, the body waits
// for the server's 100 Continue (or expectContinueTimeout); the returned
// channel says whether to send it.
func (c *conn) startWriter(req *http.Request, expect bool) chan bool {
	var gate chan bool
	body := &writerBody{r: req.Body}
	if expect {
		gate = make(chan bool, 1)
		body.gate = gate
	}
	// A shallow copy: the caller's request keeps its body.
	out := new(http.Request)
	*out = *req
	out.Body = body
	done := make(chan error, 1)
	c.writerDone = done
	go func() {
		bw := writers.Get().(*bufio.Writer)
		bw.Reset(c)
		err := out.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
		bw.Reset(nil)
		writers.Put(bw)
		switch {
		case err == nil:
			c.hdrMu.Lock()
			if !c.headersIn && c.t.headerTimeout > 0 {
				c.nc.SetReadDeadline(time.Now().Add(c.t.headerTimeout))
			}
			c.hdrMu.Unlock()
		case body.err != nil && !errors.Is(body.err, errSkipBody):
			// The client's body failed (it went away, say): the server
			// would wait for the rest of it, so the connection goes,
			// after the error is posted for the reader it wakes.
			done <- body.err
			c.close()
			return
		default:
			// The connection failed, or the body was skipped: the
			// response, if one comes, is still read; bound the wait.
			c.hdrMu.Lock()
			if !c.headersIn && c.t.headerTimeout > 0 {
				c.nc.SetReadDeadline(time.Now().Add(c.t.headerTimeout))
			}
			c.hdrMu.Unlock()
		}
		done <- err
	}()
	return gate
}

// writerBody is a streamed request body as the writing goroutine reads it:
// it remembers a read error (the client's, not the server's), and with a
// gate, holds its first byte until the server says 100 Continue.
type writerBody struct {
	r    io.Reader
	gate chan bool
	err  error
}

func (b *writerBody) Read(p []byte) (int, error) {
	if b.gate != nil {
		t := time.NewTimer(expectContinueTimeout)
		select {
		case send := <-b.gate:
			if !send {
				t.Stop()
				b.err = errSkipBody
				return 0, errSkipBody
			}
		case <-t.C:
		}
		t.Stop()
		b.gate = nil
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *writerBody) Close() error { return nil }

// readResponse reads the final response, passing 1xx responses to the
// request's ClientTrace (ReverseProxy relays them) and opening the gate of
// an Expect: 100-continue body.
func (c *conn) readResponse(req *http.Request, gate chan bool) (*http.Response, error) {
	c.readLimit = maxResponseHeaderBytes
	trace := httptrace.ContextClientTrace(req.Context())
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if gate != nil && code == http.StatusContinue {
			gate <- true
			gate = nil
		}
		if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			if trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
					return nil, err
				}
				// Passed on: the next response gets its own header budget.
				c.readLimit = maxResponseHeaderBytes
			}
			continue
		}
		if gate != nil {
			// A final answer without a 100: the body follows only if
			// the connection is to carry more requests.
			gate <- !resp.Close && !req.Close
		}
		c.readLimit = math.MaxInt64 // bodies are not bounded here
		return resp, nil
	}
}

// finish ends a request on c: back to the idle pool when keep says the
// response allows it, the context did not end, and a streamed request
// body was written whole; closed otherwise.
func (c *conn) finish(stop func() bool, keep bool) {
	if !stop() {
		keep = false // the abort ran or is running: deadlines are in the past
	}
	if keep && c.writerDone != nil {
		select {
		case err := <-c.writerDone:
			keep = err == nil
		default:
			t := time.NewTimer(maxWriteWait)
			select {
			case err := <-c.writerDone:
				keep = err == nil
			case <-t.C:
				keep = false
			}
			t.Stop()
		}
	}
	if keep {
		c.t.putConn(c)
		return
	}
	c.close()
}

// responseBody returns the connection when the body has been read to its
// end, and closes it when the body is closed before.
type responseBody struct {
	c    *conn
	rc   io.ReadCloser
	ctx  context.Context
	stop func() bool
	keep bool
	done atomic.Bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.EOF // the connection may carry another request by now
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		if b.done.CompareAndSwap(false, true) {
			b.c.finish(b.stop, b.keep)
		}
	case err != nil:
		if b.done.CompareAndSwap(false, true) {
			b.stop()
			b.c.close()
		}
		if b.c.aborted.Load() {
			if cerr := b.ctx.Err(); cerr != nil {
				err = cerr
			}
		}
	}
	return n, err
}

// Close before the end drops the connection: reading the rest to keep it
// could take any time.
func (b *responseBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.stop()
		b.c.close()
	}
	return nil
}

// upgradedBody is a 101 response's body: the connection itself, after
// what the reader had buffered.
type upgradedBody struct {
	br *bufio.Reader
	nc net.Conn
}

func (b *upgradedBody) Read(p []byte) (int, error) {
	if b.br != nil {
		if n := b.br.Buffered(); n > 0 {
			return b.br.Read(p[:min(len(p), n)])
		}
		b.br = nil
	}
	return b.nc.Read(p)
}

func (b *upgradedBody) Write(p []byte) (int, error) { return b.nc.Write(p) }
func (b *upgradedBody) Close() error                { return b.nc.Close() }

// CloseWrite half-closes the connection, as http.Transport's 101 body does.
func (b *upgradedBody) CloseWrite() error {
	if cw, ok := b.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("CloseWrite: %w", http.ErrNotSupported)
}
