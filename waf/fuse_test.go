package waf

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/sekisho/sekisho/rules"
)

func TestFuse_Rewrite(t *testing.T) {
	registerPlugins()
	tests := []struct {
		name, src, want string
	}{{
		name: "CRS layout: the rule moves to its last line",
		src: `SecRule ARGS "@rx foo" \
    "id:1,\
    phase:2,\
    t:none,t:urlDecodeUni,t:lowercase,\
    block"`,
		want: "\n\n\n\n" + `SecRule ARGS "@sekisho_t gate=1/urlDecodeUni,lowercase rx foo" "id:1,phase:2,block"`,
	}, {
		name: "no transformations, in phase 2: rewritten for the gate",
		src:  `SecRule REQUEST_COOKIES|!REQUEST_COOKIES:/a|b/|ARGS|XML:/* "@rx a" "id:1,phase:2,t:none,pass"`,
		want: `SecRule REQUEST_COOKIES|!REQUEST_COOKIES:/a|b/|ARGS|XML:/* "@sekisho_t gate=1/ rx a" "id:1,phase:2,pass"`,
	}, {
		name: "a collection the gate does not read: not gated",
		src:  `SecRule ARGS|TX:x "@rx a" "id:1,phase:2,t:none,t:lowercase,pass"`,
		want: `SecRule ARGS|TX:x "@sekisho_t lowercase rx a" "id:1,phase:2,pass"`,
	}, {
		name: "negated operator",
		src:  `SecRule ARGS "!@within a b" "id:1,t:none,t:lowercase,pass"`,
		want: `SecRule ARGS "!@sekisho_t lowercase within a b" "id:1,pass"`,
	}, {
		name: "implicit rx",
		src:  `SecRule ARGS "fo\"o" "id:1,t:none,t:lowercase,pass"`,
		want: `SecRule ARGS "@sekisho_t lowercase rx fo\"o" "id:1,pass"`,
	}, {
		name: "implicit negated rx",
		src:  `SecRule ARGS "!foo" "id:1,t:none,t:lowercase,pass"`,
		want: `SecRule ARGS "!@sekisho_t lowercase rx foo" "id:1,pass"`,
	}, {
		name: "a later t:none starts the chain again; logdata may show MATCHED_VAR",
		src:  `SecRule ARGS "@rx a" "id:1,t:none,t:lowercase,t:none,t:length,logdata:'%{MATCHED_VAR}',pass"`,
		want: `SecRule ARGS "@sekisho_t length rx a" "id:1,logdata:'%{MATCHED_VAR}',pass"`,
	}, {
		name: "a chain link without id",
		src:  "SecRule ARGS \"@rx a\" \"id:1,t:none,t:lowercase,chain\"\nSecRule ARGS \"@rx b\" \"t:none,t:urlDecode\"",
		want: "SecRule ARGS \"@sekisho_t lowercase rx a\" \"id:1,chain\"\nSecRule ARGS \"@sekisho_t urlDecode rx b\" \"\"",
	}}
	kept := []struct{ name, src string }{
		{"no transformations", `SecRule ARGS "@rx a" "id:1,t:none,pass"`},
		{"no transformations, a count", `SecRule &ARGS "@rx a" "id:1,phase:2,t:none,pass"`},
		{"no transformations, negated", `SecRule ARGS "!@rx a" "id:1,phase:2,t:none,pass"`},
		{"inherits transformations", `SecRule ARGS "@rx a" "id:1,t:lowercase,pass"`},
		{"multiMatch", `SecRule ARGS "@rx a" "id:1,t:none,t:lowercase,multiMatch,pass"`},
		{"msg reads MATCHED_VAR", `SecRule ARGS "@rx a" "id:1,t:none,t:lowercase,msg:'%{MATCHED_VAR}',pass"`},
		{"setvar reads MATCHED_VARS", `SecRule ARGS "@rx a" "id:1,t:none,t:lowercase,setvar:'tx.x=%{matched_vars}',pass"`},
		{"a chain link reads MATCHED_VARS", "SecRule ARGS \"@rx a\" \"id:1,t:none,t:lowercase,chain\"\nSecRule MATCHED_VARS \"@rx b\" \"t:none,t:length\""},
		{"a chain link cannot be read", "SecRule ARGS \"@rx a\" \"id:1,t:none,t:lowercase,chain\"\nSecRule \"ARGS\" \"@rx b\" \"t:none\""},
		{"no id", `SecRule ARGS "@rx a" "t:none,t:lowercase,pass"`},
		{"unclosed quote", `SecRule ARGS "@rx a" "id:1,t:none,t:lowercase,msg:'x,pass"`},
		{"backticks", "SecDataset x `\nSecRule ARGS \"@rx a\" \"id:1,t:none,t:lowercase\"\n`"},
		{"comment", `# SecRule ARGS "@rx a" "id:1,t:none,t:lowercase"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (&fuser{}).rewrite(tt.src); got != tt.want {
				t.Errorf("rewrite:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	for _, tt := range kept {
		t.Run("kept: "+tt.name, func(t *testing.T) {
			if got := (&fuser{}).rewrite(tt.src); got != tt.src {
				t.Errorf("rewrite changed the rule:\n%s", got)
			}
		})
	}
}

// TestFuse_Updates: a rule that a SecRuleUpdateActionById gives
// transformations keeps its own, and a lone rule that inspects MATCHED_VAR
// (an earlier rule's match) turns fusing off; either way the policy builds
// a second time.
func TestFuse_Updates(t *testing.T) {
	registerPlugins()
	const rule = `SecRule ARGS "@rx a" "id:1,phase:2,t:none,t:lowercase,pass"` + "\n"
	f := &fuser{}
	f.rewrite(rule + `SecRuleUpdateActionById 1 "t:urlDecode"`)
	again := f.retry()
	if again == nil || !again.keep.has(1) || again.rewrite(rule) != rule {
		t.Fatalf("after an update with t:, the second build rewrites rule 1: %+v", again)
	}
	f = &fuser{}
	f.rewrite(rule + `SecRuleUpdateActionById 1 "pass"`)
	if f.retry() != nil {
		t.Error("an update without t: made the build run again")
	}
	f = &fuser{}
	f.rewrite(rule + `SecRule MATCHED_VAR "@rx b" "id:2,phase:2,pass"`)
	if again := f.retry(); again == nil || again.rewrite(rule) != rule {
		t.Error("a rule reading MATCHED_VAR did not turn fusing off")
	}
}

// TestFuse_CRS: most CRS rules carry their transformations in their operator.
func TestFuse_CRS(t *testing.T) {
	registerPlugins()
	f := &fuser{}
	if _, err := build(equivalencePolicy(), ruleFiles{}, channelsFS{rules.FS()}, f); err != nil {
		t.Fatal(err)
	}
	if f.retry() != nil {
		t.Error("CRS needs a second build")
	}
	if len(f.fused) < 150 {
		t.Errorf("%d CRS rules fused, want at least 150", len(f.fused))
	}
}

// The same CRS at paranoia level 4, with and without fusing, both with
// sekisho's operators and per-transaction memory.
var (
	fusedPair     [2]coraza.WAF
	fusedPairOnce sync.Once
)

func fusedWAFs(t testing.TB) [2]coraza.WAF {
	fusedPairOnce.Do(func() {
		registerPlugins()
		for i, f := range []*fuser{{off: true}, {}} {
			w, err := build(equivalencePolicy(), ruleFiles{}, channelsFS{rules.FS()}, f)
			if err != nil {
				t.Fatal(err)
			}
			fusedPair[i] = w
		}
	})
	if fusedPair[1] == nil {
		t.Fatal("fused WAFs not built")
	}
	return fusedPair
}

// sameVerdicts runs values as query and form arguments, a header and a
// cookie through CRS with and without fusing and requires the same matched
// rules, messages and interruption.
func sameVerdicts(t testing.TB, values []string) {
	t.Helper()
	ws := fusedWAFs(t)
	// Distinct names: with a repeated name stock Coraza's verdicts vary
	// from run to run (its transformation cache is keyed by the name's
	// position in a map's iteration order).
	q, b := url.Values{}, url.Values{}
	for i, v := range values {
		q.Add("q"+strconv.Itoa(i), v)
		b.Add("b"+strconv.Itoa(i), v)
	}
	c := ftwCase{name: "x", method: "POST", uri: "/p?" + q.Encode(), version: "HTTP/1.1",
		headers: [][2]string{{"Host", "example.com"}, {"Content-Type", "application/x-www-form-urlencoded"}, {"X-V", url.QueryEscape(values[0])}, {"Cookie", "c=" + url.QueryEscape(values[len(values)-1])}},
		body:    b.Encode()}
	var got [2]verdict
	var msgs [2][]string
	for i, w := range ws {
		got[i] = run(w, c)
		msgs[i] = messages(w, c)
	}
	if !slices.Equal(got[0].IDs, got[1].IDs) || got[0].RuleID != got[1].RuleID || got[0].Status != got[1].Status || !slices.Equal(msgs[0], msgs[1]) {
		t.Errorf("values %q:\nCoraza's transformations %+v %q\nfused %+v %q", values, got[0], msgs[0], got[1], msgs[1])
	}
}

func messages(w coraza.WAF, c ftwCase) []string {
	tx := w.NewTransaction()
	defer tx.Close()
	trackTx(tx)
	defer untrackTx(tx)
	tx.ProcessURI(c.uri, c.method, c.version)
	for _, h := range c.headers {
		tx.AddRequestHeader(h[0], h[1])
	}
	tx.ProcessRequestHeaders()
	tx.WriteRequestBody([]byte(c.body))
	tx.ProcessRequestBody()
	var out []string
	for _, mr := range tx.MatchedRules() {
		out = append(out, mr.Message())
	}
	return out
}

var fuseSeeds = [][]string{
	{"42", "Jane Doe", "jane@example.com"},
	{"Admin", "admin", "%41dmin", "ADMIN"},
	{"<script>alert(1)</script>", "&lt;script&gt;", "\\x3cscript"},
	{"1' OR '1'='1", "1%27%20OR%20%271%27=%271", "union/**/select"},
	{"../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/./passwd"},
	{";cat /etc/passwd", "c''a\"t /e^tc/passwd", "$(id)"},
	{"  spaced\t\tout  ", "a\x00b", "\xff\xfe", "ZXZhbCgp"},
	{"Jane Doe", "jane doe", "JANE DOE", "Jane Doe"},
}

func TestFuse_SameVerdicts(t *testing.T) {
	for _, values := range fuseSeeds {
		sameVerdicts(t, values)
	}
}

func FuzzFuse(f *testing.F) {
	for _, s := range fuseSeeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		sameVerdicts(t, []string{a, b, c, a})
	})
}

// FuzzFuseRewrite: any rule file rewrites without panic, keeps its line
// count, and leaves files without SecRule alone.
func FuzzFuseRewrite(f *testing.F) {
	f.Add(`SecRule ARGS "@rx a" "id:1,t:none,t:lowercase,pass"`)
	f.Add("SecRule ARGS \"@rx a\" \\\n \"id:1,t:none,t:lowercase,chain\"\nSecRule MATCHED_VARS \"@rx b\" \"t:none,t:length\"")
	f.Add("SecRuleUpdateActionById 1-3 \"t:none\"\nSecAction \"id:2,pass\"")
	f.Fuzz(func(t *testing.T, src string) {
		out := (&fuser{}).rewrite(src)
		if strings.Count(out, "\n") != strings.Count(src, "\n") {
			t.Fatalf("line count changed:\n%q\n%q", src, out)
		}
		if !strings.Contains(strings.ToLower(src), "secrule") && out != src {
			t.Fatalf("rewrote a file without rules: %q", out)
		}
	})
}

// TestFuse_UpdatedRuleKeepsOrder: an operator's SecRuleUpdateActionById
// that adds a transformation applies it after the rule's own, as in stock
// Coraza (base64Decode then lowercase; the other order decodes garbage).
func TestFuse_UpdatedRuleKeepsOrder(t *testing.T) {
	c := Config{Name: "updated", Directives: `SecRule ARGS:q "@streq admin" "id:9100,phase:2,deny,status:403,t:none,t:base64Decode"
SecRuleUpdateActionById 9100 "t:lowercase"`}
	e, err := New(c, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	v := run(e.waf.(coraza.WAF), ftwCase{name: "q", method: "GET", uri: "/?q=QURNSU4=", version: "HTTP/1.1",
		headers: [][2]string{{"Host", "example.com"}, {"User-Agent", "test"}, {"Accept", "*/*"}}})
	if v.RuleID != 9100 || v.Status != 403 {
		t.Fatalf("verdict %+v, want rule 9100's 403", v)
	}
}
