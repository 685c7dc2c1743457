package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/e2e/debpkg"
)

var ja4Shape = regexp.MustCompile(`^[tq]1[0-3][di]\d{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)

// The client's JA4 is in the access log, goes to the server in the
// configured header (a client's own is dropped), is TX:sekisho_ja4 to WAF
// rules, and keys rate limits: over TLS from the raw ClientHello, over
// QUIC from the hello crypto/tls read. Go's client fingerprints as the
// fingerprint package's tests found it; curl's has its own.
func TestJA4_LoggedSentMatchedAndCounted(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("X-JA4"))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0", tls: true}, {address: "127.0.0.1:0"}]
    tls: {self_signed: [localhost]}
    http3: true
    ja4_header: X-JA4
    ja4h: true
    routes:
      - {path_prefix: /limited/, backend: app, rate_limit: {key: ja4, requests: 2, period: 1m}}
      - {path_prefix: /, backend: app, waf_policy: fp}
waf:
  policies:
    - name: default
    - name: fp
      directives: |
        SecRule TX:sekisho_ja4 "@rx ^t13" "id:9020101,phase:1,deny,status:403,log,msg:'TLS 1.3 over TCP with a probe',chain"
          SecRule ARGS:probe "@streq 1" ""
backends:
  - name: app
    servers: [{address: "%s"}]
`, strings.TrimPrefix(backend.URL, "http://")), Options{Log: zerolog.Nop(), Access: &access})
	tlsAddr, plainAddr := g.Addrs("web")[0].String(), g.Addrs("web")[1].String()
	_, port, _ := net.SplitHostPort(tlsAddr)
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
	defer h3.Close()
	status := func(c *http.Client, url string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-JA4", "forged")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(h2, "https://"+tlsAddr+"/?probe=1"); s != 403 {
		t.Errorf("a TLS 1.3 client with the probe: %d, want the rule on TX:sekisho_ja4 to block", s)
	}
	if s := status(http.DefaultClient, "http://"+plainAddr+"/?probe=1"); s != 200 {
		t.Errorf("plain HTTP (no JA4) with the probe: %d", s)
	}
	if s := status(h2, "https://"+tlsAddr+"/"); s != 200 {
		t.Errorf("TLS without the probe: %d", s)
	}
	if s := status(&http.Client{Transport: h3}, "https://localhost:"+port+"/"); s != 200 {
		t.Errorf("HTTP/3: %d", s)
	}
	for i, want := range []int{200, 200, 429} {
		if s := status(h2, "https://"+tlsAddr+"/limited/"); s != want {
			t.Errorf("rate limit by JA4, request %d: %d, want %d", i+1, s, want)
		}
	}
	// curl is another TLS client: its own fingerprint, counted apart.
	curl := debpkg.Need(t, "curl", "curl")
	out, err := exec.Command(curl, "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", "localhost:"+port+":127.0.0.1", "https://localhost:"+port+"/limited/").Output()
	if err != nil || string(out) != "200" {
		t.Errorf("curl on the limited route: %q %v, want 200 (its JA4 is not Go's)", out, err)
	}

	byProto := map[string]map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(access.String()), "\n") {
		var e struct {
			Proto string `json:"protocol"`
			JA4   string `json:"ja4"`
			UA    string `json:"user_agent"`
		}
		json.Unmarshal([]byte(line), &e)
		key := e.Proto
		if strings.HasPrefix(e.UA, "curl/") {
			key = "curl"
		}
		if byProto[key] == nil {
			byProto[key] = map[string]bool{}
		}
		byProto[key][e.JA4] = true
	}
	one := func(key string) string {
		if len(byProto[key]) != 1 {
			t.Errorf("%s: JA4s %v, want one", key, byProto[key])
		}
		for ja4 := range byProto[key] {
			return ja4
		}
		return ""
	}
	goTLS, goQUIC, curlJA4 := one("HTTP/2.0"), one("HTTP/3.0"), one("curl")
	if goTLS != goClientJA4 || goQUIC != quicGoClientJA4 || curlJA4 != curlClientJA4 {
		t.Errorf("fingerprints: Go over TLS %q (want %q), quic-go %q (want %q), curl %q (want %q)",
			goTLS, goClientJA4, goQUIC, quicGoClientJA4, curlJA4, curlClientJA4)
	}
	if ja4 := one("HTTP/1.1"); ja4 != "" {
		t.Errorf("plain HTTP logged a JA4: %q", ja4)
	}
	// JA4H (opt-in): method, version, no cookie, no referer, the header
	// count, no Accept-Language; no cookies to hash.
	for _, proto := range []string{"11", "20", "30"} {
		if !regexp.MustCompile(`"ja4h":"ge` + proto + `nn\d\d0000_[0-9a-f]{12}_000000000000_000000000000"`).MatchString(access.String()) {
			t.Errorf("no JA4H of a GET over HTTP/%s in the access log", proto)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sent {
		if s == "forged" || s != "" && !ja4Shape.MatchString(s) {
			t.Errorf("the server got X-JA4 %q", s)
		}
	}
}

// The real clients' fingerprints, as gateway/fingerprint's tests derive
// them part by part from the spec: Go 1.26's client over TLS with SNI and
// ALPN h2, quic-go's HTTP/3 client, Debian 12's curl 7.88.1 (OpenSSL 3.0).
// A client upgrade that changes its hello changes these.
const (
	goClientJA4     = "t13d1312h2_f57a46bbacb6_ab7e3b40a677"
	quicGoClientJA4 = "q13d0313h3_55b375c5d22e_f902b76752af"
	curlClientJA4   = "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6"
)

// Chromium's JA4, as the server receives it: TLS 1.3 with SNI, 15 or 16
// cipher suites (GREASE aside) whose sorted list hashes to 8daaf6152771 in
// every Chrome since 2023, ALPN h2. Its extension order is random, which
// JA4 sorts away: two visits give the same fingerprint.
func TestJA4_Chromium(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<html><body><p id=ja4>%s</p></body></html>", r.Header.Get("X-JA4"))
	}))
	defer backend.Close()
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    ja4_header: X-JA4
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, strings.TrimPrefix(backend.URL, "http://")), Options{Log: zerolog.Nop()})
	_, port, _ := net.SplitHostPort(g.Addrs("web")[0].String())
	chrome := regexp.MustCompile(`<p id="ja4">(t13d1[56]\d\dh2_8daaf6152771_[0-9a-f]{12})</p>`)
	var seen []string
	for range 2 {
		dom := chromium(t, "https://localhost:"+port+"/", "--dump-dom", "--ignore-certificate-errors",
			"--host-resolver-rules=MAP localhost 127.0.0.1")
		m := chrome.FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("Chromium's fingerprint is not Chrome's: %.300s", dom)
		}
		seen = append(seen, m[1])
	}
	if seen[0] != seen[1] {
		t.Errorf("two visits, two fingerprints: %v", seen)
	}
}

// A stick table on ja4 keeps a TLS client on one server across new
// connections, where round robin alone would alternate.
func TestJA4_StickTable(t *testing.T) {
	_, a := namedServer(t, "127.0.0.1:0", "a")
	_, b := namedServer(t, "127.0.0.1:0", "b")
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    balance: roundrobin
    stick: {on: ja4}
    servers: [{name: a, address: "%s"}, {name: b, address: "%s"}]
`, a, b), Options{Log: zerolog.Nop()})
	url := "https://" + g.Addrs("web")[0].String() + "/"
	seen := map[string]int{}
	for range 6 {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[string(body)]++
	}
	if len(seen) != 1 {
		t.Errorf("one TLS client over six connections reached %v", seen)
	}
}
