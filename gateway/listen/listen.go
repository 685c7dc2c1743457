// Package listen accepts the gateway's client connections. For HTTP/1 it
// wraps each connection so the handler can learn what net/http hides (see
// framingScan); for TLS it runs the handshake itself, off the accept loop,
// and hands HTTP/1 connections wrapped, HTTP/2 ones as the *tls.Conn that
// net/http's own HTTP/2 server needs (see Take). With a
// PROXY protocol policy it reads the header first, off the accept loop, so
// a peer that is slow to send it holds up no one else.
package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/sekisho/sekisho/gateway/fingerprint"
	"github.com/sekisho/sekisho/gateway/rawio"
)

// Conn is an accepted connection (plain, or TLS after the handshake).
type Conn struct {
	net.Conn
	tls       *tls.ConnectionState
	proxy     *proxyproto.Header // nil without one
	proxyPeer net.Addr           // the socket peer when proxy named another client
	scan      framingScan
	ambiguous atomic.Int32
	refused   refusals
	ja4       string // the client's TLS fingerprint, from its raw ClientHello
}

// Read implements net.Conn, scanning what the HTTP server reads.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.refused.read()
		if a := c.scan.feed(p[:n]); a > 0 {
			c.ambiguous.Add(int32(a))
		}
	}
	return n, err
}

// CloseWrite passes a half-close on: net/http uses it to finish a response
// (a 400 or 413 with unread input) before closing, so the client gets the
// response rather than a reset.
func (c *Conn) CloseWrite() error {
	var nc net.Conn = c.Conn
	if pc, ok := nc.(*proxyproto.Conn); ok {
		nc = pc.Raw() // go-proxyproto's Conn has no CloseWrite of its own
	}
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// TLS returns the connection's TLS state, or nil for plain HTTP.
func (c *Conn) TLS() *tls.ConnectionState { return c.tls }

// JA4 is the client's TLS fingerprint (FoxIO's JA4), computed from the raw
// ClientHello it sent; "" for plain HTTP or a hello that did not parse.
func (c *Conn) JA4() string { return c.ja4 }

// TakeAmbiguousFraming reports, once per such request, that a request header
// block on this connection carried both Content-Length and Transfer-Encoding.
func (c *Conn) TakeAmbiguousFraming() bool {
	for {
		n := c.ambiguous.Load()
		if n <= 0 {
			return false
		}
		if c.ambiguous.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// Listener is a net.Listener for an http.Server that yields *Conn, or for
// a connection that negotiated h2, its *tls.Conn. With a TLS config it
// completes handshakes off the accept loop.
type Listener struct {
	ln net.Listener
	o  Options

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	next      atomic.Pointer[Listener] // the successor after a reload (HandOver)
}

// h2Conns holds the *Conn of each HTTP/2 connection handed to a server as
// its *tls.Conn (net/http serves HTTP/2 only on that type), until Take.
var h2Conns sync.Map

// Take returns what the listener learnt of a connection it yielded: nc
// itself, or for an HTTP/2 *tls.Conn, its *Conn (once: an http.Server's
// ConnContext asks). Nil for a connection of another listener.
func Take(nc net.Conn) *Conn {
	switch c := nc.(type) {
	case *Conn:
		return c
	case *tls.Conn:
		if v, ok := h2Conns.LoadAndDelete(c); ok {
			return v.(*Conn)
		}
	}
	return nil
}

// Options are a listener's TLS and PROXY protocol settings.
type Options struct {
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake, so a silent client cannot hold a goroutine.
	HandshakeTimeout time.Duration
	// Proxy, when set, reads PROXY protocol headers from the peers it trusts.
	Proxy *Proxy
	// OnProxyError sees every connection closed for its PROXY header.
	OnProxyError func(err error, remote net.Addr)
	// OnHandshake sees every completed handshake, OnHandshakeError every failed one.
	OnHandshake      func(st *tls.ConnectionState, remote net.Addr)
	OnHandshakeError func(err error, remote net.Addr)
	// OnRefused sees each HTTP/1 request that net/http refused itself,
	// without calling a handler: its status, and when its bytes began.
	OnRefused func(c *Conn, status int, start time.Time)
}

// New wraps ln; with o.TLS set, its connections are TLS.
func New(ln net.Listener, o Options) *Listener {
	l := &Listener{ln: ln, o: o, conns: make(chan net.Conn), done: make(chan struct{})}
	if l.async() {
		go l.acceptAsync()
	}
	return l
}

// async tells whether connections need work before the server gets them.
func (l *Listener) async() bool { return l.o.TLS != nil || l.o.Proxy != nil }

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	if !l.async() {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		return l.conn(rawio.Wrap(c)), nil
	}
	select {
	case c := <-l.conns:
		select {
		case <-l.done:
			// Closed meanwhile (select picks at random among ready
			// cases): the successor gets it, not a server shutting down.
			l.deliver(c)
			return nil, net.ErrClosed
		default:
			return c, nil
		}
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// accept accepts from ln, backing off like net/http on errors that may
// pass (EMFILE and friends), until done is closed.
func accept(ln net.Listener, done <-chan struct{}) (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return c, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		select {
		case <-time.After(delay):
		case <-done:
			return nil, err
		}
	}
}

func (l *Listener) acceptAsync() {
	for {
		raw, err := accept(l.ln, l.done)
		if err != nil {
			l.Close()
			return
		}
		go l.prepare(raw)
	}
}

// prepare reads the PROXY header and runs the TLS handshake, as
// configured, then hands the connection to the server.
func (l *Listener) prepare(raw net.Conn) {
	raw = rawio.Wrap(raw)
	c := l.conn(raw)
	if l.o.Proxy != nil {
		pc, h, err := l.o.Proxy.readProxy(raw)
		if err != nil {
			if l.o.OnProxyError != nil {
				l.o.OnProxyError(err, raw.RemoteAddr())
			}
			raw.Close()
			return
		}
		c.Conn, c.proxy = pc, h
		if h != nil && h.Command.IsProxy() {
			c.proxyPeer = raw.RemoteAddr()
		}
	}
	if l.o.TLS != nil {
		l.handshake(c)
		return
	}
	l.deliver(c)
}

// conn wraps an accepted connection.
func (l *Listener) conn(raw net.Conn) *Conn {
	c := &Conn{Conn: raw}
	c.refused.on = l.o.OnRefused
	return c
}

func (l *Listener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		if n := l.next.Load(); n != nil && n.async() {
			n.deliver(c)
			return
		}
		Take(c)
		c.Close()
	}
}

// HandOver closes l for next, its successor on the same socket after a
// config reload: the connections l accepted and was still preparing (PROXY
// header, TLS handshake) go to next instead of being dropped.
func (l *Listener) HandOver(next *Listener) error {
	l.next.Store(next)
	return l.Close()
}

func (l *Listener) handshake(c *Conn) {
	raw := c.Conn
	// The ClientHello's bytes are kept as they arrive, for JA4; recording
	// stops once the hello is complete (16 KiB at most).
	rec := fingerprint.NewRecordingConn(raw)
	tc := tls.Server(rec, l.o.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), l.o.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if l.o.OnHandshakeError != nil {
			l.o.OnHandshakeError(err, raw.RemoteAddr())
		}
		raw.Close()
		return
	}
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == "acme-tls/1" {
		// A TLS-ALPN-01 challenge: the handshake was the answer (RFC 8737).
		tc.Close()
		return
	}
	if l.o.OnHandshake != nil {
		l.o.OnHandshake(&st, raw.RemoteAddr())
	}
	if b, err := rec.ClientHello(); err == nil {
		if h, err := fingerprint.ParseClientHello(b); err == nil {
			c.ja4 = h.JA4(fingerprint.TransportTCP)
		}
	}
	c.Conn, c.tls = tc, &st
	if st.NegotiatedProtocol == "h2" {
		// The server sees the *tls.Conn and serves HTTP/2 on it; its
		// ConnContext finds c with Take.
		h2Conns.Store(tc, c)
		l.deliver(tc)
		return
	}
	l.deliver(c)
}

// Close implements net.Listener: it stops accepting; the connections
// already served are the server's (http.Server.Shutdown).
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
	})
	return err
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }
