package gateway

import (
	"time"

	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/listen"
)

// refused logs and counts a request that net/http refused without calling
// the handler (a duplicate Host, a bad header name, control bytes...): one
// access log line, HAProxy's <BADREQ> ended PR--, so that every request
// shows in the log and in sekisho_requests_total.
func (h *handler) refused(c *listen.Conn, status int, start time.Time) {
	if n := h.next.Load(); n != nil {
		n.refused(c, status, start) // the frontend was reloaded: its successor logs
		return
	}
	e := &accesslog.Entry{
		Time: start, Frontend: h.name, Status: status, BadRequest: true,
		TermState: "PR--", Error: "request refused by the HTTP parser",
		ActiveConns: h.active.Load() + 1, FrontendConns: h.inflight.Load() + 1,
	}
	e.ClientIP, e.ClientPort = splitHostPort(c.RemoteAddr().String())
	logProxyPeer(e, c)
	e.TLS = c.TLS()
	e.Total = time.Since(start)
	h.access.Write(e)
	h.metrics.observe(e)
}

// logProxyPeer names in e's peer_ip the load balancer that sent c's PROXY
// header, when it sent one.
func logProxyPeer(e *accesslog.Entry, c *listen.Conn) {
	if lb := c.ProxyPeer(); lb != nil {
		e.PeerIP, _ = splitHostPort(lb.String())
	}
}
