package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestValidate_Examples checks every annotated example config: each decodes
// strictly and validates; those that need no certificate files are also
// built (CRS compiled per policy), as `sekisho validate` does.
func TestValidate_Examples(t *testing.T) {
	files, err := filepath.Glob("../../deploy/examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			var stdout, stderr bytes.Buffer
			code := run([]string{"validate", "-c", f}, &stdout, &stderr)
			if strings.Contains(string(data), "cert_file:") {
				// Only the certificate files themselves may be missing here.
				if code != 0 && !strings.Contains(stderr.String(), "no such file") {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
		})
	}
}

func TestValidate_NamesFileLineAndKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("frontends:\n  - name: web\n    bind:\n      - adress: 127.0.0.1:80\n    default_backend: app\n"), 0o600)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-c", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := path + `:4: frontends[0].bind[0].adress: unknown key "adress"`
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr %q lacks %q", stderr.String(), want)
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "sekisho ") {
		t.Fatalf("exit %d, output %q", code, stdout.String())
	}
}

// run compiles only the policies routes use; validate still checks them all.
func TestValidate_CompilesUnusedPolicies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "unused.yaml")
	os.WriteFile(path, []byte(`frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "127.0.0.1:9"}]
waf:
  policies:
    - name: spare
      directives: 'SecRule ARGS "@rx (" "id:1,deny"'
`), 0o600)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-c", path}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `waf policy "spare"`) {
		t.Fatalf("exit %d, stderr %q: want 1 naming the spare policy", code, stderr.String())
	}
}

// sekisho validate builds what run would, short of binding, and dials no
// Redis: a config check belongs in CI and on hosts that cannot reach the
// production Redis (or must not touch it). Here Redis would serve a
// shared stick table, rate limits and TLS session-ticket keys; a real
// listener at its address counts the connections.
func TestValidate_DialsNoRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dialed atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()
	path := filepath.Join(t.TempDir(), "sekisho.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    default_backend: app
    default_waf_policy: "off"
backends:
  - name: app
    servers: [{address: "127.0.0.1:9"}]
    stick: {on: cookie, cookie: JSESSIONID, table: {size: 1000, expire: 30m, key_len: 32}}
waf:
  policies: [{name: "off", mode: "off"}]
redis:
  addresses: [%q]
`, ln.Addr().String())), 0o600)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-c", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // what validate started may dial late
	if n := dialed.Load(); n != 0 {
		t.Fatalf("validate dialed Redis %d times", n)
	}
}
