package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/fingerprint"
	"github.com/sekisho/sekisho/gateway/listen"
)

// request is one request as it passes the handler's steps: what the steps
// read and what the log line will say.
type request struct {
	w    *responseWriter
	r    *http.Request
	e    *accesslog.Entry
	conn *listen.Conn    // nil over HTTP/3
	body *countingReader // nil without a body
	// fwdPeer is the proxy whose X-Forwarded-For named the client, for the
	// chain sent on; localAP the address the client asked for.
	fwdPeer string
	localAP netip.AddrPort
	span    trace.Span // the request's span; nil without tracing (tracing.go)
	route   string     // the route's name, once routed
	// addr is e.ClientIP parsed, once a step needs it (client).
	addr    netip.Addr
	addrSet bool
}

// client is the client's address: the one identify decided, parsed at
// most once per request, and only for the steps that look at it.
func (q *request) client() netip.Addr {
	if !q.addrSet {
		q.addr, _ = netip.ParseAddr(q.e.ClientIP)
		q.addrSet = true
	}
	return q.addr
}

// begin starts a request's log line and counts it in flight.
func (h *handler) begin(w http.ResponseWriter, r *http.Request) *request {
	h.idle.touch()
	q := &request{w: &responseWriter{ResponseWriter: w}, r: r, e: &accesslog.Entry{
		Time: time.Now(), Frontend: h.name, Method: r.Method, Host: r.Host, URI: r.RequestURI,
		Path: r.URL.Path, Query: r.URL.RawQuery, Protocol: r.Proto, UserAgent: r.UserAgent(),
	}}
	q.e.ActiveConns, q.e.FrontendConns = h.active.Add(1), h.inflight.Add(1)
	if r.Body != nil && r.Body != http.NoBody {
		q.body = &countingReader{ReadCloser: r.Body}
		r.Body = q.body
	}
	if h.capture != nil {
		captureRequest(q.e, h.capture, r)
	}
	return q
}

// finish writes the request's log line and counts it, whichever step
// ended it.
func (h *handler) finish(q *request) {
	defer h.active.Add(-1)
	defer h.inflight.Add(-1)
	e, rw := q.e, q.w
	if h.capture != nil {
		captureResponse(e, h.capture, rw.Header())
	}
	e.Status, e.BytesOut = rw.status, rw.bytes
	if h.access.CountsHeaderBytes() && e.HeaderBytes == 0 && rw.status >= 200 {
		e.HeaderBytes = accesslog.HeaderBytes(rw.status, "", rw.Header()) // the gateway's own response
	}
	answered := rw.status >= 200 || rw.status == http.StatusSwitchingProtocols
	if !answered {
		e.Status = 499 // the handler ended without a response: the client left
	}
	if q.body != nil {
		e.BytesIn = q.body.n
	}
	e.Total = time.Since(e.Time)
	if h.bans != nil {
		h.bans.offence(context.WithoutCancel(q.r.Context()), e)
	}
	q.traceEnd()
	h.recordEvent(q)
	h.emitAccess(e)
	h.access.Write(e)
	h.metrics.observe(e)
	if !answered {
		// A client that only half-closed still reads: net/http would
		// send it a 200 with no body, for a request no server answered.
		// It gets no response, as the log says.
		panic(http.ErrAbortHandler)
	}
}

// identify gives the request its id and finds its client: the peer, or a
// trusted proxy's word for it, and the connection it came over.
func (h *handler) identify(q *request) {
	e, r := q.e, q.r
	e.RequestID = requestID(r.Header.Get("X-Request-Id"))
	id := []string{e.RequestID} // read-only in both maps; the proxy copies request headers
	r.Header["X-Request-Id"] = id
	q.w.Header()["X-Request-Id"] = id
	e.ClientIP, e.ClientPort = splitHostPort(r.RemoteAddr)
	if h.clientIP != nil {
		// A trusted proxy's word, from its header; the port is the proxy's.
		if peer, err := netip.ParseAddr(e.ClientIP); err == nil {
			c := h.clientIP.Resolve(peer, r.Header)
			if c != peer {
				e.PeerIP, e.ClientIP, e.ClientPort = e.ClientIP, c.String(), 0
			}
			q.addr, q.addrSet = c, true
		}
	}
	q.conn, _ = r.Context().Value(connKey{}).(*listen.Conn)
	q.fwdPeer = e.PeerIP // the X-Forwarded-For chain names the header's proxy only
	if q.conn != nil {
		e.VPCEndpointID = q.conn.VPCEndpointID()
		logProxyPeer(e, q.conn)
	}
	e.TLS = r.TLS
	if e.TLS == nil && q.conn != nil {
		e.TLS = q.conn.TLS()
	}
	if q.conn != nil {
		e.JA4 = q.conn.JA4()
	} else if ja4, ok := r.Context().Value(ja4Key{}).(string); ok {
		e.JA4 = ja4 // HTTP/3 (quic.go)
	}
	if h.ja4h {
		e.JA4H = fingerprint.JA4H(r)
	}
	if h.ja4Header != "" {
		// The gateway's word only: a client's own header of that name goes.
		if e.JA4 != "" {
			r.Header[h.ja4Header] = []string{e.JA4}
		} else {
			delete(r.Header, h.ja4Header)
		}
	}
}

// fail answers the request with the gateway's error page: it refused it.
func (q *request) fail(status int, reason string) {
	q.e.Error, q.e.TermState = reason, "PR--"
	writeErrorPage(q.w, q.r, status, q.e.RequestID)
}
