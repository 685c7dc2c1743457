package e2e

import (
	"io"
	"net/http"
	"testing"
)

// smokeConfig is the smallest useful config: one plain and one TLS bind in
// front of two backends, CRS blocking.
const smokeConfig = `
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:0
      - address: 127.0.0.1:0
        tls: true
    tls:
      self_signed: [localhost]
    default_backend: app
backends:
  - name: app
    servers:
      - {name: a, address: "{{.A}}"}
      - {name: b, address: "{{.B}}"}
log:
  access: {{.AccessLog}}
`

func TestSmoke_PassAndBlockOverH1AndH2(t *testing.T) {
	a, b := StartBackend(t, "a"), StartBackend(t, "b")
	g := StartGateway(t, smokeConfig, ConfigData{"A": a.Addr, "B": b.Addr})
	for _, tc := range []struct {
		name   string
		client func() *http.Client
		url    string
		proto  string
	}{
		{"h1 plain", H1Client, g.URL("http", "web#0"), "HTTP/1.1"},
		{"h1 tls", H1Client, g.URL("https", "web#1"), "HTTP/1.1"},
		{"h2 tls", H2Client, g.URL("https", "web#1"), "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client().Get(tc.url + "/hello?q=shoes")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != tc.proto {
				t.Fatalf("got %s %d %q, want %s 200", resp.Proto, resp.StatusCode, body, tc.proto)
			}
			resp, err = tc.client().Get(tc.url + "/hello?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Fatalf("XSS got %d, want 403", resp.StatusCode)
			}
		})
	}
	if n := len(a.Requests()) + len(b.Requests()); n != 3 {
		t.Fatalf("backends received %d requests, want the 3 benign ones", n)
	}
}
