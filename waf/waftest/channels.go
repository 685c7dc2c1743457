package waftest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode/utf16"
)

// Channel is one place of an HTTP request where a client can put a value:
// Build makes a realistic request to base (scheme://host, no slash at the
// end) that carries v there, the rest of the request the same for every
// value so that a verdict can only come from v.
type Channel struct {
	Name  string
	Build func(base, v string) *http.Request
}

// Channels are the request channels of the attack matrix, in the order
// its results list them. Each encodes v the way a client must for that
// place (query escaping, JSON, XML text, multipart quoting...) and no
// further, except the ones whose point is an extra encoding (base64,
// double URL, \u and HTML entity escapes, JSON in a JSON string).
var Channels = []Channel{
	{"query", func(b, v string) *http.Request {
		return get(b + "/app/search?q=" + url.QueryEscape(v) + "&page=1")
	}},
	{"form", func(b, v string) *http.Request {
		return body("POST", b+"/app/contact", "application/x-www-form-urlencoded",
			"name=Ann+Example&comment="+url.QueryEscape(v)+"&consent=yes")
	}},
	{"json.nested", func(b, v string) *http.Request {
		return jsonPost(b, map[string]any{"order": map[string]any{"id": 1234, "customer": map[string]any{"name": "Ann", "note": v}}})
	}},
	{"json.array", func(b, v string) *http.Request {
		return jsonPost(b, map[string]any{"id": 1234, "tags": []string{"gift", v}})
	}},
	{"multipart.field", func(b, v string) *http.Request { return multipartPost(b, v, "notes.txt") }},
	{"multipart.filename", func(b, v string) *http.Request { return multipartPost(b, "hello", v) }},
	{"xml.text", func(b, v string) *http.Request {
		return body("POST", b+"/app/orders", "application/xml",
			`<?xml version="1.0" encoding="UTF-8"?><order><id>1234</id><note>`+xmlEscape(v)+`</note></order>`)
	}},
	{"xml.attr", func(b, v string) *http.Request {
		return body("POST", b+"/app/orders", "application/xml",
			`<?xml version="1.0" encoding="UTF-8"?><order id="1234" note="`+xmlEscape(v)+`"><item>shoes</item></order>`)
	}},
	{"xml.document", func(b, v string) *http.Request {
		doc := v // a value that is markup is the document itself, as XXE is sent
		if !strings.HasPrefix(v, "<") {
			doc = `<?xml version="1.0" encoding="UTF-8"?><note>` + xmlEscape(v) + `</note>`
		}
		return body("POST", b+"/app/orders", "application/xml", doc)
	}},
	{"path.segment", func(b, v string) *http.Request { return get(b + "/app/files/" + url.PathEscape(v) + "/view") }},
	{"path.param", func(b, v string) *http.Request { return get(b + "/app/files;x=" + url.PathEscape(v) + "/view") }},
	{"cookie", func(b, v string) *http.Request {
		r := get(b + "/app/home")
		r.Header.Set("Cookie", "session_id=a1b2c3d4e5f6; theme=dark; pref="+cookieEscape(v))
		return r
	}},
	{"header.user-agent", func(b, v string) *http.Request { return withHeader(b, "User-Agent", v) }},
	{"header.referer", func(b, v string) *http.Request { return withHeader(b, "Referer", v) }},
	{"header.custom", func(b, v string) *http.Request { return withHeader(b, "X-Custom-Data", v) }},
	{"query.base64", func(b, v string) *http.Request {
		return get(b + "/app/search?data=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(v))))
	}},
	{"query.double-url", func(b, v string) *http.Request {
		return get(b + "/app/search?q=" + url.QueryEscape(url.QueryEscape(v)))
	}},
	{"json.u-escape", func(b, v string) *http.Request {
		return body("POST", b+"/app/api/orders", "application/json", `{"id":1234,"note":"`+uEscape(v)+`"}`)
	}},
	{"query.html-entity", func(b, v string) *http.Request {
		return get(b + "/app/search?q=" + url.QueryEscape(entityEscape(v)))
	}},
	{"json.in-json", func(b, v string) *http.Request {
		inner, _ := json.Marshal(map[string]any{"comment": v, "rating": 5})
		return jsonPost(b, map[string]any{"type": "review", "payload": string(inner)})
	}},
}

// LoadValues reads a payload file: one value per line; blank lines and
// lines that start with "# " are comments.
func LoadValues(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" || l == "#" || strings.HasPrefix(l, "# ") {
			continue
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

func get(u string) *http.Request {
	r, err := http.NewRequest("GET", u, nil)
	if err != nil {
		panic(err) // every URL above is built from escaped parts
	}
	browser(r)
	return r
}

func body(method, u, ctype, b string) *http.Request {
	r, err := http.NewRequest(method, u, strings.NewReader(b))
	if err != nil {
		panic(err)
	}
	browser(r)
	r.Header.Set("Content-Type", ctype)
	return r
}

// Host is the Host header of every channel's request: a name, since CRS
// scores a numeric Host (920350) and that would add to every verdict.
const Host = "shop.example.com"

// browser sets the headers a current browser's fetch() sends, so that a
// request is flagged for its value, not for looking like a script.
func browser(r *http.Request) {
	r.Host = Host
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Accept-Language", "en-US,en;q=0.5")
	r.Header.Set("Referer", "https://shop.example.com/app/home")
}

func jsonPost(b string, v any) *http.Request {
	j, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return body("POST", b+"/app/api/orders", "application/json", string(j))
}

func multipartPost(b, field, filename string) *http.Request {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.SetBoundary("----sekishoBoundary7MA4YWxkTrZu0gW")
	w.WriteField("title", "My upload")
	w.WriteField("comment", field)
	fw, _ := w.CreateFormFile("upload", filename)
	fw.Write([]byte("plain text file contents\n"))
	w.Close()
	return body("POST", b+"/app/upload", w.FormDataContentType(), buf.String())
}

func withHeader(b, name, v string) *http.Request {
	r := get(b + "/app/home")
	r.Header.Set(name, headerEscape(v))
	return r
}

func xmlEscape(v string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(v))
	return b.String()
}

// cookieEscape percent-encodes what RFC 6265 keeps out of a cookie value
// (and %), as clients do; the rest goes as it is.
func cookieEscape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\";,\\%", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// headerEscape percent-encodes control bytes, which no header value may
// carry; the rest goes as it is.
func headerEscape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// uEscape writes every character of v as a JSON \u escape (surrogate
// pairs above the BMP), the form JSON encoders of some languages use.
func uEscape(v string) string {
	var b strings.Builder
	for _, r := range v {
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.String()
}

// entityEscape writes every character of v as an HTML numeric entity.
func entityEscape(v string) string {
	var b strings.Builder
	for _, r := range v {
		fmt.Fprintf(&b, "&#%d;", r)
	}
	return b.String()
}
