package waf_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
)

func writeRules(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func verdict(t *testing.T, e *waf.Engine, method, target string) *waf.Verdict {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")
	r.Header.Set("Accept", "text/html")
	tx := e.NewTx(context.Background(), "t")
	defer tx.Close()
	return tx.InspectRequest(r, r.URL.RequestURI(), waf.Conn{ClientIP: "192.0.2.1", ClientPort: 5000})
}

// Each place of a rules folder loads where it must: the setup override
// after CRS's own setup (it changes what CRS allows), an exclusion after
// CRS (it changes a CRS rule), a plugin's -before file before CRS, custom
// rules after it.
func TestRulesDir_Layout(t *testing.T) {
	dir := writeRules(t, map[string]string{
		"crs-setup.conf":           `SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=GET HEAD'"` + "\n",
		"after-crs/search.conf":    `SecRuleUpdateTargetById 942100 "!ARGS:comment"` + "\n",
		"plugins/test-before.conf": `SecRule ARGS:skipcrs "@streq yes" "id:9300001,phase:1,pass,nolog,ctl:ruleRemoveById=942100"` + "\n",
		"plugins/test-config.conf": "# a plugin's settings\n",
		"custom/site.conf":         `SecRule REQUEST_URI "@beginsWith /private" "id:9300002,phase:1,deny,status:403,log"` + "\n",
	})
	e, err := waf.New(waf.Config{Name: "tuned", RulesDir: dir}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	sqli := "1%27+OR+%271%27%3D%271%27+--"
	for _, tc := range []struct {
		name, method, target string
		blocked              bool
	}{
		{"GET allowed", "GET", "/search?q=shoes", false},
		{"POST refused by the setup override", "POST", "/search", true},
		{"SQLi in q still blocked", "GET", "/search?q=" + sqli, true},
		{"SQLi in comment excluded after CRS", "GET", "/search?comment=" + sqli, false},
		{"the plugin's ctl before CRS", "GET", "/search?skipcrs=yes&q=" + sqli, false},
		{"custom rule", "GET", "/private/x", true},
	} {
		if v := verdict(t, e, tc.method, tc.target); v.Blocked() != tc.blocked {
			t.Errorf("%s: blocked %v (rules %v), want %v", tc.name, v.Blocked(), v.Rules, tc.blocked)
		}
	}
	plain, _ := waf.New(waf.Config{Name: "plain"}, rules.FS())
	if v := verdict(t, plain, "GET", "/search?comment="+sqli); !v.Blocked() {
		t.Fatal("without the folder, the SQLi in comment is not blocked: the test shows nothing")
	}
	h1, _ := waf.RulesHash(waf.Config{Name: "tuned", RulesDir: dir})
	os.WriteFile(filepath.Join(dir, "custom", "site.conf"), []byte("# emptied\n"), 0o644)
	h2, _ := waf.RulesHash(waf.Config{Name: "tuned", RulesDir: dir})
	if h1 == "" || h1 != e.Hash() || h1 == h2 {
		t.Fatalf("hashes: engine %s, before the edit %s, after %s", e.Hash(), h1, h2)
	}
}

// Every kind of error in a rules folder names its file and line, wherever
// the file loads (before or after CRS) and whatever came before it, and
// keeps Coraza's reason; an error in the policy's directives key names its
// line there.
func TestRulesDir_ErrorNamesFileAndLine(t *testing.T) {
	good := "# fine\nSecRule ARGS:a \"@streq y\" \"id:9300001,phase:1,deny\"\nSecRule ARGS:b \"@streq y\" \"id:9300002,phase:1,deny\"\n"
	rule := func(id, body string) string {
		return "SecRule ARGS:x \"@streq y\" \"id:" + id + ",phase:1," + body + "\"\n"
	}
	for _, tc := range []struct {
		name, file, body, where, reason string
		directives                      string
	}{
		{"unknown action", "custom/b.conf", "# one\n\n" + rule("9300010", "deny,bogusaction"), "custom/b.conf:3", `invalid action "bogusaction"`, ""},
		{"unknown directive", "custom/b.conf", "# one\nSecFooBar On\n", "custom/b.conf:2", `unknown directive "secfoobar"`, ""},
		{"unknown operator", "after-crs/b.conf", "\n\n\nSecRule ARGS:x \"@nosuchop y\" \"id:9300011,phase:1,deny\"\n", "after-crs/b.conf:4", "operator nosuchop not found", ""},
		{"duplicate id in the file", "custom/b.conf", rule("9300012", "deny") + "# again\n" + rule("9300012", "deny"), "custom/b.conf:3", "duplicated rule id 9300012", ""},
		{"duplicate id of another file", "custom/b.conf", "\n" + rule("9300002", "deny"), "custom/b.conf:2", "duplicated rule id 9300002", ""},
		{"duplicate id of CRS", "custom/b.conf", rule("942100", "deny"), "custom/b.conf:1", "duplicated rule id 942100", ""},
		{"bad quote", "custom/b.conf", "# one\nSecRule ARGS:x \"@streq y \"id:9300013,phase:1,deny\"\n", "custom/b.conf:2", "invalid actions", ""},
		{"missing closing quote", "custom/b.conf", "# one\n# two\nSecRule ARGS:x \"@streq y\" \"id:9300014,phase:1,deny\n", "custom/b.conf:3", "invalid actions", ""},
		{"continued lines name their first", "custom/b.conf", "# one\nSecRule ARGS:x \"@streq y\" \\\n  \"id:9300015,phase:1,\\\n  deny,bogus2\"\n", "custom/b.conf:2", `invalid action "bogus2"`, ""},
		{"update of no rule", "after-crs/b.conf", "SecRuleUpdateTargetById 9999999 \"!ARGS:x\"\n", "after-crs/b.conf:1", `rule "9999999" not found`, ""},
		{"a plugin loaded before CRS", "plugins/p-before.conf", "\n" + rule("9300016", "deny,bogus3"), "plugins/p-before.conf:2", `invalid action "bogus3"`, ""},
		{"the directives key", "", "", "directives: line 2", `invalid action "bogus4"`, "# two rules\n" + rule("9300017", "deny,bogus4")},
	} {
		files := map[string]string{"custom/a.conf": good, "before-crs/a.conf": "# nothing\n"}
		if tc.file != "" {
			files[tc.file] = tc.body
		}
		dir := writeRules(t, files)
		where := tc.where
		if tc.file != "" {
			where = filepath.Join(dir, filepath.FromSlash(tc.where)) + ":"
		}
		_, err := waf.New(waf.Config{Name: "broken", RulesDir: dir, Directives: tc.directives}, rules.FS())
		if err == nil || !strings.Contains(err.Error(), where) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: error %v, want it to name %s and say %q", tc.name, err, where, tc.reason)
		}
	}
	if _, err := waf.New(waf.Config{Name: "missing", RulesDir: filepath.Join(t.TempDir(), "nope")}, rules.FS()); err == nil || !strings.Contains(err.Error(), "rules_dir") {
		t.Fatalf("a missing folder: %v", err)
	}
}

// The shipped example folder loads as it is.
func TestRulesDir_ShippedExampleLoads(t *testing.T) {
	if _, err := waf.New(waf.Config{Name: "example", RulesDir: "../rules/example"}, rules.FS()); err != nil {
		t.Fatal(err)
	}
}

// A block explains itself, and its suggested exclusion, pasted into the
// rules folder, stops exactly that false positive: the same value in
// another field, or on another path, is still blocked.
func TestExplain_ExclusionStopsExactlyThatFalsePositive(t *testing.T) {
	plain, err := waf.New(waf.Config{Name: "plain"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	sqli := "1%27+OR+%271%27%3D%271%27+--"
	v := verdict(t, plain, "GET", "/blog/comment?text="+sqli)
	if !v.Blocked() {
		t.Fatal("the false positive is not blocked to begin with")
	}
	var exclusions []string
	for _, m := range v.Matches {
		if m.Variable == "ARGS:text" {
			if m.Message == "" || !strings.Contains(m.Exclusion, "@streq /blog/comment") {
				t.Fatalf("match %+v", m)
			}
			exclusions = append(exclusions, m.Exclusion)
		}
	}
	if len(exclusions) == 0 {
		t.Fatalf("no match on ARGS:text in %+v", v.Matches)
	}
	dir := writeRules(t, map[string]string{"before-crs/blog.conf": strings.Join(exclusions, "\n") + "\n"})
	tuned, err := waf.New(waf.Config{Name: "tuned", RulesDir: dir}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target  string
		blocked bool
	}{
		{"/blog/comment?text=" + sqli, false},
		{"/blog/comment?title=" + sqli, true},
		{"/blog/other?text=" + sqli, true},
	} {
		if got := verdict(t, tuned, "GET", tc.target).Blocked(); got != tc.blocked {
			t.Errorf("%s: blocked %v, want %v", tc.target, got, tc.blocked)
		}
	}
}

// Whatever a replay file holds, reading it ends, without a panic.
func FuzzReadRequests(f *testing.F) {
	f.Add([]byte(`{"method":"GET","uri":"/a?b=c","headers":{"X":["1","2"],"Host":"h"},"body":"x"}` + "\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\r\n\r\nPOST /x HTTP/1.1\r\nHost: h\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, _ := waf.ReadRequests(bytes.NewReader(data))
		for _, r := range reqs {
			if r.Request == nil || r.Request.Body == nil {
				t.Fatal("a request without its body reader")
			}
		}
	})
}

// crs_dir takes CRS from a folder on disk: here a copy of the embedded
// one without its SQL injection rules, which then no longer block.
func TestCRSDir_TakesCRSFromDisk(t *testing.T) {
	dir := t.TempDir()
	err := fs.WalkDir(rules.FS(), "@owasp_crs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "942-APPLICATION-ATTACK-SQLI") || strings.Contains(p, "999-COMMON-EXCEPTIONS-AFTER") {
			return err
		}
		data, err := fs.ReadFile(rules.FS(), p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "rules", strings.TrimPrefix(p, "@owasp_crs/"))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	setup, _ := fs.ReadFile(rules.FS(), "@crs-setup.conf.example")
	os.WriteFile(filepath.Join(dir, "crs-setup.conf.example"), setup, 0o644)
	e, err := waf.New(waf.Config{Name: "disk", CRSDir: dir}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	sqli := "1%27+OR+%271%27%3D%271%27+--"
	if v := verdict(t, e, "GET", "/search?q="+sqli); slices.ContainsFunc(v.Rules, func(id int) bool { return id/1000 == 942 }) {
		t.Fatalf("942xxx rules matched with them removed from the CRS folder: %v", v.Rules)
	}
	if v := verdict(t, e, "GET", "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"); !v.Blocked() {
		t.Fatal("the CRS folder's other rules do not load")
	}
	if _, err := waf.New(waf.Config{Name: "bad", CRSDir: t.TempDir()}, rules.FS()); err == nil || !strings.Contains(err.Error(), "crs_dir") {
		t.Fatalf("a folder without rules/: %v", err)
	}
}

// inspect_response: false skips the response rules.
func TestInspectResponse_Off(t *testing.T) {
	no := false
	for _, tc := range []struct {
		cfg     waf.Config
		blocked bool
	}{
		{waf.Config{Name: "on", Directives: `SecRule RESPONSE_HEADERS:X-Leak "@streq yes" "id:9300020,phase:3,deny,status:502,log"`}, true},
		{waf.Config{Name: "off", InspectResponse: &no, Directives: `SecRule RESPONSE_HEADERS:X-Leak "@streq yes" "id:9300020,phase:3,deny,status:502,log"`}, false},
	} {
		e, err := waf.New(tc.cfg, rules.FS())
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		tx := e.NewTx(context.Background(), "t")
		tx.InspectRequest(r, "/", waf.Conn{ClientIP: "192.0.2.1"})
		v := tx.InspectResponseHeaders(200, "HTTP/1.1", http.Header{"X-Leak": {"yes"}})
		tx.Close()
		if got := v != nil && v.Blocked(); got != tc.blocked {
			t.Errorf("%s: response blocked %v, want %v", tc.cfg.Name, got, tc.blocked)
		}
	}
}

// BenchmarkPolicyMemory reports the heap an additional distinct policy
// takes (routes with identical policies share one engine).
func BenchmarkPolicyMemory(b *testing.B) {
	var engines []*waf.Engine // kept alive until measured
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	first, _ := waf.New(waf.Config{Name: "first"}, rules.FS())
	engines = append(engines, first)
	before := heap()
	const extra = 3
	for i := range extra {
		e, err := waf.New(waf.Config{Name: fmt.Sprintf("p%d", i), ParanoiaLevel: 1 + i%4, Directives: fmt.Sprintf("# policy %d\n", i)}, rules.FS())
		if err != nil {
			b.Fatal(err)
		}
		engines = append(engines, e)
	}
	per := float64(heap()-before) / extra / (1 << 20)
	for b.Loop() {
	}
	b.ReportMetric(per, "MiB/policy")
	runtime.KeepAlive(engines)
}
