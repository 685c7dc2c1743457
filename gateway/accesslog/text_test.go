package accesslog

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// A TLS request with captures renders exactly as HAProxy's httplog line
// (the layout of HAProxy's documentation, section 8.2.3).
func TestHTTPLog_Golden(t *testing.T) {
	f, err := ParseFormat(HTTPLog)
	if err != nil {
		t.Fatal(err)
	}
	e := &Entry{
		Time: time.Date(2026, 11, 21, 12, 14, 14, 655e6, time.UTC), ClientIP: "10.0.1.2", ClientPort: 33317,
		Frontend: "http-in", Backend: "static", Server: "srv1", Method: "GET", Path: "/index.html", Protocol: "HTTP/1.1",
		Read: 10 * time.Millisecond, Queue: 0, Connect: 30 * time.Millisecond, Response: 69 * time.Millisecond, Total: 109 * time.Millisecond,
		Status: 200, BytesOut: 2750, TLS: &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256},
		ActiveConns: 1, FrontendConns: 1, BackendConns: 1, ServerConns: 1,
		CapturedRequestHeaders: []string{"1wt.eu"}, CapturedResponseHeaders: []string{},
		CapturedRequestCookie: "JSESSIONID=ABCD", TermState: "----",
	}
	want := `10.0.1.2:33317 [21/Nov/2026:12:14:14.655] http-in~ static/srv1 10/0/30/69/109 200 2750 JSESSIONID=ABCD - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"`
	if got := f.Line(e); got != want {
		t.Fatalf("\ngot  %s\nwant %s", got, want)
	}
	// No server (a block before forwarding): HAProxy's <NOSRV> and -1
	// timers; no captures: no blocks, and one space, not three, before
	// the request (HAProxy writes a separator only after something).
	e.Server, e.Response, e.TermState = "", 0, "WR--"
	e.CapturedRequestHeaders, e.CapturedResponseHeaders = nil, nil
	if got := f.Line(e); !strings.Contains(got, "static/<NOSRV> 10/-1/-1/-1/109 200") || !strings.Contains(got, " WR-- ") || !strings.HasSuffix(got, ` 0/0 "GET /index.html HTTP/1.1"`) {
		t.Fatalf("without a server: %s", got)
	}
}

func TestParseFormat(t *testing.T) {
	f, err := ParseFormat("%ci %ID SSL:{%sslv,%sslc} %Tt %Tq 100%%")
	if err != nil {
		t.Fatal(err)
	}
	e := &Entry{ClientIP: "192.0.2.1", RequestID: "r1", TLS: &tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		Total: 5 * time.Millisecond, Read: time.Millisecond, WAF: 2 * time.Millisecond}
	if got := f.Line(e); got != "192.0.2.1 r1 SSL:{TLSv1.2,ECDHE-RSA-AES128-GCM-SHA256} 5 3 100%" {
		t.Fatalf("got %q", got)
	}
	if _, err := ParseFormat("%ci %nope"); err == nil || !strings.Contains(err.Error(), "%nope") {
		t.Fatalf("unknown variable: %v", err)
	}
	var buf bytes.Buffer
	NewText(&buf, f).Write(e)
	if !strings.HasSuffix(buf.String(), "100%\n") {
		t.Fatalf("text logger wrote %q", buf.String())
	}
}
