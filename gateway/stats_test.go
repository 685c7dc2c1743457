package gateway

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
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

// statusServer answers /status/NNN with that status and every other path
// with 200; the body is "a" (none for 1xx, 204 and 304).
func statusServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if s, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			code, _ = strconv.Atoi(s)
		}
		w.WriteHeader(code)
		if code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified {
			io.WriteString(w, "a")
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// brokenServer accepts connections and closes them without answering.
func brokenServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			c.Read(make([]byte, 4096))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// statsGateway runs a gateway with a frontend "web" whose routes lead to
// each thing the stats count, sends it a known mix of requests, and
// returns the gateway and the access log's entries, once every request
// is counted. The mix and what each backend gets:
//
//	app (a, and "dead" that refuses connections: requests sent there first are retried on a):
//	  GET /ok ×4, POST /ok (7 bytes): 200; /status/404, /status/503, /status/302;
//	  /status/418: the WAF refuses the response (403, dresp);
//	  /?probe=attack: WAF block (403); /private/x: access rules deny (403);
//	  /api/x: challenged (429); /limited/x twice: 200 then rate-limited (429)
//	gone (dead2 refuses connections): /gone/x: 503, a connect error
//	broken (closes without answering): /broken/x: 502, a response error
//	checked (c1 up, c2 down, http checks): /checked/x: 200 on c1
//	no backend: a request the HTTP parser refuses (400, a request error)
func statsGateway(t *testing.T) (*Gateway, []map[string]any) {
	t.Helper()
	dead := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	_, c1 := namedServer(t, "127.0.0.1:0", "c1")
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    routes:
      - {path_prefix: /private/, backend: app, waf_policy: default, access: {deny: [everyone]}}
      - {path_prefix: /api/, backend: app, waf_policy: default, challenge: {mode: "429"}}
      - {path_prefix: /limited/, backend: app, waf_policy: default, rate_limit: {requests: 1, period: 1m}}
      - {path_prefix: /gone/, backend: gone, waf_policy: default}
      - {path_prefix: /broken/, backend: broken, waf_policy: default}
      - {path_prefix: /checked/, backend: checked, waf_policy: default}
    default_backend: app
    default_waf_policy: default
ip_lists:
  - {name: everyone, cidrs: ["0.0.0.0/0", "::/0"]}
waf:
  policies:
    - name: default
      directives: |
        SecRule ARGS:probe "@streq attack" "id:9020003,phase:1,deny,status:403,log,msg:'probe'"
        SecRule RESPONSE_STATUS "@streq 418" "id:9020004,phase:3,deny,status:403,log,msg:'teapot'"
backends:
  - name: app
    servers: [{name: a, address: "%s"}, {name: dead, address: "%s"}]
  - name: gone
    servers: [{name: dead2, address: "%s"}]
  - name: broken
    servers: [{name: broken, address: "%s"}]
  - name: checked
    servers: [{name: c1, address: "%s"}, {name: c2, address: "%s"}]
    health_check: {type: http, interval: 50ms, rise: 1, fall: 1}
admin: {address: "127.0.0.1:0"}
`, statusServer(t), dead(), dead(), brokenServer(t), c1, dead()), Options{Log: zerolog.Nop(), Access: &access})
	eventually(t, "c2 down and c1 checked", func() bool {
		s1, _ := g.server("checked", "c1")
		s2, _ := g.server("checked", "c2")
		return s2.Down() && s1.LastCheck() != nil && s1.LastCheck().Err == ""
	})
	web := "http://" + g.Addrs("web")[0].String()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	n := 0
	send := func(method, path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, web+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
		}
		n++
	}
	for range 4 {
		send("GET", "/ok", "", 200)
	}
	send("GET", "/status/404", "", 404)
	send("GET", "/status/503", "", 503)
	send("GET", "/status/302", "", 302)
	send("GET", "/status/418", "", 403)
	send("POST", "/ok", "hello=1", 200)
	send("GET", "/?probe=attack", "", 403)
	send("GET", "/private/x", "", 403)
	send("GET", "/api/x", "", 429)
	send("GET", "/limited/x", "", 200)
	send("GET", "/limited/x", "", 429)
	send("GET", "/gone/x", "", 503)
	send("GET", "/broken/x", "", 502)
	send("GET", "/checked/x", "", 200)
	c, err := net.Dial("tcp", g.Addrs("web")[0].String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n")
	if resp, _ := io.ReadAll(c); !strings.HasPrefix(string(resp), "HTTP/1.1 400 ") {
		t.Fatalf("a bad request: %q", resp)
	}
	c.Close()
	n++
	waitLine(t, &access, n-1)
	var entries []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(access.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, m)
	}
	// The log line is written before the request is counted.
	eventually(t, "every request counted", func() bool {
		return sums(g.metrics.requests.requests, map[string]string{"frontend": "web"})[""] == float64(n)
	})
	g.SetServerState("checked", "c1", balancer.Drain)
	return g, entries
}

// logSum adds up a numeric field of the access log entries that match.
func logSum(entries []map[string]any, field string, match map[string]string) uint64 {
	var n float64
	for _, e := range entries {
		ok := true
		for k, v := range match {
			s, _ := e[k].(string)
			ok = ok && s == v
		}
		if ok {
			f, _ := e[field].(float64)
			n += f
		}
	}
	return uint64(n)
}

// statsTables reads the stats page's tables: each by the heading before
// it ("Frontends", a backend's name), each row by its first cell, each
// cell by its column's heading.
func statsTables(t *testing.T, page string) map[string]map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]map[string]string{}
	tables := regexp.MustCompile(`(?s)<h[23]>([^<]+)</h[23]>\s*(?:<p>.*?</p>\s*)?<table>(.*?)</table>`).FindAllStringSubmatch(page, -1)
	rowRE, cellRE := regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`), regexp.MustCompile(`(?s)<t[hd]>(.*?)</t[hd]>`)
	for _, tb := range tables {
		rows := rowRE.FindAllStringSubmatch(tb[2], -1)
		if len(rows) == 0 {
			continue
		}
		var head []string
		for _, c := range cellRE.FindAllStringSubmatch(rows[0][1], -1) {
			head = append(head, c[1])
		}
		byRow := map[string]map[string]string{}
		for _, r := range rows[1:] {
			cells := cellRE.FindAllStringSubmatch(r[1], -1)
			if len(cells) != len(head) {
				t.Fatalf("table %s: a row of %d cells under %d headings: %s", tb[1], len(cells), len(head), r[0])
			}
			row := map[string]string{}
			for i, c := range cells {
				row[head[i]] = html.UnescapeString(c[1])
			}
			byRow[row[head[0]]] = row
		}
		out[tb[1]] = byRow
	}
	return out
}

// After real requests, the stats page shows HAProxy's counters: per
// frontend and backend the bytes, the denied requests by reason and the
// errors; per server the status classes, retries, the time since its
// last change and its last check; the process's version, PID and uptime.
func TestStatsPage_CountersAfterRealRequests(t *testing.T) {
	g, entries := statsGateway(t)
	resp, err := http.Get("http://" + g.AdminAddr().String() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if want := fmt.Sprintf("version %s · pid %d · up ", html.EscapeString(version()), os.Getpid()); !strings.Contains(page, want) {
		t.Errorf("the page lacks %q:\n%s", want, page)
	}
	tables := statsTables(t, page)
	check := func(table, row string, want map[string]string) {
		t.Helper()
		got, ok := tables[table][row]
		if !ok {
			t.Errorf("no row %q in table %q:\n%s", row, table, page)
			return
		}
		for col, w := range want {
			if got[col] != w {
				t.Errorf("%s/%s: %s = %q, want %q", table, row, col, got[col], w)
			}
		}
	}
	retries := fmt.Sprint(logSum(entries, "retries", map[string]string{"backend": "app"}))
	check("Frontends", "web", map[string]string{
		"requests": "18", "bytes in": "7", "bytes out": fmt.Sprint(logSum(entries, "bytes_out", nil)),
		"denied: WAF": "1", "denied: access": "1", "challenged": "1", "rate-limited": "1", "denied responses": "1", "request errors": "1",
		"1xx": "0", "2xx": "7", "3xx": "1", "4xx": "7", "5xx": "3",
	})
	check("app", "a", map[string]string{
		"status": "no check", "requests": "10", "1xx": "0", "2xx": "6", "3xx": "1", "4xx": "2", "5xx": "1",
		"bytes in": "7", "bytes out": fmt.Sprint(logSum(entries, "bytes_out", map[string]string{"server": "a"})),
		"denied responses": "1", "connect errors": "0", "response errors": "0", "retries": retries, "redispatches": retries, "last check": "no check",
	})
	check("app", "Backend", map[string]string{
		"status": "UP", "requests": "14", "2xx": "6", "3xx": "1", "4xx": "6", "5xx": "1", "denied requests": "4", "denied responses": "1",
		"retries": retries, "redispatches": retries,
	})
	check("gone", "dead2", map[string]string{"requests": "1", "5xx": "1", "connect errors": "1"})
	check("gone", "Backend", map[string]string{"requests": "1", "connect errors": "1"})
	check("broken", "Backend", map[string]string{"requests": "1", "5xx": "1", "response errors": "1"})
	check("checked", "c1", map[string]string{"status": "DRAIN", "requests": "1", "2xx": "1"})
	check("checked", "c2", map[string]string{"status": "DOWN"})
	if retries == "0" {
		t.Error("no request was retried: app's dead server should have been tried first once in two")
	}
	c1, c2 := tables["checked"]["c1"], tables["checked"]["c2"]
	if !regexp.MustCompile(`^L7OK in \S+, \S+ ago$`).MatchString(c1["last check"]) || !regexp.MustCompile(`^[0-9.]+[µm]?s ago$`).MatchString(c1["last change"]) {
		t.Errorf("c1's last check %q, last change %q", c1["last check"], c1["last change"])
	}
	if !strings.HasPrefix(c1["last change"], "0") && !strings.HasPrefix(c1["last change"], "1s") && !strings.Contains(c1["last change"], "ms") && !strings.Contains(c1["last change"], "µs") {
		t.Errorf("c1 was drained just now, yet its last change was %s", c1["last change"])
	}
	if !strings.HasPrefix(c2["last check"], "L4CON in ") || !strings.Contains(c2["last check"], "connection refused") || c2["failed checks"] == "0" {
		t.Errorf("c2's last check %q, failed checks %q", c2["last check"], c2["failed checks"])
	}
	if !strings.Contains(page, `<tr class="drain"><td>c1</td>`) || !strings.Contains(page, `<tr class="down"><td>c2</td>`) {
		t.Errorf("c1 and c2's rows are not coloured drain and down:\n%s", page)
	}
	if !strings.Contains(page, `<a href="stats;csv">CSV</a>`) {
		t.Error("the page does not link its CSV")
	}
}
