package accesslog

import (
	"net/http"
	"testing"
)

// HeaderBytes plus the body is the %B a real HAProxy 2.6 logged for these
// responses of a Go server (Date: Mon, 07 Dec 2026 18:55:03 GMT).
func TestHeaderBytes(t *testing.T) {
	date := "Mon, 07 Dec 2026 18:55:03 GMT"
	for _, c := range []struct {
		name   string
		status int
		h      http.Header
		body   int64
		want   int64
	}{
		{"with a length", 200, http.Header{"Content-Type": {"text/plain"}, "Date": {date}, "Content-Length": {"11"}}, 11, 116},
		{"chunked", 200, http.Header{"Content-Type": {"text/plain"}, "Date": {date}}, 11, 125},
		{"chunked, 100000 bytes", 200, http.Header{"Content-Type": {"text/plain"}, "Date": {date}}, 100000, 100114},
		{"204", 204, http.Header{"Content-Type": {"text/plain"}, "Date": {date}}, 0, 97},
		{"cookie and more", 200, http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"JSESSIONID=abc123; Path=/"},
			"X-Extra": {"12345"}, "Date": {date}, "Content-Length": {"2"}}, 2, 153},
		{"Connection left out", 200, http.Header{"Content-Type": {"text/plain"}, "Date": {date}, "Content-Length": {"11"}, "Connection": {"keep-alive"}}, 11, 116},
	} {
		if got := HeaderBytes(c.status, "", c.h) + c.body; got != c.want {
			t.Errorf("%s: %d, HAProxy logged %d", c.name, got, c.want)
		}
	}
}
