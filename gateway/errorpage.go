package gateway

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Status}} {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}code{background:#eee;padding:.1em .3em}</style>
</head><body><h1>{{.Status}} {{.Title}}</h1><p>{{.Message}}</p>
<p>Request ID: <code>{{.RequestID}}</code></p></body></html>
`))

var messages = map[int]string{
	http.StatusForbidden:             "This request was blocked by the security policy.",
	http.StatusRequestEntityTooLarge: "The request body is larger than this site accepts.",
	http.StatusBadRequest:            "The request could not be understood.",
	http.StatusNotFound:              "No site is configured for this address.",
	http.StatusServiceUnavailable:    "No server is available to answer right now.",
	http.StatusBadGateway:            "The server behind this gateway did not answer properly.",
	http.StatusGatewayTimeout:        "The server behind this gateway did not answer in time.",
	http.StatusTooManyRequests:       "Too many requests: please wait before trying again.",
}

// closeAfter closes an HTTP/1.x connection after the response, for a
// refusal that leaves the request's body unread (cheaper than net/http
// draining it) or its framing in doubt. HTTP/2 and HTTP/3 send no
// connection-specific headers (RFC 9113 8.2.2, RFC 9114 4.2): an HTTP/3
// client rejects the response, and Go's HTTP/2 server turns Connection:
// close into a GOAWAY for every stream of the connection. There the stream
// ends alone, with its unread body.
func closeAfter(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// writeErrorPage answers with the gateway's own page: JSON when the client
// accepts JSON and not HTML, HTML otherwise. The request ID lets an operator
// find the log line.
func writeErrorPage(w http.ResponseWriter, r *http.Request, status int, requestID string) {
	msg, ok := messages[status]
	if !ok {
		msg = "The request could not be completed."
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "json") && !strings.Contains(accept, "html") {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(struct {
			Status    int    `json:"status"`
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}{status, msg, requestID})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTemplate.Execute(w, struct {
		Status                    int
		Title, Message, RequestID string
	}{status, http.StatusText(status), msg, requestID})
}
