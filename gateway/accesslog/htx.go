package accesslog

import (
	"net/http"
	"strconv"
)

// HAProxy's %B counts a response as it came from the server and as HAProxy
// holds it (HTX), not as bytes on the wire: a start line of 20 bytes plus
// its version, code and reason; each header's name and value without
// separators; one byte ending the headers; the body; and one more ending a
// chunked body. Connection-level headers are not in it, nor the headers
// HAProxy adds itself. (Measured with HAProxy 2.6: TestHeaderBytes.)
const (
	htxStartLine = 20
	htxEndOfHdrs = 1
	htxEndOfBody = 1
)

// hopHeaders are the headers HAProxy's HTTP/1 parser takes out of a
// message (it keeps Transfer-Encoding, which tells how the body came).
var hopHeaders = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Connection": true}

// HeaderBytes is what HAProxy's %B counts of a response besides its body
// bytes: its start line (reason "" for the standard one) and headers, with
// the framing a body without a Content-Length gets (chunked).
func HeaderBytes(status int, reason string, h http.Header) int64 {
	if reason == "" {
		reason = standardReason(status)
	}
	n := int64(htxStartLine + len("HTTP/1.1") + len(strconv.Itoa(status)) + len(reason) + htxEndOfHdrs)
	for k, vs := range h {
		if hopHeaders[k] || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			n += int64(len(k) + len(v))
		}
	}
	if _, ok := h["Content-Length"]; !ok && bodyAllowed(status) {
		// Sent chunked: HAProxy counts the header and the end of the body.
		n += int64(len("Transfer-Encoding")+len("chunked")) + htxEndOfBody
	}
	return n
}

// standardReason is the reason phrase net/http writes for status.
func standardReason(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "status code " + strconv.Itoa(status)
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
