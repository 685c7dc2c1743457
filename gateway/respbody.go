package gateway

import (
	"errors"
	"net/http"

	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/waf"
)

// errResponseRefused is the access log's error for a response the WAF refused.
var errResponseRefused = errors.New("response body refused by the WAF")

// inspectResponseBody runs the policy's response body phase once the
// response headers passed. A text body's first part is held (at most the
// policy's response_body_limit) and inspected before a byte of the
// response is sent, then released ahead of the rest, which streams; binary
// types and streams are not held, and the phase weighs their headers
// only. An error refuses the response: the client gets the gateway's error
// page, neither the server's headers nor any of its body.
func (h *handler) inspectResponseBody(tx *waf.Tx, e *accesslog.Entry, rt *route, r *http.Request, resp *http.Response) error {
	if !tx.InspectsResponseBody() {
		return nil
	}
	var body []byte
	if tx.WantsResponseBody(r.Method, resp.StatusCode, resp.Header) {
		held, done := forward.HoldBody(resp, tx.ResponseBodyLimit())
		defer done()
		body = held
	}
	before := len(e.WAFRules)
	v := tx.InspectResponseBody(body)
	e.WAF = tx.InspectTime
	if (v.Action == waf.ActionBlock || v.Action == waf.ActionDetect) && len(v.Rules) > before && h.audit.Wants(string(v.Action)) {
		h.audit.Write(auditRecord(e, r, rt, v))
	}
	switch {
	case v.Blocked():
		setVerdict(e, v)
		e.TermState = "WD--" // the WAF refused the response body
		if v.Action == waf.ActionError {
			e.TermState = "ID--"
			h.inspectionFailed(e, tx, "waf response inspection failed; response refused")
		} else {
			h.emitWAF(e, rt, v)
		}
		return &forward.StatusError{Status: v.Status, Err: errResponseRefused}
	case len(v.Rules) > before:
		setVerdict(e, v)
		if v.Action == waf.ActionDetect {
			h.emitWAF(e, rt, v)
		}
	}
	return nil
}

// inspectionFailed logs why tx could not inspect, in e and, unless the
// client caused it (a bad body, a client gone), in the error log with msg.
func (h *handler) inspectionFailed(e *accesslog.Entry, tx *waf.Tx, msg string) {
	e.Error = tx.Err().Error()
	if !errors.Is(tx.Err(), waf.ErrClientBody) && !errors.Is(tx.Err(), waf.ErrClientGone) {
		h.log.Error().Err(tx.Err()).Str(accesslog.FieldRequestID, e.RequestID).Msg(msg)
	}
}
