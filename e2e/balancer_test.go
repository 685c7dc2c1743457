package e2e

import (
	"io"
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
