package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A route's limit admits its requests per period per key and refuses the
// rest with 429 and Retry-After, before they reach the WAF or a server;
// other keys are counted apart; the tarpit holds the refusal.
func TestRateLimit_DenyAndTarpit(t *testing.T) {
	_, addr := namedServer(t, "127.0.0.1:0", "app")
	g, _, _, _ := runGateway(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    routes:
      - {path_prefix: /api/, backend: app, waf_policy: "off", rate_limit: {key: "header:X-Api-Key", requests: 5, period: 10s}}
      - {path_prefix: /slow/, backend: app, waf_policy: "off", rate_limit: {requests: 2, period: 10s, action: tarpit, tarpit: 300ms}}
      - {path_prefix: /, backend: app, waf_policy: "off", rate_limit: {requests: 3, period: 10s}}
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "%s"}]
`, addr), zerolog.Nop())
	base := "http://" + g.Addrs("web")[0].String()
	get := func(path, apiKey string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if apiKey != "" {
			req.Header.Set("X-Api-Key", apiKey)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	codes := func(path, apiKey string, n int) string {
		var b strings.Builder
		for range n {
			resp, _ := get(path, apiKey)
			fmt.Fprintf(&b, "%d ", resp.StatusCode)
		}
		return strings.TrimSpace(b.String())
	}
	if got := codes("/", "", 5); got != "200 200 200 429 429" {
		t.Fatalf("by client IP, 3 per 10s: %s", got)
	}
	resp, body := get("/", "")
	if resp.Header.Get("Retry-After") != "10" || !strings.Contains(body, "Too many requests") {
		t.Fatalf("429 without Retry-After 10 or the page: %q %q", resp.Header.Get("Retry-After"), body)
	}
	if got := codes("/api/x", "key-1", 7); got != "200 200 200 200 200 429 429" {
		t.Fatalf("key-1, 5 per 10s: %s", got)
	}
	if got := codes("/api/x", "key-2", 2); got != "200 200" {
		t.Fatalf("key-2 counted apart: %s", got)
	}
	if got := codes("/api/x", "", 7); got != "200 200 200 200 200 200 200" {
		t.Fatalf("no key, not limited: %s", got)
	}
	codes("/slow/", "", 2)
	start := time.Now()
	if resp, _ := get("/slow/", ""); resp.StatusCode != 429 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("tarpit: %d after %s, want 429 after 300ms", resp.StatusCode, time.Since(start))
	}
}
