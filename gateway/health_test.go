package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/e2e/freeport"
	"github.com/sekisho/sekisho/gateway/admin"
)

// namedServer answers with its name on addr ("127.0.0.1:0" for a free port).
func namedServer(t *testing.T, addr, name string) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln, ln.Addr().String()
}

// A server that dies is taken out by the health check within fall ×
// interval, no request fails meanwhile (connects that are refused go to
// the other server), and it is back after rise good checks.
func TestHealth_DeadServerOutAndBackWithoutFailedRequests(t *testing.T) {
	lnA, addrA := namedServer(t, "127.0.0.1:0", "a")
	_, addrB := namedServer(t, "127.0.0.1:0", "b")
	var logs syncBuffer
	g, _, _, _ := runGateway(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: off
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: a, address: "%s"}, {name: b, address: "%s"}]
    health_check: {type: tcp, interval: 50ms, rise: 2, fall: 3}
`, addrA, addrB), zerolog.New(&logs))
	url := "http://" + g.Addrs("web")[0].String() + "/"
	get := func() string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if got := get() + get(); got != "ab" && got != "ba" {
		t.Fatalf("both servers up: %q", got)
	}
	lnA.Close()
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), `"server":"a","up":false`) {
		get() // every request succeeds while the check notices
		if time.Now().After(deadline) {
			t.Fatalf("a not taken out within 2s:\n%s", logs.String())
		}
	}
	if got := get() + get() + get(); got != "bbb" {
		t.Fatalf("with a out: %q", got)
	}
	namedServer(t, addrA, "a")
	eventually(t, "a back", func() bool { return strings.Contains(logs.String(), `"server":"a","up":true`) })
	if got := get() + get(); got != "ab" && got != "ba" {
		t.Fatalf("a back: %q", got)
	}
}

// The admin API's Go way in: a server set to maint takes no requests, one
// set to drain takes no new ones, and back to ready it serves again; the
// config's own states apply from the start. Passive checks report through
// OnHealthEvent, as active checks do.
func TestGateway_SetServerStateAndHealthEvents(t *testing.T) {
	_, addrA := namedServer(t, "127.0.0.1:0", "a")
	_, addrB := namedServer(t, "127.0.0.1:0", "b")
	_, addrC := namedServer(t, "127.0.0.1:0", "c")
	dead := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	var mu sync.Mutex
	var events []balancer.HealthEvent
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: off
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: a, address: "%s"}, {name: b, address: "%s"}, {name: c, address: "%s", state: maint}, {name: d, address: "%s"}]
    passive_check: {failures: 1, cool_down: 1m}
`, addrA, addrB, addrC, dead), Options{Log: zerolog.Nop(), OnHealthEvent: func(e balancer.HealthEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	url := "http://" + g.Addrs("web")[0].String() + "/"
	served := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			got[string(b)]++
		}
		return got
	}
	if got := served(8); got["c"] != 0 || got["a"] == 0 || got["b"] == 0 {
		t.Fatalf("c in maint from the config, d dead: %v", got)
	}
	mu.Lock()
	if len(events) != 1 || events[0].Server != "d" || events[0].Up {
		t.Fatalf("events %+v, want d out by the passive check", events)
	}
	mu.Unlock()
	if err := g.SetServerState("app", "a", balancer.Maint); err != nil {
		t.Fatal(err)
	}
	if err := g.SetServerState("app", "c", balancer.Ready); err != nil {
		t.Fatal(err)
	}
	if got := served(6); got["a"] != 0 || got["c"] == 0 {
		t.Fatalf("a in maint, c ready: %v", got)
	}
	g.SetServerState("app", "b", balancer.Drain)
	if got := served(4); got["c"] != 4 {
		t.Fatalf("b draining, a in maint: %v", got)
	}
	if err := g.SetServerState("app", "zz", balancer.Ready); err == nil || !strings.Contains(err.Error(), `no server "zz"`) {
		t.Errorf("unknown server: %v", err)
	}
	if err := g.SetServerState("nope", "a", balancer.Ready); err == nil {
		t.Error("unknown backend accepted")
	}
}

// Each active check is counted by result in the metrics, and the last one
// shows in the admin API: when, how long, and why it failed.
func TestHealth_CheckResultsInMetricsAndAPI(t *testing.T) {
	_, up := namedServer(t, "127.0.0.1:0", "up")
	dead := freeport.Addr(t)
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{name: up, address: %q}, {name: dead, address: %q}]
    health_check: {type: tcp, interval: 20ms, down_interval: 20ms, fall: 1, rise: 1}
admin: {address: "127.0.0.1:0"}
`, up, dead), Options{Log: zerolog.Nop()})
	adminURL := "http://" + g.AdminAddr().String()
	var checks map[string]float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		checks = sums(g.sh.metrics.healthChecks, nil, "server", "result")
		if checks["up|ok"] >= 3 && checks["dead|failed"] >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health check counts %v after 5 s, want ≥ 3 ok for up and ≥ 3 failed for dead", checks)
		}
	}
	if checks["up|failed"] != 0 || checks["dead|ok"] != 0 {
		t.Errorf("counts %v: up never fails, dead never passes", checks)
	}
	resp, err := http.Get(adminURL + "/api/backends")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []admin.BackendInfo
	json.NewDecoder(resp.Body).Decode(&list)
	byName := map[string]admin.ServerInfo{}
	for _, s := range list[0].Servers {
		byName[s.Name] = s
	}
	if c := byName["up"].Check; c == nil || c.Error != "" || time.Since(c.At) > 2*time.Second {
		t.Errorf("up's last check %+v, want a recent pass", c)
	}
	if c := byName["dead"].Check; c == nil || !strings.Contains(c.Error, "connection refused") {
		t.Errorf("dead's last check %+v, want connection refused", c)
	}
}
