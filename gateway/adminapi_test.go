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
	var list []apiBackend
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
