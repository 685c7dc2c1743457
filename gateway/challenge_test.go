package gateway

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/e2e/debpkg"
	"github.com/sekisho/sekisho/gateway/challenge"
	"github.com/sekisho/sekisho/gateway/config"
)

// challengeBackend is a server that counts the requests that reach it
// (a browser's /favicon.ico aside).
func challengeBackend(t *testing.T) (addr string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	ln, addr := namedServer(t, "127.0.0.1:0", "")
	ln.Close()
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/favicon.ico" {
			hits.Add(1)
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body><h1 id=shop>welcome to the shop</h1></body></html>")
	})}
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	return addr, hits
}

// challengeYAML is one frontend, trusting X-Forwarded-For from loopback so
// a test can speak for clients on several networks, with a pow route on
// /shop/, a js route on /js/, a 429 route on /api/ and the rest open.
func challengeYAML(backend, extra string) string {
	return fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
    routes:
      - {path_prefix: /shop/, backend: app, waf_policy: "off", challenge: {mode: pow, difficulty: 12}}
      - {path_prefix: /js/, backend: app, waf_policy: "off", challenge: {mode: js}}
      - {path_prefix: /api/, backend: app, waf_policy: "off", challenge: {mode: "429"}}
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "%s"}]
%s`, backend, extra)
}

var pageToken = regexp.MustCompile(`data-token="([^"]+)"`)

// solvePage answers a challenge page as its script does.
func solvePage(t *testing.T, body string, difficulty int) url.Values {
	t.Helper()
	m := pageToken.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no challenge token in %q", body)
	}
	for n := 0; n < 1<<22; n++ {
		sum := sha256.Sum256([]byte(m[1] + ":" + strconv.Itoa(n)))
		z := 0
		for _, b := range sum {
			z += bits.LeadingZeros8(b)
			if b != 0 {
				break
			}
		}
		if z >= difficulty {
			return url.Values{"t": {m[1]}, "n": {strconv.Itoa(n)}}
		}
	}
	t.Fatal("no answer found")
	return nil
}

// fetch sends a GET as client (X-Forwarded-For) with the jar's cookies.
func fetch(t *testing.T, c *http.Client, u, client string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Test/1.0")
	req.Header.Set("Accept", "text/html")
	req.Host = "localhost" // CRS scores a numeric Host (920350)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A client without clearance (curl, a scraper) gets the challenge page and
// nothing of the site; one that answers it gets a clearance and the site;
// the clearance works from its network and not from another.
func TestChallenge_PowPageClearanceAndBinding(t *testing.T) {
	backend, hits := challengeBackend(t)
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, challengeYAML(backend, ""), Options{Log: zerolog.Nop(), Access: &access})
	base := "http://" + g.Addrs("web")[0].String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// curl, a client that runs no script, gets the page and nothing of the site.
	curl := debpkg.Need(t, "curl", "curl")
	out, err := exec.Command(curl, "-s", "-w", "\n%{http_code}", base+"/shop/cart?id=7").Output()
	if err != nil || !strings.HasSuffix(string(out), "\n403") || !strings.Contains(string(out), "<noscript>") || hits.Load() != 0 {
		t.Fatalf("curl: %v, backend hit %d times, got %.200q", err, hits.Load(), out)
	}
	resp, body := fetch(t, c, base+"/shop/cart?id=7", "198.51.100.7")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "<noscript>") || hits.Load() != 0 {
		t.Fatalf("without clearance: %d, backend hit %d times, body %q", resp.StatusCode, hits.Load(), body)
	}
	answer := solvePage(t, body, 12)
	answer.Set("r", "/shop/cart?id=7")
	resp, _ = fetch(t, c, base+challenge.VerifyPath+"?"+answer.Encode(), "198.51.100.7")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/shop/cart?id=7" {
		t.Fatalf("answer: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = fetch(t, c, base+"/shop/cart?id=7", "198.51.100.7")
	if resp.StatusCode != 200 || !strings.Contains(body, "welcome to the shop") || hits.Load() != 1 {
		t.Fatalf("with clearance: %d %q", resp.StatusCode, body)
	}
	if resp, _ = fetch(t, c, base+"/shop/", "198.51.100.99"); resp.StatusCode != 200 {
		t.Errorf("same /24: %d, want 200", resp.StatusCode)
	}
	if resp, _ = fetch(t, c, base+"/shop/", "203.0.113.7"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the clearance from another network: %d, want the challenge (403)", resp.StatusCode)
	}
	if resp, _ = fetch(t, c, base+"/api/items", "203.0.113.7"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("429 route without clearance: %d", resp.StatusCode)
	}
	if resp, _ = fetch(t, c, base+"/open", "203.0.113.7"); resp.StatusCode != 200 {
		t.Errorf("a route without challenge: %d", resp.StatusCode)
	}
	decisions := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(access.String()), "\n") {
		var e struct {
			Decision string `json:"access_decision"`
			Reason   string `json:"access_reason"`
		}
		json.Unmarshal([]byte(line), &e)
		decisions[e.Decision+"/"+e.Reason]++
	}
	for _, want := range []string{"challenge/challenge pow", "cleared/challenge pow", "pass/clearance", "refused/challenge no clearance (429 route)"} {
		if decisions[want] == 0 {
			t.Errorf("no access log line with %s; lines: %v", want, decisions)
		}
	}
}

// Headless Chromium runs the pow and js pages, gets its clearance and
// reaches the shop; a browser needs no more than that.
func TestChallenge_ChromiumSolvesPowAndJS(t *testing.T) {
	backend, hits := challengeBackend(t)
	g, _, _, _ := runGatewayWith(t, challengeYAML(backend, ""), Options{Log: zerolog.Nop()})
	base := "http://" + g.Addrs("web")[0].String()
	for _, path := range []string{"/shop/cart?id=7", "/js/"} {
		before := hits.Load()
		dom := chromium(t, base+path, "--dump-dom", "--virtual-time-budget=30000")
		if !strings.Contains(dom, "welcome to the shop") || hits.Load() != before+1 {
			t.Errorf("%s: Chromium did not reach the shop (backend hits %d -> %d); its page: %.300s", path, before, hits.Load(), dom)
		}
	}
}

// A clearance issued by one replica is honoured by another: the fleet's
// key comes from the Redis they share.
func TestChallenge_ClearanceAcrossReplicas(t *testing.T) {
	backend, hits := challengeBackend(t)
	redisAddr := sharedCertsRedis(t)
	yaml := challengeYAML(backend, fmt.Sprintf("redis: {addresses: [%q]}\n", redisAddr))
	a, _, _, _ := runGatewayWith(t, yaml, Options{Log: zerolog.Nop()})
	b, _, _, _ := runGatewayWith(t, yaml, Options{Log: zerolog.Nop()})
	baseA, baseB := "http://"+a.Addrs("web")[0].String(), "http://"+b.Addrs("web")[0].String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, body := fetch(t, c, baseA+"/shop/", "198.51.100.7")
	answer := solvePage(t, body, 12)
	answer.Set("r", "/shop/")
	resp, _ := fetch(t, c, baseA+challenge.VerifyPath+"?"+answer.Encode(), "198.51.100.7")
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("replica A gave cookies %v", cookies)
	}
	req, _ := http.NewRequest("GET", baseB+"/shop/", nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Test/1.0")
	req.AddCookie(cookies[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || hits.Load() != 1 {
		t.Errorf("replica B with A's clearance: %d (backend hits %d)", resp.StatusCode, hits.Load())
	}
}

// A key file that is missing or too short is a config error naming the key.
func TestChallenge_BadKeyFileIsAConfigError(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.key"), short} {
		c, err := config.Parse("test.yaml", []byte(challengeYAML("127.0.0.1:9", "challenge: {key_file: "+path+"}\n")))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(c, Options{Log: zerolog.Nop()}); err == nil || !strings.Contains(err.Error(), "challenge.key_file") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", path, err)
		}
	}
	for yaml, key := range map[string]string{
		"challenge: {ttl: 10s}\n":        "challenge.ttl",
		"challenge: {ipv4_prefix: 40}\n": "challenge.ipv4_prefix",
		"challenge: {cookie: \"a b\"}\n": "challenge.cookie",
	} {
		if _, err := config.Parse("test.yaml", []byte(challengeYAML("127.0.0.1:9", yaml))); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", yaml, err)
		}
	}
	bad := strings.Replace(challengeYAML("127.0.0.1:9", ""), "mode: js", "mode: captcha", 1)
	if _, err := config.Parse("test.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "routes[1].challenge.mode") {
		t.Errorf("unknown mode: %v", err)
	}
}

// A challenge instead of a refusal: for a client over a rate limit with
// action challenge, and for a request the WAF lets through with a score
// at or above when_waf_score (suspicious, not blocked). A clearance lets
// both through.
func TestChallenge_ByRateLimitAndByWAFScore(t *testing.T) {
	backend, hits := challengeBackend(t)
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
    routes:
      - {path_prefix: /busy/, backend: app, waf_policy: "off", rate_limit: {requests: 2, period: 1m, action: challenge}, challenge: {mode: js, when_waf_score: 1000}}
      - {path_prefix: /, backend: app, challenge: {mode: js, when_waf_score: 3}}
waf:
  policies:
    - name: "off"
      mode: "off"
    - name: default
      directives: |
        SecRule ARGS:odd "@streq 1" "id:9020201,phase:1,pass,log,msg:'odd',setvar:tx.inbound_anomaly_score_pl1=+3"
backends:
  - name: app
    servers: [{address: "%s"}]
`, backend), Options{Log: zerolog.Nop()})
	base := "http://" + g.Addrs("web")[0].String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const client = "198.51.100.7"

	for i, want := range []int{200, 200, 403} {
		if resp, _ := fetch(t, c, base+"/busy/", client); resp.StatusCode != want {
			t.Errorf("busy route, request %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if resp, _ := fetch(t, c, base+"/?plain=1", client); resp.StatusCode != 200 {
		t.Errorf("a request with no score: %d", resp.StatusCode)
	}
	before := hits.Load()
	resp, body := fetch(t, c, base+"/?odd=1", client)
	if resp.StatusCode != http.StatusForbidden || hits.Load() != before || !strings.Contains(body, "data-token") {
		t.Fatalf("a request scoring 3: %d, the backend reached: %v", resp.StatusCode, hits.Load() != before)
	}
	answer := solvePage(t, body, 4)
	answer.Set("r", "/?odd=1")
	if resp, _ := fetch(t, c, base+challenge.VerifyPath+"?"+answer.Encode(), client); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("answer: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, c, base+"/?odd=1", client); resp.StatusCode != 200 {
		t.Errorf("the scoring request with a clearance: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, c, base+"/busy/", client); resp.StatusCode != 200 {
		t.Errorf("over the rate limit with a clearance: %d", resp.StatusCode)
	}
}
