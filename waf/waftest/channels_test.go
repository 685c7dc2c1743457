package waftest

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// carried decodes, the way an application would, the value a channel's
// request carries; "" when the channel has no decoder here.
var carried = map[string]func(t *testing.T, r *http.Request) string{
	"query": func(t *testing.T, r *http.Request) string { return r.URL.Query().Get("q") },
	"form":  func(t *testing.T, r *http.Request) string { return formValue(t, r, "comment") },
	"json.nested": func(t *testing.T, r *http.Request) string {
		return jsonPath(t, readBody(t, r), "order", "customer", "note")
	},
	"json.array": func(t *testing.T, r *http.Request) string {
		var v struct{ Tags []string }
		decode(t, readBody(t, r), &v)
		return v.Tags[1]
	},
	"multipart.field":    func(t *testing.T, r *http.Request) string { return multipartOf(t, r, false) },
	"multipart.filename": func(t *testing.T, r *http.Request) string { return multipartOf(t, r, true) },
	"xml.text": func(t *testing.T, r *http.Request) string {
		var v struct {
			Note string `xml:"note"`
		}
		xmlDecode(t, r, &v)
		return v.Note
	},
	"xml.attr": func(t *testing.T, r *http.Request) string {
		var v struct {
			Note string `xml:"note,attr"`
		}
		xmlDecode(t, r, &v)
		return v.Note
	},
	"xml.document": func(t *testing.T, r *http.Request) string {
		if b := readBody(t, r); !strings.HasPrefix(b, "<?xml") {
			return b // markup is sent as the document
		}
		var v struct {
			Text string `xml:",chardata"`
		}
		xmlDecode(t, r, &v)
		return v.Text
	},
	"path.segment": func(t *testing.T, r *http.Request) string {
		return strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/app/files/"), "/view")
	},
	"path.param": func(t *testing.T, r *http.Request) string {
		return strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/app/files;x="), "/view")
	},
	"cookie": func(t *testing.T, r *http.Request) string {
		c, err := r.Cookie("pref")
		if err != nil {
			t.Fatal(err)
		}
		v, err := url.PathUnescape(c.Value)
		if err != nil {
			t.Fatal(err)
		}
		return v
	},
	"header.user-agent": func(t *testing.T, r *http.Request) string { return r.Header.Get("User-Agent") },
	"header.referer":    func(t *testing.T, r *http.Request) string { return r.Header.Get("Referer") },
	"header.custom":     func(t *testing.T, r *http.Request) string { return r.Header.Get("X-Custom-Data") },
	"query.base64": func(t *testing.T, r *http.Request) string {
		b, err := base64.StdEncoding.DecodeString(r.URL.Query().Get("data"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	},
	"query.double-url": func(t *testing.T, r *http.Request) string {
		v, err := url.QueryUnescape(r.URL.Query().Get("q"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	},
	"json.u-escape":     func(t *testing.T, r *http.Request) string { return jsonPath(t, readBody(t, r), "note") },
	"query.html-entity": func(t *testing.T, r *http.Request) string { return html.UnescapeString(r.URL.Query().Get("q")) },
	"json.in-json": func(t *testing.T, r *http.Request) string {
		return jsonPath(t, jsonPath(t, readBody(t, r), "payload"), "comment")
	},
}

// Every channel carries the value whole, decodable the way an application
// would decode it, and the value nowhere else in a raw form the WAF could
// see without decoding (for the encoding channels): a channel that lost or
// mangled its value would make the matrix measure nothing.
func TestChannels_CarryTheValue(t *testing.T) {
	values := []string{
		`' OR '1'='1`, `<script>alert("x")</script>`, `a;b "c" \d %41 ,e`, `${jndi:ldap://x/a}`,
		"Zürich 注文 😀", "../../etc/passwd", `{{7*7}}`, "tab\there",
	}
	for _, ch := range Channels {
		dec, ok := carried[ch.Name]
		if !ok {
			t.Errorf("channel %s has no decoder in this test", ch.Name)
			continue
		}
		for _, v := range values {
			r := ch.Build("https://"+Host, v)
			if r.Host != Host {
				t.Errorf("%s: Host %q", ch.Name, r.Host)
			}
			if got := dec(t, r); got != v {
				t.Errorf("%s carries %q, want %q", ch.Name, got, v)
			}
		}
	}
	if len(carried) != len(Channels) {
		t.Errorf("%d decoders for %d channels", len(carried), len(Channels))
	}
}

// The encoding channels send no form of the value that one URL decoding
// (which every request gets) turns back into the value.
func TestChannels_EncodingsHideTheValue(t *testing.T) {
	const v = "<script>alert(1)</script>"
	for name, hidden := range map[string][]string{
		"query.base64":      {"script", "alert", "<", "%3C"},
		"query.double-url":  {"<", "%3C", "(", "%28"},
		"json.u-escape":     {"script", "alert", "<"},
		"query.html-entity": {"script", "alert", "<", "%3C"},
	} {
		i := slices.IndexFunc(Channels, func(c Channel) bool { return c.Name == name })
		if i < 0 {
			t.Errorf("no channel %s", name)
			continue
		}
		for _, ch := range Channels[i : i+1] {
			r := ch.Build("https://"+Host, v)
			raw := r.URL.RawQuery + readBody(t, r)
			for _, piece := range hidden {
				if strings.Contains(raw, piece) {
					t.Errorf("%s: %q is in the request as sent: %s", name, piece, raw)
				}
			}
		}
	}
}

func readBody(t *testing.T, r *http.Request) string {
	if r.Body == nil {
		return ""
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	return string(b)
}

func decode(t *testing.T, s string, v any) {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
}

// jsonPath is the string at keys in the JSON object s.
func jsonPath(t *testing.T, s string, keys ...string) string {
	var v any
	decode(t, s, &v)
	for _, k := range keys {
		v = v.(map[string]any)[k]
	}
	return v.(string)
}

func formValue(t *testing.T, r *http.Request, key string) string {
	q, err := url.ParseQuery(readBody(t, r))
	if err != nil {
		t.Fatal(err)
	}
	return q.Get(key)
}

func xmlDecode(t *testing.T, r *http.Request, v any) {
	if err := xml.Unmarshal([]byte(readBody(t, r)), v); err != nil {
		t.Fatal(err)
	}
}

func multipartOf(t *testing.T, r *http.Request, filename bool) string {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(strings.NewReader(readBody(t, r)), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case filename && p.FormName() == "upload":
			// The parameter as sent: FileName() would keep only its base name.
			_, cd, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
			if err != nil {
				t.Fatal(err)
			}
			return cd["filename"]
		case !filename && p.FormName() == "comment":
			b, _ := io.ReadAll(p)
			return string(b)
		}
	}
}
