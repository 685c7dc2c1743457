package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Requests net/http refuses before the handler (a duplicate Host, a bad
// header name, a control byte in a header or the request line), over
// plain HTTP and TLS, each get their 400, one access log line (status 400,
// PR--, the client's address) and a count in sekisho_requests_total.
func TestRefused_LoggedAndCounted(t *testing.T) {
	backend, paths := app(t)
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
admin: {address: "127.0.0.1:0"}
`, strings.TrimPrefix(backend, "http://")), Options{Log: zerolog.Nop(), Access: &access})
	plain, secure := g.Addrs("web")[0].String(), g.Addrs("web")[1].String()
	dial := map[string]func() (net.Conn, error){
		"plain": func() (net.Conn, error) { return net.Dial("tcp", plain) },
		"TLS": func() (net.Conn, error) {
			return tls.Dial("tcp", secure, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		},
	}
	reqs := []string{
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
	}
	n := 0
	for _, via := range []string{"plain", "TLS"} {
		for _, req := range reqs {
			c, err := dial[via]()
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, req)
			resp, _ := io.ReadAll(c)
			c.Close()
			if !strings.HasPrefix(string(resp), "HTTP/1.1 400 ") {
				t.Fatalf("%s %q: response %q", via, req, resp)
			}
			n++
			line := waitLine(t, &access, n-1)
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			if m["status"] != 400.0 || m["termination_state"] != "PR--" || m["client_ip"] != "127.0.0.1" || m["frontend"] != "web" ||
				(via == "TLS") != (m["tls_version"] != "") {
				t.Errorf("%s %q: log line %s", via, req, line)
			}
		}
	}
	if len(paths()) != 0 {
		t.Fatalf("refused requests reached the backend: %q", paths())
	}
	if got := scrape(t, "http://"+g.AdminAddr().String()+"/metrics", "", "sekisho_requests_total", `frontend="web"`, `code="4xx"`); got != float64(n) {
		t.Fatalf("sekisho_requests_total 4xx = %v, want %d", got, n)
	}
	if lines := strings.Count(access.String(), "\n"); lines != n {
		t.Fatalf("%d access log lines, want %d:\n%s", lines, n, access.String())
	}
}
