package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/waf/alert/alerttest"
)

// The config file reloads on SIGHUP and from the admin API under load: a
// new route is in force at once, no request fails, the listeners keep their
// ports; a broken config is refused with its file and line, in the log and
// as a signed config.reload_failed webhook, and the last good one serves.
func TestReload_ConfigOnSIGHUP(t *testing.T) {
	app1, app2 := StartBackend(t, "app1"), StartBackend(t, "app2")
	secret := []byte("webhook-secret-for-the-reload-test")
	secretFile := filepath.Join(t.TempDir(), "secret")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secretFile, secret, 0o600)
	os.WriteFile(tokenFile, []byte("reload-test-token\n"), 0o600)
	receiver := alerttest.NewReceiver(t, secret)
	g := StartGateway(t, `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app1
#ROUTES
backends:
  - name: app1
    servers: [{address: "{{.App1}}"}]
  - name: app2
    servers: [{address: "{{.App2}}"}]
admin: {address: "127.0.0.1:0", token_file: {{.Token}}}
alerts:
  endpoints: [{name: ops, url: "{{.Hook}}", secret_file: {{.Secret}}, events: [config.reload_failed]}]
log:
  access: {{.AccessLog}}
`, ConfigData{"App1": app1.Addr, "App2": app2.Addr, "Hook": receiver.URL, "Secret": secretFile, "Token": tokenFile, "Listeners": 1})
	v1, err := os.ReadFile(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	base := g.URL("http", "web")
	answer := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return resp.Status
		}
		return string(body)
	}
	if got := answer("/v2/x"); got != "ok app1" {
		t.Fatalf("before the reload /v2/ answered %q, want ok app1", got)
	}

	var failed, served atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 100000; i++ { // bounded; stop ends it first
				select {
				case <-stop:
					return
				default:
				}
				if got := answer("/shop?i=x"); got != "ok app1" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, got)
				}
				served.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	v2 := strings.Replace(string(v1), "#ROUTES", "    routes: [{path_prefix: /v2/, backend: app2}]", 1)
	os.WriteFile(g.Config, []byte(v2), 0o600)
	sent := time.Now()
	g.Signal(syscall.SIGHUP)
	for answer("/v2/x") != "ok app2" {
		if time.Since(sent) > 5*time.Second {
			t.Fatalf("the new route is not in force 5 s after SIGHUP:\n%s", g.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(sent)
	time.Sleep(1500 * time.Millisecond) // the old generation retires meanwhile
	close(stop)
	wg.Wait()
	t.Logf("new route in force %s after SIGHUP; %d requests meanwhile, %d failed", took, served.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the reload; first: %v", failed.Load(), served.Load(), firstErr.Load())
	}
	if g2 := g.URL("http", "web"); g2 != base {
		t.Errorf("address changed: %s, was %s", g2, base)
	}

	// A broken config: refused, the old one serves.
	os.WriteFile(g.Config, []byte(strings.Replace(v2, "default_backend: app1", "default_backend: app1\n    bogus_key: 1", 1)), 0o600)
	g.Signal(syscall.SIGHUP)
	logged := regexp.MustCompile(`"error":"[^"]*sekisho\.yaml:6: frontends\[0\]\.bogus_key: .*"message":"config reload failed; the old config keeps serving"`)
	for deadline := time.Now().Add(5 * time.Second); !logged.MatchString(g.Stderr()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line naming the file, line and key of the broken config:\n%s", g.Stderr())
		}
	}
	if got := answer("/v2/x"); got != "ok app2" {
		t.Errorf("after the broken config, /v2/ answered %q: the last good config should serve", got)
	}
	if ev := receiver.Wait(t, 1, 10*time.Second, "config.reload_failed webhook")[0]; ev["type"] != "config.reload_failed" ||
		!strings.Contains(ev["message"].(string), "bogus_key") {
		t.Errorf("webhook %v, want config.reload_failed naming bogus_key", ev)
	}

	// Back to v1 through the admin API.
	os.WriteFile(g.Config, v1, 0o600)
	req, _ := http.NewRequest("POST", g.AdminURL()+"/api/reload", nil)
	req.Header.Set("Authorization", "Bearer reload-test-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /api/reload: %s", resp.Status)
	}
	if got := answer("/v2/x"); got != "ok app1" {
		t.Errorf("after the admin reload to v1, /v2/ answered %q, want ok app1", got)
	}
}
