package waf

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
)

func TestGraphQLParts(t *testing.T) {
	deep := strings.Repeat("{a", 100) + strings.Repeat("}", 100)
	for _, c := range []struct {
		name, doc string
		parts     []string // nil: not a document, inspected as it is
	}{
		{"mutation with variables", `mutation CreateReview($input: ReviewInput!) { createReview(input: $input) { id } }`, []string{}},
		{"literals unescaped", `{ product(id: "a\"b\u0041", note: """x "y" z""") { id } }`, []string{`a"bA`, `x "y" z`}},
		{"comment", "{ a # ' or 1=1--\n }", []string{" ' or 1=1--"}},
		{"shorthand query", `{ viewer { login } }`, []string{}},
		{"not graphql: shell group", "{ cat /etc/passwd; }", nil},
		{"not graphql: prose", "select all { the } items; union", nil},
		{"not graphql: no braces", "query", nil},
		{"not graphql: sdl", "type Q { a: Int }", nil},
		{"too deep", deep, nil},
		{"too large", "{ a(s: \"" + strings.Repeat("x", graphqlMaxLen) + "\") }", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			parts, ok := graphqlParts(c.doc)
			if ok != (c.parts != nil) || !slices.Equal(parts, c.parts) {
				t.Errorf("graphqlParts = %q, %v; want %q", parts, ok, c.parts)
			}
		})
	}
}

// Through the engine: GraphQL syntax passes, an attack in a literal or a
// comment is still blocked and named on the argument, and a value that is
// not in a GraphQL place or does not parse is inspected whole.
func TestGraphQL_Engine(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	jsonQuery := func(q string) *http.Request {
		r := httptest.NewRequest("POST", "/graphql", strings.NewReader(`{"query":`+strconv.Quote(q)+`,"variables":{"input":{"text":"ok"}}}`))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	for _, c := range []struct {
		name    string
		req     *http.Request
		blocked bool
		varName string
	}{
		{"mutation passes", jsonQuery(`mutation CreateReview($input: ReviewInput!) { createReview(input: $input) { id createdAt } }`), false, ""},
		{"query passes", jsonQuery("query GetProduct($id: ID!) {\n  product(id: $id) {\n    images(first: 5) { edges { node { url altText } } }\n  }\n}"), false, ""},
		{"sqli in a literal", jsonQuery(`{ product(id: "1' UNION SELECT password FROM users--") { id } }`), true, "ARGS:json.query"},
		{"xss in a block string", jsonQuery(`mutation { addNote(text: """<script>alert(1)</script>""") { id } }`), true, "ARGS:json.query"},
		{"attack in a comment", jsonQuery("{ a\n# <script>alert(1)</script>\n}"), true, "ARGS:json.query"},
		{"does not parse", jsonQuery(`{ product(id: 1' UNION SELECT password FROM users--) { id } }`), true, "ARGS:json.query"},
		{"batched", func() *http.Request {
			r := httptest.NewRequest("POST", "/graphql", strings.NewReader(`[{"query":"{ a(s: \"<script>alert(1)</script>\") }"},{"query":"query($input: I) { b(x: $input) }"}]`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), true, "ARGS:json.0.query"},
		{"application/graphql", func() *http.Request {
			r := httptest.NewRequest("POST", "/graphql", strings.NewReader(`mutation CreateReview($input: ReviewInput!) { createReview(input: $input) { id } }`))
			r.Header.Set("Content-Type", "application/graphql")
			return r
		}(), false, ""},
		{"GET query", httptest.NewRequest("GET", "/graphql?query="+strings.ReplaceAll(`query($input: I) { b(x: $input) { node { url } } }`, " ", "%20"), nil), false, ""},
		{"GET literal attack", httptest.NewRequest("GET", "/graphql?query="+strings.ReplaceAll(`{ b(x: "; cat /etc/passwd") }`, " ", "%20"), nil), true, "ARGS:query"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.Check(c.req)
			if v.Blocked() != c.blocked {
				t.Fatalf("blocked = %v, want %v (rules %v)", v.Blocked(), c.blocked, v.Rules)
			}
			if c.blocked && !slices.ContainsFunc(v.Matches, func(m Match) bool { return strings.EqualFold(m.Variable, c.varName) }) {
				t.Errorf("no match names %s: %+v", c.varName, v.Matches)
			}
		})
	}
}

func FuzzGraphQLParts(f *testing.F) {
	for _, s := range []string{`{ a(s: "x") }`, "query Q($v: I = \"d\") { a # c\n }", `{ a(s: """b""") }`, "{{{", `{ a(s: "\u00"") }`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		parts, ok := graphqlParts(doc)
		if !ok {
			return
		}
		// Every byte of a document is a name, a number, punctuation, white
		// space, or part of a literal or comment: the parts are never
		// longer than the document (escapes only shorten), so nothing is
		// invented.
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		if n > len(doc) {
			t.Errorf("parts %q longer than %q", parts, doc)
		}
	})
}
