package waf_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
)

// Leaks from CRS's RESPONSE-95x families, each with the rule that names it.
var responseLeaks = []struct {
	name, body string
	rule       int
}{
	{"mysql error", "<p>You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1</p>", 951230},
	{"java stack trace", "<pre>java.lang.NullPointerException\n\tat com.example.Foo.bar(Foo.java:42)\n\tat java.lang.Thread.run(Thread.java:748)</pre>", 952110},
	{"php error", "<b>Fatal error</b>:  Uncaught Error: Call to undefined function foo() in /var/www/html/index.php:3", 953100},
	{"directory listing", "<html><head><title>Index of /backup</title></head><body><h1>Index of /backup</h1><a href=\"?C=N;O=D\">Name</a> <a href=\"db.sql\">db.sql</a></body></html>", 950130},
}

// respond runs a GET through the policy and answers it with a 200 of
// contentType carrying body.
func respond(t *testing.T, e *waf.Engine, contentType, body string) *waf.Verdict {
	t.Helper()
	tx := e.NewTx(context.Background(), "t")
	defer tx.Close()
	r := httptest.NewRequest("GET", "/page", nil)
	if v := tx.InspectRequest(r, "/page", waf.Conn{ClientIP: "192.0.2.1"}); v.Blocked() {
		t.Fatalf("request blocked: %+v", v)
	}
	h := http.Header{"Content-Type": {contentType}}
	if v := tx.InspectResponseHeaders(200, "HTTP/1.1", h); v != nil && v.Blocked() {
		t.Fatalf("response headers blocked: %+v", v)
	}
	var b []byte
	if tx.WantsResponseBody("GET", 200, h) {
		b = []byte(body)
	}
	return tx.InspectResponseBody(b)
}

func TestInspectResponseBody_Leaks(t *testing.T) {
	block := engine(t, waf.Config{Name: "default"})
	detect := engine(t, waf.Config{Name: "detect", Mode: waf.ModeDetect})
	for _, l := range responseLeaks {
		page := "<html><body><h1>Orders</h1>" + l.body + "</body></html>"
		v := respond(t, block, "text/html; charset=utf-8", page)
		if v == nil || !v.Blocked() || !slices.Contains(v.Rules, l.rule) {
			t.Errorf("%s: verdict %+v, want a block naming %d", l.name, v, l.rule)
		}
		v = respond(t, detect, "text/html", page)
		if v == nil || v.Action != waf.ActionDetect || !slices.Contains(v.Rules, l.rule) {
			t.Errorf("%s in detect mode: verdict %+v, want detect naming %d", l.name, v, l.rule)
		}
		// The same bytes as an image are not held, so not inspected.
		if v := respond(t, block, "image/png", page); v == nil || v.Blocked() {
			t.Errorf("%s as image/png: verdict %+v, want a pass", l.name, v)
		}
	}
	clean := "<html><body><h1>Orders</h1><p>Your SQL course starts Monday; Java and PHP follow.</p></body></html>"
	if v := respond(t, block, "text/html", clean); v == nil || v.Action != waf.ActionPass {
		t.Errorf("clean page: verdict %+v, want pass", v)
	}
}

// inspect_response_body: false (or inspect_response: false) runs no body phase.
func TestInspectResponseBody_Off(t *testing.T) {
	no := false
	for _, c := range []waf.Config{
		{Name: "body-off", InspectResponseBody: &no},
		{Name: "resp-off", InspectResponse: &no},
	} {
		e, err := waf.New(c, rules.FS())
		if err != nil {
			t.Fatal(err)
		}
		if v := respond(t, e, "text/html", responseLeaks[0].body); v != nil {
			t.Errorf("%s: verdict %+v, want none", c.Name, v)
		}
	}
}

func TestWantsResponseBody(t *testing.T) {
	e := engine(t, waf.Config{Name: "default"})
	tx := e.NewTx(context.Background(), "t")
	defer tx.Close()
	for _, tc := range []struct {
		method string
		status int
		h      http.Header
		want   bool
	}{
		{"GET", 200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, true},
		{"GET", 500, http.Header{"Content-Type": {"TEXT/PLAIN"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"application/json"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"application/problem+json"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"application/atom+xml"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"application/javascript"}}, true},
		{"GET", 200, http.Header{}, true},
		{"GET", 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"deflate"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"zstd"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"br"}}, true},
		{"GET", 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip, br"}}, false},
		{"GET", 200, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"compress"}}, false},
		{"GET", 200, http.Header{"Content-Type": {"text/event-stream"}}, false},
		{"GET", 200, http.Header{"Content-Type": {"text/plain"}, "X-Accel-Buffering": {"no"}}, false},
		{"GET", 200, http.Header{"Content-Type": {"application/octet-stream"}}, false},
		{"GET", 200, http.Header{"Content-Type": {"image/png"}}, false},
		{"GET", 200, http.Header{"Content-Type": {"video/mp4"}}, false},
		{"GET", 101, http.Header{"Content-Type": {"text/plain"}}, false},
		{"GET", 204, http.Header{"Content-Type": {"text/plain"}}, false},
		{"GET", 304, http.Header{"Content-Type": {"text/plain"}}, false},
		{"HEAD", 200, http.Header{"Content-Type": {"text/plain"}}, false},
	} {
		if got := tx.WantsResponseBody(tc.method, tc.status, tc.h); got != tc.want {
			t.Errorf("%s %d %v: %v, want %v", tc.method, tc.status, tc.h, got, tc.want)
		}
	}
}

func TestResponseBodyConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		c   waf.Config
		key string
	}{
		{waf.Config{Name: "a", ResponseBodyLimit: -1}, "response_body_limit"},
		{waf.Config{Name: "a", ResponseBodyLimit: waf.MaxResponseBodyLimit + 1}, "response_body_limit"},
		{waf.Config{Name: "a", ResponseBodyTypes: []string{"text/html", "html"}}, "response_body_types[1]"},
		{waf.Config{Name: "a", ResponseBodyTypes: []string{"+"}}, "response_body_types[0]"},
		{waf.Config{Name: "a", ResponseBodyTypes: []string{"*/json"}}, "response_body_types[0]"},
	} {
		tc.c.SetDefaults()
		err := tc.c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
			t.Errorf("%+v: %v, want an error naming %s", tc.c, err, tc.key)
		}
	}
	ok := waf.Config{Name: "a", ResponseBodyTypes: []string{"text/*", "application/json", "+xml"}}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}
}

// A compressed response's leak is found in the text the gateway decoded:
// CRS's own skip of compressed bodies (it would see them compressed) is off.
func TestInspectResponseBody_DecodedCompressed(t *testing.T) {
	e := engine(t, waf.Config{Name: "default"})
	for _, enc := range []string{"gzip", "deflate"} {
		tx := e.NewTx(context.Background(), "t")
		tx.InspectRequest(httptest.NewRequest("GET", "/", nil), "/", waf.Conn{ClientIP: "192.0.2.1"})
		h := http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {enc}}
		tx.InspectResponseHeaders(200, "HTTP/1.1", h)
		v := tx.InspectResponseBody([]byte(responseLeaks[0].body))
		tx.Close()
		if v == nil || !v.Blocked() || !slices.Contains(v.Rules, responseLeaks[0].rule) {
			t.Errorf("%s: verdict %+v, want a block naming %d", enc, v, responseLeaks[0].rule)
		}
	}
}

// The exclusion a response block suggests, pasted into the policy, lets
// that response through.
func TestInspectResponseBody_ExclusionWorks(t *testing.T) {
	v := respond(t, engine(t, waf.Config{Name: "default"}), "text/html", responseLeaks[0].body)
	if v == nil || !v.Blocked() || len(v.Matches) == 0 || v.Matches[0].Exclusion == "" {
		t.Fatalf("verdict %+v, want a block with an exclusion", v)
	}
	e, err := waf.New(waf.Config{Name: "excluded", Directives: v.Matches[0].Exclusion}, rules.FS())
	if err != nil {
		t.Fatalf("%s: %v", v.Matches[0].Exclusion, err)
	}
	if v := respond(t, e, "text/html", responseLeaks[0].body); v == nil || v.Blocked() {
		t.Errorf("with %s: verdict %+v, want a pass", v.Matches[0].Exclusion, v)
	}
}

// TestInspectResponseBody_GateSameVerdicts: with the response gate (rule
// 200033) the verdict on every leaking page, and on a page that leaks
// nothing, is the one without it, at paranoia level 1 and 4.
func TestInspectResponseBody_GateSameVerdicts(t *testing.T) {
	pages := []string{"<html><body><p>The quick brown fox jumps over the lazy dog.</p></body></html>"}
	for _, l := range responseLeaks {
		pages = append(pages, "<html><body><h1>Orders</h1>"+l.body+"</body></html>")
	}
	for _, pl := range []int{1, 4} {
		on := engine(t, waf.Config{Name: fmt.Sprintf("gate-pl%d", pl), ParanoiaLevel: pl})
		off := engine(t, waf.Config{Name: fmt.Sprintf("nogate-pl%d", pl), ParanoiaLevel: pl, RulesOff: []string{"200033"}})
		for i, page := range pages {
			got, want := respond(t, on, "text/html", page), respond(t, off, "text/html", page)
			if (got == nil) != (want == nil) || got != nil && (got.Action != want.Action || !slices.Equal(got.Rules, want.Rules)) {
				t.Errorf("PL%d page %d: with the gate %+v, without %+v", pl, i, got, want)
			}
		}
	}
}
