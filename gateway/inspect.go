package gateway

import (
	"net"
	"net/http"

	"github.com/sekisho/sekisho/waf"
)

// inspect runs the request through the route's WAF policy and reports
// whether it may go on to a server. The verdict goes to the log line, the
// alerts and the audit log; a refused request is answered here.
func (h *handler) inspect(q *request, rt *route, tx *waf.Tx) bool {
	defer h.traceChild(q, "waf")()
	r, e, rw := q.r, q.e, q.w
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	serverIP, serverPort := "", 0
	if q.conn != nil {
		local = q.conn.LocalAddr() // with a PROXY header, the address the client asked for
	}
	if local != nil {
		q.localAP = addrPort(local)
		serverIP, serverPort = q.localAP.Addr().String(), int(q.localAP.Port())
	}
	v := tx.InspectRequest(r, r.URL.RequestURI(), waf.Conn{
		ClientIP: e.ClientIP, ClientPort: e.ClientPort, ServerIP: serverIP, ServerPort: serverPort, JA4: e.JA4, JA4H: e.JA4H,
	})
	e.Read, e.WAF = tx.ReadTime, tx.InspectTime
	setVerdict(e, v)
	if v.Action == waf.ActionBlock || v.Action == waf.ActionDetect {
		h.emitWAF(e, rt, v)
	}
	if h.audit.Wants(string(v.Action)) {
		h.audit.Write(auditRecord(e, r, rt, v))
	}
	if !v.Blocked() {
		return !h.suspicious(q, rt, v.Score)
	}
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
		return false
	}
	writeErrorPage(rw, r, v.Status, e.RequestID)
	return false
}
