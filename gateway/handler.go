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

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/admin/console"
	"github.com/sekisho/sekisho/gateway/audit"
	"github.com/sekisho/sekisho/gateway/challenge"
	"github.com/sekisho/sekisho/gateway/clientip"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/gateway/reputation"
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
	// challenge is what a client needs a clearance for; nil: none.
	challenge *challenge.Rule
	// wafScore, when above 0, limits the challenge to requests the WAF
	// passes with at least this score.
	wafScore int
	access   *accessRules // nil: the frontend's
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
	challenge     *challenge.Issuer  // clearances; nil when no route has a challenge
	bans          *banGuard          // nil without a ban: config
	rules         *accessRules       // nil without access: rules
	ja4Header     string             // canonical name of the JA4 header to servers; "" none
	ja4h          bool               // compute JA4H
	tracing       *tracing           // nil without tracing:
	events        console.Store      // the console's events
	replica       string             // this gateway's name in the fleet's events
	geo           *reputation.GeoDB  // nil without geoip:
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

// ServeHTTP passes a request through the gateway's steps, in order, each in
// its own file: the client's address (request.go), one-meaning checks and
// the gateway's own answers (checks.go), the route, access (access.go), the
// WAF (inspect.go), the server (proxy.go); the log line is written as the
// request ends, whichever step ended it (request.go).
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := h.next.Load(); n != nil {
		n.ServeHTTP(w, r)
		return
	}
	q := h.begin(w, r)
	defer h.finish(q)
	h.identify(q)
	h.traceStart(q)
	if h.checked(q) || h.challengeAnswer(q) {
		return
	}
	rt := h.route(q)
	if rt == nil || !h.admit(q, rt) {
		return
	}
	tx := rt.policy.cur.Load().NewTx(r.Context(), q.e.RequestID)
	defer tx.Close()
	if !h.inspect(q, rt, tx) {
		return
	}
	h.forward(q, rt, tx)
}

// route finds the request's route; none is a 404.
func (h *handler) route(q *request) *route {
	rt := h.match(q.r.Host, q.r.URL.Path)
	if rt == nil {
		q.fail(http.StatusNotFound, "no route")
		return nil
	}
	q.e.Backend, q.e.WAFPolicy = rt.backendName, rt.policyName
	q.route = rt.name
	return rt
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
