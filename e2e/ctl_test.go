package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sekisho ctl drives a running gateway through its admin API: a server
// set to drain by one command is listed as draining by the next.
func TestCtl_SetsAndListsServerStates(t *testing.T) {
	a := StartBackend(t, "a")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("ctl-test-token\n"), 0o600)
	g := StartGateway(t, `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{name: a, address: "{{.A}}"}]
admin: {address: "127.0.0.1:0", token_file: "{{.Token}}"}
log:
  access: {{.AccessLog}}
`, ConfigData{"A": a.Addr, "Token": tokenFile, "Listeners": 1})
	admin := g.AdminURL()
	ctl := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append([]string{"ctl", "-admin", admin, "-token-file", tokenFile}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := ctl("state", "app", "a", "drain"); err != nil || !strings.Contains(out, `"drain"`) {
		t.Fatalf("state: %v\n%s", err, out)
	}
	out, err := ctl("backends")
	if err != nil || !strings.Contains(out, `"state": "drain"`) {
		t.Fatalf("backends: %v\n%s", err, out)
	}
	if out, err := ctl("weight", "app", "a", "7"); err != nil || !strings.Contains(out, `"weight": 7`) {
		t.Fatalf("weight: %v\n%s", err, out)
	}
	if out, err := ctl("tables"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("tables (none configured): %v\n%s", err, out)
	}
	if out, err := ctl("clear", "nope", "k"); err == nil || !strings.Contains(out, `no table \"nope\"`) {
		t.Fatalf("clear in an unknown table: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "ctl", "-admin", admin, "backends").CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Fatalf("without the token: %v\n%s", err, out)
	}
}

// sekisho ctl lists the bans a gateway made and lifts one: two WAF blocks
// ban the client, ctl bans names it, ctl unban lets it in again.
func TestCtl_ListsAndLiftsBans(t *testing.T) {
	a := StartBackend(t, "a")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("ctl-test-token\n"), 0o600)
	g := StartGateway(t, `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    ban: {waf_blocks: 2, within: 1m, duration: 10m}
backends:
  - name: app
    servers: [{name: a, address: "{{.A}}"}]
admin: {address: "127.0.0.1:0", token_file: "{{.Token}}"}
log:
  access: {{.AccessLog}}
`, ConfigData{"A": a.Addr, "Token": tokenFile, "Listeners": 1})
	ctl := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append([]string{"ctl", "-admin", g.AdminURL(), "-token-file", tokenFile}, args...)...).CombinedOutput()
		return string(out), err
	}
	status := func(path string) int {
		t.Helper()
		resp, err := http.Get(g.URL("http", "web") + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 2 {
		if s := status("/?q=%3Cscript%3Ealert(1)%3C/script%3E"); s != 403 {
			t.Fatalf("attack: %d", s)
		}
	}
	if s := status("/"); s != 403 {
		t.Fatalf("after two WAF blocks: %d, want the ban's 403", s)
	}
	if out, err := ctl("bans"); err != nil || !strings.Contains(out, `"client": "127.0.0.1"`) || !strings.Contains(out, `"action": "deny"`) {
		t.Fatalf("bans: %v\n%s", err, out)
	}
	if out, err := ctl("unban", "127.0.0.1"); err != nil || !strings.Contains(out, `"lifted": "127.0.0.1"`) {
		t.Fatalf("unban: %v\n%s", err, out)
	}
	if s := status("/"); s != 200 {
		t.Errorf("after unban: %d", s)
	}
	if out, err := ctl("unban", "not-an-address"); err == nil || !strings.Contains(out, "not an IP address") {
		t.Errorf("unban of garbage: %v\n%s", err, out)
	}
}
