package waf_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
)

const pastedSQLi = "1' OR '1'='1' --"

// formRequest is a POST of one url-encoded field.
func formRequest(path, name, value string) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(url.Values{name: {value}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return browserLike(r)
}

// jsonRequest is a POST of a JSON body.
func jsonRequest(path, body string) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return browserLike(r)
}

func browserLike(r *http.Request) *http.Request {
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Content-Length", fmt.Sprint(r.ContentLength))
	return r
}

// itemsJSON is {"items":[{"html":...},...]} with an attack in the
// elements at.
func itemsJSON(n int, at ...int) string {
	var b strings.Builder
	b.WriteString(`{"title":"t","items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		v := "hello"
		if slices.Contains(at, i) {
			v = "<script>alert(1)</script>"
		}
		b.WriteString(`{"html":"` + v + `"}`)
	}
	b.WriteString("]}")
	return b.String()
}

// The exclusions a block suggests, pasted as they are into a rules
// folder's before-crs/ and loaded by Coraza with CRS, let the same request
// through, whatever the argument's name holds (a comma, quotes, a
// semicolon, slashes, a backslash, a space, upper case, non-ASCII), and a
// match inside a JSON array is excluded for every element of the array;
// the same value in another field is still blocked.
func TestExplain_SuggestionsWorkWhenPasted(t *testing.T) {
	plain, err := waf.New(waf.Config{Name: "plain"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	type request func() *http.Request
	form := func(name string) request {
		return func() *http.Request { return formRequest("/blog/comment", name, pastedSQLi) }
	}
	items := func(n int, at ...int) request {
		return func() *http.Request { return jsonRequest("/api/items", itemsJSON(n, at...)) }
	}
	for _, tc := range []struct {
		name     string
		blocked  request   // the false positive, whose suggestions are pasted
		passes   []request // then pass too
		stillBad []request // and are still blocked
	}{
		{"comma", form("a,b"), nil, []request{form("a"), form("b"), form("c")}},
		{"quotes", form(`it's "x"`), nil, []request{form("its x")}},
		{"semicolon and colon", form("q;ARGS:x"), nil, []request{form("q"), form("x")}},
		{"slashes", form("/x/"), nil, []request{form("x")}},
		{"backslash and space", form(`a\ b c`), nil, []request{form("a")}},
		{"upper case", form("Comment,Body"), nil, []request{form("comment")}},
		{"non-ASCII", form("名前,x"), nil, []request{form("名前")}},
		{"two fields", func() *http.Request {
			r := httptest.NewRequest("POST", "/blog/comment", strings.NewReader(url.Values{"a": {pastedSQLi}, "b": {pastedSQLi}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return browserLike(r)
		}, nil, []request{form("c")}},
		{"JSON array, attack in two elements", items(4, 1, 3), []request{items(3, 0)}, nil},
		{"JSON array, element 2 of 3", items(3, 2), []request{items(3, 0), items(6, 5)},
			[]request{func() *http.Request {
				return jsonRequest("/api/items", `{"title":"<script>alert(1)</script>","items":[{"html":"hello"}]}`)
			}}},
	} {
		v := plain.Check(tc.blocked())
		if !v.Blocked() {
			t.Fatalf("%s: the false positive is not blocked to begin with (rules %v)", tc.name, v.Rules)
		}
		tuned, pasted, err := pastedPolicy(t, v)
		if err != nil {
			t.Errorf("%s: the pasted suggestions do not load: %v\n%s", tc.name, err, pasted)
			continue
		}
		if v := tuned.Check(tc.blocked()); v.Blocked() {
			t.Errorf("%s: still blocked after pasting the suggestions (rules %v):\n%s", tc.name, v.Rules, pasted)
		}
		for i, r := range tc.passes {
			if v := tuned.Check(r()); v.Blocked() {
				t.Errorf("%s: request %d (same field, another element) blocked (rules %v):\n%s", tc.name, i, v.Rules, pasted)
			}
		}
		for i, r := range tc.stillBad {
			if !tuned.Check(r()).Blocked() {
				t.Errorf("%s: request %d (another field) is no longer blocked:\n%s", tc.name, i, pasted)
			}
		}
	}
}

// pastedPolicy is a policy whose rules folder holds, in before-crs/, every
// exclusion v suggests, as an operator pastes them; pasted is what it holds.
func pastedPolicy(t *testing.T, v *waf.Verdict) (e *waf.Engine, pasted string, err error) {
	t.Helper()
	var ex []string
	for _, m := range v.Matches {
		if m.Exclusion != "" {
			ex = append(ex, m.Exclusion)
		}
	}
	pasted = strings.Join(ex, "\n")
	dir := writeRules(t, map[string]string{"before-crs/pasted.conf": pasted + "\n"})
	e, err = waf.New(waf.Config{Name: "tuned", RulesDir: dir}, rules.FS())
	return e, pasted, err
}

// The exclusion each of sekisho's matches suggests works when pasted into a
// rules folder's before-crs/: the request it names then passes.
func TestSekishoMatches_ExclusionsWork(t *testing.T) {
	e, err := waf.New(waf.Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	header := func() *http.Request {
		r := httptest.NewRequest("GET", "/app", nil)
		r.Header.Set("X-Custom-Data", "' UNION SELECT password FROM users--")
		return r
	}
	xmlBody := func() *http.Request {
		r := httptest.NewRequest("POST", "/api/orders", strings.NewReader(`<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/hostname">]><a>&x;</a>`))
		r.Header.Set("Content-Type", "application/xml")
		return r
	}
	for _, c := range []struct {
		name string
		req  func() *http.Request
		rule int
	}{
		{"header class rule", header, 200138},
		{"path segment", func() *http.Request {
			return httptest.NewRequest("GET", "/search/"+url.PathEscape("' UNION SELECT password FROM users--"), nil)
		}, 0},
		{"ldap in an argument", func() *http.Request {
			return httptest.NewRequest("GET", "/login?user="+url.QueryEscape("*)(uid=*))(|(uid=*"), nil)
		}, 200150},
		{"xml entity", xmlBody, 200156},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.Check(c.req())
			if !v.Blocked() || c.rule != 0 && !slices.Contains(v.Rules, c.rule) {
				t.Fatalf("not blocked by %d: %v", c.rule, v.Rules)
			}
			tuned, ex, err := pastedPolicy(t, v)
			if err != nil {
				t.Fatal(err)
			}
			if v := tuned.Check(c.req()); v.Blocked() {
				t.Errorf("with the suggested exclusions still blocked: %v\n%s", v.Rules, ex)
			}
		})
	}
}
