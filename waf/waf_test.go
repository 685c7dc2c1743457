package waf_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
)

var (
	enginesMu sync.Mutex
	engines   = map[string]*waf.Engine{}
)

// engine compiles a policy once per test binary: CRS takes a second or so.
func engine(t testing.TB, c waf.Config) *waf.Engine {
	t.Helper()
	key := c.Name
	enginesMu.Lock()
	defer enginesMu.Unlock()
	if e, ok := engines[key]; ok {
		return e
	}
	e, err := waf.New(c, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	engines[key] = e
	return e
}

func inspect(t testing.TB, e *waf.Engine, r *http.Request) (*waf.Verdict, string) {
	t.Helper()
	tx := e.NewTx(context.Background(), "test")
	defer tx.Close()
	v := tx.InspectRequest(r, r.URL.RequestURI(), waf.Conn{ClientIP: "192.0.2.10", ClientPort: 40000, ServerIP: "127.0.0.1", ServerPort: 443})
	if v.Blocked() {
		return v, ""
	}
	body, _ := tx.Body()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return v, string(b)
}

func form(values url.Values) string { return values.Encode() }

// chunked makes r look like a request whose length is not declared.
func chunked(r *http.Request) *http.Request {
	r.ContentLength = -1
	r.Header.Del("Content-Length")
	r.TransferEncoding = []string{"chunked"}
	return r
}

// multipartFile is a form with one short field and a file of n bytes.
func multipartFile(n int) string {
	return "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
		strings.Repeat("x", n) + "\r\n--XyZ--\r\n"
}

func TestEngine_Verdicts(t *testing.T) {
	block := waf.Config{Name: "block"}
	detect := waf.Config{Name: "detect", Mode: waf.ModeDetect}
	off := waf.Config{Name: "off", Mode: waf.ModeOff}
	small := waf.Config{Name: "small", RequestBodyLimit: 100}
	partial := waf.Config{Name: "partial", RequestBodyLimit: 100, RequestBodyLimitAction: waf.LimitProcessPartial}
	budget := waf.Config{Name: "budget", RequestBodyLimit: 64 << 10, RequestBodyNoFilesLimit: 1024}

	get := func(target string) *http.Request {
		r := httptest.NewRequest("GET", target, nil)
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")
		r.Header.Set("Accept", "text/html")
		return r
	}
	post := func(ctype, body string) *http.Request {
		r := httptest.NewRequest("POST", "/submit", strings.NewReader(body))
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")
		r.Header.Set("Accept", "text/html")
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Content-Length", strconv.Itoa(len(body))) // as net/http's server keeps it
		return r
	}
	sqli := "1' OR '1'='1' --"
	// 1000 harmless values, then the attack: Coraza keeps only the first 1000.
	padded := strings.Repeat("opt=on&", 1000) + "q=" + url.QueryEscape(sqli)
	cases := []struct {
		name     string
		policy   waf.Config
		req      *http.Request
		action   waf.Action
		status   int
		wantBody string
	}{
		{"benign GET passes", block, get("/search?q=shoes&page=2"), waf.ActionPass, 0, ""},
		{"SQLi in query blocks", block, get("/search?q=" + url.QueryEscape(sqli)), waf.ActionBlock, 403, ""},
		{"XSS in query blocks", block, get("/search?q=" + url.QueryEscape("<script>alert(1)</script>")), waf.ActionBlock, 403, ""},
		{"SQLi in query detected, passed", detect, get("/search?q=" + url.QueryEscape(sqli)), waf.ActionDetect, 0, ""},
		{"off never inspects", off, get("/search?q=" + url.QueryEscape(sqli)), waf.ActionOff, 0, ""},
		{"benign form passes byte-exact", block, post("application/x-www-form-urlencoded", "name=Ann&msg=hello+there"), waf.ActionPass, 0, "name=Ann&msg=hello+there"},
		{"SQLi in form blocks", block, post("application/x-www-form-urlencoded", form(url.Values{"c": {sqli}})), waf.ActionBlock, 403, ""},
		{"RCE in JSON blocks", block, post("application/json", `{"cmd":"; cat /etc/passwd"}`), waf.ActionBlock, 403, ""},
		{"SQLi in XML blocks", block, post("application/xml", "<order><note>"+sqli+"</note></order>"), waf.ActionBlock, 403, ""},
		{"benign XML passes byte-exact", block, post("application/xml", "<order><note>thanks</note></order>"), waf.ActionPass, 0, "<order><note>thanks</note></order>"},
		{"XSS in multipart field blocks", block, post("multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\n<script>alert(1)</script>\r\n--XyZ--\r\n"), waf.ActionBlock, 403, ""},
		{"attack past 1000 query arguments is refused", block, get("/search?" + padded), waf.ActionBlock, 400, ""},
		{"attack past 1000 form arguments is refused", block, post("application/x-www-form-urlencoded", padded), waf.ActionBlock, 400, ""},
		{"form past the inspection budget is refused", budget, post("application/x-www-form-urlencoded", "a="+strings.Repeat("b", 1100)), waf.ActionBlock, 413, ""},
		{"chunked form past the inspection budget is refused", budget, chunked(post("application/x-www-form-urlencoded", "a="+strings.Repeat("b", 1100))), waf.ActionBlock, 413, ""},
		{"file upload larger than the budget passes", budget, post("multipart/form-data; boundary=XyZ", multipartFile(8<<10)), waf.ActionPass, 0, multipartFile(8 << 10)},
		{"multipart text field past the budget is refused", budget, post("multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\n"+strings.Repeat("b", 1100)+"\r\n--XyZ--\r\n"), waf.ActionBlock, 413, ""},
		{"malformed JSON is refused", block, post("application/json", `{"a":`), waf.ActionBlock, 400, ""},
		{"body over limit is refused", small, post("application/x-www-form-urlencoded", "a="+strings.Repeat("a", 99)), waf.ActionBlock, 413, ""},
		{"body at the limit passes", small, post("application/x-www-form-urlencoded", "a="+strings.Repeat("a", 98)), waf.ActionPass, 0, "a=" + strings.Repeat("a", 98)},
		{"partial inspects the first part and passes the whole", partial, post("application/x-www-form-urlencoded", "a="+strings.Repeat("a", 148)), waf.ActionPass, 0, "a=" + strings.Repeat("a", 148)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, body := inspect(t, engine(t, tc.policy), tc.req)
			if v.Action != tc.action || v.Status != tc.status {
				t.Fatalf("verdict = %s %d (rules %v, score %d), want %s %d", v.Action, v.Status, v.Rules, v.Score, tc.action, tc.status)
			}
			if tc.wantBody != "" && body != tc.wantBody {
				t.Fatalf("forwarded body = %q, want %q", body, tc.wantBody)
			}
			if v.Action == waf.ActionBlock && v.Status == 403 && (len(v.Rules) == 0 || v.Score < 5) {
				t.Fatalf("block without rules or score: %+v", v)
			}
		})
	}
}
