package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/e2e/freeport"
	"github.com/sekisho/sekisho/gateway/config"
)

// reloadConfig writes a config to a file and gives the gateway options
// that read it again on Reload.
func reloadConfig(t *testing.T, log io.Writer) (write func(yaml string), o Options) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sekisho.yaml")
	write = func(yaml string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return write, Options{Log: zerolog.New(log), LoadConfig: func() (*config.Config, error) { return config.Load(path) }}
}

// Reloading the config under load (HTTP/1.1 with and without keep-alive,
// HTTP/2, HTTP/3) fails no request, keeps the sockets (ports chosen by the
// kernel stay the same), and applies the new routes at once; a config that
// does not load is refused with its file and line and the old one serves.
func TestReload_UnderLoadDropsNothing(t *testing.T) {
	_, a := namedServer(t, "127.0.0.1:0", "a")
	_, b := namedServer(t, "127.0.0.1:0", "b")
	_, c := namedServer(t, "127.0.0.1:0", "c")
	base := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    http3: true
    default_backend: app
%%s
backends:
  - name: app
    servers: [{name: a, address: %q}, {name: b, address: %q}]
  - name: other
    servers: [{name: c, address: %q}]
`, a, b, c)
	v1 := fmt.Sprintf(base, "")
	v2 := fmt.Sprintf(base, "    routes: [{path_prefix: /v2/, backend: other}]")
	var log syncBuffer
	write, o := reloadConfig(t, &log)
	write(v1)
	g, _, _, _ := runGatewayWith(t, v1, o)
	plain, tlsAddr := g.Addrs("web")[0].String(), g.Addrs("web")[1].String()

	insecure := &tls.Config{InsecureSkipVerify: true}
	h3 := &http3.Transport{TLSClientConfig: insecure}
	defer h3.Close()
	clients := []struct {
		name, url string
		rt        http.RoundTripper
	}{
		{"http/1.1 keep-alive", "http://" + plain, &http.Transport{}},
		{"http/1.1 new connections", "http://" + plain, &http.Transport{DisableKeepAlives: true}},
		{"http/2", "https://" + tlsAddr, &http2.Transport{TLSClientConfig: insecure}},
		{"https/1.1 new connections", "https://" + tlsAddr, &http.Transport{TLSClientConfig: insecure, DisableKeepAlives: true}},
		{"http/3", "https://" + tlsAddr, h3},
	}
	var ok, failed atomic.Int64
	perClient := make([]atomic.Int64, len(clients))
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for ci, cl := range clients {
		wg.Go(func() {
			client := &http.Client{Transport: cl.rt, Timeout: 5 * time.Second}
			for i := 0; i < 20000; i++ { // bounded; stop ends it first
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(fmt.Sprintf("%s/item?i=%d", cl.url, i))
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || (string(body) != "a" && string(body) != "b")) {
						err = fmt.Errorf("status %d, body %q", resp.StatusCode, body)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", cl.name, err))
					continue
				}
				ok.Add(1)
				perClient[ci].Add(1)
			}
		})
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + plain + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	time.Sleep(300 * time.Millisecond)
	for i := range 6 {
		want := "c"
		cfg := v2
		if i%2 == 1 {
			cfg, want = v1, "a|b"
		}
		write(cfg)
		if err := g.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if got := get("/v2/x"); !strings.Contains(want, got) {
			t.Errorf("after reload %d, /v2/ answered by %q, want %s", i, got, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// A broken config: refused, named by file and line; the old one serves.
	write(v2 + "  - name: broken\n    servers: [{address: 127.0.0.1:1, weight: lots}]\n")
	err := g.Reload()
	if err == nil || !strings.Contains(err.Error(), "sekisho.yaml:") {
		t.Errorf("broken config: %v, want an error naming sekisho.yaml and its line", err)
	}
	if got := get("/v2/x"); got != "a" && got != "b" {
		t.Errorf("after the failed reload, /v2/ answered by %q: the last good config (v1) should serve", got)
	}
	time.Sleep(250 * time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("%d requests during 7 reloads, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during reloads; first: %v\n%s", failed.Load(), firstErr.Load(), log.String())
	}
	for i := range clients {
		if n := perClient[i].Load(); n < 10 {
			t.Errorf("%s made only %d requests: the load did not run", clients[i].name, n)
		}
	}
	if got := g.Addrs("web"); got[0].String() != plain || got[1].String() != tlsAddr {
		t.Errorf("addresses after the reloads %v, want %s and %s (the sockets kept)", got, plain, tlsAddr)
	}
	reloads := sums(g.sh.metrics.configReloads, nil, "result")
	if okN, failN := reloads["ok"], reloads["failed"]; okN != 6 || failN != 1 {
		t.Errorf("sekisho_config_reloads_total ok %v, failed %v; want 6 and 1", okN, failN)
	}
	if !strings.Contains(log.String(), "config reload failed; the old config keeps serving") {
		t.Errorf("the failed reload was not logged:\n%s", log.String())
	}
}

// A reload keeps what the servers that stay are known to be: one that
// health checks took down is still down at once (no request reaches it
// before its checks say otherwise), one an operator drained stays drained,
// and the persistence learnt in the stick table still holds.
func TestReload_KeepsServersStateAndStickTable(t *testing.T) {
	_, a := namedServer(t, "127.0.0.1:0", "a")
	_, b := namedServer(t, "127.0.0.1:0", "b")
	dead := freeport.Addr(t) // nothing listens: its checks fail
	yaml := func(extra string) string {
		return fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    balance: roundrobin
    servers: [{name: a, address: %q}, {name: b, address: %q}, {name: dead, address: %q}]
    health_check: {type: tcp, interval: 50ms, down_interval: 1h, fall: 1, rise: 1}
    stick: {on: cookie, cookie: JSESSIONID}
%s`, a, b, dead, extra)
	}
	write, o := reloadConfig(t, io.Discard)
	write(yaml(""))
	g, _, _, _ := runGatewayWith(t, yaml(""), o)
	for deadline := time.Now().Add(5 * time.Second); !g.current().pool("app").Server("dead").Down(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dead server was not taken down by its checks within 5s")
		}
	}
	if err := g.SetServerState("app", "b", balancer.Drain); err != nil {
		t.Fatal(err)
	}
	// Teach the table JSESSIONID=s1 -> a (b is draining, dead is down).
	store := g.current().pool("app").StickStore()
	if err := store.Stick(t.Context(), "s1", "a"); err != nil {
		t.Fatal(err)
	}

	write(yaml("  - name: spare\n    servers: [{address: 127.0.0.1:1}]\n"))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	p := g.current().pool("app")
	if p == g.pool("app") {
		t.Fatal("the reload did not build a new generation")
	}
	if !p.Server("dead").Down() {
		t.Error("the dead server is up again after the reload")
	}
	if p.Server("b").State() != balancer.Drain {
		t.Errorf("b is %s after the reload, want drain", p.Server("b").State())
	}
	if e, _, _ := p.StickStore().Lookup(t.Context(), "s1"); e.Server != "a" {
		t.Errorf("stick table entry s1 -> %q after the reload, want a", e.Server)
	}
	addr := g.Addrs("web")[0].String()
	for i := range 20 {
		resp, err := http.Get(fmt.Sprintf("http://%s/?i=%d", addr, i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "a" {
			t.Fatalf("request %d after the reload: %d %q; only a is usable", i, resp.StatusCode, body)
		}
	}
}

// A TCP (layer 4) frontend keeps its socket over a reload: a session open
// before it goes on, and new sessions are served by the new config.
func TestReload_TCPFrontendKeepsSessions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // an echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	yaml := func(idle string) string {
		return fmt.Sprintf(`
frontends:
  - name: echo
    mode: tcp
    bind: [{address: "127.0.0.1:0"}]
    backend: echo
    idle_timeout: %s
backends:
  - name: echo
    servers: [{address: %q}]
shutdown_timeout: 10s
`, idle, ln.Addr())
	}
	write, o := reloadConfig(t, io.Discard)
	write(yaml("30s"))
	g, _, _, _ := runGatewayWith(t, yaml("30s"), o)
	addr := g.Addrs("echo")[0].String()
	echo := func(c net.Conn, msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	before, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	echo(before, "one")

	write(yaml("31s"))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := g.Addrs("echo")[0].String(); got != addr {
		t.Fatalf("address %s after the reload, was %s", got, addr)
	}
	echo(before, "two")                 // the session from before the reload
	time.Sleep(1500 * time.Millisecond) // past the retiring generation's settle time
	echo(before, "three")
	after, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	echo(after, "four")
}

// sekisho_waf_rules_loaded_timestamp_seconds has one series per policy,
// for the rules it runs: a rules reload replaces the policy's series, and
// a config reload that drops the policy drops its series.
func TestReload_RulesSeriesFollowWhatRuns(t *testing.T) {
	_, addr := namedServer(t, "127.0.0.1:0", "a")
	rules := t.TempDir()
	os.MkdirAll(filepath.Join(rules, "custom"), 0o755)
	site := filepath.Join(rules, "custom", "site.conf")
	os.WriteFile(site, []byte(`SecRule ARGS:probe "@streq one" "id:9300001,phase:1,deny,status:403"`+"\n"), 0o644)
	yaml := func(policy string) string {
		return fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: %s
waf:
  policies:
    - {name: tuned, rules_dir: %q}
    - {name: "off", mode: "off"}
backends:
  - name: app
    servers: [{address: %q}]
`, policy, rules, addr)
	}
	write, o := reloadConfig(t, io.Discard)
	write(yaml("tuned"))
	g, _, _, _ := runGatewayWith(t, yaml("tuned"), o)
	series := func() map[string]float64 {
		return sums(g.sh.metrics.rulesLoaded, nil, "policy", "hash")
	}
	first := series()
	if len(first) != 1 {
		t.Fatalf("series %v, want one for tuned", first)
	}
	os.WriteFile(site, []byte(`SecRule ARGS:probe "@streq two" "id:9300001,phase:1,deny,status:403"`+"\n"), 0o644)
	g.ReloadRules()
	second := series()
	if len(second) != 1 || maps.Equal(first, second) {
		t.Fatalf("after the rules reload %v (was %v), want one series, with the new hash", second, first)
	}
	write(yaml(`"off"`))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	third := series()
	if _, ok := third[`off|`+g.current().policy("off").cur.Load().Hash()]; len(third) != 1 || !ok {
		t.Fatalf("after the config reload %v, want only off's series", third)
	}
}
