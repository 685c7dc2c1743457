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
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/waf/alert/alerttest"
)

// banYAML is a frontend that bans after 3 WAF blocks or 5 4xx within a
// minute, for 10 minutes, behind trusted X-Forwarded-For (so a test can
// speak for several clients), with a WAF rule a test can trip at will.
func banYAML(backend, extra string) string {
	return fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
    routes:
      - {path_prefix: /shop/, backend: app}
    ban: {waf_blocks: 3, errors_4xx: 5, within: 1m, duration: 10m}
waf:
  policies:
    - name: default
      directives: |
        SecRule ARGS:probe "@streq attack" "id:9020001,phase:1,deny,status:403,log,msg:'probe'"
backends:
  - name: app
    servers: [{address: "%s"}]
admin: {address: "127.0.0.1:0"}
%s`, backend, extra)
}

// as sends a GET for client and returns its status.
func as(t *testing.T, url, client string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Three WAF blocks ban a client on the replica that saw them and, through
// Redis, on the other within a second; other clients pass; the ban is
// listed, sent as ban.added, and lifted through the admin API.
func TestBan_WAFBlocksBanAcrossReplicas(t *testing.T) {
	backend, hits := challengeBackend(t)
	secret := []byte("alert-signing-secret")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), secret, 0o600)
	receiver := alerttest.NewReceiver(t, secret)
	redisAddr, _ := redisServer(t)
	extra := fmt.Sprintf("redis: {addresses: [%q]}\nalerts:\n  window: 100ms\n  endpoints: [{name: ops, url: %q, secret_file: %q, events: [ban.added]}]\n",
		redisAddr, receiver.URL, filepath.Join(dir, "secret"))
	var access syncBuffer
	a, _, _, _ := runGatewayWith(t, banYAML(backend, extra), Options{Log: zerolog.Nop(), Access: &access})
	b, _, _, _ := runGatewayWith(t, banYAML(backend, extra), Options{Log: zerolog.Nop()})
	webA, webB := "http://"+a.Addrs("web")[0].String(), "http://"+b.Addrs("web")[0].String()
	const mallory, alice = "198.51.100.66", "203.0.113.5"

	for i := range 3 {
		if s := as(t, webA+"/shop/?probe=attack", mallory); s != 403 {
			t.Fatalf("attack %d: %d", i, s)
		}
	}
	before := hits.Load()
	if s := as(t, webA+"/shop/", mallory); s != 403 || hits.Load() != before {
		t.Fatalf("banned client on replica A: %d, backend reached: %v", s, hits.Load() != before)
	}
	deadline := time.Now().Add(time.Second)
	eventually(t, "the ban holds on replica B", func() bool { return as(t, webB+"/shop/", mallory) == 403 })
	if time.Now().After(deadline.Add(200 * time.Millisecond)) {
		t.Errorf("the ban took more than a second to reach replica B")
	}
	if s := as(t, webB+"/shop/", alice); s != 200 {
		t.Errorf("another client: %d", s)
	}
	if !strings.Contains(access.String(), `"access_decision":"deny","access_reason":"ban until `) {
		t.Errorf("no access log line of the ban: %s", access.String())
	}
	eventually(t, "ban.added alert", func() bool {
		for _, m := range receiver.Events() {
			if m["type"] == "ban.added" && m["client_ip"] == mallory {
				return true
			}
		}
		return false
	})

	adminB := "http://" + b.AdminAddr().String()
	resp, err := http.Get(adminB + "/api/bans")
	if err != nil {
		t.Fatal(err)
	}
	var listed struct{ Bans []admin.Ban }
	json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if len(listed.Bans) != 1 || listed.Bans[0].Client != mallory || listed.Bans[0].Action != "deny" || time.Until(listed.Bans[0].Until) < 9*time.Minute {
		t.Fatalf("bans listed: %+v", listed.Bans)
	}
	req, _ := http.NewRequest("DELETE", adminB+"/api/bans/"+mallory, nil)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("lift: %v %v", resp, err)
	}
	resp.Body.Close()
	eventually(t, "the lifted ban ends on both replicas", func() bool {
		return as(t, webA+"/shop/", mallory) == 200 && as(t, webB+"/shop/", mallory) == 200
	})
}

// Without Redis the replica bans by itself: five 4xx (unknown paths here)
// ban the client; and with Redis gone, a replica still refuses the clients
// it knew were banned, and lets every other request through.
func TestBan_InMemoryAndThroughARedisOutage(t *testing.T) {
	backend, _ := challengeBackend(t)
	g, _, _, _ := runGatewayWith(t, banYAML(backend, ""), Options{Log: zerolog.Nop()})
	web := "http://" + g.Addrs("web")[0].String()
	for range 5 {
		if s := as(t, web+"/nowhere", "198.51.100.9"); s != 404 {
			t.Fatalf("unknown path: %d", s)
		}
	}
	if s := as(t, web+"/shop/", "198.51.100.9"); s != 403 {
		t.Errorf("after five 4xx: %d, want the ban's 403", s)
	}
	if s := as(t, web+"/shop/", "198.51.100.10"); s != 200 {
		t.Errorf("another client: %d", s)
	}

	redisAddr, srv := redisServer(t)
	g2, _, _, _ := runGatewayWith(t, banYAML(backend, fmt.Sprintf("redis: {addresses: [%q]}\n", redisAddr)), Options{Log: zerolog.Nop()})
	web2 := "http://" + g2.Addrs("web")[0].String()
	for range 3 {
		as(t, web2+"/shop/?probe=attack", "198.51.100.66")
	}
	if s := as(t, web2+"/shop/", "198.51.100.66"); s != 403 {
		t.Fatalf("banned with Redis up: %d", s)
	}
	srv.Process.Kill()
	srv.Wait()
	for i := range 20 {
		if s := as(t, web2+"/shop/", "198.51.100.66"); s != 403 {
			t.Fatalf("Redis down, request %d of the banned client: %d", i, s)
		}
		if s := as(t, web2+"/shop/", "203.0.113.5"); s != 200 {
			t.Fatalf("Redis down, request %d of another client: %d", i, s)
		}
	}
}
