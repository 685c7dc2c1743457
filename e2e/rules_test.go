package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/waf/alert/alerttest"
)

// A rules folder is watched: a rule added under steady load blocks within
// 2 s with no failed request; a broken file leaves the old rules serving,
// is logged with its file and line, and reaches a webhook, signed.
func TestRules_HotReload(t *testing.T) {
	app := StartBackend(t, "app")
	rulesDir := filepath.Join(t.TempDir(), "rules")
	os.MkdirAll(filepath.Join(rulesDir, "custom"), 0o755)
	site := filepath.Join(rulesDir, "custom", "site.conf")
	os.WriteFile(site, []byte(`SecRule ARGS:probe "@streq one" "id:9200001,phase:1,deny,status:403,log,msg:'probe one'"`+"\n"), 0o644)
	secret := []byte("webhook-secret-for-the-test")
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, secret, 0o600)
	receiver := alerttest.NewReceiver(t, secret)
	g := StartGateway(t, `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "{{.App}}"}]
waf:
  policies:
    - name: default
      rules_dir: {{.Rules}}
alerts:
  endpoints: [{name: ops, url: "{{.Hook}}", secret_file: {{.Secret}}, events: [rules.reload_failed]}]
log:
  access: {{.AccessLog}}
`, ConfigData{"App": app.Addr, "Rules": rulesDir, "Hook": receiver.URL, "Secret": secretFile})
	base := g.URL("http", "web")
	status := func(q string) int {
		resp, err := http.Get(base + "/search?" + q)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if status("probe=one") != 403 || status("probe=two") != 200 {
		t.Fatal("the rules folder's first rule is not in force")
	}
	var failed, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if status("q=shoes") != 200 {
					failed.Add(1)
				}
				served.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	edited := time.Now()
	os.WriteFile(site, []byte(`SecRule ARGS:probe "@streq one" "id:9200001,phase:1,deny,status:403,log,msg:'probe one'"
SecRule ARGS:probe "@streq two" "id:9200002,phase:1,deny,status:403,log,msg:'probe two'"
`), 0o644)
	for status("probe=two") != 403 {
		if time.Since(edited) > 5*time.Second {
			t.Fatalf("the new rule is not in force 5 s after the edit:\n%s", g.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(edited)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if took > 2*time.Second {
		t.Errorf("the new rule took %s to be in force, want ≤ 2 s", took)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the reload", failed.Load(), served.Load())
	}
	t.Logf("new rule in force after %s; %d requests served meanwhile, none failed", took, served.Load())

	broken := filepath.Join(rulesDir, "custom", "zz-broken.conf")
	os.WriteFile(broken, []byte("# a typo\nSecRule ARGS:probe \"@streq three\" \"id:9200003,phase:1,deny,status:403,log\n"), 0o644)
	for !strings.Contains(g.Stderr(), "waf rules reload failed") {
		if time.Since(edited) > 15*time.Second {
			t.Fatalf("no reload failure logged:\n%s", g.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(g.Stderr(), "zz-broken.conf:2") {
		t.Errorf("the failure does not name the file and line:\n%s", g.Stderr())
	}
	if status("probe=one") != 403 || status("probe=two") != 403 || status("q=shoes") != 200 {
		t.Fatal("after a broken file, the old rules do not serve")
	}
	events := receiver.Wait(t, 1, 5*time.Second, "rules.reload_failed webhook")
	if events[0]["type"] != "rules.reload_failed" || !strings.Contains(events[0]["message"].(string), "zz-broken.conf:2") {
		t.Fatalf("webhook %v", events[0])
	}
}
