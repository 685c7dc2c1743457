package gateway

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/waf"
)

// forward sends the inspected request to the route's backend and the
// response, once the WAF has passed its headers and body, to the client;
// the log line gets the server, the times and how the exchange ended.
func (h *handler) forward(q *request, rt *route, tx *waf.Tx) {
	defer h.traceUpstream(q)()
	r, e, rw := q.r, q.e, q.w
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
		ClientIP: e.ClientIP, ClientPort: e.ClientPort, PeerIP: q.fwdPeer, ClientConn: r.RemoteAddr,
		Host: r.Host, RequestID: e.RequestID, TLS: e.TLS, JA4: e.JA4,
		Proto:      "http",
		OnError:    func(w http.ResponseWriter, r *http.Request, status int) { writeErrorPage(w, r, status, e.RequestID) },
		OnResponse: func(resp *http.Response) error { return h.response(q, rt, tx, resp) },
	}
	if e.TLS != nil {
		x.Proto = "https"
	}
	x.LocalAddr = q.localAP
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

// response takes the server's response before anything of it reaches the
// client: the gateway's HSTS policy, then the WAF's verdict on its headers
// and on the first part of its body (respbody.go).
func (h *handler) response(q *request, rt *route, tx *waf.Tx, resp *http.Response) error {
	e := q.e
	var hdrBytes int64 // %B counts the server's headers as they came
	if h.access.CountsHeaderBytes() {
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
	if err := h.inspectResponseBody(tx, e, rt, q.r, resp); err != nil {
		return err
	}
	e.HeaderBytes = hdrBytes
	return nil
}
