package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

// HTTP/3 requests take the same path as HTTP/1 and HTTP/2 ones: a benign
// GET and POST reach the backend byte for byte, an attack gets 403 and
// never reaches it, and the access log says HTTP/3.0 with TLS 1.3. TCP
// responses over TLS advertise HTTP/3.
func TestFrontend_HTTP3(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	access := &syncBuffer{}
	g, _, _, _ := runGatewayWith(t, h3GatewayYAML(backend.URL), Options{Log: zerolog.Nop(), Access: access})
	addr := g.Addrs("web")[0].String()
	_, port, _ := net.SplitHostPort(addr)

	h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	client := &http.Client{Transport: h3, Timeout: 5 * time.Second}
	body := strings.Repeat("name=Ann&message=hello+world&", 200)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/search?q=running+shoes", "", 200},
		{"POST", "/contact", body, 200},
		{"GET", "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "", 403},
	} {
		req, _ := http.NewRequest(tc.method, "https://"+addr+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("User-Agent", "test/1.0")
		req.Header.Set("Accept", "text/html")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Proto != "HTTP/3.0" {
			t.Errorf("%s %s: %d over %s, want %d over HTTP/3.0", tc.method, tc.path, resp.StatusCode, resp.Proto, tc.status)
		}
		if resp.Header.Get("Alt-Svc") != "" {
			t.Errorf("Alt-Svc on an HTTP/3 response")
		}
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 2 || got[0] != "GET /search?q=running+shoes " || got[1] != "POST /contact "+body {
		t.Errorf("backend saw %d requests: %.200q", len(got), got)
	}
	if l := access.String(); strings.Count(l, `"protocol":"HTTP/3.0"`) != 3 || !strings.Contains(l, `"tls_version":"TLSv1.3"`) {
		t.Errorf("access log:\n%s", l)
	}

	// The client's one QUIC connection is open, and counted.
	if n := g.frontend("web").open.Load(); n != 1 {
		t.Errorf("open connections %d during the HTTP/3 session, want 1", n)
	}
	h3.Close()
	for deadline := time.Now().Add(5 * time.Second); g.frontend("web").open.Load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %d 5 s after the client closed, want 0", g.frontend("web").open.Load())
		}
	}

	tcp := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := tcp.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := `h3=":` + port + `"; ma=86400`; resp.Header.Get("Alt-Svc") != want {
		t.Errorf("Alt-Svc over TCP = %q, want %q", resp.Header.Get("Alt-Svc"), want)
	}
}
