package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Traffic tests: what a user of the gateway sees for ordinary and hostile
// requests, balancing, failover, body limits, config validation and the
// access log. Every request goes over real sockets on 127.0.0.1.

// Realistic browser headers: CRS adds anomaly score to requests that lack
// User-Agent or Accept, so every request carries a current Chrome's.
const (
	trafficUA     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	trafficAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
	trafficLang   = "en-US,en;q=0.9,ja;q=0.8"
	// trafficHost is the Host the client asks for (CRS 920350 scores a numeric-IP Host).
	trafficHost = "localhost"
)

// trafficReq is one request a test sends. The browser headers are added
// unless header sets them.
type trafficReq struct {
	method string
	target string // path and query, exactly as sent
	header map[string]string
	body   []byte
	// unknownLength sends the body without Content-Length (chunked over HTTP/1.1).
	unknownLength bool
}

// trafficTransport is one way of reaching the gateway.
type trafficTransport struct {
	name   string
	client *http.Client
	base   string // scheme://host:port
	proto  string // what the response must say
}

// trafficTransports returns plain HTTP/1.1, HTTP/1.1 over TLS and HTTP/2
// over TLS to frontend "web" (bind 0 plain, bind 1 TLS).
func trafficTransports(t *testing.T, g *Gateway) []trafficTransport {
	t.Helper()
	h1, h2 := H1Client(), H2Client()
	t.Cleanup(h1.CloseIdleConnections)
	t.Cleanup(h2.CloseIdleConnections)
	return []trafficTransport{
		{"h1", h1, g.URL("http", "web#0"), "HTTP/1.1"},
		{"h1-tls", h1, g.URL("https", "web#1"), "HTTP/1.1"},
		{"h2-tls", h2, g.URL("https", "web#1"), "HTTP/2.0"},
	}
}

// newRequest builds r for base, with Host "localhost".
func (r trafficReq) newRequest(t *testing.T, ctx context.Context, base string) *http.Request {
	t.Helper()
	var body io.Reader = http.NoBody
	if r.body != nil {
		body = bytes.NewReader(r.body)
		if r.unknownLength {
			body = io.MultiReader(body) // hides the length from net/http
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.target, body)
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.RequestURI() != r.target {
		t.Fatalf("test bug: %q would be sent as %q", r.target, req.URL.RequestURI())
	}
	req.Host = trafficHost
	req.Header.Set("User-Agent", trafficUA)
	req.Header.Set("Accept", trafficAccept)
	req.Header.Set("Accept-Language", trafficLang)
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	return req
}

// send sends r and returns the response with its whole body.
func (r trafficReq) send(t *testing.T, c *http.Client, base string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(r.newRequest(t, context.Background(), base))
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading response: %v", r.method, r.target, err)
	}
	return resp, body
}

// trafficOnly returns the one request the backend received since it had
// seen `before`, failing unless there is exactly one.
func trafficOnly(t *testing.T, b *Backend, before int) Received {
	t.Helper()
	got := b.Requests()
	if len(got) != before+1 {
		t.Fatalf("backend %s received %d requests, want exactly 1", b.Name, len(got)-before)
	}
	return got[before]
}

// trafficMultipart encodes fields and one file as Chrome would.
func trafficMultipart(t *testing.T, fields [][2]string, fileField, fileName, fileType string, file []byte) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary("----WebKitFormBoundaryqX4cVb8ZkNw1RtLp"); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if fileField != "" {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, fileField, fileName))
		h.Set("Content-Type", fileType)
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(file)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// TestTraffic_BenignRequestsReachBackendByteExact: ordinary browser
// requests pass the WAF and reach the backend exactly as sent, over plain
// HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 over TLS.
func TestTraffic_BenignRequestsReachBackendByteExact(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})

	form := []byte("username=alice%40example.com&password=correct+horse+battery+staple&remember=on&next=%2Faccount")
	jsonBody := []byte(`{"item":"sku-1234","quantity":2,"gift":true,"address":{"city":"Kyoto","zip":"600-8216"},"note":"Leave it at the door please"}`)
	mpBody, mpType := trafficMultipart(t, [][2]string{{"display_name", "Alice Example"}, {"bio", "I like hiking and tea."}},
		"attachment", "notes.txt", "text/plain", []byte("shopping list\nmilk\neggs\n"))
	cookie := "session=7f3a9c2e4b1d; theme=dark; lang=en"
	// An upload large enough to span many reads, TLS records and HTTP/2
	// frames on the way (the default policy accepts 1 MiB).
	var csv bytes.Buffer
	csv.WriteString("sku,quantity,label\n")
	for i := 0; csv.Len() < 256<<10; i++ {
		fmt.Fprintf(&csv, "sku-%05d,%d,Item number %d in the spring catalogue\n", i, i%7+1, i)
	}
	largeBody, largeType := trafficMultipart(t, [][2]string{{"import", "catalogue"}}, "file", "catalogue.csv", "text/csv", csv.Bytes())

	cases := []trafficReq{
		{method: "GET", target: "/shop/search?q=running+shoes&size=42&sort=price%2Casc&brand=caf%C3%A9&page=2",
			header: map[string]string{"Cookie": cookie}},
		{method: "GET", target: "/files/My%20Documents/report-2024.pdf?download=1&v=20240601"},
		{method: "POST", target: "/account/login?return=%2Fhome", body: form,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}},
		{method: "POST", target: "/account/login", body: form, unknownLength: true,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{method: "POST", target: "/api/v1/orders?dry_run=false", body: jsonBody,
			header: map[string]string{"Content-Type": "application/json", "Cookie": cookie}},
		{method: "POST", target: "/api/v1/orders/17", body: jsonBody, unknownLength: true,
			header: map[string]string{"Content-Type": "application/json"}},
		{method: "POST", target: "/profile/upload", body: mpBody,
			header: map[string]string{"Content-Type": mpType, "Cookie": cookie}},
		{method: "POST", target: "/catalogue/import", body: largeBody,
			header: map[string]string{"Content-Type": largeType}},
		{method: "POST", target: "/catalogue/import", body: largeBody, unknownLength: true,
			header: map[string]string{"Content-Type": largeType}},
	}
	names := []string{"get-query", "get-file", "post-form", "post-form-chunked", "post-json", "post-json-chunked", "post-multipart",
		"post-upload-256k", "post-upload-256k-chunked"}

	for _, tr := range trafficTransports(t, g) {
		for i, rq := range cases {
			t.Run(tr.name+"/"+names[i], func(t *testing.T) {
				before := len(a.Requests())
				resp, body := rq.send(t, tr.client, tr.base)
				if resp.StatusCode != 200 || string(body) != "ok a" || resp.Proto != tr.proto {
					t.Fatalf("got %s %d %q, want %s 200 %q", resp.Proto, resp.StatusCode, body, tr.proto, "ok a")
				}
				got := trafficOnly(t, a, before)
				if got.Method != rq.method {
					t.Errorf("backend method %q, want %q", got.Method, rq.method)
				}
				if got.RequestURI != rq.target {
					t.Errorf("backend RequestURI %q, want %q", got.RequestURI, rq.target)
				}
				if !bytes.Equal(got.Body, rq.body) {
					t.Errorf("backend body differs:\n got %q\nwant %q", got.Body, rq.body)
				}
				if got.Host != trafficHost {
					t.Errorf("backend Host %q, want %q", got.Host, trafficHost)
				}
				want := map[string]string{
					"User-Agent":      trafficUA,
					"Accept":          trafficAccept,
					"Accept-Language": trafficLang,
					"Content-Type":    rq.header["Content-Type"],
					"Cookie":          rq.header["Cookie"],
					"X-Forwarded-For": "127.0.0.1",
					"X-Request-Id":    resp.Header.Get("X-Request-Id"),
				}
				if strings.HasPrefix(tr.base, "https") {
					want["X-Forwarded-Proto"] = "https"
				} else {
					want["X-Forwarded-Proto"] = "http"
				}
				for k, v := range want {
					if have := strings.Join(got.Header.Values(k), ", "); have != v {
						t.Errorf("backend header %s = %q, want %q", k, have, v)
					}
				}
				if rq.body != nil {
					if cl := got.Header.Get("Content-Length"); cl != strconv.Itoa(len(rq.body)) {
						t.Errorf("backend Content-Length %q, want %d", cl, len(rq.body))
					}
				}
				line := g.LogFor(resp.Header.Get("X-Request-Id"))
				if line["bytes_in"] != float64(len(rq.body)) || line["waf_action"] != "pass" {
					t.Errorf("log bytes_in %v waf_action %v, want %d pass", line["bytes_in"], line["waf_action"], len(rq.body))
				}
			})
		}
	}
}

// Attack payloads, one per class, and the CRS rule family that names it.
var trafficAttacks = []struct {
	class, payload string
	family         int // CRS rule id / 1000
	// headers are the request headers the payload is tried in: the ones
	// CRS inspects for this class at paranoia level 1.
	headers map[string]string
}{
	{"sqli", "1' UNION SELECT username, password FROM users--", 942, map[string]string{
		// 942100 (libinjection) reads Referer, User-Agent and cookies.
		"Referer":    "https://localhost/search?q=1' UNION SELECT username, password FROM users--",
		"User-Agent": "1' UNION SELECT username, password FROM users--",
		"Cookie":     "q=1' UNION SELECT username, password FROM users--",
	}},
	{"xss", "<script>alert(document.cookie)</script>", 941, map[string]string{
		// 941100 reads User-Agent, 941110/941160 every header.
		"User-Agent": "Mozilla/5.0 <script>alert(document.cookie)</script>",
		"Referer":    "https://localhost/<script>alert(document.cookie)</script>",
		"Cookie":     "q=<script>alert(document.cookie)</script>",
	}},
	{"rce", "; cat /etc/passwd", 932, map[string]string{
		// At paranoia level 1 CRS's command-injection rules read cookies
		// but not User-Agent or Referer (932161 and 932239 are PL2; the
		// PL1 932340 only catches argument-less commands). ";" separates
		// cookies, so the cookie carries the $(...) form of the injection.
		"Cookie": "q=$(cat /etc/passwd)",
	}},
	{"traversal", "../../../../etc/passwd", 930, map[string]string{
		// 930110 reads every header except Referer (which CRS exempts).
		"User-Agent": "Mozilla/5.0 ../../../../etc/passwd",
		"Cookie":     "q=../../../../etc/passwd",
	}},
}

// trafficAttack is one attack placed somewhere in a request.
type trafficAttack struct {
	name   string // class/location
	family int
	req    trafficReq
}

// trafficAttackMatrix places every attack in the query, an urlencoded
// field, a JSON field, a multipart field and the headers CRS inspects.
func trafficAttackMatrix(t *testing.T) []trafficAttack {
	var out []trafficAttack
	for _, at := range trafficAttacks {
		add := func(loc string, r trafficReq) {
			out = append(out, trafficAttack{at.class + "/" + loc, at.family, r})
		}
		add("query", trafficReq{method: "GET", target: "/search?page=1&q=" + url.QueryEscape(at.payload)})
		add("form", trafficReq{method: "POST", target: "/comments",
			body:   []byte("author=alice&comment=" + url.QueryEscape(at.payload)),
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
		add("json", trafficReq{method: "POST", target: "/api/comments",
			body:   []byte(fmt.Sprintf(`{"author":"alice","comment":%q}`, at.payload)),
			header: map[string]string{"Content-Type": "application/json"}})
		mp, mpType := trafficMultipart(t, [][2]string{{"author", "alice"}, {"comment", at.payload}}, "", "", "", nil)
		add("multipart", trafficReq{method: "POST", target: "/comments", body: mp,
			header: map[string]string{"Content-Type": mpType}})
		for _, h := range []string{"User-Agent", "Referer", "Cookie"} {
			if v, ok := at.headers[h]; ok {
				add("header-"+strings.ToLower(h), trafficReq{method: "GET", target: "/search?page=1",
					header: map[string]string{h: v}})
			}
		}
	}
	return out
}

// TestTraffic_AttacksBlocked: SQL injection, XSS, command injection and
// path traversal in the query, urlencoded, JSON and multipart bodies and
// in headers are refused with 403 over every transport, and never reach
// the backend. The error page names the response's request ID.
func TestTraffic_AttacksBlocked(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})
	attacks := trafficAttackMatrix(t)
	trs := trafficTransports(t, g)
	for _, tr := range trs {
		for _, at := range attacks {
			t.Run(tr.name+"/"+at.name, func(t *testing.T) {
				before := len(a.Requests())
				resp, body := at.req.send(t, tr.client, tr.base)
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("got %d, want 403; body %q", resp.StatusCode, body)
				}
				id := resp.Header.Get("X-Request-Id")
				if id == "" || !bytes.Contains(body, []byte(id)) {
					t.Errorf("403 page does not carry the response's X-Request-Id %q: %q", id, body)
				}
				if n := len(a.Requests()) - before; n != 0 {
					t.Errorf("backend received %d requests, want 0", n)
				}
				// The log says why.
				line := g.LogFor(id)
				if line["waf_action"] != "block" || line["status"] != float64(403) {
					t.Errorf("log waf_action %v status %v, want block 403", line["waf_action"], line["status"])
				}
				if !trafficHasFamily(line["waf_rules"], at.family) {
					t.Errorf("log waf_rules %v has no %dxxx rule", line["waf_rules"], at.family)
				}
			})
		}
	}
	if n := len(a.Requests()); n != 0 {
		t.Fatalf("backend received %d attack requests, want 0", n)
	}

	// Coraza keeps 1000 argument values per collection and drops the rest
	// unseen: an attack behind 1000 filler arguments must not slip through.
	// In the query string and urlencoded or JSON bodies such requests are
	// refused with 400 (rules 200004 for the query string, 200005 for the
	// body); Coraza's multipart parser keeps every value, so there CRS sees
	// the attack and blocks it (403, a 942xxx rule). 1000 values in all still pass.
	sqli := trafficAttacks[0].payload
	var fillForm, fillJSON strings.Builder
	var fillFields [][2]string
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&fillForm, "opt%d=on&", i)
		fmt.Fprintf(&fillJSON, `"opt%d":"on",`, i)
		fillFields = append(fillFields, [2]string{fmt.Sprintf("opt%d", i), "on"})
	}
	mp, mpType := trafficMultipart(t, append(fillFields, [2]string{"comment", sqli}), "", "", "", nil)
	formType := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, tr := range []trafficTransport{trs[0], trs[2]} {
		for _, tc := range []struct {
			name   string
			req    trafficReq
			status int
			rule   int // the first rule logged, or a rule family (942)
		}{
			{"query", trafficReq{method: "GET", target: "/search?" + fillForm.String() + "q=" + url.QueryEscape(sqli)}, 400, 200004},
			{"form", trafficReq{method: "POST", target: "/comments", header: formType,
				body: []byte(fillForm.String() + "comment=" + url.QueryEscape(sqli))}, 400, 200005},
			{"json", trafficReq{method: "POST", target: "/api/comments", header: map[string]string{"Content-Type": "application/json"},
				body: []byte(fmt.Sprintf(`{%s"comment":%q}`, fillJSON.String(), sqli))}, 400, 200005},
			{"multipart", trafficReq{method: "POST", target: "/comments", header: map[string]string{"Content-Type": mpType}, body: mp}, 403, 942},
		} {
			t.Run(tr.name+"/sqli-behind-1000-args/"+tc.name, func(t *testing.T) {
				before := len(a.Requests())
				resp, body := tc.req.send(t, tr.client, tr.base)
				if resp.StatusCode != tc.status {
					t.Fatalf("got %d, want %d; body %q", resp.StatusCode, tc.status, body)
				}
				if n := len(a.Requests()) - before; n != 0 {
					t.Fatalf("backend received %d requests, want 0", n)
				}
				id := resp.Header.Get("X-Request-Id")
				if id == "" || !bytes.Contains(body, []byte(id)) {
					t.Errorf("error page does not carry the response's X-Request-Id %q: %q", id, body)
				}
				line := g.LogFor(id)
				rules, _ := line["waf_rules"].([]any)
				ok := len(rules) > 0 && rules[0] == float64(tc.rule)
				if tc.rule < 1000 {
					ok = trafficHasFamily(line["waf_rules"], tc.rule)
				}
				if line["waf_action"] != "block" || !ok {
					t.Errorf("log waf_action %v waf_rules %v, want block and rule %d", line["waf_action"], line["waf_rules"], tc.rule)
				}
			})
		}
	}
	t.Run("h1/1000-args-pass", func(t *testing.T) {
		before := len(a.Requests())
		rq := trafficReq{method: "POST", target: "/preferences", header: formType,
			body: []byte(strings.TrimSuffix(fillForm.String(), "&"))}
		resp, body := rq.send(t, trs[0].client, trs[0].base)
		if resp.StatusCode != 200 {
			t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
		}
		if got := trafficOnly(t, a, before); !bytes.Equal(got.Body, rq.body) {
			t.Fatalf("backend body differs from the %d bytes sent", len(rq.body))
		}
	})
}

func trafficHasFamily(rules any, family int) bool {
	list, _ := rules.([]any)
	for _, r := range list {
		if id, ok := r.(float64); ok && int(id)/1000 == family {
			return true
		}
	}
	return false
}

// TestTraffic_DetectModePassesAndLogs: a policy in detect mode lets the
// same attacks through unchanged and logs each with waf_action "detect" and
// the matching CRS rule family.
func TestTraffic_DetectModePassesAndLogs(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr, "PolicyName": "watch", "Policy": "{name: watch, mode: detect}"})
	trs := trafficTransports(t, g)
	for _, tr := range []trafficTransport{trs[0], trs[2]} {
		for _, at := range trafficAttackMatrix(t) {
			t.Run(tr.name+"/"+at.name, func(t *testing.T) {
				before := len(a.Requests())
				resp, body := at.req.send(t, tr.client, tr.base)
				if resp.StatusCode != 200 || string(body) != "ok a" {
					t.Fatalf("got %d %q, want 200 from the backend", resp.StatusCode, body)
				}
				got := trafficOnly(t, a, before)
				if got.RequestURI != at.req.target || !bytes.Equal(got.Body, at.req.body) {
					t.Errorf("backend got %s %q body %q, want %q body %q", got.Method, got.RequestURI, got.Body, at.req.target, at.req.body)
				}
				for k, v := range at.req.header {
					if got.Header.Get(k) != v {
						t.Errorf("backend header %s = %q, want %q", k, got.Header.Get(k), v)
					}
				}
				id := resp.Header.Get("X-Request-Id")
				line := g.LogFor(id)
				if line["waf_action"] != "detect" || line["waf_policy"] != "watch" {
					t.Errorf("log waf_action %v waf_policy %v, want detect watch", line["waf_action"], line["waf_policy"])
				}
				if !trafficHasFamily(line["waf_rules"], at.family) {
					t.Errorf("log waf_rules %v has no %dxxx rule", line["waf_rules"], at.family)
				}
				if s, _ := line["waf_score"].(float64); s < 5 {
					t.Errorf("log waf_score %v, want at least CRS's blocking threshold 5", line["waf_score"])
				}
				if line["status"] != float64(200) {
					t.Errorf("log status %v, want 200", line["status"])
				}
			})
		}
	}
}

const trafficTwoServersConfig = `
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:0
    default_backend: app
backends:
  - name: app
    servers:
      - {name: a, address: "{{.A}}"}
      - {name: b, address: "{{.B}}"}
log:
  access: {{.AccessLog}}
`

// TestTraffic_RoundRobinSplitsEvenly: 100 sequential requests over two
// servers of equal weight split 50/50 (±5), counted at the servers.
func TestTraffic_RoundRobinSplitsEvenly(t *testing.T) {
	a, b := StartBackend(t, "a"), StartBackend(t, "b")
	g := StartGateway(t, trafficTwoServersConfig, ConfigData{"A": a.Addr, "B": b.Addr})
	c := H1Client()
	defer c.CloseIdleConnections()
	served := map[string]int{}
	for i := 0; i < 100; i++ {
		rq := trafficReq{method: "GET", target: fmt.Sprintf("/item/%d", i)}
		resp, body := rq.send(t, c, g.URL("http", "web"))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		served[string(body)]++
	}
	na, nb := len(a.Requests()), len(b.Requests())
	if na+nb != 100 || na < 45 || na > 55 || nb < 45 || nb > 55 {
		t.Fatalf("servers received a=%d b=%d, want 50/50 ±5 of 100", na, nb)
	}
	if served["ok a"] != na || served["ok b"] != nb {
		t.Fatalf("responses came from %v, servers counted a=%d b=%d", served, na, nb)
	}
}

const trafficFailoverConfig = `
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:0
    routes:
      - {path_prefix: /gone/, backend: gone}
    default_backend: app
backends:
  - name: app
    connect_timeout: 2s
    servers:
      - {name: dead, address: "{{.Dead}}"}
      - {name: live, address: "{{.Live}}"}
  - name: gone
    connect_timeout: 2s
    servers:
      - {name: dead1, address: "{{.Dead1}}"}
      - {name: dead2, address: "{{.Dead2}}"}
log:
  access: {{.AccessLog}}
`

// TestTraffic_DeadServerFailover: a refusing server is skipped without a
// single failed request, and the access log shows the retries; a backend
// whose servers are all dead answers 503.
func TestTraffic_DeadServerFailover(t *testing.T) {
	live := StartBackend(t, "live")
	g := StartGateway(t, trafficFailoverConfig, ConfigData{
		"Dead": DeadAddr(t), "Live": live.Addr, "Dead1": DeadAddr(t), "Dead2": DeadAddr(t)})
	c := H1Client()
	defer c.CloseIdleConnections()
	base := g.URL("http", "web")

	t.Run("one dead of two", func(t *testing.T) {
		// Every third request carries a body: a retry must send it whole.
		var ids []string
		var sent []trafficReq
		for i := 0; i < 50; i++ {
			rq := trafficReq{method: "GET", target: fmt.Sprintf("/page/%d", i)}
			if i%3 == 0 {
				rq = trafficReq{method: "POST", target: fmt.Sprintf("/cart/%d", i),
					body:   []byte(fmt.Sprintf("item=sku-%d&quantity=%d", i, i%5+1)),
					header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}
			}
			resp, body := rq.send(t, c, base)
			if resp.StatusCode != 200 || string(body) != "ok live" {
				t.Fatalf("request %d: got %d %q, want 200 from live", i, resp.StatusCode, body)
			}
			ids = append(ids, resp.Header.Get("X-Request-Id"))
			sent = append(sent, rq)
		}
		got := live.Requests()
		if len(got) != 50 {
			t.Fatalf("live server received %d requests, want 50", len(got))
		}
		for i, rq := range sent {
			if got[i].Method != rq.method || got[i].RequestURI != rq.target || !bytes.Equal(got[i].Body, rq.body) {
				t.Errorf("live server's request %d: %s %s %q, want %s %s %q", i, got[i].Method, got[i].RequestURI, got[i].Body, rq.method, rq.target, rq.body)
			}
		}
		retried := 0
		for _, id := range ids {
			line := g.LogFor(id)
			if line["server"] != "live" || line["status"] != float64(200) {
				t.Errorf("log for %s: server %v status %v, want live 200", id, line["server"], line["status"])
			}
			if r, ok := line["retries"].(float64); ok && r >= 1 {
				retried++
			}
		}
		if retried == 0 {
			t.Fatalf("no access log line shows a retry, though server dead takes half the picks")
		}
		t.Logf("%d of 50 requests were retried past the dead server", retried)
	})

	t.Run("all dead", func(t *testing.T) {
		rq := trafficReq{method: "GET", target: "/gone/index.html"}
		resp, body := rq.send(t, c, base)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("got %d %q, want 503", resp.StatusCode, body)
		}
		id := resp.Header.Get("X-Request-Id")
		if id == "" || !bytes.Contains(body, []byte(id)) {
			t.Errorf("503 page does not carry the response's X-Request-Id %q: %q", id, body)
		}
		line := g.LogFor(id)
		if line["status"] != float64(503) || line["backend"] != "gone" || line["error"] == nil {
			t.Errorf("log status %v backend %v error %v, want 503 gone and an error", line["status"], line["backend"], line["error"])
		}
		if r, _ := line["retries"].(float64); r != 1 {
			t.Errorf("log retries %v, want 1 (both servers tried)", line["retries"])
		}
	})
}

// trafficFormOfSize is a benign urlencoded body of exactly n bytes.
func trafficFormOfSize(n int) []byte {
	return []byte("message=" + strings.Repeat("a", n-len("message=")))
}

// trafficRawChunked sends a chunked POST on a fresh connection and reads the response.
func trafficRawChunked(t *testing.T, addr string, body []byte) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST /feedback HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: %s\r\nAccept-Language: %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
		trafficHost, trafficUA, trafficAccept, trafficLang)
	for rest := body; len(rest) > 0; {
		n := min(300, len(rest))
		fmt.Fprintf(&req, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	req.WriteString("0\r\n\r\n")
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return resp, rb
}

// TestTraffic_BodyLimit: with request_body_limit 1024, a larger body is
// refused with 413 before it reaches the backend, whether it announces its
// length or comes chunked (HTTP/1.1) or unannounced (HTTP/2); a body of
// exactly 1024 bytes passes whole.
func TestTraffic_BodyLimit(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr, "PolicyName": "small", "Policy": "{name: small, request_body_limit: 1024}"})
	h1, h2 := H1Client(), H2Client()
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	for _, tc := range []struct {
		name string
		size int
		// how: "length" (Content-Length), "chunked" (raw HTTP/1.1), "h2-unknown" (HTTP/2, no length)
		how  string
		want int
	}{
		{"content-length over", 1025, "length", 413},
		{"content-length far over", 64 << 10, "length", 413},
		{"content-length exact", 1024, "length", 200},
		{"chunked over", 1025, "chunked", 413},
		{"chunked far over", 64 << 10, "chunked", 413},
		{"chunked exact", 1024, "chunked", 200},
		{"h2 unknown length over", 1025, "h2-unknown", 413},
		{"h2 unknown length exact", 1024, "h2-unknown", 200},
		{"h2 content-length over", 1025, "h2-length", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := trafficFormOfSize(tc.size)
			before := len(a.Requests())
			var resp *http.Response
			var rb []byte
			switch tc.how {
			case "length":
				resp, rb = trafficReq{method: "POST", target: "/feedback", body: body, header: form}.send(t, h1, g.URL("http", "web#0"))
			case "chunked":
				resp, rb = trafficRawChunked(t, g.Addrs["web#0"], body)
			case "h2-unknown":
				resp, rb = trafficReq{method: "POST", target: "/feedback", body: body, header: form, unknownLength: true}.send(t, h2, g.URL("https", "web#1"))
			case "h2-length":
				resp, rb = trafficReq{method: "POST", target: "/feedback", body: body, header: form}.send(t, h2, g.URL("https", "web#1"))
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d %q, want %d", resp.StatusCode, rb, tc.want)
			}
			if tc.want == 413 {
				if n := len(a.Requests()) - before; n != 0 {
					t.Fatalf("backend received %d requests, want 0", n)
				}
				id := resp.Header.Get("X-Request-Id")
				if id == "" || !bytes.Contains(rb, []byte(id)) {
					t.Errorf("413 page does not carry the response's X-Request-Id %q: %q", id, rb)
				}
				if line := g.LogFor(id); line["status"] != float64(413) || line["waf_action"] != "block" {
					t.Errorf("log status %v waf_action %v, want 413 block", line["status"], line["waf_action"])
				}
				return
			}
			got := trafficOnly(t, a, before)
			if !bytes.Equal(got.Body, body) {
				t.Fatalf("backend got %d bytes, want the %d sent, byte-exact", len(got.Body), len(body))
			}
		})
	}
}

// trafficValidConfig is a complete config; each misspelling case below
// breaks one key of it.
const trafficValidConfig = `# sekisho test config
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:0
      - address: 127.0.0.1:0
        tls: true
    tls:
      self_signed: [localhost]
    routes:
      - host: localhost
        path_prefix: /api/
        backend: api
        waf_policy: strict
    default_backend: app
    limits:
      read_timeout: 30s
backends:
  - name: app
    servers:
      - {name: a, address: "127.0.0.1:18080"}
      - name: b
        address: 127.0.0.1:18081
        weight: 2
  - name: api
    connect_timeout: 2s
    servers:
      - {name: c, address: "127.0.0.1:18082"}
waf:
  policies:
    - name: strict
      mode: block
      paranoia_level: 2
      request_body_limit: 65536
log:
  level: info
  access: stdout
`

// TestTraffic_ValidateCommand: `sekisho validate` exits 0 on a good file
// and, on a file with a misspelled key (or a wrong value), exits non-zero
// printing FILE:LINE: key.path: message at the line of the mistake.
func TestTraffic_ValidateCommand(t *testing.T) {
	dir := t.TempDir()
	run := func(t *testing.T, content string) (int, string, string) {
		t.Helper()
		path := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_").Replace(t.Name())+".yaml")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "validate", "-c", path)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, path, stdout.String() + stderr.String()
	}

	t.Run("good file", func(t *testing.T) {
		code, path, out := run(t, trafficValidConfig)
		if code != 0 || strings.TrimSpace(out) != path+": ok" {
			t.Fatalf("exit %d, output %q; want 0 and %q", code, out, path+": ok")
		}
	})

	for _, tc := range []struct {
		name     string
		old, new string // the one-line edit (old must be unique in the file)
		path     string // the key path the error names
		msg      string // part of the message
	}{
		{"top-level key", "\nbackends:\n", "\nbackend:\n", "backend", `unknown key "backend"`},
		{"frontend key", "    default_backend: app\n", "    default_bakend: app\n", "frontends[0].default_bakend", `unknown key "default_bakend"`},
		{"bind key", "        tls: true\n", "        tsl: true\n", "frontends[0].bind[1].tsl", `unknown key "tsl"`},
		{"route key", "        path_prefix: /api/\n", "        path_prefx: /api/\n", "frontends[0].routes[0].path_prefx", `unknown key "path_prefx"`},
		{"limits key", "      read_timeout: 30s\n", "      read_timout: 30s\n", "frontends[0].limits.read_timout", `unknown key "read_timout"`},
		{"flow-style server key", `{name: a, address: "127.0.0.1:18080"}`, `{name: a, adress: "127.0.0.1:18080"}`, "backends[0].servers[0].adress", `unknown key "adress"`},
		{"block-style server key", "        weight: 2\n", "        wieght: 2\n", "backends[0].servers[1].wieght", `unknown key "wieght"`},
		{"waf policy key", "      request_body_limit: 65536\n", "      request_body_limt: 65536\n", "waf.policies[0].request_body_limt", `unknown key "request_body_limt"`},
		{"log key", "  level: info\n", "  levle: info\n", "log.levle", `unknown key "levle"`},
		{"unknown backend", "    default_backend: app\n", "    default_backend: ap\n", "frontends[0].default_backend", `unknown backend "ap"`},
		{"bad mode", "      mode: block\n", "      mode: blok\n", "waf.policies[0].mode", `"blok"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(trafficValidConfig, tc.old) != 1 {
				t.Fatalf("test bug: %q is not unique in the config", tc.old)
			}
			i := strings.Index(trafficValidConfig, tc.old)
			edited := trafficValidConfig[:i] + tc.new + trafficValidConfig[i+len(tc.old):]
			// The line of the edit (skipping the leading newline of old, if any).
			line := strings.Count(trafficValidConfig[:i+len(tc.old)-len(strings.TrimLeft(tc.old, "\n"))], "\n") + 1
			code, path, out := run(t, edited)
			if code == 0 {
				t.Fatalf("exit 0 on a bad file; output %q", out)
			}
			want := fmt.Sprintf("%s:%d: %s: ", path, line, tc.path)
			first, _, _ := strings.Cut(out, "\n")
			if !strings.HasPrefix(first, want) || !strings.Contains(first, tc.msg) {
				t.Fatalf("output %q\nwant a first line starting %q and containing %q", out, want, tc.msg)
			}
			if re := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+: \S+: .+$`); !re.MatchString(first) {
				t.Fatalf("%q is not FILE:LINE: key.path: message", first)
			}
		})
	}
}

// TestTraffic_AccessLogFieldsOverTLS: the access log line of a proxied
// request over TLS (HTTP/1.1 and HTTP/2) carries every field with a value
// that matches what happened.
func TestTraffic_AccessLogFieldsOverTLS(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})
	form := []byte("first_name=Alice&last_name=Example&newsletter=yes&comment=Looking+forward+to+it")
	trs := trafficTransports(t, g)
	first := true // the first request makes the gateway's first connection to the server
	for _, tr := range []trafficTransport{trs[1], trs[2]} {
		for _, rq := range []trafficReq{
			{method: "GET", target: "/account/profile?tab=settings&lang=en"},
			{method: "POST", target: "/account/profile?tab=settings", body: form,
				header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		} {
			t.Run(tr.name+"/"+rq.method, func(t *testing.T) {
				var local net.Addr
				trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { local = ci.Conn.LocalAddr() }}
				start := time.Now()
				req := rq.newRequest(t, httptrace.WithClientTrace(context.Background(), trace), tr.base)
				resp, err := tr.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Proto != tr.proto || resp.TLS == nil {
					t.Fatalf("got %s %d %q over TLS %v", resp.Proto, resp.StatusCode, body, resp.TLS != nil)
				}
				if local == nil {
					t.Fatal("no connection traced")
				}
				id := resp.Header.Get("X-Request-Id")
				line := g.LogFor(id)
				_, portStr, _ := net.SplitHostPort(local.String())
				port, _ := strconv.Atoi(portStr)
				path, query, _ := strings.Cut(rq.target, "?")

				for _, f := range []string{"time", "request_id", "client_ip", "client_port", "frontend", "backend", "server",
					"method", "host", "path", "query", "protocol", "status", "bytes_in", "bytes_out", "time_read_ms", "time_waf_ms",
					"time_connect_ms", "time_response_ms", "time_total_ms", "tls_version", "tls_cipher", "waf_policy",
					"waf_action", "waf_rules", "waf_score", "user_agent"} {
					if _, ok := line[f]; !ok {
						t.Errorf("field %q missing from %v", f, line)
					}
				}
				for f, want := range map[string]any{
					"request_id":  id,
					"client_ip":   "127.0.0.1",
					"client_port": float64(port),
					"frontend":    "web",
					"backend":     "app",
					"server":      "a",
					"method":      rq.method,
					"host":        trafficHost,
					"path":        path,
					"query":       query,
					"protocol":    tr.proto,
					"status":      float64(200),
					"bytes_in":    float64(len(rq.body)),
					"bytes_out":   float64(len(body)),
					"tls_version": "TLSv1.3",
					"tls_cipher":  tls.CipherSuiteName(resp.TLS.CipherSuite),
					"waf_policy":  "default",
					"waf_action":  "pass",
					"waf_score":   float64(0),
					"user_agent":  trafficUA,
				} {
					if line[f] != want {
						t.Errorf("%s = %#v, want %#v", f, line[f], want)
					}
				}
				if resp.TLS.Version != tls.VersionTLS13 {
					t.Errorf("client negotiated TLS %x, want 1.3", resp.TLS.Version)
				}
				if rules, ok := line["waf_rules"].([]any); !ok || len(rules) != 0 {
					t.Errorf("waf_rules = %#v, want an empty list", line["waf_rules"])
				}
				ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"]))
				if err != nil || ts.Before(start.Truncate(time.Second)) || ts.After(time.Now().Add(time.Second)) {
					t.Errorf("time = %v (%v), want the request's time around %v", line["time"], err, start)
				}
				times := map[string]float64{}
				for _, f := range []string{"time_read_ms", "time_waf_ms", "time_connect_ms", "time_response_ms", "time_total_ms"} {
					v, ok := line[f].(float64)
					if !ok || v < 0 || v > 10000 {
						t.Errorf("%s = %#v, want a duration in ms", f, line[f])
					}
					times[f] = v
				}
				if times["time_total_ms"] <= 0 || times["time_waf_ms"] <= 0 || times["time_response_ms"] <= 0 {
					t.Errorf("total, WAF and response times must be positive: %v", times)
				}
				if first && times["time_connect_ms"] <= 0 {
					t.Errorf("time_connect_ms = %v on the request that opened the connection to the server", times["time_connect_ms"])
				}
				first = false
				if rq.body != nil && times["time_read_ms"] <= 0 {
					t.Errorf("time_read_ms = %v for a request with a body", times["time_read_ms"])
				}
				if sum := times["time_read_ms"] + times["time_waf_ms"] + times["time_connect_ms"] + times["time_response_ms"]; sum > times["time_total_ms"]+0.01 {
					t.Errorf("the parts (%v ms) exceed the total: %v", sum, times)
				}
				if elapsed := float64(time.Since(start).Microseconds()) / 1000; times["time_total_ms"] > elapsed {
					t.Errorf("time_total_ms %v exceeds what the client waited, %v ms", times["time_total_ms"], elapsed)
				}
			})
		}
	}
}
