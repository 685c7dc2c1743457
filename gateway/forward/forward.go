// Package forward sends inspected requests to a backend's servers: one
// Package forward sends inspected requests to a backend's servers: one
// httputil.ReverseProxy per backend (Rewrite, never Director) over an
// HTTP/1.1 transport of its own (transport.go) with keep-alive pools per
// server, X-Forwarded-* set by the gateway, retries on other servers (a
// failed connect always; what else, for idempotent requests whose body can
// be sent again, as configured), and each outcome reported to the
// balancer's passive checks.
package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/rawio"
)

// Options tune how a backend's servers are reached.
type Options struct {
	ConnectTimeout        time.Duration
	ResponseHeaderTimeout time.Duration
	MaxIdleConnsPerServer int
	// ClientOut says how servers learn the client's address.
	ClientOut ClientOut
	// Transparent connects to the servers from the client's own address
	// (HAProxy's `source 0.0.0.0 usesrc clientip`); see CanTransparent.
	Transparent bool
	// Retries is how many other servers a request may try after the first
	// (HAProxy's retries).
	Retries int
	// RetryOn says what, beyond a failed connect, retries an idempotent
	// request whose body can be sent again; see ParseRetryOn.
	RetryOn RetryOn
	// ErrorLog receives the reverse proxy's own rare complaints.
	ErrorLog *log.Logger
}

// Exchange is one request's trip to the backend. The handler puts it in the
// request context (WithExchange) and reads it back for the access log.
type Exchange struct {
	// Set by the handler before forwarding.
	ClientIP   string               // the resolved client: X-Forwarded-For, the PROXY header's source, stick keys
	JA4        string               // the client's TLS fingerprint, for stick tables on ja4
	ClientPort int                  // 0 when a trusted proxy reported the client
	PeerIP     string               // the trusted proxy that reported the client, if one did
	ClientConn string               // the client connection (its remote address), which PROXY connections are private to
	LocalAddr  netip.AddrPort       // where the client connected: X-Forwarded-Port, the PROXY destination
	Proto      string               // "http" or "https": X-Forwarded-Proto
	Host       string               // the request's Host, for the authority TLV
	RequestID  string               // for the unique_id TLV
	TLS        *tls.ConnectionState // the client connection's, for the TLVs
	// OnResponse, when set, sees the response headers before they are sent;
	// an error refuses the response (the status comes from StatusError).
	OnResponse func(*http.Response) error
	// OnError writes the gateway's error page.
	OnError func(w http.ResponseWriter, r *http.Request, status int)

	// Filled by the backend.
	Server   *balancer.Server
	Attempts int
	Err      error

	body     []byte                        // the request body when it was read whole (bufferedBodyMax)
	getBody  func() (io.ReadCloser, error) // a new reader of body, for a replay
	session  balancer.Session              // what the persistence cookie says
	stickKey string                        // the request's key in the stick table, if any
	stuck    *balancer.Server              // the server the stick table holds for it
	// connectNs and responseNs are atomics so that an Exchange stays safe
	// to read whichever goroutine the transport dials or reads on.
	connectNs  atomic.Int64
	responseNs atomic.Int64
	queueNs    atomic.Int64
	dialFailed atomic.Bool // the last attempt's dial failed
}

// QueueTime is the time spent waiting for a server below its maxconn.
func (x *Exchange) QueueTime() time.Duration { return time.Duration(x.queueNs.Load()) }

// ConnectTime is the time spent opening a new connection (0 when one from the pool was used).
func (x *Exchange) ConnectTime() time.Duration { return time.Duration(x.connectNs.Load()) }

// ConnectFailed tells whether the last attempt could not connect to its
// server (HAProxy's %Tc is then -1).
func (x *Exchange) ConnectFailed() bool { return x.dialFailed.Load() }

// ResponseTime is the time from sending the request to the response headers, connect excluded.
func (x *Exchange) ResponseTime() time.Duration { return time.Duration(x.responseNs.Load()) }

type exchangeKey struct{}

// WithExchange returns ctx carrying x.
func WithExchange(ctx context.Context, x *Exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

func exchangeFrom(ctx context.Context) *Exchange {
	x, _ := ctx.Value(exchangeKey{}).(*Exchange)
	if x == nil {
		x = &Exchange{}
	}
	return x
}

// StatusError is an error that carries the status to answer with.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// ErrNoServer means no server of the backend could take the request.
var ErrNoServer = balancer.ErrNoServer

// RetryOn is the set of conditions that retry an idempotent request.
type RetryOn struct {
	EmptyResponse   bool // the connection closed or broke before a response
	ResponseTimeout bool // no response headers within the timeout
	Status          map[int]bool
}

// ParseRetryOn reads HAProxy's retry-on keywords: conn-failure (always
// on), empty-response, response-timeout, and the statuses 404, 408, 425,
// 500, 501, 502, 503, 504.
func ParseRetryOn(words []string) (RetryOn, error) {
	r := RetryOn{Status: map[int]bool{}}
	for _, w := range words {
		switch w {
		case "conn-failure":
		case "empty-response":
			r.EmptyResponse = true
		case "response-timeout":
			r.ResponseTimeout = true
		case "404", "408", "425", "500", "501", "502", "503", "504":
			n, _ := strconv.Atoi(w)
			r.Status[n] = true
		default:
			return r, fmt.Errorf("%q is not conn-failure, empty-response, response-timeout, or one of the statuses 404 408 425 500-504", w)
		}
	}
	return r, nil
}

// Backend forwards requests to one balancer pool.
type Backend struct {
	pool        *balancer.Pool
	transport   *transport
	proxy       *httputil.ReverseProxy
	retries     int
	retryOn     RetryOn
	errorLog    *log.Logger
	out         ClientOut
	transparent bool
}

// New builds the forwarding side of a pool.
func New(pool *balancer.Pool, o Options) *Backend {
	b := &Backend{pool: pool, retries: o.Retries, retryOn: o.RetryOn, errorLog: o.ErrorLog, out: o.ClientOut, transparent: o.Transparent}
	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	b.transport = newTransport(func(ctx context.Context, addr string) (net.Conn, error) {
		start := time.Now()
		x := exchangeFrom(ctx)
		d := dialer
		if b.transparent {
			td, err := transparentDialer(*dialer, x.ClientIP)
			if err != nil {
				return nil, &dialError{err}
			}
			d = td
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		x.connectNs.Store(int64(time.Since(start)))
		x.dialFailed.Store(err != nil)
		if err != nil {
			return nil, &dialError{err}
		}
		c = rawio.Wrap(c)
		if b.out.proxied() {
			// Written once: the connection now belongs to this client (poolKey).
			hdr, err := b.out.proxyHeader(x)
			if err == nil {
				_, err = c.Write(hdr)
			}
			if err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	}, o.ResponseHeaderTimeout, o.MaxIdleConnsPerServer)
	b.proxy = &httputil.ReverseProxy{
		Rewrite:        b.rewrite,
		Transport:      roundTripper{b},
		ModifyResponse: b.modifyResponse,
		ErrorHandler:   errorHandler,
		ErrorLog:       o.ErrorLog,
		BufferPool:     newBufferPool(),
	}
	return b
}

// ServeHTTP forwards r; its context should carry an Exchange.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x, ok := r.Context().Value(exchangeKey{}).(*Exchange)
	if !ok {
		// The forwarding keeps its state here: a caller that set none gets one.
		x = &Exchange{}
		r = r.WithContext(WithExchange(r.Context(), x))
	}
	if c := b.pool.Cookie(); c != nil {
		if ck, err := r.Cookie(c.Name); err == nil {
			x.session = b.pool.ReadCookie(ck.Value, time.Now())
		}
	}
	if b.pool.StickTable() != nil {
		x.stickKey = b.pool.StickKey(x.ClientIP, x.JA4, r)
		x.stuck = b.pool.Stuck(r.Context(), x.stickKey)
	}
	if n := r.ContentLength; n > 0 && n <= bufferedBodyMax && r.Body != nil {
		bp := bodyBuffers.Get().(*[]byte)
		// Only the transport reads the body, and it has written it by the
		// time the response is in, unless a server's 100 Continue was
		// awaited: that body is written by a goroutine that can outlive the
		// request, so its buffer is left to the garbage collector.
		if !expectsContinue(r.Header) {
			defer bodyBuffers.Put(bp)
		}
		x.body = (*bp)[:n]
		x.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(x.body)), nil }
		if _, err := io.ReadFull(r.Body, x.body); err != nil {
			errorHandler(w, r, &StatusError{Status: http.StatusBadRequest, Err: fmt.Errorf("reading the request body: %w", err)})
			return
		}
	}
	b.proxy.ServeHTTP(w, r)
}

// bodyBuffers hold the bodies read whole (bufferedBodyMax). Allocated per
// request, a 16 KiB JSON body was a third of a request's garbage; pooled,
// the benchmark's JSON requests take a fifth less CPU, from fewer
// collections.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, bufferedBodyMax); return &b }}

// bufferedBodyMax is the largest body read whole before a server is
// picked, as nginx's proxy_request_buffering does: it then goes out with
// its headers in one write, and a slow client never holds a server's
// connection. Larger bodies stream.
const bufferedBodyMax = 64 << 10

// poolKey is the idle pool a request's connection comes from: the
// server's; with a PROXY header the server's and the client connection's
// (as HAProxy keeps such connections private), so that no request leaves
// on a connection whose header names another client or another TLS session
// of it; with a transparent source, the server's and the client's address.
func (b *Backend) poolKey(addr string, x *Exchange) string {
	switch {
	case b.out.proxied():
		return addr + "|" + x.ClientIP + "|" + x.ClientConn
	case b.transparent:
		return addr + "|" + x.ClientIP
	}
	return addr
}

// Inflight is the backend's requests in flight, over all its servers.
func (b *Backend) Inflight() int64 {
	var n int64
	for _, s := range b.pool.Servers() {
		n += s.Inflight()
	}
	return n
}

// QueueLen is the backend's requests waiting for a server.
func (b *Backend) QueueLen() int { return b.pool.QueueLen() }

// Close drops the idle connections to the servers.
func (b *Backend) Close() { b.transport.closeIdle() }

// rewrite runs after ReverseProxy has removed hop-by-hop headers and every
// incoming Forwarded / X-Forwarded-* header.
func (b *Backend) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	if c := b.pool.Cookie(); c != nil && c.Indirect {
		dropCookie(pr.Out.Header, c.Name) // the server never sees the gateway's cookie
	}
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "" // set per attempt by the round tripper
	pr.Out.Host = pr.In.Host
	b.out.setHeaders(pr.Out.Header, pr.In, x)
}

func (b *Backend) modifyResponse(resp *http.Response) error {
	x := exchangeFrom(resp.Request.Context())
	if c := b.pool.Cookie(); c != nil && x.Server != nil && (x.Server != x.session.Server || !x.session.Fresh) {
		// The client had no cookie, one for another server, an expired
		// one or one whose idle date is due: from now on, this one.
		first := x.session.First
		if x.Server != x.session.Server {
			first = time.Time{}
		}
		resp.Header.Add("Set-Cookie", b.pool.SetCookie(x.Server, first, time.Now()).String())
		if c.NoCache {
			resp.Header.Add("Cache-Control", "private")
		}
	}
	if err := b.pool.Learn(resp.Request.Context(), x.stickKey, x.stuck, x.Server, resp.Header); err != nil && b.errorLog != nil {
		// The response still goes out: the table learns again next time.
		b.errorLog.Printf("backend %s: stick table: %v", b.pool.Name, err)
	}
	if x.OnResponse != nil {
		return x.OnResponse(resp)
	}
	return nil
}

// dropCookie removes the cookie called name from a request's Cookie headers.
func dropCookie(h http.Header, name string) {
	var kept []string
	for _, line := range h["Cookie"] {
		for _, part := range strings.Split(line, ";") {
			if n, _, _ := strings.Cut(strings.TrimSpace(part), "="); n != name && strings.TrimSpace(part) != "" {
				kept = append(kept, strings.TrimSpace(part))
			}
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
}

func errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	status := http.StatusBadGateway
	var se *StatusError
	switch {
	case errors.As(err, &se):
		status = se.Status
	case errors.Is(err, ErrNoServer), errors.Is(err, balancer.ErrQueueFull), errors.Is(err, balancer.ErrQueueTimeout):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		status = 499 // the client went away (nginx's code); nothing is written
	case isTimeout(err):
		status = http.StatusGatewayTimeout
	}
	x.Err = err
	if status == 499 {
		return
	}
	if x.OnError != nil {
		x.OnError(w, r, status)
		return
	}
	w.WriteHeader(status)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// dialError marks a failure to connect: nothing of the request was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

type roundTripper struct{ b *Backend }

// RoundTrip takes a server (persistence first, then the policy, waiting in
// the queue when all are at their maxconn) and sends req. A failed connect
// is tried on another server while no byte of the body was read; an
// idempotent request whose body can be sent again is tried on another
// server also for what RetryOn names. Each outcome feeds the passive checks.
func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchangeFrom(req.Context())
	pool := rt.b.pool
	var tried [4]*balancer.Server
	triedList := tried[:0]
	body := req.Body
	replayable := x.body != nil || body == nil || body == http.NoBody
	idempotent := isIdempotent(req.Method)
	sticky := x.session.Server // the inserted cookie first, then the stick table
	if sticky == nil {
		sticky = x.stuck
	}
	var lastErr error
	var held *http.Response // a response that a retry may replace
	var heldBy *balancer.Server
	answer := func(err error) (*http.Response, error) {
		if held != nil {
			x.Server = heldBy // no better answer came: the one we have
			return held, nil
		}
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		takeStart := time.Now()
		s, release, err := pool.Take(req.Context(), balancer.Request{ClientIP: x.ClientIP, Tried: triedList, Sticky: sticky})
		x.queueNs.Add(int64(time.Since(takeStart)))
		if err != nil {
			if lastErr != nil && errors.Is(err, ErrNoServer) {
				err = errors.Join(ErrNoServer, lastErr)
			}
			return answer(err)
		}
		triedList = append(triedList, s)
		x.Server, x.Attempts = s, x.Attempts+1
		req.URL.Host = s.Address
		var cb *countingBody
		switch {
		case x.body != nil:
			// In memory: sent with the headers in one write, and again
			// if a reused connection turns out to be closed.
			req.Body = io.NopCloser(bytes.NewReader(x.body))
			req.GetBody = x.getBody
		case body != nil:
			cb = &countingBody{r: body}
			req.Body = cb
		}
		start := time.Now()
		x.connectNs.Store(0)
		x.dialFailed.Store(false)
		resp, err := rt.b.transport.roundTrip(req, s.Address, rt.b.poolKey(s.Address, x))
		more := attempt < rt.b.retries
		if err == nil {
			if held != nil {
				held.Body.Close()
				held = nil
			}
			x.responseNs.Store(int64(time.Since(start)) - x.connectNs.Load())
			s.ObserveLatency(x.ResponseTime())
			if resp.StatusCode >= 500 {
				pool.Observe(s, balancer.ServerError, resp.Status)
			} else {
				pool.Observe(s, balancer.Answered, "")
			}
			sent := int64(len(x.body))
			if cb != nil {
				sent = cb.n.Load()
			}
			rb := &releasingBody{ReadCloser: resp.Body, release: release, server: s, sent: sent}
			resp.Body = rb
			if w, ok := rb.ReadCloser.(io.Writer); ok {
				// A 101 (WebSocket) body is the backend connection:
				// ReverseProxy needs to write to it too.
				resp.Body = releasingRWBody{rb, w}
			}
			if more && idempotent && replayable && rt.b.retryOn.Status[resp.StatusCode] {
				held, heldBy = resp, s
				continue
			}
			return resp, nil
		}
		release()
		if req.Context().Err() != nil {
			if held != nil {
				held.Body.Close()
			}
			return nil, err // the client went away: nothing to say of the server
		}
		var de *dialError
		switch {
		case errors.As(err, &de):
			pool.Observe(s, balancer.ConnectFailed, err.Error())
			if more && (cb == nil || cb.n.Load() == 0) {
				lastErr = err
				continue
			}
		case isTimeout(err):
			pool.Observe(s, balancer.TimedOut, err.Error())
			if more && idempotent && replayable && rt.b.retryOn.ResponseTimeout {
				lastErr = err
				continue
			}
		default:
			pool.Observe(s, balancer.TimedOut, err.Error())
			if more && idempotent && replayable && rt.b.retryOn.EmptyResponse {
				lastErr = err
				continue
			}
		}
		return answer(err)
	}
}

// isIdempotent tells whether sending the request twice does what sending
// it once does (RFC 9110, 9.2.2).
func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// countingBody counts what the transport read, and does not pass Close on:
// the same body may be offered to the next server.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingBody) Close() error { return nil }

// releasingBody ends the server's count of the request when the response
// body is closed, and reports the bytes both ways for least_bandwidth.
type releasingBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
	server  *balancer.Server
	sent    int64        // request body bytes
	n       atomic.Int64 // response bytes; an upgraded connection is read and closed on different goroutines
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *releasingBody) Close() error {
	b.once.Do(func() {
		b.server.ObserveBytes(b.sent + b.n.Load())
		b.release()
	})
	return b.ReadCloser.Close()
}

// releasingRWBody is a releasingBody that stays writable, as ReverseProxy
// requires of a 101 Switching Protocols response body.
type releasingRWBody struct {
	*releasingBody
	w io.Writer
}

func (b releasingRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// bufferPool lends the proxy its copy buffers, saving 32 KiB per response.
type bufferPool struct{ p *sync.Pool }

func newBufferPool() bufferPool {
	return bufferPool{&sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (bp bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp bufferPool) Put(b []byte) { bp.p.Put(&b) }
