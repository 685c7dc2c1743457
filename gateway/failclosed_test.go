package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// countingServer is a backend that counts the requests that reach it and
// reads each body whole.
func countingServer(t *testing.T) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "backend")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), hits
}

// rawExchange writes req on a fresh connection, half-closes it (so that a
// body cut short ends there), and reads one response.
func rawExchange(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	return rawRoundTrip(t, addr, req, true)
}

// rawRoundTrip writes req on a fresh connection, half-closing it after if
// asked, and reads one response.
func rawRoundTrip(t *testing.T, addr, req string, halfClose bool) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response to %q: %v", req, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// A request body the WAF cannot read from the client (bad chunking, a body
// cut short) is refused with 400 and never reaches the backend, in every
// policy mode that inspects bodies: the WAF fails closed.
func TestWAF_ClientBodyErrorFailsClosed(t *testing.T) {
	addr, hits := countingServer(t)
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    routes:
      - {path_prefix: /detect/, backend: app, waf_policy: detect}
      - {path_prefix: /partial/, backend: app, waf_policy: partial}
waf:
  policies:
    - {name: default}
    - {name: detect, mode: detect}
    - {name: partial, request_body_limit: 8, request_body_limit_action: process_partial}
backends:
  - name: app
    servers: [{address: "%s"}]
`, addr), Options{Log: zerolog.Nop(), Access: &access})
	front := g.Addrs("web")[0].String()
	bodies := map[string]string{
		"bad chunk size":   "zz\r\nabc\r\n0\r\n\r\n",
		"chunk cut short":  "a\r\nabc",
		"no last chunk":    "3\r\nabc\r\n",
		"bad chunk ending": "3\r\nabcXY0\r\n\r\n",
	}
	for _, path := range []string{"/", "/detect/", "/partial/"} {
		for name, body := range bodies {
			t.Run(path+"/"+name, func(t *testing.T) {
				before := hits.Load()
				resp, _ := rawExchange(t, front, "POST "+path+" HTTP/1.1\r\nHost: localhost\r\n"+
					"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d, want 400", resp.StatusCode)
				}
				if n := hits.Load() - before; n != 0 {
					t.Errorf("the backend got %d request(s) with an unreadable body", n)
				}
			})
		}
	}
	// Each refusal is logged as the client's error, not passed as a pass.
	want := 3 * len(bodies)
	if n := strings.Count(access.String(), `"waf_action":"error"`); n != want {
		t.Errorf("%d access log lines with waf_action error, want %d:\n%s", n, want, access.String())
	}
	if n := strings.Count(access.String(), "reading request body"); n != want {
		t.Errorf("%d access log lines name the client-body error, want %d", n, want)
	}
}

// A request whose inspection fails inside the WAF (here: the body buffer
// cannot spill to its temporary folder, which is gone) is refused with
// 500, logged, and never reaches the backend: the WAF fails closed.
func TestWAF_InspectionErrorFailsClosed(t *testing.T) {
	addr, hits := countingServer(t)
	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp) // Coraza's body buffer spills here, as it found it at start
	var logs, access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
waf:
  policies:
    - name: default
      directives: |
        SecRequestBodyInMemoryLimit 16
backends:
  - name: app
    servers: [{address: "%s"}]
`, addr), Options{Log: zerolog.New(&logs), Access: &access})
	front := "http://" + g.Addrs("web")[0].String()
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(front+"/", "application/x-www-form-urlencoded", strings.NewReader("q="+strings.Repeat("a", 64)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the backend got %d request(s) the WAF could not inspect", n)
	}
	if !strings.Contains(logs.String(), "waf inspection failed; request refused") {
		t.Errorf("no error logged:\n%s", logs.String())
	}
	if !strings.Contains(access.String(), `"waf_action":"error"`) {
		t.Errorf("access log: %s", access.String())
	}
	// A short body stays in memory and passes: the refusal above was the error's.
	resp, err = http.Post(front+"/", "application/x-www-form-urlencoded", strings.NewReader("q=a"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || hits.Load() != 1 {
		t.Errorf("a short body: status %d, backend hits %d; want 200, 1", resp.StatusCode, hits.Load())
	}
}
