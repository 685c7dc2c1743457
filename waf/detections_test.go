package waf

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/sekisho/sekisho/rules"
)

// sekisho's own detections (rules/sekisho/detections.conf): each stops the
// syntax of its class in a query argument and names its rule; values of a
// look-alike shape that a person writes pass.
func TestDetections(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	query := func(v string) *http.Request {
		return httptest.NewRequest("GET", "/search?q="+url.QueryEscape(v), nil)
	}
	for _, c := range []struct {
		rule  int
		block []string
		pass  []string
	}{
		{200150, []string{"*)(uid=*))(|(uid=*", "admin)(cn=*", "(|(mail=*)(cn=*))", "x)(objectClass=*", "cn:1.2.840.113556.1.4.803:=2"},
			[]string{"(see the note) (and more)", "f(x) = (a + b)", "a*b (approx)"}},
		{200151, []string{"{{7*191}}", "${ 3 * 3 }", "<%= 12 * 12 %>", "#{9*9}", "{{''.__class__.__mro__}}", "{{constructor.constructor('x')()}}",
			"{{config.items()}}", "{{['id']|filter('system')}}", "{{_self.env.registerUndefinedFilterCallback('exec')}}", "*{T(java.lang.Runtime).getRuntime()}",
			"<%= `id` %>", "{php}echo 1;{/php}", `{{#with "s"}}{{lookup string.sub "constructor"}}{{/with}}`},
			[]string{"{{ user.name }}", "${price}", "50% of {{count}}"}},
		{200152, []string{"confirm.call(null,1)", "(alert)(document.domain)", "prompt.apply(null,[1])", "alert?.(1)", "eval.bind(window)('x')"},
			[]string{"please confirm the call", "an alert was raised"}},
		{200153, []string{"';var d=new Date();do{x=new Date();}while(x-d<5000);'", "1;let a=1; while(true){}"},
			[]string{"var x = 1", "let me know; thanks"}},
		{200154, []string{"x\r\nRCPT TO:<a@evil.example>\r\n", "a\nHELO evil.example", "x\r\nA1 CAPABILITY\r\n", "m\nQUIT\n"},
			[]string{"quit smoking\nnow", "please help me quit"}},
		{200155, []string{"!!python/object/apply:os.system ['id']", "!!javax.script.ScriptEngineManager [x]", "--- !ruby/object:Gem::Installer\ni: x"},
			[]string{"!!important", "python object model"}},
		{200157, []string{"| id", "&& whoami", "`id`", "$(hostname)", "x; uname -a", "foo|sleep 5"},
			[]string{"id", "rock & roll", "a | b test", "salt & pepper; thanks"}},
		{200158, []string{"http://0x7f000001/", "http://017700000001/", "http://2130706433/admin", "http://user@127.0.0.1/", "dict://127.0.0.1:11211/stats", "gopher://x:70/_x", "ldap://127.0.0.1:389/"},
			[]string{"http://example.com/", "https://user@example.com/", "see http://10.0.0.1 docs", "mailto:a@b.c"}},
		{200156, []string{`<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>`, `<!DOCTYPE a SYSTEM "http://evil.example/a.dtd"><a/>`, `<!ENTITY % p SYSTEM "x">`},
			[]string{"<!DOCTYPE html><p>hi</p>", "the system is public"}},
	} {
		for _, v := range c.block {
			if r := e.Check(query(v)); !slices.Contains(r.Rules, c.rule) || !r.Blocked() {
				t.Errorf("%d: %q: blocked %v, rules %v", c.rule, v, r.Blocked(), r.Rules)
			}
		}
		for _, v := range c.pass {
			if r := e.Check(query(v)); slices.Contains(r.Rules, c.rule) {
				t.Errorf("%d: benign %q matched (rules %v)", c.rule, v, r.Rules)
			}
		}
	}
}

// An XML body's document type declaration is inspected: external entities
// are stopped; a declaration without them, and XML without one, pass.
func TestDetections_XMLDoctype(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body    string
		blocked bool
	}{
		{`<?xml version="1.0"?><!DOCTYPE foo [ <!ELEMENT foo ANY ><!ENTITY xxe SYSTEM "expect://id">]><foo>&xxe;</foo>`, true},
		{`<!DOCTYPE x [ <!ENTITY % y SYSTEM "//y/y" > %y; ]><x>a</x>`, true},
		{`<?xml version="1.0"?><!DOCTYPE note [<!ELEMENT note (#PCDATA)>]><note>Hello</note>`, false},
		{`<?xml version="1.0"?><order><id>42</id><note>ring twice</note></order>`, false},
	} {
		r := httptest.NewRequest("POST", "/api/orders", strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/xml")
		v := e.Check(r)
		if v.Blocked() != c.blocked {
			t.Errorf("%q: blocked = %v, want %v (rules %v)", c.body, v.Blocked(), c.blocked, v.Rules)
		}
		if c.blocked && !slices.ContainsFunc(v.Matches, func(m Match) bool { return m.RuleID == 200156 && m.Variable == "TX:sekisho_xml_doctype" }) {
			t.Errorf("%q: 200156 does not name TX:sekisho_xml_doctype: %+v", c.body, v.Matches)
		}
	}
}

// The path's segments are arguments: an attack in a segment or a segment's
// parameter is stopped and named on path.N; ids, slugs and file names are
// not presented; base64 in a segment is decoded.
func TestPathArgs(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	b64 := "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg" // <script>alert(1)</script>, unpadded
	for _, c := range []struct {
		path, name string // name: the argument a block names ("" for a pass)
	}{
		{"/search/" + url.PathEscape("' UNION SELECT password FROM users--"), "ARGS:path.2"},
		{"/files;x=" + url.PathEscape("<img src=x onerror=alert(1)>") + "/view", "ARGS:path"},
		{"/img/" + b64, "ARGS:path.2"},
		{"/x/" + url.PathEscape("; cat /etc/passwd"), ""},
		{"/api/v1/users/42/orders/2024-05-01_export.csv", ""},
		{"/files;x=" + url.PathEscape("How do I reset my password?") + "/view", ""},
		{"/blog/2024/what-is-union-select-anyway", ""},
	} {
		v := e.Check(httptest.NewRequest("GET", c.path, nil))
		switch {
		case c.name == "" && c.path == "/x/"+url.PathEscape("; cat /etc/passwd"):
			if !v.Blocked() {
				t.Errorf("%s passes (rules %v)", c.path, v.Rules)
			}
		case c.name == "":
			if v.Blocked() {
				t.Errorf("%s blocked (rules %v)", c.path, v.Rules)
			}
		case !v.Blocked() || !slices.ContainsFunc(v.Matches, func(m Match) bool { return m.Variable == c.name }):
			t.Errorf("%s: blocked %v, matches %+v, want one on %s", c.path, v.Blocked(), v.Matches, c.name)
		}
	}
	tx := e.NewTx(context.Background(), "path")
	defer tx.Close()
	r := httptest.NewRequest("GET", "/a/"+url.PathEscape("b c")+"/x;k="+url.PathEscape("v 1")+";flag/"+b64+"/ok-name_1.txt", nil)
	tx.InspectRequest(r, r.URL.RequestURI(), Conn{ClientIP: "192.0.2.1"})
	var got []string
	for _, md := range tx.tx.(plugintypes.TransactionState).Variables().ArgsPath().FindAll() {
		got = append(got, md.Key()+"="+md.Value())
	}
	want := []string{"path.2=b c", "path.3=v 1", "path.4=<script>alert(1)</script>", "path=/a/b c/x;k=v 1;flag/" + b64 + "/ok-name_1.txt"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("path arguments = %q, want %q", got, want)
	}
}

// A JSON document in a string is inspected as its values too, and a
// cookie's percent-encoding is decoded: both as values of the same name.
func TestViews_JSONInStringAndCookies(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/api/reviews", strings.NewReader(`{"type":"review","payload":"{\"comment\":\"| id\",\"rating\":5}"}`))
	r.Header.Set("Content-Type", "application/json")
	if v := e.Check(r); !v.Blocked() || !slices.ContainsFunc(v.Matches, func(m Match) bool { return m.RuleID == 200157 && m.Variable == "ARGS:json.payload" }) {
		t.Errorf("a shell probe in JSON in a string: blocked %v, %+v", v.Blocked(), v.Matches)
	}
	r = httptest.NewRequest("POST", "/api/reviews", strings.NewReader(`{"payload":"{\"comment\":\"Great shoes, would buy again\",\"rating\":5}"}`))
	r.Header.Set("Content-Type", "application/json")
	if v := e.Check(r); v.Blocked() {
		t.Errorf("a review in JSON in a string: blocked %v", v.Rules)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "theme=dark; next="+url.QueryEscape("http://169.254.169.254/latest/meta-data/"))
	if v := e.Check(r); !v.Blocked() {
		t.Errorf("an SSRF target in a cookie passes: %v", v.Rules)
	}
	var leaves []string
	jsonInString(`{"a":"x","b":[1,"y",{"c":"z"}],"d":null}`, func(s string) { leaves = append(leaves, s) })
	if want := []string{"a", "x", "b", "y", "c", "z", "d"}; !slices.Equal(leaves, want) {
		t.Errorf("leaves = %q, want %q", leaves, want)
	}
	n := 0
	jsonInString("["+strings.Repeat(`"v",`, 1000)+`"v"]`, func(string) { n++ })
	if n != jsonLeavesMax {
		t.Errorf("%d leaves of a 1001-string array, want at most %d", n, jsonLeavesMax)
	}
	jsonInString(strings.Repeat("[", 100)+strings.Repeat("]", 100), func(string) { t.Error("a document nested 100 deep was read") })
}

// In detect mode sekisho's detections and header rules match and are
// reported as CRS's are, and the request passes.
func TestDetections_DetectMode(t *testing.T) {
	e, err := New(Config{Name: "watch", Mode: ModeDetect}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/login?user="+url.QueryEscape("*)(uid=*))(|(uid=*"), nil)
	r.Header.Set("X-Client-Note", "{{7*191}}")
	v := e.Check(r)
	if v.Action != ActionDetect || v.Blocked() {
		t.Fatalf("action %q, want detect", v.Action)
	}
	for _, id := range []int{200150, 200139} {
		if !slices.Contains(v.Rules, id) {
			t.Errorf("rule %d not reported: %v", id, v.Rules)
		}
	}
}
