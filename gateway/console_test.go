package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// consoleYAML is a frontend behind trusted X-Forwarded-For whose policy
// reads a rules folder, with the admin listener (token optional).
func consoleYAML(backend, rulesDir, adminExtra string) string {
	return fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
    routes:
      - {path_prefix: /, backend: app}
waf:
  policies: [{name: default, rules_dir: %q}]
backends:
  - name: app
    servers: [{address: "%s"}]
admin: {address: "127.0.0.1:0"%s}
`, rulesDir, backend, adminExtra)
}

// send makes a request as client and returns its status.
func send(t *testing.T, rawURL, client, ua string) int {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "text/html")
	req.Host = "shop.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The console lists the blocks, filters them, explains one, and the
// exclusion it offers, dropped into the rules folder and reloaded, lets
// that request through. It answers only with the admin token, and sends a
// CSP that allows no script.
func TestConsole_ListsFiltersAndItsExclusionWorks(t *testing.T) {
	backend, _ := challengeBackend(t)
	rules := t.TempDir()
	os.MkdirAll(filepath.Join(rules, "before-crs"), 0o755)
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("console-token"), 0o600)
	g, _, _, _ := runGatewayWith(t, consoleYAML(backend, rules, fmt.Sprintf(", token_file: %q", token)), Options{Log: zerolog.Nop()})
	web, admin := "http://"+g.Addrs("web")[0].String(), "http://"+g.AdminAddr().String()
	xss := web + "/search?q=" + url.QueryEscape("<script>alert(1)</script>")
	if s := send(t, xss, "198.51.100.7", "Mozilla/5.0"); s != 403 {
		t.Fatalf("XSS: %d", s)
	}
	if s := send(t, web+"/items?id="+url.QueryEscape("1' UNION SELECT password FROM users--"), "203.0.113.9", "Mozilla/5.0"); s != 403 {
		t.Fatalf("SQLi: %d", s)
	}
	if s := send(t, web+"/search?q=shoes", "198.51.100.7", "Mozilla/5.0"); s != 200 {
		t.Fatalf("benign: %d", s)
	}
	page := func(path string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", admin+path, nil)
		req.SetBasicAuth("admin", "console-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	rows := func(body string) int { return strings.Count(body, `<a href="/console/events/`) }
	status, hdr, body := page("/console")
	if status != 200 || rows(body) != 2 || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") ||
		strings.Contains(hdr.Get("Content-Security-Policy"), "script-src") {
		t.Fatalf("console: %d, %d events, CSP %q", status, rows(body), hdr.Get("Content-Security-Policy"))
	}
	for filter, want := range map[string]int{"client=198.51.100.7": 1, "path=/items": 1, "rule=SQL": 1, "rule=941100": 1, "route=web/routes[0]": 2, "since=1h": 2, "client=192.0.2.1": 0} {
		if _, _, body := page("/console?" + filter); rows(body) != want {
			t.Errorf("filter %s: %d events, want %d", filter, rows(body), want)
		}
	}
	if resp, err := http.Get(admin + "/console"); err != nil || resp.StatusCode != 401 {
		t.Errorf("the console without the token: %v %v", resp, err)
	}
	id := regexp.MustCompile(`/console/events/([^"]+)">GET shop.example/search`).FindStringSubmatch(body)
	if id == nil {
		t.Fatalf("no link to the XSS event in %s", body)
	}
	_, _, detail := page("/console/events/" + id[1])
	if !strings.Contains(detail, "941100") || !strings.Contains(detail, "ARGS:q") || !strings.Contains(detail, "ctl:ruleRemoveTargetById=941100;ARGS:q") {
		t.Fatalf("the event's explanation: %s", detail)
	}
	status, hdr, conf := page("/console/events/" + id[1] + "/exclusion.conf")
	if status != 200 || !strings.Contains(hdr.Get("Content-Disposition"), "attachment") || !strings.Contains(conf, "SecRule REQUEST_FILENAME") {
		t.Fatalf("download: %d %v %s", status, hdr, conf)
	}
	os.WriteFile(filepath.Join(rules, "before-crs", "console.conf"), []byte(conf), 0o600)
	req, _ := http.NewRequest("POST", admin+"/api/reload", nil)
	req.SetBasicAuth("admin", "console-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("reload: %v %v", resp, err)
	}
	if s := send(t, xss, "198.51.100.7", "Mozilla/5.0"); s != 200 {
		t.Errorf("the same request after the console's exclusion: %d, want 200", s)
	}
	if s := send(t, web+"/other?q="+url.QueryEscape("<script>alert(1)</script>"), "198.51.100.7", "Mozilla/5.0"); s != 403 {
		t.Errorf("the same attack on another path: %d, want 403 (the exclusion is scoped)", s)
	}
}

// Everything the console shows came from attackers: a blocked script, a
// path that closes a textarea, a User-Agent with quotes. Rendered in
// headless Chromium, none of it runs (the page would change its title),
// and the text shows as text.
func TestConsole_HostileEventsDoNotRunInChromium(t *testing.T) {
	backend, _ := challengeBackend(t)
	g, _, _, _ := runGatewayWith(t, consoleYAML(backend, t.TempDir(), ""), Options{Log: zerolog.Nop()})
	web, admin := "http://"+g.Addrs("web")[0].String(), "http://"+g.AdminAddr().String()
	payload := `<script>document.title='pwned'</script><img src=x onerror="document.title='pwned'">`
	send(t, web+"/search?q="+url.QueryEscape(payload), "198.51.100.7", `Mozilla/5.0 "'><script>document.title='pwned'</script>`)
	if s := send(t, web+"/x%3C/textarea%3E%3Cscript%3Edocument.title='pwned'%3C/script%3E?cmd=;cat%20/etc/passwd", "198.51.100.8", "curl/8"); s != 403 {
		t.Fatalf("the second hostile request: %d", s)
	}
	dom := chromium(t, admin+"/console", "--dump-dom")
	if strings.Contains(dom, "<title>pwned") || !strings.Contains(dom, "<title>sekisho security events</title>") {
		t.Fatalf("a hostile value ran on the console: %.500s", dom)
	}
	if !strings.Contains(dom, "&lt;script&gt;document.title='pwned'&lt;/script&gt;") && !strings.Contains(dom, "&lt;/textarea&gt;") {
		t.Errorf("the hostile values are not shown as text: %s", dom[strings.Index(dom, "<h2>Events"):])
	}
	id := regexp.MustCompile(`/console/events/([^"]+)"`).FindStringSubmatch(dom)
	if id == nil {
		t.Fatal("no event link")
	}
	dom = chromium(t, admin+"/console/events/"+id[1], "--dump-dom")
	if strings.Contains(dom, "<title>pwned") || !strings.Contains(dom, "<title>sekisho event") {
		t.Fatalf("a hostile value ran on the event page: %.500s", dom)
	}
	shot := filepath.Join(t.TempDir(), "console.png")
	chromium(t, admin+"/console", "--screenshot="+shot, "--window-size=1400,1000")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Errorf("no screenshot: %v", err)
	}
	if dst := os.Getenv("SEKISHO_CONSOLE_SCREENSHOT"); dst != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(dst, b, 0o644)
	}
}

// With Redis, any replica's console shows the fleet's events: a block on
// replica A is listed on replica B's console, with A named.
func TestConsole_ShowsTheFleet(t *testing.T) {
	backend, _ := challengeBackend(t)
	redisAddr := sharedCertsRedis(t)
	yaml := consoleYAML(backend, t.TempDir(), "") + fmt.Sprintf("redis: {addresses: [%q]}\n", redisAddr)
	a, _, _, _ := runGatewayWith(t, yaml, Options{Log: zerolog.Nop()})
	b, _, _, _ := runGatewayWith(t, yaml, Options{Log: zerolog.Nop()})
	if s := send(t, "http://"+a.Addrs("web")[0].String()+"/search?q="+url.QueryEscape("<script>alert(1)</script>"), "198.51.100.7", "Mozilla/5.0"); s != 403 {
		t.Fatalf("XSS on A: %d", s)
	}
	eventually(t, "A's block on B's console", func() bool {
		resp, err := http.Get("http://" + b.AdminAddr().String() + "/console?client=198.51.100.7")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Count(string(body), `<a href="/console/events/`) == 1
	})
}
