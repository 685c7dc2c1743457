package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/audit"
	"github.com/sekisho/sekisho/gateway/clientip"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/gateway/listen"
	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/alert"
)

// route sends matching requests through a WAF policy to a backend.
type route struct {
	host    string // "" any, "*.example.com" subdomains, else exact (lower case)
	prefix  string
	backend *forward.Backend
	policy  *policy
	limit   *rateLimiter // nil: no rate limit
	// names for the log and alerts
	name                    string // "FRONTEND/routes[N]" or "FRONTEND/default"
	backendName, policyName string
}

func (rt *route) matches(host, path string) bool {
	switch {
	case rt.host == "":
	case strings.HasPrefix(rt.host, "*."):
		if !strings.HasSuffix(host, rt.host[1:]) {
			return false
		}
	case host != rt.host:
		return false
	}
	return strings.HasPrefix(path, rt.prefix)
}

// handler serves one frontend's requests.
type handler struct {
	// next is the same frontend's handler after a config reload: requests
	// that still arrive on connections of the old generation get the new
	// config too.
	next   atomic.Pointer[handler]
	name   string
	routes []route
	def    *route // default_backend, or nil
	access *accesslog.Logger
	idle   *idleRelease
	log    zerolog.Logger
	// redirectHTTPS sends plain-HTTP requests to httpsPort, the frontend's
	// first TLS bind (set when it is bound).
	redirectHTTPS bool
	httpsPort     string
	hsts          string             // Strict-Transport-Security for responses over TLS
	altSvc        string             // advertises HTTP/3 on responses over TLS on TCP
	acme          *certs.ACME        // answers HTTP-01 challenges; nil without ACME
	clientIP      *clientip.Resolver // nil: the peer is the client
	alerts        *alert.Dispatcher  // nil: no alerts
	audit         *audit.Log         // nil: no audit log
	monitorURI    string             // answered with the gateway's readiness
	capture       *accesslog.Captures
	metrics       *requestMetrics
	active        *atomic.Int64 // the gateway's requests in flight
	inflight      atomic.Int64  // this frontend's
	health        http.HandlerFunc
}

type connKey struct{}

func (h *handler) match(host, path string) *route {
	host = strings.ToLower(host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	for i := range h.routes {
		if h.routes[i].matches(host, path) {
			return &h.routes[i]
		}
	}
	return h.def
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := h.next.Load(); n != nil {
		n.ServeHTTP(w, r)
		return
	}
	h.idle.touch()
	e := &accesslog.Entry{
		Time: time.Now(), Frontend: h.name, Method: r.Method, Host: r.Host, URI: r.RequestURI,
		Path: r.URL.Path, Query: r.URL.RawQuery, Protocol: r.Proto, UserAgent: r.UserAgent(),
	}
	rw := &responseWriter{ResponseWriter: w}
	countHeaders := h.access.CountsHeaderBytes()
	e.ActiveConns, e.FrontendConns = h.active.Add(1), h.inflight.Add(1)
	defer h.active.Add(-1)
	defer h.inflight.Add(-1)
	var body *countingReader
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingReader{ReadCloser: r.Body}
		r.Body = body
	}
	defer func() {
		e.Status, e.BytesOut = rw.status, rw.bytes
		if countHeaders && e.HeaderBytes == 0 && rw.status >= 200 {
			e.HeaderBytes = accesslog.HeaderBytes(rw.status, "", rw.Header()) // the gateway's own response
		}
		answered := rw.status >= 200 || rw.status == http.StatusSwitchingProtocols
		if !answered {
			e.Status = 499 // the handler ended without a response: the client left
		}
		if body != nil {
			e.BytesIn = body.n
		}
		e.Total = time.Since(e.Time)
		h.access.Write(e)
		h.metrics.observe(e)
		if !answered {
			// A client that only half-closed still reads: net/http would
			// send it a 200 with no body, for a request no server answered.
			// It gets no response, as the log says.
			panic(http.ErrAbortHandler)
		}
	}()
	if h.capture != nil {
		captureRequest(e, h.capture, r)
		defer captureResponse(e, h.capture, rw.Header()) // before the log line above is written
	}

	e.RequestID = requestID(r.Header.Get("X-Request-Id"))
	id := []string{e.RequestID} // read-only in both maps; the proxy copies request headers
	r.Header["X-Request-Id"] = id
	rw.Header()["X-Request-Id"] = id
	e.ClientIP, e.ClientPort = splitHostPort(r.RemoteAddr)
	if h.clientIP != nil {
		// A trusted proxy's word, from its header; the port is the proxy's.
		if peer, err := netip.ParseAddr(e.ClientIP); err == nil {
			if c := h.clientIP.Resolve(peer, r.Header); c != peer {
				e.PeerIP, e.ClientIP, e.ClientPort = e.ClientIP, c.String(), 0
			}
		}
	}
	conn, _ := r.Context().Value(connKey{}).(*listen.Conn)
	fwdPeer := e.PeerIP // the X-Forwarded-For chain names the header's proxy only
	if conn != nil {
		e.VPCEndpointID = conn.VPCEndpointID()
		logProxyPeer(e, conn)
	}
	e.TLS = r.TLS
	if e.TLS == nil && conn != nil {
		e.TLS = conn.TLS()
	}
	fail := func(status int, reason string) {
		e.Error, e.TermState = reason, "PR--" // the gateway refused the request
		writeErrorPage(rw, r, status, e.RequestID)
	}

	if conn != nil && len(r.TransferEncoding) > 0 && conn.TakeAmbiguousFraming() {
		closeAfter(rw, r)
		fail(http.StatusBadRequest, "Content-Length with Transfer-Encoding")
		return
	}
	if h.monitorURI != "" && r.URL.Path == h.monitorURI {
		e.Backend, e.TermState = "<monitor>", "LR--"
		h.health(rw, r)
		return
	}
	if rej := checkTarget(r); rej != nil {
		fail(rej.status, rej.reason)
		return
	}
	if e.TLS == nil && h.acme != nil && h.acme.HandleHTTPChallenge(rw, r) {
		e.TermState = "LR--"
		return
	}
	if e.TLS == nil && h.redirectHTTPS && !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		e.TermState = "LR--"
		// 308 keeps the method and body, unlike 301.
		http.Redirect(rw, r, httpsURL(r, h.httpsPort), http.StatusPermanentRedirect)
		return
	}
	if e.TLS != nil && h.hsts != "" {
		rw.Header().Set("Strict-Transport-Security", h.hsts)
	}
	if e.TLS != nil && h.altSvc != "" && r.ProtoMajor < 3 {
		rw.Header().Set("Alt-Svc", h.altSvc)
	}
	cleanHeaders(r.Header)

	rt := h.match(r.Host, r.URL.Path)
	if rt == nil {
		fail(http.StatusNotFound, "no route")
		return
	}
	e.Backend, e.WAFPolicy = rt.backendName, rt.policyName
	if rt.limit != nil && !rt.limit.allow(r.Context(), r, e.ClientIP) {
		e.Error, e.TermState = "rate limited", "PR--"
		if rt.limit.cfg.Action == "tarpit" {
			e.TermState = "PT--"
		}
		h.alerts.Emit(alert.Event{Type: alert.EventRateLimitTriggered, Time: e.Time, RequestID: e.RequestID,
			ClientIP: e.ClientIP, Host: r.Host, Path: r.URL.Path, Route: rt.name, Backend: rt.backendName,
			Fields: map[string]string{"limit": rt.limit.cfg.Name, "action": rt.limit.cfg.Action}})
		rt.limit.refuse(rw, r, e.RequestID)
		return
	}

	tx := rt.policy.cur.Load().NewTx(r.Context(), e.RequestID)
	defer tx.Close()
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	serverIP, serverPort := "", 0
	if conn != nil {
		local = conn.LocalAddr() // with a PROXY header, the address the client asked for
	}
	var localAP netip.AddrPort
	if local != nil {
		localAP = addrPort(local)
		serverIP, serverPort = localAP.Addr().String(), int(localAP.Port())
	}
	v := tx.InspectRequest(r, r.URL.RequestURI(), waf.Conn{
		ClientIP: e.ClientIP, ClientPort: e.ClientPort, ServerIP: serverIP, ServerPort: serverPort,
	})
	e.Read, e.WAF = tx.ReadTime, tx.InspectTime
	setVerdict(e, v)
	if v.Action == waf.ActionBlock || v.Action == waf.ActionDetect {
		h.emitWAF(e, rt, v)
	}
	if h.audit.Wants(string(v.Action)) {
		h.audit.Write(auditRecord(e, r, rt, v))
	}
	if v.Blocked() {
		e.TermState = "WR--" // sekisho's own code: the WAF refused the request
		if v.Action == waf.ActionError {
			e.TermState = "IR--" // an internal error in the inspection
			h.inspectionFailed(e, tx, "waf inspection failed; request refused")
		}
		if v.Status == http.StatusRequestEntityTooLarge {
			// The body was not read: close rather than drain it.
			closeAfter(rw, r)
		}
		if v.RedirectURL != "" {
			http.Redirect(rw, r, v.RedirectURL, v.Status)
			return
		}
		writeErrorPage(rw, r, v.Status, e.RequestID)
		return
	}

	fwdBody, n := tx.Body()
	if n == 0 {
		r.Body = http.NoBody
	} else {
		r.Body = io.NopCloser(fwdBody)
	}
	r.ContentLength = n
	if n >= 0 {
		r.TransferEncoding = nil // the whole body is known: send it with a length
	}
	x := &forward.Exchange{
		ClientIP: e.ClientIP, ClientPort: e.ClientPort, PeerIP: fwdPeer, ClientConn: r.RemoteAddr,
		Host: r.Host, RequestID: e.RequestID, TLS: e.TLS,
		Proto:   "http",
		OnError: func(w http.ResponseWriter, r *http.Request, status int) { writeErrorPage(w, r, status, e.RequestID) },
		OnResponse: func(resp *http.Response) error {
			var hdrBytes int64 // %B counts the server's headers as they came
			if countHeaders {
				_, reason, _ := strings.Cut(resp.Status, " ") // "200 OK"
				hdrBytes = accesslog.HeaderBytes(resp.StatusCode, reason, resp.Header)
			}
			if h.hsts != "" {
				// The gateway's policy stands: its header over TLS, none over plain HTTP.
				resp.Header.Del("Strict-Transport-Security")
			}
			if v := tx.InspectResponseHeaders(resp.StatusCode, resp.Proto, resp.Header); v != nil && v.Blocked() {
				setVerdict(e, v)
				e.TermState = "WH--" // the WAF refused the response headers
				return &forward.StatusError{Status: v.Status, Err: errors.New("response refused by the WAF")}
			}
			if err := h.inspectResponseBody(tx, e, rt, r, resp); err != nil {
				return err
			}
			e.HeaderBytes = hdrBytes
			return nil
		},
	}
	if e.TLS != nil {
		x.Proto = "https"
	}
	x.LocalAddr = localAP
	rt.backend.ServeHTTP(rw, r.WithContext(forward.WithExchange(r.Context(), x)))
	if x.Server != nil {
		e.Server = x.Server.Name
		e.ServerConns = x.Server.Inflight() // as the backend's: this request has ended
		e.ConnectFailed = x.ConnectFailed()
	}
	e.Connect, e.Response, e.Queue = x.ConnectTime(), x.ResponseTime(), x.QueueTime()
	e.BackendConns, e.BackendQueue = rt.backend.Inflight(), rt.backend.QueueLen()
	e.Retries = max(x.Attempts-1, 0)
	if x.Err != nil {
		e.Error = x.Err.Error()
	}
	if e.TermState == "" {
		e.TermState = forwardState(x.Err, rw.status)
	}
}

// addrPort is a listener-side address as one netip value, IPv4 unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch t := a.(type) {
	case *net.TCPAddr:
		ap = t.AddrPort()
	case *net.UDPAddr:
		ap = t.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// forwardState is HAProxy's termination state for a forwarded request.
func forwardState(err error, status int) string {
	switch {
	case err == nil:
		return "----"
	case errors.Is(err, balancer.ErrQueueFull), errors.Is(err, balancer.ErrQueueTimeout):
		return "sQ--" // the queue's timeout (or bound) ended the wait
	case errors.Is(err, balancer.ErrNoServer):
		return "SC--" // no server could be connected to
	case status == 499 || errors.Is(err, context.Canceled):
		return "CD--" // the client went away
	case status == http.StatusGatewayTimeout:
		return "sH--" // the server sent no headers in time
	}
	return "SH--" // the server broke the exchange
}

// captureRequest keeps what a frontend captures of a request, as it came.
func captureRequest(e *accesslog.Entry, c *accesslog.Captures, r *http.Request) {
	e.CaptureNames = c
	if len(c.RequestHeaders) > 0 {
		e.CapturedRequestHeaders = make([]string, len(c.RequestHeaders))
		for i, cp := range c.RequestHeaders {
			v := r.Header.Get(cp.Name)
			if strings.EqualFold(cp.Name, "Host") {
				v = r.Host
			}
			e.CapturedRequestHeaders[i] = truncate(v, cp.Len)
		}
	}
	if c.Cookie != nil {
		if ck, err := r.Cookie(c.Cookie.Name); err == nil {
			e.CapturedRequestCookie = truncate(ck.Name+"="+ck.Value, c.Cookie.Len)
		}
	}
}

// captureResponse keeps what a frontend captures of the response sent.
func captureResponse(e *accesslog.Entry, c *accesslog.Captures, h http.Header) {
	if len(c.ResponseHeaders) > 0 {
		e.CapturedResponseHeaders = make([]string, len(c.ResponseHeaders))
		for i, cp := range c.ResponseHeaders {
			e.CapturedResponseHeaders[i] = truncate(h.Get(cp.Name), cp.Len)
		}
	}
	if c.Cookie != nil {
		for _, line := range h["Set-Cookie"] {
			if ck, err := http.ParseSetCookie(line); err == nil && ck.Name == c.Cookie.Name {
				e.CapturedResponseCookie = truncate(ck.Name+"="+ck.Value, c.Cookie.Len)
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// httpsURL is r's URL over HTTPS on port (left out when 443).
func httpsURL(r *http.Request, port string) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	// JoinHostPort brackets IPv6 addresses.
	return "https://" + strings.TrimSuffix(net.JoinHostPort(strings.Trim(host, "[]"), port), ":443") + r.URL.RequestURI()
}

// emitWAF sends a block or a detection to the alerts.
func (h *handler) emitWAF(e *accesslog.Entry, rt *route, v *waf.Verdict) {
	typ := alert.EventWAFBlock
	if v.Action == waf.ActionDetect {
		typ = alert.EventWAFDetect
	}
	matches := make([]alert.Match, 0, len(v.Matches))
	for _, m := range v.Matches {
		matches = append(matches, alert.Match{RuleID: m.RuleID, Message: m.Message, Variable: m.Variable, Exclusion: m.Exclusion})
	}
	h.alerts.Emit(alert.Event{Type: typ, Time: e.Time, RequestID: e.RequestID, ClientIP: e.ClientIP,
		Host: e.Host, Path: e.Path, Route: rt.name, Backend: rt.backendName, Policy: rt.policyName,
		Matches: matches, Score: v.Score})
}

// auditRecord is the audit log's account of a flagged request; the
// credentials it carried are not written down.
func auditRecord(e *accesslog.Entry, r *http.Request, rt *route, v *waf.Verdict) *audit.Record {
	hdr := make(map[string][]string, len(r.Header))
	for k, vs := range r.Header {
		switch k {
		case "Authorization", "Cookie", "Proxy-Authorization":
			vs = []string{"[redacted]"}
		}
		hdr[k] = vs
	}
	rec := &audit.Record{Time: e.Time, RequestID: e.RequestID, ClientIP: e.ClientIP, Method: r.Method, Host: r.Host,
		URI: r.URL.RequestURI(), Headers: hdr, Policy: rt.policyName, Action: string(v.Action), Status: v.Status, Score: v.Score}
	for _, m := range v.Matches {
		rec.Matches = append(rec.Matches, audit.Match{RuleID: m.RuleID, Message: m.Message, Variable: m.Variable, Exclusion: m.Exclusion})
	}
	return rec
}

func setVerdict(e *accesslog.Entry, v *waf.Verdict) {
	e.WAFAction, e.WAFRules, e.WAFScore, e.WAFTruncated = string(v.Action), v.Rules, v.Score, v.Truncated
	e.WAFUnconfirmed = v.Unconfirmed
	if v.Action == waf.ActionBlock || v.Action == waf.ActionDetect {
		e.WAFMatches = v.Matches
	}
}

func splitHostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// countingReader counts the request body bytes read from the client.
type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// responseWriter records the status and body bytes sent. Unwrap lets
// http.ResponseController reach Flush and Hijack (WebSocket upgrades).
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection over; ReverseProxy does so only to relay a 101
// Switching Protocols (WebSocket), which is then the status to log.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}
