package gateway

import (
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/waf/alert"
)

// admit decides whether the client may send this request now, in this
// order: the access rules by address, country and AS (iplists.go), whose
// allow skips the rest; a ban (ban.go); the route's rate limit
// (ratelimit.go); then its challenge (challenge.go). A refused or
// challenged request is answered here.
func (h *handler) admit(q *request, rt *route) bool {
	answered, allowed := h.screened(q, rt)
	if answered {
		return false
	}
	return allowed || !h.banned(q, rt) && h.withinLimit(q, rt) && !h.challenged(q, rt)
}

// emitAccess sends the access step's refusals and challenges as alerts
// (the dispatcher groups a burst into a few calls).
func (h *handler) emitAccess(e *accesslog.Entry) {
	if h.alerts == nil {
		return
	}
	typ := ""
	switch e.AccessDecision {
	case "deny":
		typ = alert.EventAccessDenied
	case "challenge":
		typ = alert.EventAccessChallenged
	default:
		return
	}
	h.alerts.Emit(alert.Event{Type: typ, Time: e.Time, RequestID: e.RequestID, ClientIP: e.ClientIP, Host: e.Host,
		Path: e.Path, Backend: e.Backend, Message: e.AccessReason, Fields: map[string]string{"frontend": e.Frontend, "reason": e.AccessReason}})
}

// withinLimit applies the route's rate limit: a request over it is
// answered (429, or a tarpit) and reported as an alert.
func (h *handler) withinLimit(q *request, rt *route) bool {
	r, e := q.r, q.e
	if rt.limit == nil || rt.limit.allow(r.Context(), r, e.ClientIP, e.JA4) {
		return true
	}
	if rt.limit.cfg.Action == "challenge" {
		return !h.challengeFor(q, rt, "rate limit "+rt.limit.cfg.Name)
	}
	e.Error, e.TermState = "rate limited", "PR--"
	if rt.limit.cfg.Action == "tarpit" {
		e.TermState = "PT--"
	}
	h.alerts.Emit(alert.Event{Type: alert.EventRateLimitTriggered, Time: e.Time, RequestID: e.RequestID,
		ClientIP: e.ClientIP, Host: r.Host, Path: r.URL.Path, Route: rt.name, Backend: rt.backendName,
		Fields: map[string]string{"limit": rt.limit.cfg.Name, "action": rt.limit.cfg.Action}})
	rt.limit.refuse(q.w, r, e.RequestID)
	return false
}
