package waf

import (
	"net/http"
	"strings"
)

// DefaultResponseBodyTypes are the media types whose response bodies are
// inspected when a policy names none: the text an application renders, in
// which CRS's data leakage rules find error messages, listings and source.
func DefaultResponseBodyTypes() []string {
	return []string{"text/*", "application/json", "application/xml", "application/javascript",
		"application/x-javascript", "application/xhtml+xml", "+json", "+xml"}
}

// validMediaPattern reports whether p is "type/subtype", "type/*" or "+suffix".
func validMediaPattern(p string) bool {
	if suffix, ok := strings.CutPrefix(p, "+"); ok {
		return suffix != "" && isToken(suffix)
	}
	typ, sub, ok := strings.Cut(p, "/")
	return ok && typ != "" && sub != "" && isToken(typ) && (sub == "*" || isToken(sub))
}

func isToken(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}*`, c) >= 0 {
			return false
		}
	}
	return true
}

// mediaMatches reports whether the media type mt (lower case, no
// parameters) is one of patterns.
func mediaMatches(mt string, patterns []string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	for _, p := range patterns {
		p = strings.ToLower(p)
		switch {
		case strings.HasPrefix(p, "+"):
			if strings.HasSuffix(sub, p) {
				return true
			}
		case strings.HasSuffix(p, "/*"):
			if typ == p[:len(p)-2] {
				return true
			}
		case p == mt:
			return true
		}
	}
	return false
}

// WantsResponseBody reports whether the policy inspects the body of a
// response with this status and these headers to a request with method:
// a text type of the policy's, in an encoding the gateway decodes, that is
// not a stream. Server-Sent Events and responses whose backend asks not to
// be buffered (nginx's X-Accel-Buffering: no) stream untouched, as do
// upgrades, bodiless statuses and unknown encodings. A body without a
// Content-Type is inspected: a browser may sniff and render it.
func (t *Tx) WantsResponseBody(method string, status int, h http.Header) bool {
	if t.tx == nil || !*t.e.cfg.InspectResponse || !*t.e.cfg.InspectResponseBody {
		return false
	}
	if method == http.MethodHead || status < 200 || status == http.StatusNoContent || status == http.StatusNotModified {
		return false
	}
	if strings.EqualFold(h.Get("X-Accel-Buffering"), "no") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding"))) {
	case "", "identity", "gzip", "x-gzip", "deflate", "br", "zstd": // what gateway/forward.HoldBody decodes
	default:
		return false
	}
	mt, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch mt {
	case "text/event-stream":
		return false
	case "":
		return true // a browser sniffs it, as it may be HTML
	}
	return mediaMatches(mt, t.e.cfg.ResponseBodyTypes)
}

// InspectsResponseBody reports whether the policy runs the response body
// phase at all; ResponseBodyLimit is how much of a body it holds.
func (t *Tx) InspectsResponseBody() bool {
	return t.tx != nil && *t.e.cfg.InspectResponse && *t.e.cfg.InspectResponseBody
}

// ResponseBodyLimit is the most of a response body the policy inspects, decoded.
func (t *Tx) ResponseBodyLimit() int64 { return t.e.cfg.ResponseBodyLimit }
