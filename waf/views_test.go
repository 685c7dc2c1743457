package waf

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf/waftest"
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
		{"too large", "{ a(s: \"" + strings.Repeat("x", viewMaxLen) + "\") }", nil},
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
		// longer than a valid UTF-8 document (escapes only shorten), so
		// nothing is invented. (The lexer reads a stray byte as U+FFFD,
		// three bytes.)
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		if utf8.ValidString(doc) && n > len(doc) || n > 3*len(doc) {
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

// base64Flat is wallarm gotestwaf's Base64Flat encoding: standard base64
// without its padding, '+' and '/' included.
func base64Flat(v string) string {
	return strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(v)), "=")
}

// flatChannels carry a value, plain or Base64Flat, in each place of a
// request that holds arguments, as gotestwaf sends it: the base64 neither
// percent-encoded in the query nor in a form, so that its '+' reaches the
// rules as a space.
var flatChannels = []struct {
	name  string
	build func(v string) *http.Request
}{
	{"query", func(v string) *http.Request {
		return browserRequest("GET", "/app/search?q="+strings.ReplaceAll(url.QueryEscape(v), "%2B", "+")+"&page=1", "", "")
	}},
	{"form", func(v string) *http.Request {
		return browserRequest("POST", "/app/contact", "application/x-www-form-urlencoded", "name=Ann+Example&comment="+strings.ReplaceAll(url.QueryEscape(v), "%2B", "+")+"&consent=yes")
	}},
	{"multipart", func(v string) *http.Request {
		var b strings.Builder
		w := multipart.NewWriter(&b)
		w.WriteField("title", "My upload")
		w.WriteField("comment", v)
		w.Close()
		return browserRequest("POST", "/app/upload", w.FormDataContentType(), b.String())
	}},
	{"json", func(v string) *http.Request {
		j, _ := json.Marshal(map[string]any{"order": map[string]any{"id": 1234, "note": v}})
		return browserRequest("POST", "/app/api/orders", "application/json", string(j))
	}},
}

func browserRequest(method, target, ctype, body string) *http.Request {
	r := httptest.NewRequest(method, "http://shop.example.com"+target, strings.NewReader(body))
	waftest.BrowserHeaders(r.Header, 1)
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return r
}

// Every attack value of the matrix (testdata/attacks) that a channel stops
// as it is, the same channel stops as Base64Flat: the decoded form is the
// value itself, inspected by the same rules under the same argument. But
// for the values whose base64 is shorter than minBase64 (at most 8 bytes:
// "$(id)", "admin'--"), which are not tried as base64: they are counted
// and named in the log. A benign value that passes as it is passes as
// Base64Flat too.
func TestBase64Flat_Engine(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/attacks/*.txt")
	for _, ch := range flatChannels {
		sent, plain, flat, both := 0, 0, 0, 0
		var missed, short []string
		for _, f := range files {
			if filepath.Base(f) == "floor.txt" {
				continue
			}
			values, err := waftest.LoadValues(f)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(f) == "benign.txt" {
				for _, v := range values {
					if p, b := e.Check(ch.build(v)), e.Check(ch.build(base64Flat(v))); b.Blocked() && !p.Blocked() {
						t.Errorf("%s: benign %q passes as it is, is blocked as Base64Flat: %v", ch.name, v, b.Rules)
					}
				}
				continue
			}
			for _, v := range values {
				sent++
				p := e.Check(ch.build(v)).Blocked()
				b := e.Check(ch.build(base64Flat(v))).Blocked()
				plain, flat = plain+b2i(p), flat+b2i(b)
				if p && b {
					both++
				}
				if p && !b {
					if len(base64Flat(v)) < minBase64 {
						short = append(short, fmt.Sprintf("%s %q", filepath.Base(f), v))
						continue
					}
					missed = append(missed, fmt.Sprintf("%s %.60q", filepath.Base(f), v))
				}
			}
		}
		t.Logf("%s: of %d values, %d stopped as they are, %d as Base64Flat (%d both); passing as too short for base64: %s", ch.name, sent, plain, flat, both, strings.Join(short, ", "))
		if len(missed) > 0 {
			t.Errorf("%s: %d values stopped as they are pass as Base64Flat: %s", ch.name, len(missed), strings.Join(missed, "; "))
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// argsAfter inspects r and returns the values of its arguments as the
// rules saw them, key=value in order, the query's and the body's apart.
func argsAfter(t *testing.T, e *Engine, r *http.Request) (get, post []string, v *Verdict) {
	t.Helper()
	tx := e.NewTx(context.Background(), "args")
	defer tx.Close()
	v = tx.InspectRequest(r, r.URL.RequestURI(), Conn{ClientIP: "192.0.2.1"})
	vars := tx.tx.(plugintypes.TransactionState).Variables()
	for _, md := range vars.ArgsGet().FindAll() {
		get = append(get, md.Key()+"="+md.Value())
	}
	for _, md := range vars.ArgsPost().FindAll() {
		post = append(post, md.Key()+"="+md.Value())
	}
	return get, post, v
}

// The body's arguments get the decoded forms the query's get, as more
// values of the same argument, added once: a form (with base64's '+' read
// as a space), a multipart field, a JSON value; the query's arguments get
// theirs from Tx.InspectRequest only.
func TestDecodedPostArgs(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	const text = "Is it ready? Let me know > soon ~Ann" // benign: nothing is blocked
	b64 := base64Flat(text)                             // holds '+' and '/'
	if !strings.ContainsAny(b64, "+/") {
		t.Fatalf("%q: no '+' or '/' in its base64 %q", text, b64)
	}
	form := func(body string) *http.Request {
		return browserRequest("POST", "/app/contact", "application/x-www-form-urlencoded", body)
	}
	multi := func(field string) *http.Request {
		var b strings.Builder
		w := multipart.NewWriter(&b)
		w.WriteField("title", "My upload")
		w.WriteField("comment", field)
		fw, _ := w.CreateFormFile("upload", "notes.txt")
		fw.Write([]byte(b64)) // a file's content is not an argument
		w.Close()
		return browserRequest("POST", "/app/upload", w.FormDataContentType(), b.String())
	}
	jsonBody := func(body string) *http.Request {
		return browserRequest("POST", "/app/api/orders", "application/json", body)
	}
	for _, tc := range []struct {
		name      string
		req       *http.Request
		get, post []string
	}{
		{"form: base64, '+' escaped", form("name=Ann&comment=" + url.QueryEscape(b64)),
			nil, []string{"name=Ann", "comment=" + b64, "comment=" + text}},
		{"form: base64, '+' read as a space", form("name=Ann&comment=" + b64),
			nil, []string{"name=Ann", "comment=" + strings.ReplaceAll(b64, "+", " "), "comment=" + text}},
		{"form: base64 broken into lines", form("comment=" + url.QueryEscape(b64[:12]+"\r\n"+b64[12:])),
			nil, []string{"comment=" + b64[:12] + "\r\n" + b64[12:], "comment=" + text}},
		{"form: double URL encoding", form("comment=50%2525+off%253F"),
			nil, []string{"comment=50%25 off%3F", "comment=50% off?"}},
		{"form: numeric references", form("comment=" + url.QueryEscape("Tom &#38; Jerry&#x21;")),
			nil, []string{"comment=Tom &#38; Jerry&#x21;", "comment=Tom & Jerry!"}},
		{"form: plain text, nothing added", form("name=Ann+Example&comment=Hello+there%2C+see+you+at+noon&consent=yes"),
			nil, []string{"name=Ann Example", "comment=Hello there, see you at noon", "consent=yes"}},
		{"multipart field", multi(b64),
			nil, []string{"title=My upload", "comment=" + b64, "comment=" + text}},
		{"multipart field: spaces are not '+' there, and still tried as such", multi(strings.ReplaceAll(b64, "+", " ")),
			nil, []string{"title=My upload", "comment=" + strings.ReplaceAll(b64, "+", " "), "comment=" + text}},
		{"json value", jsonBody(`{"order":{"id":1234,"note":"` + b64 + `"}}`),
			nil, []string{"json.order.id=1234", "json.order.note=" + b64, "json.order.note=" + text}},
		{"json value: \\u-escaped '/' and a line break", jsonBody(`{"note":"` + strings.ReplaceAll(b64[:12]+`\n`+b64[12:], "/", `\/`) + `"}`),
			nil, []string{"json.note=" + b64[:12] + "\n" + b64[12:], "json.note=" + text}},
		{"json: random tokens are not text", jsonBody(`{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2J5dGVz","id":"9f86d081884c7d659a2feaa0c55ad015","k":"AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"}`),
			nil, []string{"json.token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2J5dGVz", "json.id=9f86d081884c7d659a2feaa0c55ad015", "json.k=AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"}},
		{"query: decoded in InspectRequest, not again", browserRequest("GET", "/app/search?q="+url.QueryEscape(b64)+"&r=%2541", "", ""),
			[]string{"q=" + b64, "r=%41", "q=" + text, "r=A"}, nil},
		{"query and form: each its own", browserRequest("POST", "/app/contact?q=%2541", "application/x-www-form-urlencoded", "c=%2542"),
			[]string{"q=%41", "q=A"}, []string{"c=%42", "c=B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get, post, v := argsAfter(t, e, tc.req)
			if v.Blocked() {
				t.Fatalf("blocked: %v", v.Rules)
			}
			slices.Sort(get) // keys come in no defined order
			slices.Sort(post)
			slices.Sort(tc.get)
			slices.Sort(tc.post)
			if !slices.Equal(get, tc.get) || !slices.Equal(post, tc.post) {
				t.Errorf("ARGS_GET %q\nARGS_POST %q\nwant %q\nand %q", get, post, tc.get, tc.post)
			}
		})
	}
}

// An attack in a body argument's decoded form is blocked and named on the
// argument, and the exclusions a verdict suggests for it, which name the
// argument, cover its decoded forms: with them, the attack passes both as
// it is and encoded.
func TestDecodedPostArgs_Engine(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	const xss = "<script>alert(document.cookie)</script>"
	jsonNote := func(v string) *http.Request {
		j, _ := json.Marshal(map[string]any{"order": map[string]any{"id": 1234, "note": v}})
		return browserRequest("POST", "/app/api/orders", "application/json", string(j))
	}
	for _, c := range []struct {
		name, varName string
		req           func(v string) *http.Request
		enc           func(v string) string
	}{
		{"form, base64 with '+' as a space", "ARGS:comment", func(v string) *http.Request {
			return browserRequest("POST", "/app/contact", "application/x-www-form-urlencoded", "name=Ann&comment="+strings.ReplaceAll(url.QueryEscape(v), "%2B", "+"))
		}, base64Flat},
		{"form, double URL encoding", "ARGS:comment", func(v string) *http.Request {
			return browserRequest("POST", "/app/contact", "application/x-www-form-urlencoded", "name=Ann&comment="+url.QueryEscape(v))
		}, url.QueryEscape},
		{"multipart, numeric references", "ARGS:comment", flatChannels[2].build, func(v string) string {
			var b strings.Builder
			for _, r := range v {
				fmt.Fprintf(&b, "&#%07d;", r) // leading zeros, as a browser reads them
			}
			return b.String()
		}},
		{"json, base64 in lines", "ARGS:json.order.note", jsonNote, func(v string) string {
			s := base64.StdEncoding.EncodeToString([]byte(v))
			return s[:20] + "\r\n" + s[20:]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.Check(c.req(c.enc(xss)))
			if !v.Blocked() {
				t.Fatalf("%q passed", c.enc(xss))
			}
			var excl []string
			named := false
			for _, m := range v.Matches {
				if strings.HasPrefix(m.Variable, "ARGS") && !strings.EqualFold(m.Variable, c.varName) {
					t.Errorf("a match names %s, not %s: %+v", m.Variable, c.varName, m)
				}
				named = named || strings.EqualFold(m.Variable, c.varName)
			}
			if !named {
				t.Errorf("no match names %s: %+v", c.varName, v.Matches)
			}
			for _, m := range append(v.Matches, e.Check(c.req(xss)).Matches...) {
				if strings.EqualFold(m.Variable, c.varName) && !slices.Contains(excl, m.Exclusion) {
					excl = append(excl, m.Exclusion)
				}
			}
			ex, err := New(Config{Name: "excluded", Directives: strings.Join(excl, "\n")}, rules.FS())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{xss, c.enc(xss)} {
				if v := ex.Check(c.req(s)); v.Blocked() {
					t.Errorf("%q blocked though its argument is excluded: %v", s, v.Matches)
				}
			}
		})
	}
}

// The decoded forms count toward Coraza's argument limit: a body whose
// forms take it past the limit is refused (400), as one past it by its own
// values is; within it, it passes. They count toward the inspection
// budget too (ARGS_COMBINED_SIZE, rule 10001): a form that fits the budget
// but whose decoded forms do not is refused (413), never passed with a
// form left uninspected.
func TestDecodedPostArgs_Limits(t *testing.T) {
	e, err := New(Config{Name: "limited", RequestBodyNoFilesLimit: 4096, Directives: "SecArgumentsLimit 10"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	tx := e.NewTx(context.Background(), "limit")
	if got := argumentLimit(tx.tx); got != 10 {
		t.Errorf("argumentLimit = %d, want the configured 10 (Coraza's transaction changed shape?)", got)
	}
	tx.Close()
	if got := argumentLimit(struct{}{}); got != defaultArgumentLimit {
		t.Errorf("argumentLimit of no transaction = %d, want %d", got, defaultArgumentLimit)
	}
	fields := func(n int, v string) *http.Request {
		var b []string
		for i := range n {
			b = append(b, "f"+strconv.Itoa(i)+"="+v)
		}
		return browserRequest("POST", "/app/contact", "application/x-www-form-urlencoded", strings.Join(b, "&"))
	}
	text := strings.Repeat("Is it ready? Let me know > soon ~Ann. ", 40) // 1520 bytes
	for _, c := range []struct {
		name   string
		req    *http.Request
		status int // 0: passes
	}{
		{"5 fields, 5 forms: 10 values", fields(5, "a%2541"), 0},
		{"6 fields, 6 forms: 12 values", fields(6, "a%2541"), http.StatusBadRequest},
		{"6 fields, no forms", fields(6, "a"), 0},
		{"11 fields, no forms", fields(11, "a"), http.StatusBadRequest},
		{"base64 of text: 2027 + 1520 bytes", fields(1, url.QueryEscape(base64Flat(text))), 0},
		{"base64 of text: 2 x (2027 + 1520) bytes", fields(2, url.QueryEscape(base64Flat(text))), http.StatusRequestEntityTooLarge},
		{"the same text as it is: 2 x 1520 bytes", fields(2, url.QueryEscape(text)), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.Check(c.req)
			if got := map[bool]int{false: 0, true: v.Status}[v.Blocked()]; got != c.status {
				t.Errorf("status %d, want %d (rules %v)", got, c.status, v.Rules)
			}
		})
	}
}

// A document type declaration is cut where it ends, internal subset
// included, whatever the bytes; an unterminated one is taken whole.
func FuzzDoctypeOf(f *testing.F) {
	for _, s := range []string{`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "f">]><a/>`, "<!doctype html><p>", "<!ENTITY % p SYSTEM 'x'>", "<!DOCTYPE [[[", "<a/>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, ok := doctypeOf(doc)
		if !ok {
			return
		}
		if !bytes.Contains(doc, []byte(d)) || len(d) < 8 || d[0] != '<' || d[1] != '!' {
			t.Fatalf("doctypeOf(%q) = %q", doc, d)
		}
	})
}

func TestIsGraphQLKey(t *testing.T) {
	for key, want := range map[string]bool{
		"query": true, "json.query": true, "json.0.query": true, "json.12.query": true,
		"q": false, "xquery": false, "json.xquery": false, "json..query": false, "json.a.query": false,
		"json.0.query.x": false, "body.query": false, "json.0.1.query": false,
	} {
		if got := isGraphQLKey(key); got != want {
			t.Errorf("isGraphQLKey(%q) = %v, want %v", key, got, want)
		}
	}
}
