package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	cases := []struct {
		path string
		ok   bool
	}{
		{"/", true},
		{"/shop/search", true},
		{"/caf%C3%A9/a%20b", true},
		{"/a//b", true},
		{"/a/.well-known/x", true},
		{"/a/..b/c", true},
		{"/a/../b", false},
		{"/a/./b", false},
		{"/..", false},
		{"/a/.", false},
		{"/a%2fb", false},
		{"/a%2Fb", false},
		{"/%2e%2e/etc/passwd", false},
		{"/%2E", false},
		{"/a%5cb", false},
		{"/a\\b", false},
		{"/%c0%ae%c0%ae/", false}, // overlong "."
		{"/%e0%80%af", false},     // overlong "/"
		{"/%ff", false},
		{"/a%00", false},
		{"/a%0d%0a", false},
		{"/a%", false},
		{"/a%zz", false},
		{"a/b", false},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			reason := checkPath(tc.path)
			if (reason == "") != tc.ok {
				t.Fatalf("checkPath(%q) = %q, want ok=%v", tc.path, reason, tc.ok)
			}
		})
	}
}

// FuzzCheckPath: whatever checkPath accepts decodes to a path with no dot
// segment, no backslash and no NUL, and decodes exactly once.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/", "/caf%C3%A9", "/%c0%ae", "/a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != "" {
			return
		}
		dec, err := url.PathUnescape(p)
		if err != nil {
			t.Fatalf("accepted %q but it does not decode: %v", p, err)
		}
		for _, seg := range strings.Split(dec, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q with dot segment after decoding (%q)", p, dec)
			}
		}
		if strings.ContainsAny(dec, "\\\x00") {
			t.Fatalf("accepted %q that decodes to a backslash or NUL (%q)", p, dec)
		}
	})
}

func TestCheckTarget(t *testing.T) {
	cases := []struct {
		method, target string
		status         int
	}{
		{"GET", "/ok?q=1", 0},
		{"CONNECT", "example.com:443", http.StatusMethodNotAllowed},
		{"OPTIONS", "*", http.StatusBadRequest},
		{"GET", "/x#frag", http.StatusBadRequest},
		{"GET", "/a/../etc/passwd", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			u, err := url.ParseRequestURI(tc.target)
			if err != nil {
				u = &url.URL{Host: tc.target}
			}
			r := &http.Request{Method: tc.method, RequestURI: tc.target, URL: u}
			got := 0
			if rej := checkTarget(r); rej != nil {
				got = rej.status
			}
			if got != tc.status {
				t.Fatalf("status = %d, want %d", got, tc.status)
			}
		})
	}
}

func TestCleanHeaders(t *testing.T) {
	cases := []struct {
		name     string
		in       http.Header
		keep     []string
		drop     []string
		wantConn string
		wantUpgr string
	}{
		{
			name: "hop-by-hop and those named in Connection",
			in: http.Header{"Connection": {"keep-alive, X-Secret"}, "X-Secret": {"1"}, "Keep-Alive": {"timeout=5"},
				"Proxy-Connection": {"x"}, "Te": {"gzip"}, "Trailer": {"X"}, "Accept": {"*/*"}},
			keep: []string{"Accept"}, drop: []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Connection", "Te", "Trailer"},
		},
		{
			name: "TE trailers stays for gRPC",
			in:   http.Header{"Te": {"trailers"}},
			keep: []string{"Te"},
		},
		{
			name: "h2c upgrade is not passed on",
			in:   http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}},
			drop: []string{"Connection", "Upgrade", "Http2-Settings"},
		},
		{
			name:     "websocket upgrade is kept",
			in:       http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}},
			keep:     []string{"Sec-Websocket-Key"},
			wantConn: "Upgrade", wantUpgr: "websocket",
		},
		{
			name: "client address claims and underscored names",
			in: http.Header{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}, "X-Real-Ip": {"1.2.3.4"},
				"True-Client-Ip": {"1.2.3.4"}, "X_forwarded_for": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}, "Cookie": {"a=b"}},
			keep: []string{"Cookie"}, drop: []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "True-Client-Ip", "X_forwarded_for", "X-Forwarded-Proto"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			cleanHeaders(h)
			for _, k := range tc.keep {
				if _, ok := h[k]; !ok {
					t.Errorf("%s was removed", k)
				}
			}
			for _, k := range tc.drop {
				if _, ok := h[k]; ok {
					t.Errorf("%s was kept: %q", k, h[k])
				}
			}
			if got := h.Get("Connection"); got != tc.wantConn {
				t.Errorf("Connection = %q, want %q", got, tc.wantConn)
			}
			if got := h.Get("Upgrade"); got != tc.wantUpgr {
				t.Errorf("Upgrade = %q, want %q", got, tc.wantUpgr)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	if got := requestID("abc-123.def:9_x"); got != "abc-123.def:9_x" {
		t.Errorf("well-formed ID replaced: %q", got)
	}
	for _, bad := range []string{"", "a b", "<script>", strings.Repeat("a", 129), "a\nb"} {
		got := requestID(bad)
		if got == bad || len(got) != 32 || !validRequestID(got) {
			t.Errorf("requestID(%q) = %q, want a new 32-hex-char ID", bad, got)
		}
	}
	if requestID("") == requestID("") {
		t.Error("two generated IDs are equal")
	}
}
