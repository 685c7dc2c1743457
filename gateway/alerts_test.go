package gateway

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/waf/alert/alerttest"
)

// Alerts reach a local receiver signed: a burst of 1,000 blocked requests
// from one client on one rule arrives as a few calls carrying the total,
// and a server that dies arrives as backend.down.
func TestAlerts_BlocksAndHealthReachTheReceiver(t *testing.T) {
	secret := []byte("alert-signing-secret")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), secret, 0o600)
	receiver := alerttest.NewReceiver(t, secret)
	var access syncBuffer
	lnA, addrA := namedServer(t, "127.0.0.1:0", "a")
	_, addrB := namedServer(t, "127.0.0.1:0", "b")
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
waf:
  policies:
    - name: default
      directives: |
        SecRule ARGS:probe "@streq attack" "id:9020001,phase:1,deny,status:403,log,msg:'probe'"
backends:
  - name: app
    servers: [{name: a, address: "%s"}, {name: b, address: "%s"}]
    health_check: {type: tcp, interval: 50ms, rise: 1, fall: 2}
alerts:
  window: 2s
  endpoints:
    - {name: ops, url: "%s", secret_file: "%s", events: [waf.block, backend.down]}
`, addrA, addrB, receiver.URL, filepath.Join(dir, "secret")), Options{Log: zerolog.Nop(), Access: &access})
	url := "http://" + g.Addrs("web")[0].String() + "/?probe=attack"
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for range 1000 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	lnA.Close()
	// The access log line of a block explains it too.
	if line := strings.SplitN(access.String(), "\n", 2)[0]; !strings.Contains(line, `"waf_matches":[`) ||
		!strings.Contains(line, `"var":"ARGS:probe"`) || !strings.Contains(line, `ctl:ruleRemoveTargetById=9020001;ARGS:probe`) {
		t.Fatalf("access log line of a block: %s", line)
	}
	total := func(typ string) (calls, count int) {
		for _, m := range receiver.Events() {
			if m["type"] == typ {
				calls++
				count += int(m["count"].(float64))
			}
		}
		return
	}
	eventually(t, "1,000 blocks counted", func() bool { _, n := total("waf.block"); return n == 1000 })
	if calls, _ := total("waf.block"); calls > 5 {
		t.Errorf("%d webhook calls for one burst", calls)
	}
	eventually(t, "backend.down", func() bool { n, _ := total("backend.down"); return n == 1 })
	for _, m := range receiver.Events() {
		if m["type"] == "waf.block" {
			matches, _ := m["matches"].([]any)
			found := false
			for _, x := range matches {
				m := x.(map[string]any)
				found = found || m["rule_id"] == float64(9020001) && m["variable"] == "ARGS:probe" && m["message"] == "probe" &&
					strings.Contains(m["exclusion"].(string), `"@streq /"`) && strings.Contains(m["exclusion"].(string), "ctl:ruleRemoveTargetById=9020001;ARGS:probe")
			}
			if m["client_ip"] != "127.0.0.1" || m["path"] != "/" || m["route"] != "web/default" || !found {
				t.Fatalf("block alert %v", m)
			}
		}
	}
}
