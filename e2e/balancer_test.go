package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"
)

const balancerConfig = `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    balance: {{.Balance}}
    servers:
      - {name: fast, address: "{{.A}}"}
      - {name: slow, address: "{{.B}}"}
{{- if .Backend}}
{{.Backend}}
{{- end}}
log:
  access: {{.AccessLog}}
`

// leastconn and least_response_time send most requests to the fast
// server when the other answers in 100 ms; round robin, which does not
// look at load, is the control that shows the test can tell.
func TestBalancer_LoadAwareAlgorithmsAvoidASlowServer(t *testing.T) {
	fast := StartBackend(t, "fast")
	slow := StartBackend(t, "slow")
	slow.Handle = func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "ok slow")
	}
	for _, tc := range []struct {
		balance                    string
		maxSlowShare, minSlowShare float64
	}{
		{"roundrobin", 0.55, 0.45},
		{"leastconn", 0.10, 0},
		{"least_response_time", 0.10, 0},
	} {
		t.Run(tc.balance, func(t *testing.T) {
			g := StartGateway(t, balancerConfig, ConfigData{"Balance": tc.balance, "A": fast.Addr, "B": slow.Addr})
			url := g.URL("http", "web") + "/"
			before := [2]int{len(fast.Requests()), len(slow.Requests())}
			var wg sync.WaitGroup
			deadline := time.Now().Add(1500 * time.Millisecond)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &http.Client{Timeout: 5 * time.Second}
					for i := 0; i < 400 && time.Now().Before(deadline); i++ {
						resp, err := c.Get(url)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							t.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				}()
			}
			wg.Wait()
			nf, ns := len(fast.Requests())-before[0], len(slow.Requests())-before[1]
			share := float64(ns) / float64(nf+ns)
			t.Logf("%s: fast %d, slow %d requests (slow share %.3f)", tc.balance, nf, ns, share)
			if share > tc.maxSlowShare || share < tc.minSlowShare {
				t.Errorf("slow server's share %.3f, want %.2f..%.2f", share, tc.minSlowShare, tc.maxSlowShare)
			}
		})
	}
}

// Cookie persistence end to end: a client stays on its server; when that
// server dies, the client's next request is served by the other one (no
// error) and the cookie moves it there for good.
func TestBalancer_CookiePersistenceSurvivesAServerDeath(t *testing.T) {
	a := StartBackend(t, "a")
	b := StartBackend(t, "b")
	g := StartGateway(t, balancerConfig, ConfigData{"Balance": "roundrobin", "A": a.Addr, "B": b.Addr,
		"Backend": "    cookie: {name: SRV, indirect: true, httponly: true, maxidle: 30m}"})
	url := g.URL("http", "web") + "/"
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	get := func() string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
		return strings.TrimPrefix(string(body), "ok ")
	}
	first := get()
	for range 5 {
		if got := get(); got != first {
			t.Fatalf("sticky client moved from %s to %s", first, got)
		}
	}
	dead, other := a, "b"
	if first == "b" {
		dead, other = b, "a"
	}
	dead.srv.Close()
	for range 5 {
		if got := get(); got != other {
			t.Fatalf("with %s dead, served by %s", first, got)
		}
	}
	for _, r := range append(a.Requests(), b.Requests()...) {
		if strings.Contains(r.Header.Get("Cookie"), "SRV=") {
			t.Fatalf("a server saw the gateway's cookie (indirect): %q", r.Header.Get("Cookie"))
		}
	}
}

// clientFrom is an HTTP client whose connections leave from the given
// loopback address, as another client machine's would.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// revive serves b again on its old address.
func revive(t *testing.T, b *Backend) {
	t.Helper()
	ln, err := net.Listen("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = &http.Server{Handler: b}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
}

// send makes one GET with an optional Cookie header and returns the
// server's name and the response's Set-Cookie values.
func send(t *testing.T, c *http.Client, url, cookie string) (string, []*http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	return strings.TrimPrefix(string(body), "ok "), resp.Cookies()
}

// Stick on an application cookie: the gateway learns JSESSIONID → server
// from the server's Set-Cookie and sends every request that carries it to
// that server, whatever address it comes from. When the server dies, the
// session moves to the other one (no failed request) and stays there.
func TestBalancer_StickOnApplicationCookie(t *testing.T) {
	var mu sync.Mutex
	issued := 0
	tomcat := func(name string) *Backend {
		b := StartBackend(t, name)
		b.Handle = func(w http.ResponseWriter, r *http.Request) {
			if _, err := r.Cookie("JSESSIONID"); err != nil {
				mu.Lock()
				issued++
				id := fmt.Sprintf("%08X%s", issued, strings.Repeat("0", 24))
				mu.Unlock()
				http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: id, Path: "/", HttpOnly: true})
			}
			fmt.Fprintf(w, "ok %s", name)
		}
		return b
	}
	a, b := tomcat("a"), tomcat("b")
	g := StartGateway(t, balancerConfig, ConfigData{"Balance": "roundrobin", "A": a.Addr, "B": b.Addr,
		"Backend": "    stick: {on: cookie, cookie: JSESSIONID, table: {size: 1000, expire: 30m}}"})
	url := g.URL("http", "web") + "/"
	first, set := send(t, clientFrom("127.0.0.2"), url, "")
	if len(set) != 1 || set[0].Name != "JSESSIONID" {
		t.Fatalf("no session from the server: %v", set)
	}
	session := "JSESSIONID=" + set[0].Value
	for i, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"} {
		if got, _ := send(t, clientFrom(ip), url, session); got != first {
			t.Fatalf("request %d from %s with the session went to %s, not %s", i, ip, got, first)
		}
	}
	dead, other := a, "b"
	if first == "b" {
		dead, other = b, "a"
	}
	dead.srv.Close()
	for range 4 {
		if got, _ := send(t, clientFrom("127.0.0.8"), url, session); got != other {
			t.Fatalf("with %s dead, the session went to %s", first, got)
		}
	}
	revive(t, dead)
	for range 4 {
		if got, _ := send(t, clientFrom("127.0.0.9"), url, session); got != other {
			t.Fatalf("after %s came back, the moved session went to %s; the table should say %s", first, got, other)
		}
	}
}

// Stick on the client's address: each client keeps its server; when that
// server dies, the client moves, without a failed request, and stays.
func TestBalancer_StickOnSource(t *testing.T) {
	a, b := StartBackend(t, "a"), StartBackend(t, "b")
	g := StartGateway(t, balancerConfig, ConfigData{"Balance": "roundrobin", "A": a.Addr, "B": b.Addr,
		"Backend": "    stick: {on: src, table: {size: 100, expire: 10m}}"})
	url := g.URL("http", "web") + "/"
	servers := map[string]string{}
	for i := 2; i < 10; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		c := clientFrom(ip)
		for range 4 {
			got, _ := send(t, c, url, "")
			if servers[ip] == "" {
				servers[ip] = got
			}
			if got != servers[ip] {
				t.Fatalf("client %s moved from %s to %s", ip, servers[ip], got)
			}
		}
	}
	count := map[string]int{}
	for _, s := range servers {
		count[s]++
	}
	if count["a"] == 0 || count["b"] == 0 {
		t.Fatalf("all clients on one server: %v", servers)
	}
	ip := "127.0.0.2"
	dead, other := a, "b"
	if servers[ip] == "b" {
		dead, other = b, "a"
	}
	dead.srv.Close()
	if got, _ := send(t, clientFrom(ip), url, ""); got != other {
		t.Fatalf("with its server dead, %s went to %s", ip, got)
	}
	revive(t, dead)
	for range 3 {
		if got, _ := send(t, clientFrom(ip), url, ""); got != other {
			t.Fatalf("after the revival, %s went to %s; the table should keep %s", ip, got, other)
		}
	}
}

// Health checks across processes: a killed server is out within about
// interval × fall, no GET fails meanwhile (a refused connect goes to the
// other server), and once revived it is back after rise good checks.
func TestBalancer_HealthCheckOutAndBack(t *testing.T) {
	a, b := StartBackend(t, "fast"), StartBackend(t, "slow")
	g := StartGateway(t, balancerConfig, ConfigData{"Balance": "roundrobin", "A": a.Addr, "B": b.Addr,
		"Backend": "    health_check: {type: http, http: {path: /health}, interval: 100ms, rise: 2, fall: 3}"})
	url := g.URL("http", "web") + "/"
	c := &http.Client{Timeout: 5 * time.Second}
	failed := 0
	get := func() string {
		resp, err := c.Get(url)
		if err != nil {
			failed++
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			failed++
		}
		return strings.TrimPrefix(string(body), "ok ")
	}
	down := `"server":"fast","up":false`
	up := `"server":"fast","up":true`
	killed := time.Now()
	a.srv.Close()
	for !strings.Contains(g.Stderr(), down) {
		get()
		if time.Since(killed) > 3*time.Second {
			t.Fatalf("not out within 3s:\n%s", g.Stderr())
		}
	}
	// fall 3 checks 100 ms apart, after the first one to fail: up to 400 ms,
	// with room for a loaded machine.
	if took := time.Since(killed); took > time.Second {
		t.Errorf("out after %s; interval × fall is 300 ms", took)
	}
	for range 10 {
		if got := get(); got != "slow" {
			t.Fatalf("with fast out, served by %q", got)
		}
	}
	if failed != 0 {
		t.Fatalf("%d requests failed while the check noticed", failed)
	}
	revived := time.Now()
	revive(t, a)
	for !strings.Contains(g.Stderr(), up) {
		if time.Since(revived) > 3*time.Second {
			t.Fatalf("not back within 3s:\n%s", g.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(revived); took < 100*time.Millisecond {
		t.Errorf("back after %s: rise 2 needs two checks 100 ms apart", took)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[get()] = true
	}
	if !seen["fast"] || !seen["slow"] || failed != 0 {
		t.Fatalf("after the revival: %v, %d failed", seen, failed)
	}
}
