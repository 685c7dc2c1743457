package waf

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

var rxArgRe = regexp.MustCompile(`"@rx ((?:[^"\\]|\\.)*)"`)

// crsPatterns returns every @rx pattern of CRS as Coraza compiles it.
func crsPatterns(t testing.TB) []string {
	t.Helper()
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		data, err := fs.ReadFile(coreruleset.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "\\\n", "")
		for _, m := range rxArgRe.FindAllStringSubmatch(text, -1) {
			p := "(?sm)" + strings.ReplaceAll(m[1], `\"`, `"`)
			if _, err := regexp.Compile(p); err == nil && !matchesArbitraryBytes(m[1]) {
				out = append(out, p)
			}
		}
	}
	if len(out) < 200 {
		t.Fatalf("only %d CRS @rx patterns found", len(out))
	}
	return out
}

// TestPrefilter_NeverRefusesAMatch checks the prefilter's one promise on
// every CRS pattern against every value of the CRS regression corpus and
// some benign ones: when it says "cannot match", Go's regexp agrees.
func TestPrefilter_NeverRefusesAMatch(t *testing.T) {
	cases, err := loadFTW()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var values []string
	add := func(v string) {
		if v != "" && utf8.ValidString(v) && !seen[v] {
			seen[v] = true
			values = append(values, v)
		}
	}
	for _, c := range cases {
		add(c.uri)
		add(c.body)
		for _, kv := range strings.Split(c.body, "&") {
			_, v, _ := strings.Cut(kv, "=")
			add(v)
		}
		for _, h := range c.headers {
			add(h[1])
		}
	}
	for _, v := range []string{"SELECT", "sElEcT * fRoM users", "K", "\u212a", "ſelect", "<ScRiPt>", "/etc/passwd", "a"} {
		add(v)
	}
	memo := new(int) // stands for a transaction: each value is scanned once
	trackTx(memo)
	defer untrackTx(memo)
	skipped, checked := 0, 0
	for _, p := range crsPatterns(t) {
		re := regexp.MustCompile(p)
		pf := newPrefilter(p)
		for _, v := range values {
			if pf.maybe(memoOf(memo), v) {
				continue
			}
			skipped++
			if re.MatchString(v) {
				t.Errorf("prefilter refused a match: pattern %q value %q (min %d, cond %v)", p, v, pf.minLen, pf.cond)
			}
		}
		checked += len(values)
	}
	t.Logf("%d evaluations, %d skipped by the prefilter, none wrongly", checked, skipped)
	if skipped == 0 {
		t.Fatal("the prefilter skipped nothing: it is not working")
	}
}

func FuzzPrefilter(f *testing.F) {
	patterns := crsPatterns(f)
	compiled := make([]*regexp.Regexp, len(patterns))
	filters := make([]prefilter, len(patterns))
	for i, p := range patterns {
		compiled[i], filters[i] = regexp.MustCompile(p), newPrefilter(p)
	}
	f.Add(uint16(0), "select * from users")
	f.Add(uint16(7), "<script>alert(1)</script>")
	f.Fuzz(func(t *testing.T, i uint16, v string) {
		k := int(i) % len(patterns)
		if !utf8.ValidString(v) || filters[k].maybe(nil, v) {
			return
		}
		if compiled[k].MatchString(v) {
			t.Fatalf("prefilter refused a match: pattern %q value %q", patterns[k], v)
		}
	})
}

func TestPrefilter_Conditions(t *testing.T) {
	for _, c := range []struct{ pattern, cond string }{
		{`(?i)union[\s]+select`, `and("union" "select")`},
		{`(?:eval|exec)\(`, `or("eval(" "exec(")`},
		{`(?i)<script\b`, `"<script"`},
		{`[;|&]\s*cat\b`, `and(or("&" ";" "|") "cat")`},
		{`a[bc]d`, `or("abd" "acd")`},
		{`(?:abc|abcd)x?`, `"abc"`}, // abcd implies abc
		{`ab|cd`, `*`},              // short runs of letters say nothing
		{`select.*from`, `and("select" "from")`},
		{`(?:select)?from`, `"from"`},
		{`\d+`, `*`},
		{`(?i)k`, `*`},
		{`(?i)kelvin`, `"kelvin"`}, // K and the Kelvin sign fold alike
		{`(?:^|[^a-z])passwd`, `"passwd"`},
		{`x{3}`, `"xxx"`},
	} {
		if got := newPrefilter("(?sm)" + c.pattern).cond.String(); got != c.cond {
			t.Errorf("%s: condition %s, want %s", c.pattern, got, c.cond)
		}
	}
}

// Unicode case folding maps some non-ASCII runes onto ASCII letters; the
// prefilter must not refuse those matches.
func TestPrefilter_UnicodeFold(t *testing.T) {
	cases := []struct{ pattern, value string }{
		{"(?sm)(?i)select", "\u017felect"}, // long s
		{"(?sm)(?i)kill", "\u212aill"},     // Kelvin sign
		{"(?sm)(?i)union\\s+all", "UNION ALL"},
		{"(?sm)passwd", "/etc/passwd"},
		{"(?sm)(?i)\u212aelvin", "kelvin"},
		{"(?sm)(?i)\u017fystem", "SYSTEM"},
	}
	for _, c := range cases {
		re := regexp.MustCompile(c.pattern)
		if !re.MatchString(c.value) {
			t.Fatalf("bad case: %q does not match %q", c.pattern, c.value)
		}
		if pf := newPrefilter(c.pattern); !pf.maybe(nil, c.value) {
			t.Errorf("prefilter refused %q for %q (cond %v)", c.value, c.pattern, pf.cond)
		}
	}
}
