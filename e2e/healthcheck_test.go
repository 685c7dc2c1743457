package e2e

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/e2e/freeport"
)

// haproxySnippet is the HAProxy backend that deploy/README.md shows, with
// its server lines taken out.
func haproxySnippet(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../deploy/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```haproxy\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("deploy/README.md shows no haproxy block")
	}
	var out []string
	for _, l := range strings.Split(string(m[1]), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "server ") && strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// The health check deploy/README.md shows, run by a real HAProxy against
// sekisho with CRS in blocking mode, marks sekisho up; HAProxy's plain
// `option httpchk` (OPTIONS / HTTP/1.0, no Host), beside it, is refused by
// the WAF and marks it down: the reason the guide points checks at
// monitor_uri, which sekisho answers itself.
func TestHealthCheck_HAProxyThroughTheWAF(t *testing.T) {
	bin := haproxyBinary(t)
	app := StartBackend(t, "app")
	g := StartGateway(t, `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    monitor_uri: /readyz
backends:
  - name: app
    servers: [{address: "{{.App}}"}]
log:
  access: {{.AccessLog}}
`, ConfigData{"App": app.Addr})
	stats := freeport.Addr(t)
	snippet := haproxySnippet(t)
	if !strings.Contains(snippet, "backend sekisho\n") {
		t.Fatalf("the guide's snippet is not the sekisho backend:\n%s", snippet)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(cfg, []byte(`global
  maxconn 100
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
listen stats
  bind `+stats+`
  stats enable
  stats uri /stats
`+snippet+`  server gw `+g.Addrs["web"]+` check inter 100ms fall 1 rise 1
backend plain_httpchk
  option httpchk
  server gw `+g.Addrs["web"]+` check inter 100ms fall 1 rise 1
`), 0o600)
	cmd := exec.Command(bin, "-db", "-f", cfg)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// A server is UP before its first check: the check's own result
	// (L7OK: the expected status; L7STS: another one) says it ran.
	want := map[string]string{"sekisho": "UP L7OK", "plain_httpchk": "DOWN L7STS"}
	var got map[string]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = serverStates(stats); fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("HAProxy's servers %v, want %v\nhaproxy:\n%s\nsekisho:\n%s", got, want, out.String(), g.Stderr())
	}
	refused := 0
	for _, l := range g.AccessLog() {
		if l["method"] == "OPTIONS" && l["status"] == float64(403) {
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("the plain check was not refused by the WAF:\n%v", g.AccessLog())
	}
	// sekisho answered the checks itself (its readiness, 503 when it
	// drains), not the application behind it.
	for _, r := range app.Requests() {
		if strings.HasPrefix(r.RequestURI, "/readyz") {
			t.Fatalf("a check reached the application: %+v", r)
		}
	}
}

// serverStates reads HAProxy's stats CSV: for each backend, its server
// "gw"'s state and the result of its last check ("UP L7OK").
func serverStates(addr string) map[string]string {
	resp, err := http.Get("http://" + addr + "/stats;csv")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 1 {
		return nil
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > max(col["status"], col["check_status"]) && row[col["svname"]] == "gw" {
			out[row[col["pxname"]]] = strings.Fields(row[col["status"]] + " ?")[0] + " " + strings.TrimPrefix(row[col["check_status"]], "* ")
		}
	}
	return out
}
