package gateway

import (
	"net/http"
	"strings"
)

// checked runs the checks every request passes before it is routed, and
// the answers the gateway gives itself, and reports whether one of them
// answered: a request that could mean two things (Content-Length with
// Transfer-Encoding, a target that is not one path: sanitize.go) is
// refused, the monitor URI and ACME's HTTP challenges are answered, plain
// HTTP is redirected when the frontend says so. It also sets the frontend's
// own response headers and takes out the request headers no server may see.
func (h *handler) checked(q *request) bool {
	r, rw, e := q.r, q.w, q.e
	if q.conn != nil && len(r.TransferEncoding) > 0 && q.conn.TakeAmbiguousFraming() {
		closeAfter(rw, r)
		q.fail(http.StatusBadRequest, "Content-Length with Transfer-Encoding")
		return true
	}
	if h.monitorURI != "" && r.URL.Path == h.monitorURI {
		e.Backend, e.TermState = "<monitor>", "LR--"
		h.health(rw, r)
		return true
	}
	if rej := checkTarget(r); rej != nil {
		q.fail(rej.status, rej.reason)
		return true
	}
	if e.TLS == nil && h.acme != nil && h.acme.HandleHTTPChallenge(rw, r) {
		e.TermState = "LR--"
		return true
	}
	if e.TLS == nil && h.redirectHTTPS && !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		e.TermState = "LR--"
		// 308 keeps the method and body, unlike 301.
		http.Redirect(rw, r, httpsURL(r, h.httpsPort), http.StatusPermanentRedirect)
		return true
	}
	if e.TLS != nil && h.hsts != "" {
		rw.Header().Set("Strict-Transport-Security", h.hsts)
	}
	if e.TLS != nil && h.altSvc != "" && r.ProtoMajor < 3 {
		rw.Header().Set("Alt-Svc", h.altSvc)
	}
	cleanHeaders(r.Header)
	return false
}
