package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/admin"
)

// The admin API asks for the token, lists backends and servers, sets a
// server's state, and reloads the rules.
func TestAdminAPI(t *testing.T) {
	_, addr := namedServer(t, "127.0.0.1:0", "a")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret-admin-token\n"), 0o600)
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: a, address: "%s"}]
admin: {address: "127.0.0.1:0", token_file: "%s"}
`, addr, tokenFile), Options{Log: zerolog.Nop()})
	base := "http://" + g.AdminAddr().String()
	call := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tok := range []string{"", "wrong"} {
		if code, _ := call("GET", "/api/backends", tok, ""); code != 401 {
			t.Fatalf("token %q: %d, want 401", tok, code)
		}
	}
	const token = "s3cret-admin-token"
	if code, body := call("PUT", "/api/backends/app/servers/a", token, `{"state": "drain"}`); code != 200 || !strings.Contains(body, "drain") {
		t.Fatalf("set drain: %d %s", code, body)
	}
	code, body := call("GET", "/api/backends", token, "")
	var list []admin.BackendInfo
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].Servers[0].State != "drain" || list[0].Usable {
		t.Fatalf("backends: %d %s", code, body)
	}
	if s := g.pools[0].Server("a"); s.State() != balancer.Drain {
		t.Fatalf("server state %v", s.State())
	}
	if code, body := call("PUT", "/api/backends/app/servers/zz", token, `{"state": "ready"}`); code != 404 || !strings.Contains(body, `no server \"zz\"`) {
		t.Fatalf("unknown server: %d %s", code, body)
	}
	if code, body := call("PUT", "/api/backends/app/servers/a", token, `{"state": "down"}`); code != 400 {
		t.Fatalf("bad state: %d %s", code, body)
	}
	if code, body := call("POST", "/api/reload", token, ""); code != 200 || !strings.Contains(body, `"policy":"off"`) {
		t.Fatalf("reload: %d %s", code, body)
	}
}

// The admin API sets a server's weight (0: no new requests), lists the
// stick tables and a page of entries, and clears an entry: the client is
// then balanced afresh.
func TestAdminAPI_WeightAndStickTables(t *testing.T) {
	_, a := namedServer(t, "127.0.0.1:0", "a")
	_, b := namedServer(t, "127.0.0.1:0", "b")
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: "off"
    routes: [{path_prefix: /s/, backend: sticky, waf_policy: "off"}]
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: a, address: %[1]q}, {name: b, address: %[2]q}]
  - name: sticky
    servers: [{name: a, address: %[1]q}, {name: b, address: %[2]q}]
    stick: {on: src}
admin: {address: "127.0.0.1:0"}
`, a, b), Options{Log: zerolog.Nop()})
	admin, web := "http://"+g.AdminAddr().String(), "http://"+g.Addrs("web")[0].String()
	call := func(method, url, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}

	if code, body := call("PUT", admin+"/api/backends/app/servers/b", `{"weight": 0}`); code != 200 || !strings.Contains(body, `"weight":0`) {
		t.Fatalf("set weight 0: %d %s", code, body)
	}
	for i := range 20 {
		if _, body := call("GET", fmt.Sprintf("%s/?i=%d", web, i), ""); body != "a" {
			t.Fatalf("request %d answered by %q; b has weight 0", i, body)
		}
	}
	if code, body := call("PUT", admin+"/api/backends/app/servers/b", `{"weight": 300}`); code != 400 || !strings.Contains(body, "0..256") {
		t.Fatalf("weight 300: %d %s, want 400", code, body)
	}
	if code, body := call("PUT", admin+"/api/backends/app/servers/b", `{"weight": 1}`); code != 200 {
		t.Fatalf("set weight 1: %d %s", code, body)
	}
	seen := map[string]bool{}
	for i := range 10 {
		_, body := call("GET", fmt.Sprintf("%s/?i=%d", web, i), "")
		seen[body] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("with weights 1 and 1, answers from %v, want a and b", seen)
	}

	_, first := call("GET", web+"/s/x", "")
	if code, body := call("GET", admin+"/api/tables", ""); code != 200 || !strings.Contains(body, `{"name":"sticky","entries":1}`) {
		t.Fatalf("tables: %d %s", code, body)
	}
	code, body := call("GET", admin+"/api/tables/sticky?limit=10", "")
	want := fmt.Sprintf(`"entries":[{"key":"127.0.0.1","server":%q,`, first)
	if code != 200 || !strings.Contains(body, want) {
		t.Fatalf("entries: %d %s, want %s", code, body, want)
	}
	if code, body := call("DELETE", admin+"/api/tables/sticky/entries/127.0.0.1", ""); code != 200 {
		t.Fatalf("clear: %d %s", code, body)
	}
	if _, body := call("GET", admin+"/api/tables/sticky", ""); !strings.Contains(body, `"entries":[]`) {
		t.Fatalf("after the clear: %s", body)
	}
	if code, _ := call("GET", admin+"/api/tables/nope", ""); code != 404 {
		t.Fatalf("unknown table: %d, want 404", code)
	}
	if code, _ := call("DELETE", admin+"/api/tables/sticky/entries/not-an-ip", ""); code != 400 {
		t.Fatalf("a key that is no IP: %d, want 400", code)
	}
}
