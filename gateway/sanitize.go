package gateway

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Requests whose meaning a backend could read differently from the WAF are
// refused (400) rather than normalised: sekisho forwards the request target
// exactly as the client sent it, so the WAF and the backend see the same bytes.
// Refused in the path: dot segments ("." or ".."), backslashes, encoded
// slashes, backslashes, dots or NULs (%2F %5C %2E %00), control bytes, and
// percent-encodings that do not decode to valid UTF-8 (overlong forms such
// as %C0%AE included). Refused as targets: "*", CONNECT, opaque or
// fragment-carrying targets.

// rejection is why a request was refused before routing.
type rejection struct {
	status int
	reason string
}

// checkTarget reports a request target the gateway will not forward.
func checkTarget(r *http.Request) *rejection {
	if r.Method == http.MethodConnect {
		return &rejection{http.StatusMethodNotAllowed, "CONNECT is not proxied"}
	}
	if r.URL.Opaque != "" || r.RequestURI == "*" {
		return &rejection{http.StatusBadRequest, "request target is not a path"}
	}
	if strings.IndexByte(r.RequestURI, '#') >= 0 {
		return &rejection{http.StatusBadRequest, "fragment in request target"}
	}
	if reason := checkPath(r.URL.EscapedPath()); reason != "" {
		return &rejection{http.StatusBadRequest, reason}
	}
	return nil
}

// checkPath looks at the path as it will be sent (percent-encoded).
func checkPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "path does not start with /"
	}
	decoded := make([]byte, 0, len(p))
	segStart := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			return "backslash in path"
		case c < 0x20 || c == 0x7f:
			return "control character in path"
		case c == '%':
			if i+2 >= len(p) {
				return "malformed percent-encoding in path"
			}
			n, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
			if err != nil {
				return "malformed percent-encoding in path"
			}
			v := byte(n)
			switch v {
			case '/', '\\', '.', 0:
				return "encoded slash, backslash, dot or NUL in path"
			}
			if v < 0x20 || v == 0x7f {
				return "encoded control character in path"
			}
			decoded = append(decoded, v)
			i += 2
			continue
		case c == '/':
			if seg := p[segStart:i]; seg == "." || seg == ".." {
				return "dot segment in path"
			}
			segStart = i + 1
		}
		decoded = append(decoded, c)
	}
	if seg := p[segStart:]; seg == "." || seg == ".." {
		return "dot segment in path"
	}
	if !utf8.Valid(decoded) {
		return "path is not valid UTF-8 (overlong or broken encoding)"
	}
	return ""
}

// hopByHop are removed from every request before inspection; the reverse
// proxy removes them again (and those named in Connection) on the way out.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Upgrade"}

// clientAddressHeaders claim to say who the client is or what it asked
// for; from an untrusted peer they are lies, so they never reach the WAF
// or a backend.
var clientAddressHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Prefix",
	"X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip",
	"Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Cluster-Client-Ip", "Client-Ip",
	"X-Original-Forwarded-For", "X-Original-Url", "X-Rewrite-Url"}

// cleanHeaders makes the header map what the backend will receive, before
// the WAF looks at it. A WebSocket upgrade keeps its Connection and Upgrade
// headers (the proxy needs them); no other upgrade, h2c included, is passed on.
func cleanHeaders(h http.Header) {
	websocket := false
	if conn := h["Connection"]; len(conn) > 0 {
		for _, v := range conn {
			for _, tok := range strings.Split(v, ",") {
				tok = textproto.TrimString(tok)
				if strings.EqualFold(tok, "upgrade") {
					websocket = strings.EqualFold(textproto.TrimString(h.Get("Upgrade")), "websocket")
					continue
				}
				if tok != "" {
					h.Del(tok)
				}
			}
		}
	}
	for _, k := range hopByHop {
		if websocket && (k == "Connection" || k == "Upgrade") {
			continue
		}
		if k == "Te" && h.Get("Te") == "trailers" {
			continue // gRPC needs it; the proxy forwards it
		}
		delete(h, k)
	}
	if websocket {
		h["Connection"] = []string{"Upgrade"}
	}
	for _, k := range clientAddressHeaders {
		delete(h, k)
	}
	// Like nginx (underscores_in_headers off): X_Forwarded_For and friends
	// become X-Forwarded-For behind CGI-style backends.
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 {
			delete(h, k)
		}
	}
}
