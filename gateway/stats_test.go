package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/e2e/debpkg"
)

// chromiumBinary finds Debian's chromium, installing it when missing; the
// test fails with how to get it when that is not possible.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	return debpkg.Need(t, "chromium", "chromium")
}

// chromium runs headless Chromium on url with args (--dump-dom, --screenshot=...).
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	bin := chromiumBinary(t)
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
	cmd := exec.Command(bin, append(append(base, args...), url)...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("chromium did not finish within 60s")
	}
	return out.String()
}

// The stats page, loaded in a real headless browser, shows the servers
// and their states; it needs no script and no external asset.
func TestStatsPage_InABrowser(t *testing.T) {
	_, addrA := namedServer(t, "127.0.0.1:0", "a")
	_, addrB := namedServer(t, "127.0.0.1:0", "b")
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: shop
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: shop
    servers: [{name: shop-1, address: "%s"}, {name: shop-2, address: "%s"}, {name: shop-3, address: "127.0.0.1:9", state: maint}]
admin: {address: "127.0.0.1:0"}
`, addrA, addrB), Options{Log: zerolog.Nop()})
	for range 4 {
		resp, err := http.Get("http://" + g.Addrs("web")[0].String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) // read to the end: the connection stays open for the next
		resp.Body.Close()
	}
	g.SetServerState("shop", "shop-2", balancer.Drain)
	url := "http://" + g.AdminAddr().String() + "/stats"
	dom := chromium(t, url, "--dump-dom")
	for _, want := range []string{
		`<td>shop-1</td>`, `<tr class="ready"><td>shop-1</td>`, `<tr class="drain"><td>shop-2</td>`,
		`<tr class="maint"><td>shop-3</td>`, `requests 4 `, `<h3>shop</h3>`,
	} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the page as the browser built it lacks %q:\n%s", want, dom)
		}
	}
	if !regexp.MustCompile(`<td>web</td><td>[^<]*</td><td>1</td>`).MatchString(dom) {
		t.Errorf("the frontend row does not show the client's one open connection:\n%s", dom)
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, `src="http`) || strings.Contains(dom, `href="http`) {
		t.Fatal("the page carries a script or an external asset")
	}
	if shot := os.Getenv("SEKISHO_STATS_SCREENSHOT"); shot != "" {
		chromium(t, url, "--screenshot="+shot, "--window-size=1100,700", "--hide-scrollbars")
	}
}

// Request rates come from the counters' change between two samples.
func TestStatsPage_RequestRates(t *testing.T) {
	_, addr := namedServer(t, "127.0.0.1:0", "a")
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: %q}]
`, addr), Options{Log: zerolog.Nop()})
	stop := make(chan struct{})
	defer close(stop)
	// A window far longer than the 20 requests take, so all of them fall
	// in the first one, even on a loaded machine.
	start := time.Now()
	go g.sh.sampleRates(stop, 2*time.Second)
	for range 20 {
		resp, err := http.Get("http://" + g.Addrs("web")[0].String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("20 requests took %s: too slow for this test's window", took)
	}
	var r *requestRates
	for deadline := time.Now().Add(5 * time.Second); r == nil; time.Sleep(50 * time.Millisecond) {
		if r = g.sh.rates.Load(); r == nil && time.Now().After(deadline) {
			t.Fatal("no rates sampled within 5 s")
		}
	}
	if f := r.byFrontend["web"]; f < 9 || f > 10.5 || r.byBackend["app"] != f {
		t.Fatalf("rates %+v, want 20 requests over about 2 s: 10/s for web and app", r)
	}
}

// The stats page lists the HTTP/3 (UDP) socket of a frontend with
// http3 beside its TLS bind: both are ports a firewall must open.
func TestStatsPage_ListsHTTP3(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	g, _, _, _ := runGatewayWith(t, h3GatewayYAML(backend.URL)+"admin: {address: \"127.0.0.1:0\"}\n", Options{Log: zerolog.Nop()})
	resp, err := http.Get("http://" + g.AdminAddr().String() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	addr := g.Addrs("web")[0].String()
	want := "<td>web</td><td>" + addr + " (TLS), " + addr + " (HTTP/3, UDP)</td>"
	if !strings.Contains(string(page), want) {
		t.Fatalf("the frontend row lacks %q:\n%s", want, page)
	}
}
