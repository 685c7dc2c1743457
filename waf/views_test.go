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

// A JSON array of lines that reads as text is inspected as the text: a
// notebook cell's code passes, an attack in one of its lines is blocked and
// named on the array's first element; an array that is not text is
// inspected element by element.
func TestTextArrays_Engine(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	cell := func(lines ...string) *http.Request {
		var q []string
		for _, l := range lines {
			q = append(q, strconv.Quote(l))
		}
		r := httptest.NewRequest("POST", "/api/notebooks/1/cells", strings.NewReader(`{"cell_type":"code","source":[`+strings.Join(q, ",")+`]}`))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	code := []string{"const res = await fetch('/api/v1/orders?limit=10');", "const { orders } = await res.json();", "console.log(orders.map(o => o.id).join(', '));"}
	for _, c := range []struct {
		name    string
		req     *http.Request
		blocked bool
		varName string
	}{
		{"code cell", cell(code...), false, ""},
		{"code cell, lines with line breaks", cell(code[0]+"\n", code[1]+"\n", code[2]), false, ""},
		{"xss in a line", cell(append(slices.Clone(code), "document.body.innerHTML = '<img src=x onerror=alert(1)>';")...), true, "ARGS:json.source.0"},
		{"not text: one line each", cell("console.log(document.cookie)", "x", "y"), true, "ARGS:json.source.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.Check(c.req)
			if v.Blocked() != c.blocked {
				t.Fatalf("blocked = %v, want %v (rules %v, unconfirmed %v)", v.Blocked(), c.blocked, v.Rules, v.Unconfirmed)
			}
			if c.varName != "" && !slices.ContainsFunc(v.Matches, func(m Match) bool { return strings.EqualFold(m.Variable, c.varName) }) {
				t.Errorf("no match names %s: %+v", c.varName, v.Matches)
			}
		})
	}
}

// An OAuth request whose only redirect_uri is a plain loopback URL (RFC
// 8252) passes; any other loopback use is still an SSRF to CRS.
func TestOAuthLoopbackRedirect(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query   string
		blocked bool
	}{
		{"response_type=code&client_id=cli&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback", false},
		{"response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%3A51004%2Foauth2redirect", false},
		{"response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback", true},                                            // no client_id
		{"client_id=cli&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcb&redirect_uri=http%3A%2F%2F169.254.169.254%2Flatest%2F", true}, // two
		{"client_id=cli&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcb%3Fx%3D1", true},                                               // a query
		{"client_id=cli&redirect_uri=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F", true},                                     // not loopback
		{"client_id=cli&callback=http%3A%2F%2Flocalhost%3A3000%2Fcallback", true},                                                     // another parameter
	} {
		v := e.Check(httptest.NewRequest("GET", "/oauth2/v1/authorize?"+c.query, nil))
		if v.Blocked() != c.blocked {
			t.Errorf("%s: blocked = %v, want %v (rules %v)", c.query, v.Blocked(), c.blocked, v.Rules)
		}
	}
}
