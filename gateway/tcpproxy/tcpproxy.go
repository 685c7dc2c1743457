// Package tcpproxy serves TCP (layer 4) frontends for services that do not
// speak HTTP. Each connection that gateway/listen accepted (plain, or TLS
// it terminated) is joined to a server the backend's balancer chooses,
// with the HTTP side's rules: algorithm, persistence by source address,
// maxconn and its queue, health and passive checks, another server after a
// failed connect. A PROXY protocol header may go first, so the server
// learns the client's address; then bytes are copied both ways until both
// sides have finished (a half-close is passed on), one side fails, nothing
// moves for the idle timeout, or the gateway shuts down. Every connection
// ends with one Entry for the log.
//
// Between two TCP sockets (a plain TCP frontend) the bytes are spliced
// on Linux, never entering user space; TLS frontends copy through a
// buffer.
package tcpproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/listen"
	"github.com/sekisho/sekisho/gateway/proxyhdr"
)

// Options tune a TCP proxy.
type Options struct {
	// Pool is the backend whose servers take the connections.
	Pool *balancer.Pool
	// ConnectTimeout bounds each connect attempt (0: the system's own).
	ConnectTimeout time.Duration
	// IdleTimeout closes both sides once no byte has been read or written
	// either way for this long (0: never). It is also what ends a
	// half-closed connection whose other side never closes, and one whose
	// reader stopped reading.
	IdleTimeout time.Duration
	// Retries is how many other servers a connection may try after a
	// failed connect (HAProxy's retries).
	Retries int
	// SendProxy is "" (none), "v1" or "v2": the PROXY protocol header
	// written to the server first. It carries the client's address and the
	// address it connected to; v2 adds, for TLS clients, the ALPN,
	// authority (SNI) and SSL TLVs (HAProxy's send-proxy-v2-ssl-cn).
	SendProxy string
	// DisableSplice copies through user space even between two TCP
	// sockets, where Linux's splice(2) is used by default.
	DisableSplice bool
	// Log receives one Entry per connection, when the connection ends.
	Log func(Entry)
}

// Entry is one connection's log record.
type Entry struct {
	Start      time.Time
	ClientIP   string
	ClientPort int
	// Backend is the pool's name; Server the server connected to, or the
	// last one tried when none could be.
	Backend, Server string
	// BytesIn went from the client to the server, BytesOut back; a PROXY
	// header is not counted.
	BytesIn, BytesOut int64
	// Connect is the time from accepting to being connected to a server,
	// queue and retries included; Duration the connection's whole life.
	Connect, Duration time.Duration
	// Termination says why the connection ended: one of the causes below.
	Termination string
	// TLS is the client connection's TLS state, nil for plain TCP.
	TLS *tls.ConnectionState
	// Retries counts the servers tried after the first failed to connect.
	Retries int
	// Err is the first error met, "" when the connection ended cleanly.
	Err string
}

// Termination causes. The first event decides: a connection whose client
// closed first stays client_closed even if the server then fails to
// deliver its last bytes (that failure is in Err).
const (
	// ClientClosed: the client ended its side first (EOF or TLS
	// close_notify); the server's remaining answer was then relayed.
	ClientClosed = "client_closed"
	// ServerClosed: the server ended its side first.
	ServerClosed = "server_closed"
	// ClientError: reading from or writing to the client failed (a reset,
	// a TLS error), or its TLS handshake did.
	ClientError = "client_error"
	// ServerError: reading from or writing to the server failed after the
	// connect.
	ServerError = "server_error"
	// IdleTimeout: no byte either way for Options.IdleTimeout.
	IdleTimeout = "idle_timeout"
	// Shutdown: the gateway stopped (Serve's context was done).
	Shutdown = "shutdown"
	// NoServer: the backend had no usable server, so none was tried.
	NoServer = "no_server"
	// QueueFull: every server was at its maxconn and the queue was full.
	QueueFull = "queue_full"
	// QueueTimeout: every server stayed at its maxconn for the queue timeout.
	QueueTimeout = "queue_timeout"
	// ConnectFailed: every server tried refused or timed out, and the
	// retries or the servers ran out.
	ConnectFailed = "connect_failed"
)

// Proxy joins client connections to one backend's servers.
type Proxy struct {
	pool      *balancer.Pool
	dialer    net.Dialer
	idle      time.Duration
	retries   int
	sendProxy byte // PROXY protocol version, 0 for none
	splice    bool
	log       func(Entry)
}

// New builds a proxy; it fails on options a config check should have refused.
func New(o Options) (*Proxy, error) {
	p := &Proxy{pool: o.Pool, idle: o.IdleTimeout, retries: o.Retries, splice: spliceSupported && !o.DisableSplice, log: o.Log}
	// Keep-alive probes find servers that vanished without a FIN on
	// connections the idle timeout leaves open (the listener sets the
	// clients').
	p.dialer = net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	var errs []error
	if o.Pool == nil {
		errs = append(errs, errors.New("tcpproxy: a pool is required"))
	}
	switch o.SendProxy {
	case "":
	case "v1":
		p.sendProxy = 1
	case "v2":
		p.sendProxy = 2
	default:
		errs = append(errs, fmt.Errorf("tcpproxy: send_proxy %q is not v1 or v2", o.SendProxy))
	}
	if o.ConnectTimeout < 0 || o.IdleTimeout < 0 || o.Retries < 0 {
		errs = append(errs, errors.New("tcpproxy: connect_timeout, idle_timeout and retries must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Serve relays one accepted connection until it ends or ctx is done, then
// closes it and logs it. c is best a *listen.Conn, whose TLS state it
// reads; a bare *tls.Conn is handshaken here.
func (p *Proxy) Serve(ctx context.Context, c net.Conn) {
	e := Entry{Start: time.Now(), Backend: p.pool.Name}
	defer func() {
		e.Duration = time.Since(e.Start)
		if p.log != nil {
			p.log(e)
		}
	}()
	defer c.Close()
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		e.ClientIP, e.ClientPort = ap.Addr().Unmap().String(), int(ap.Port())
	}
	client := c
	if lc, ok := c.(*listen.Conn); ok {
		// listen.Conn's Read feeds an HTTP framing scanner that a byte
		// stream has no use for; the conn it wraps reads the same bytes
		// (past any PROXY header listen read: go-proxyproto's Conn serves
		// what it buffered first).
		client, e.TLS = lc.Conn, lc.TLS()
	}
	if tc, ok := client.(*tls.Conn); ok && e.TLS == nil {
		st, err := p.handshake(ctx, tc)
		if err != nil {
			e.Termination, e.Err = ClientError, err.Error()
			return
		}
		e.TLS = st
	}

	server, s, release, err := p.connect(ctx, &e, c.RemoteAddr(), c.LocalAddr())
	e.Connect = time.Since(e.Start)
	if err != nil {
		e.Err = err.Error()
		return
	}
	defer release()
	defer server.Close()
	x := &session{client: client, server: server, srv: s, idle: p.idle, splice: p.splice, start: time.Now()}
	x.run(ctx)
	e.BytesIn, e.BytesOut = x.in, x.out
	e.Termination = x.cause
	if x.err != nil {
		e.Err = x.err.Error()
	}
}

// handshake runs the TLS handshake of a conn that did not come through
// gateway/listen, bounded by the idle timeout so a silent client cannot
// hold it.
func (p *Proxy) handshake(ctx context.Context, tc *tls.Conn) (*tls.ConnectionState, error) {
	if p.idle > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.idle)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	st := tc.ConnectionState()
	return &st, nil
}

// connect takes a server and connects to it, trying another after a
// failed connect while retries remain, as gateway/forward does for HTTP.
// On failure it sets e.Termination and returns the error.
func (p *Proxy) connect(ctx context.Context, e *Entry, client, local net.Addr) (net.Conn, *balancer.Server, func(), error) {
	var header []byte
	if p.sendProxy != 0 {
		var err error
		if header, err = proxyhdr.Header(p.sendProxy, client, local, e.TLS, proxyhdr.All); err != nil {
			e.Termination = ClientError
			return nil, nil, nil, err
		}
	}
	// A stick table on the source address keeps clients where it put them.
	var stickKey string
	var stuck *balancer.Server
	if st := p.pool.StickTable(); st != nil && st.On == "src" {
		stickKey = p.pool.StickKey(e.ClientIP, "", nil)
		stuck = p.pool.Stuck(ctx, stickKey)
	}
	var tried []*balancer.Server
	var lastErr error
	for attempt := 0; ; attempt++ {
		s, release, err := p.pool.Take(ctx, balancer.Request{ClientIP: e.ClientIP, Tried: tried, Sticky: stuck})
		if err != nil {
			switch {
			case ctx.Err() != nil:
				e.Termination = Shutdown
			case errors.Is(err, balancer.ErrNoServer) && lastErr != nil:
				// Every usable server was tried: the connects are what failed.
				e.Termination, err = ConnectFailed, lastErr
			case errors.Is(err, balancer.ErrNoServer):
				e.Termination = NoServer
			case errors.Is(err, balancer.ErrQueueFull):
				e.Termination = QueueFull
			case errors.Is(err, balancer.ErrQueueTimeout):
				e.Termination = QueueTimeout
			default:
				e.Termination = ConnectFailed
			}
			return nil, nil, nil, err
		}
		tried = append(tried, s)
		e.Server, e.Retries = s.Name, attempt
		conn, err := p.dial(ctx, s, header)
		if err == nil {
			p.pool.Observe(s, balancer.Answered, "")
			if stickKey != "" {
				// A store that fails costs only persistence: the next
				// connection is placed by the policy.
				_ = p.pool.Learn(ctx, stickKey, stuck, s, nil)
			}
			return conn, s, release, nil
		}
		release()
		if ctx.Err() != nil {
			e.Termination = Shutdown
			return nil, nil, nil, err // the gateway stopped: nothing to say of the server
		}
		p.pool.Observe(s, balancer.ConnectFailed, err.Error())
		lastErr = err
		if attempt >= p.retries {
			e.Termination = ConnectFailed
			return nil, nil, nil, err
		}
	}
}

// dial connects to s and writes the PROXY header, which is part of the
// connect: a server that cannot take it is tried no further.
func (p *Proxy) dial(ctx context.Context, s *balancer.Server, header []byte) (net.Conn, error) {
	start := time.Now()
	conn, err := p.dialer.DialContext(ctx, "tcp", s.Address)
	if err != nil {
		return nil, err
	}
	// The connect time is the only latency a byte stream offers
	// least_response_time.
	s.ObserveLatency(time.Since(start))
	if len(header) > 0 {
		if _, err := conn.Write(header); err != nil {
			conn.Close()
			return nil, fmt.Errorf("sending the PROXY header: %w", err)
		}
	}
	return conn, nil
}
