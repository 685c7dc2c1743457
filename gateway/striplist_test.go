package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// clientClaims is every header that claims who the client is or what it
// asked for, as a client may send it (any case). Written out here, not
// taken from the code's list, so that a name dropped there fails a test.
var clientClaims = []string{"forwarded", "x-forwarded-for", "x-forwarded-host",
	"x-forwarded-proto", "x-forwarded-port", "x-forwarded-server", "x-forwarded-prefix",
	"x-forwarded-ssl", "x-forwarded-scheme", "x-real-ip", "x-client-ip", "true-client-ip",
	"cf-connecting-ip", "fastly-client-ip", "x-cluster-client-ip", "client-ip",
	"x-original-forwarded-for", "x-original-url", "x-rewrite-url"}

// cleanHeaders removes every client claim, whatever its case, and keeps
// the headers that are not one.
func TestCleanHeaders_StripsEveryClientClaim(t *testing.T) {
	for _, name := range clientClaims {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			h.Add(name, "203.0.113.99")
			h.Add("X-Original-Url-Not", "kept") // a name that only starts like one
			h.Add("Cookie", "a=b")
			cleanHeaders(h)
			if v := h.Values(name); len(v) != 0 {
				t.Fatalf("%s kept: %q", http.CanonicalHeaderKey(name), v)
			}
			if h.Get("Cookie") != "a=b" || h.Get("X-Original-Url-Not") != "kept" {
				t.Fatalf("other headers removed: %v", h)
			}
		})
	}
}

// Through the handler: a client's claim reaches neither the WAF (a rule
// refuses any header that carries the claim's marker) nor the backend
// (which records every header it gets); the gateway's own X-Forwarded-*
// headers carry what it saw.
func TestHandler_ClientClaimsReachNeitherWAFNorBackend(t *testing.T) {
	var mu sync.Mutex
	var got []http.Header
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g, _, _, _ := runGateway(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: marker
waf:
  policies:
    - name: marker
      directives: |
        SecRule REQUEST_HEADERS "@contains forged" "id:9913001,phase:1,deny,status:418,log,msg:'a client claim reached the WAF'"
backends:
  - name: app
    servers: [{address: "%s"}]
`, ln.Addr().String()), zerolog.Nop())
	front := g.Addrs("web")[0].String()
	for _, name := range clientClaims {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			// Raw bytes, so the name goes out in the case the client chose.
			resp, _ := rawRoundTrip(t, front, "GET /page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"+name+": forged-198.51.100.7\r\n\r\n", false)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 (418: the WAF saw the claim)", resp.StatusCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("the backend got %d requests", len(got))
			}
			for k, vs := range got[0] {
				if strings.Contains(strings.Join(vs, ","), "forged") {
					t.Errorf("the backend got %s: %q", k, vs)
				}
			}
			if xff := got[0].Get("X-Forwarded-For"); xff != "127.0.0.1" {
				t.Errorf("X-Forwarded-For at the backend %q, want the gateway's 127.0.0.1", xff)
			}
		})
	}
}
