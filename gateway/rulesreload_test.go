package gateway

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/waf/alert/alerttest"
)

// A rules folder that does not load (here a duplicated id, which Coraza
// reports with no place) names its file and line in the reload API's 422,
// in the log and in the rules.reload_failed alert, with and without a
// config file to reload; the API says so on every call, though the log
// and the alert say it once, and the old rules keep serving.
func TestRulesReload_BrokenFolderNamesFileAndLine(t *testing.T) {
	for _, withConfig := range []bool{false, true} {
		t.Run(fmt.Sprintf("config file %v", withConfig), func(t *testing.T) {
			_, addr := namedServer(t, "127.0.0.1:0", "a")
			dir := t.TempDir()
			rules := filepath.Join(dir, "rules")
			os.MkdirAll(filepath.Join(rules, "custom"), 0o755)
			site := filepath.Join(rules, "custom", "site.conf")
			probe := `SecRule ARGS:probe "@streq one" "id:9300001,phase:1,deny,status:403"` + "\n"
			os.WriteFile(site, []byte(probe), 0o644)
			secret := []byte("rules-reload-alert-secret")
			os.WriteFile(filepath.Join(dir, "secret"), secret, 0o600)
			receiver := alerttest.NewReceiver(t, secret)
			yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
waf:
  policies: [{name: default, rules_dir: %q}]
backends:
  - name: app
    servers: [{address: %q}]
admin: {address: "127.0.0.1:0"}
alerts:
  endpoints: [{name: ops, url: %q, secret_file: %q, events: [rules.reload_failed]}]
`, rules, addr, receiver.URL, filepath.Join(dir, "secret"))
			var log syncBuffer
			o := Options{Log: zerolog.New(&log)}
			if withConfig {
				var write func(string)
				write, o = reloadConfig(t, &log)
				write(yaml)
			}
			g, _, _, _ := runGatewayWith(t, yaml, o)
			os.WriteFile(site, []byte(probe+"# the same id again\n"+strings.Replace(probe, "one", "two", 1)), 0o644)
			where := site + ":3:"
			for i := range 2 {
				resp, err := http.Post("http://"+g.AdminAddr().String()+"/api/reload", "", nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 422 || !strings.Contains(string(body), where) || !strings.Contains(string(body), "duplicated rule id 9300001") {
					t.Fatalf("reload %d: %d %s, want 422 naming %s", i+1, resp.StatusCode, body, where)
				}
			}
			if !strings.Contains(log.String(), where) {
				t.Errorf("the log does not name %s:\n%s", where, log.String())
			}
			ev := receiver.Wait(t, 1, 5*time.Second, "rules.reload_failed alert")
			if msg, _ := ev[0]["message"].(string); ev[0]["type"] != "rules.reload_failed" || !strings.Contains(msg, where) {
				t.Errorf("alert %v, want it to name %s", ev[0], where)
			}
			resp, err := http.Get("http://" + g.Addrs("web")[0].String() + "/?probe=one")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Fatalf("the old rules do not serve: %d", resp.StatusCode)
			}
		})
	}
}
