package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A blocked request is in the audit log with what matched and how to
// exclude it, its credentials redacted; a request that passes is not.
func TestAuditLog_RecordsBlocks(t *testing.T) {
	_, addr := namedServer(t, "127.0.0.1:0", "app")
	path := filepath.Join(t.TempDir(), "audit.log")
	g, cancel, done, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
waf:
  policies:
    - name: default
      directives: |
        SecRule ARGS:probe "@streq attack" "id:9020002,phase:1,deny,status:403,log,msg:'probe'"
backends:
  - name: app
    servers: [{address: "%s"}]
audit_log: {path: "%s"}
`, addr, path), Options{Log: zerolog.Nop()})
	base := "http://" + g.Addrs("web")[0].String()
	for _, q := range []string{"/?q=shoes", "/?probe=attack"} {
		req, _ := http.NewRequest("GET", base+q, nil)
		req.Header.Set("Cookie", "session=secret-value")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cancel()
	<-done // the audit log is flushed and closed
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("audit log lines: %q", data)
	}
	var rec map[string]any
	json.Unmarshal([]byte(lines[0]), &rec)
	hdr := rec["headers"].(map[string]any)
	matches := rec["matches"].([]any)
	if rec["uri"] != "/?probe=attack" || rec["action"] != "block" || fmt.Sprint(hdr["Cookie"]) != "[[redacted]]" ||
		strings.Contains(string(data), "secret-value") || !strings.Contains(fmt.Sprint(matches), "ARGS:probe") {
		t.Fatalf("audit record %s", lines[0])
	}
}
