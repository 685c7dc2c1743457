package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"golang.org/x/net/http2"

	"github.com/sekisho/sekisho/e2e/freeport"
)

// binary is the sekisho binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(envTransparentServer) != "" || os.Getenv(envTransparentClient) != "" {
		os.Exit(m.Run()) // a helper in a namespace: it needs no binary
	}
	dir, err := os.MkdirTemp("", "sekisho-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sekisho")
	build := exec.Command("go", "build", "-o", binary, "../cmd/sekisho")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building sekisho:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Received is one request as a backend saw it.
type Received struct {
	Server     string
	Method     string
	RequestURI string
	Proto      string
	Host       string
	Header     http.Header
	Body       []byte
}

// Backend is a real HTTP server on loopback that records every request.
type Backend struct {
	Name string
	Addr string
	srv  *http.Server
	mu   sync.Mutex
	got  []Received
	// Handle, when set, answers instead of the default 200 "ok <name>".
	Handle func(w http.ResponseWriter, r *http.Request)
}

// StartBackend starts a recording backend; it stops when the test ends.
func StartBackend(t testing.TB, name string) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{Name: name, Addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.got = append(b.got, Received{b.Name, r.Method, r.RequestURI, r.Proto, r.Host, r.Header.Clone(), body})
	handle := b.Handle
	b.mu.Unlock()
	if handle != nil {
		r.Body = io.NopCloser(bytes.NewReader(body)) // read again by the handler
		handle(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "ok %s", b.Name)
}

// Requests returns what the backend has received so far.
func (b *Backend) Requests() []Received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Received(nil), b.got...)
}

// DeadAddr returns a loopback address where nothing listens (connections are refused).
func DeadAddr(t testing.TB) string {
	return freeport.Addr(t)
}

// Gateway is a running sekisho process.
type Gateway struct {
	t         testing.TB
	cmd       *exec.Cmd
	Dir       string
	Config    string            // path of the config file
	Addrs     map[string]string // "frontend" or "frontend#N" (Nth bind, from 0) -> host:port
	accessLog string
	stderr    *lockedBuffer
	exited    chan struct{}
	exitErr   error
}

// ConfigData fills a config template: {{.Dir}} is the test's temp dir,
// other fields as the test passes them. "Env" ([]string, KEY=value) adds
// to the process's environment.
type ConfigData map[string]any

// StartGateway writes the config (a text/template rendered with data plus
// "Dir" and "AccessLog") and runs `sekisho run -c` on it. Every bind should
// use 127.0.0.1:0; the real addresses are read from the "listening" log
// lines. The access log must be configured as `access: {{.AccessLog}}`.
func StartGateway(t testing.TB, configTemplate string, data ConfigData) *Gateway {
	t.Helper()
	dir := t.TempDir()
	if data == nil {
		data = ConfigData{}
	}
	data["Dir"] = dir
	data["AccessLog"] = filepath.Join(dir, "access.log")
	var cfg bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(configTemplate)).Execute(&cfg, data); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{t: t, Dir: dir, Config: filepath.Join(dir, "sekisho.yaml"), Addrs: map[string]string{},
		accessLog: data["AccessLog"].(string), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	if err := os.WriteFile(g.Config, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(binary, "run", "-c", g.Config)
	if env, ok := data["Env"].([]string); ok {
		g.cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stdout = os.Stdout
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			g.stderr.WriteLine(sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	// Wait closes the pipe: only once every line is read (at the EOF the
	// process's exit makes), or its last lines would be lost.
	go func() { <-read; g.exitErr = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(g.Kill)

	// Wait for every bind's "listening" line.
	want := strings.Count(cfg.String(), "address: 127.0.0.1:0") + strings.Count(cfg.String(), "address: \"127.0.0.1:0\"")
	if n, ok := data["Listeners"].(int); ok {
		want = n // binds on fixed ports, which the count above misses
	}
	deadline := time.After(30 * time.Second)
	count := map[string]int{}
	for seen := 0; seen < want; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("sekisho exited before listening:\n%s", g.stderr.String())
			}
			var ev struct{ Message, Frontend, Address string }
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == "listening" {
				g.Addrs[fmt.Sprintf("%s#%d", ev.Frontend, count[ev.Frontend])] = ev.Address
				if count[ev.Frontend] == 0 {
					g.Addrs[ev.Frontend] = ev.Address
				}
				count[ev.Frontend]++
				seen++
			}
		case <-deadline:
			t.Fatalf("sekisho did not listen within 30s:\n%s", g.stderr.String())
		}
	}
	return g
}

// URL returns scheme://addr of a frontend bind ("web" or "web#1").
func (g *Gateway) URL(scheme, bind string) string {
	a, ok := g.Addrs[bind]
	if !ok {
		g.t.Fatalf("no bind %q in %v", bind, g.Addrs)
	}
	return scheme + "://" + a
}

// Stderr returns what the gateway wrote to stderr so far.
func (g *Gateway) Stderr() string { return g.stderr.String() }

// AdminURL waits for the admin listener's log line and returns
// http://its-address.
func (g *Gateway) AdminURL() string {
	g.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(g.Stderr(), "\n") {
			var ev struct{ Message, Address string }
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == "admin listening" {
				return "http://" + ev.Address
			}
		}
	}
	g.t.Fatalf("no admin address logged:\n%s", g.Stderr())
	return ""
}

// Signal sends sig to the gateway process.
func (g *Gateway) Signal(sig os.Signal) { g.cmd.Process.Signal(sig) }

// Wait waits for the process to exit (at most d) and returns its exit error.
func (g *Gateway) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-g.exited:
		return true, g.exitErr
	case <-time.After(d):
		return false, nil
	}
}

// Kill stops the gateway if it still runs.
func (g *Gateway) Kill() {
	select {
	case <-g.exited:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.exited
}

// AccessLog returns the access log lines written so far, decoded.
func (g *Gateway) AccessLog() []map[string]any {
	data, err := os.ReadFile(g.accessLog)
	if err != nil && !os.IsNotExist(err) {
		g.t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			g.t.Fatalf("access log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// LogFor waits (up to 5s) for the access log line with this request ID.
func (g *Gateway) LogFor(requestID string) map[string]any {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, m := range g.AccessLog() {
			if m["request_id"] == requestID {
				return m
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no access log line for request %s", requestID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// H1Client speaks HTTP/1.1 only (TLS certificates are not verified: the
// gateway's are self-signed in tests).
func H1Client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
		ForceAttemptHTTP2: false,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
}

// H2Client speaks HTTP/2 over TLS only.
func H2Client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteLine(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
	l.mu.Unlock()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// webConfig: one frontend ("web") with a plain and a TLS bind in front of
// one backend, CRS blocking. {{.Policy}} (a YAML flow mapping with a name,
// given with its {{.PolicyName}}) replaces the default policy; {{.Extra}}
// adds top-level keys (shutdown_timeout).
const webConfig = `
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:0
      - address: 127.0.0.1:0
        tls: true
    tls:
      self_signed: [localhost]
    default_backend: app
{{- if .Policy}}
    default_waf_policy: {{.PolicyName}}
{{- end}}
backends:
  - name: app
    servers:
      - {name: a, address: "{{.A}}"}
{{- if .Policy}}
waf:
  policies:
    - {{.Policy}}
{{- end}}
log:
  access: {{.AccessLog}}
{{if .Extra}}{{.Extra}}{{end}}
`
