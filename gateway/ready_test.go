package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
)

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /healthz and /readyz on the admin listener (no token needed) and the
// frontend's monitor_uri: ready while a routed backend has a usable
// server; on shutdown, /readyz turns red for the drain grace while the
// gateway still serves, and only then do the listeners close.
func TestReadiness(t *testing.T) {
	_, addr := namedServer(t, "127.0.0.1:0", "app")
	g, cancel, done, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    monitor_uri: /lb-check
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: a, address: "%s"}]
  - name: unused
    servers: [{name: x, address: "127.0.0.1:9", state: maint}]
admin: {address: "127.0.0.1:0"}
drain_grace: 600ms
`, addr), Options{Log: zerolog.Nop()})
	admin := "http://" + g.AdminAddr().String()
	web := "http://" + g.Addrs("web")[0].String()
	eventually(t, "ready", func() bool { c, _ := getBody(t, admin+"/readyz"); return c == 200 })
	if c, body := getBody(t, admin+"/healthz"); c != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", c, body)
	}
	if c, body := getBody(t, web+"/lb-check"); c != 200 || body != "ready\n" {
		t.Fatalf("monitor_uri: %d %q", c, body)
	}
	if err := g.SetServerState("app", "a", balancer.Maint); err != nil {
		t.Fatal(err)
	}
	if c, body := getBody(t, web+"/lb-check"); c != 503 || !strings.Contains(body, "backend app: no usable server") {
		t.Fatalf("with the only server in maint: %d %q", c, body)
	}
	g.SetServerState("app", "a", balancer.Ready)
	cancel()
	eventually(t, "not ready on shutdown", func() bool { c, _ := getBody(t, web+"/lb-check"); return c == 503 })
	if c, body := getBody(t, web+"/"); c != 200 || body != "app" {
		t.Fatalf("during the drain grace the gateway still serves: %d %q", c, body)
	}
	select {
	case <-done:
		t.Fatal("stopped before the drain grace ended")
	case <-time.After(100 * time.Millisecond):
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop after the drain grace")
	}
}
