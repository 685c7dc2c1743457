package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/e2e/debpkg"
	"github.com/sekisho/sekisho/e2e/freeport"
)

// goldenBackend answers as the golden test's server: a body with a
// length, a chunked one, and one that sets the captured cookie.
func goldenBackend(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "hello")
			w.(http.Flusher).Flush()
			io.WriteString(w, " world")
		case "/cookie":
			w.Header().Set("Set-Cookie", "JSESSIONID=abc123; Path=/")
			io.WriteString(w, "hi")
		default:
			io.WriteString(w, "hello world")
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// goldenPeer is a running HAProxy: where it listens, its log lines, and
// its stats socket.
type goldenPeer struct {
	addr  string
	lines <-chan string
	sock  string
}

// goldenHAProxy runs Debian's HAProxy with option httplog in front of
// backend (its backend section ends with backendExtra), capturing what the
// sekisho side captures.
func goldenHAProxy(t *testing.T, backend, backendExtra string) *goldenPeer {
	t.Helper()
	bin := debpkg.Need(t, "haproxy", "haproxy")
	addr := freeport.Addr(t)
	dir := t.TempDir()
	cfg, sock := filepath.Join(dir, "haproxy.cfg"), filepath.Join(dir, "stats.sock")
	os.WriteFile(cfg, []byte(`global
  log stdout format raw local0
  stats socket `+sock+`
defaults
  mode http
  log global
  option httplog
  option dontlognull
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend web
  bind `+addr+`
  capture request header Host len 20
  capture request header User-Agent len 40
  capture response header Content-Type len 30
  capture cookie JSESSIONID len 20
  default_backend app
backend app
  server s1 `+backend+`
`+backendExtra), 0o600)
	cmd := exec.Command(bin, "-db", "-f", cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &goldenPeer{addr: addr, lines: ch, sock: sock}
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s", addr)
		}
	}
}

// waitIdle waits until HAProxy holds no client connection (show info's
// CurrConns, on its stats socket).
func (h *goldenPeer) waitIdle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		c, err := net.Dial("unix", h.sock)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "show info\n")
		info, _ := io.ReadAll(c)
		c.Close()
		if strings.Contains(string(info), "\nCurrConns: 0\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy still holds connections after 5 s:\n%s", info)
		}
	}
}

// sendRaw writes req on a new connection and reads until the server closes it.
func sendRaw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	resp, _ := io.ReadAll(c)
	return string(resp)
}

// goldenNormalize blanks what legitimately differs between two proxies'
// lines for the same request: the client port, the date and the timers'
// values (a timer that did not run, -1, stays).
var goldenFields = regexp.MustCompile(`^(\S+):\d+ \[[^\]]+\] (\S+ \S+) (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+) (.*)$`)

func goldenNormalize(line string) string {
	m := goldenFields.FindStringSubmatch(line)
	if m == nil {
		return "unparsed: " + line
	}
	timers := make([]string, 5)
	for i, v := range m[3:8] {
		timers[i] = "T"
		if v == "-1" {
			timers[i] = "-1"
		}
	}
	return m[1] + ":P [D] " + m[2] + " " + strings.Join(timers, "/") + " " + m[8]
}

// The same requests through HAProxy's option httplog and through sekisho's
// format: httplog give the same lines, timers, dates and ports aside:
// escaping of what a client sends (a User-Agent that tries to forge a
// second request), %B (headers and body, chunked or not), the captures,
// the counters, and the <BADREQ> line of a request that does not parse.
func TestHTTPLog_GoldenAgainstHAProxy(t *testing.T) {
	backend := goldenBackend(t)
	hap := goldenHAProxy(t, backend, "")
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: "off"
    capture:
      request_headers: [{name: Host, len: 20}, {name: User-Agent, len: 40}]
      response_headers: [{name: Content-Type, len: 30}]
      cookie: {name: JSESSIONID, len: 20}
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: s1, address: "%s"}]
log:
  format: httplog
`, backend), Options{Log: zerolog.Nop(), Access: &access})
	sek := g.Addrs("web")[0].String()
	// One request first, its lines dropped: HAProxy counts the connection
	// that found it listening until it has seen it close.
	warm := "GET / HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n"
	sendAndLogHAProxy(t, hap, warm)
	sendRaw(t, sek, warm)
	waitLine(t, &access, 0)

	const id = "X-Request-Id: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\r\n"
	for _, req := range []string{
		"GET /search?q=shoes HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux)\r\nCookie: JSESSIONID=ABCDEF0123; theme=dark\r\n" + id + "Connection: close\r\n\r\n",
		"GET /chunked HTTP/1.1\r\nHost: shop.example.com\r\n" + id + "Connection: close\r\n\r\n",
		"GET /cookie HTTP/1.1\r\nHost: shop.example.com\r\n" + id + "Connection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: shop.example.com\r\n" + id + "Connection: close\r\n\r\n",
		// A client that tries to write its own request into the log.
		"GET /search?q=%22x%22 HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: x\"} {y|#} \"GET /admin HTTP/1.1\"\r\n" + id + "Connection: close\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: shop.example.com\r\nUser-Agent: tab\there, \xc3\xa9t\xc3\xa9\r\n" + id + "Connection: close\r\n\r\n",
		// Requests the HTTP parsers refuse: <BADREQ>, PR--, no captures.
		"GET / HTTP/1.1\r\nHost: shop.example.com\r\nHost: other.example.com\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: shop.example.com\r\nBad Name: b\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n",
	} {
		want := sendAndLogHAProxy(t, hap, req)
		n := strings.Count(access.String(), "\n")
		sendRaw(t, sek, req)
		got := waitLine(t, &access, n)
		if goldenNormalize(got) != goldenNormalize(want) {
			t.Errorf("request %.60q:\nhaproxy %s\nsekisho %s", req, want, got)
		}
	}
}

// sendAndLogHAProxy sends req through HAProxy and returns its log line.
// It waits first for HAProxy to have released the connections before:
// it logs a request before it counts its connection closed, and the next
// line's %ac and %fc would count it.
func sendAndLogHAProxy(t *testing.T, hap *goldenPeer, req string) string {
	t.Helper()
	hap.waitIdle(t)
	sendRaw(t, hap.addr, req)
	select {
	case l := <-hap.lines:
		return l
	case <-time.After(5 * time.Second):
		t.Fatalf("haproxy logged nothing for %q", req)
	}
	return ""
}

// waitLine waits for the access log's line n+1.
func waitLine(t *testing.T, access *syncBuffer, n int) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if lines := strings.Split(access.String(), "\n"); len(lines) > n+1 {
			return lines[n]
		}
	}
	t.Fatalf("sekisho logged no line %d:\n%s", n+1, access.String())
	return ""
}

// A server that refuses connections: HAProxy and sekisho both log a 503
// ended SC--, with %Tc and %Tr at -1 (nothing was connected); %Tw ran.
func TestHTTPLog_FailedConnectAgainstHAProxy(t *testing.T) {
	dead := freeport.Addr(t)                       // nothing listens there
	hap := goldenHAProxy(t, dead, "  retries 0\n") // HAProxy waits 1 s before a retry
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: s1, address: "%s"}]
log:
  format: httplog
`, dead), Options{Log: zerolog.Nop(), Access: &access})
	req := "GET / HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n"
	want := sendAndLogHAProxy(t, hap, req)
	sendRaw(t, g.Addrs("web")[0].String(), req)
	got := waitLine(t, &access, 0)
	pick := regexp.MustCompile(`\] web app/s1 (-?\d+/-?\d+/-?\d+/-?\d+/-?\d+) (\d+) \d+ - - (\S+) `)
	w, s := pick.FindStringSubmatch(want), pick.FindStringSubmatch(got)
	if w == nil || s == nil {
		t.Fatalf("unexpected lines:\nhaproxy %s\nsekisho %s", want, got)
	}
	if w[2] != s[2] || w[3] != s[3] ||
		goldenNormalize("x:1 [d] a b/c "+w[1]+" ") != goldenNormalize("x:1 [d] a b/c "+s[1]+" ") {
		t.Fatalf("timers, status or state differ:\nhaproxy %s\nsekisho %s", want, got)
	}
	if !strings.Contains(got, "/-1/-1/") {
		t.Fatalf("%%Tc/%%Tr not -1 on a failed connect: %s", got)
	}
}
