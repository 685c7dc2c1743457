package waf

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestAddDecodedQueryArgs(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  []string // key=value of the added values
	}{
		{"q=running+shoes&page=2", nil},
		{"q=" + url.QueryEscape(url.QueryEscape("' OR 1=1--")), []string{"q=' OR 1=1--"}},
		{"q=%253Cscript%253E", []string{"q=<script>"}},
		{"q=" + url.QueryEscape("&lt;script&gt;"), nil}, // named: escaped text, inert
		{"q=" + url.QueryEscape("&#60;script&#x3E;&#X3c;&#0;&#99999999;&#;&#x;"), []string{"q=<script><\uFFFD\uFFFD&#;&#x;"}},
		{"q=" + url.QueryEscape("&#39; OR &#x31;=1"), []string{"q=' OR 1=1"}},
		{"q=Tom+%26+Jerry", nil},             // a bare & is no reference
		{"q=50%25+off", nil},                 // "50% off": no escape left
		{"q=%25zz%252F", []string{"q=%zz/"}}, // an invalid escape stays, the valid one decodes
		{"a%2541=1&&=x&k", nil},
		{"d=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("; cat /etc/passwd"))), []string{"d=; cat /etc/passwd"}},
		{"d=" + base64.RawURLEncoding.EncodeToString([]byte("<svg/onload=alert(1)>?")), []string{"d=<svg/onload=alert(1)>?"}},
		{"d=c2hvcnQ=", nil}, // "short": under minBase64
		{"state=" + base64.RawURLEncoding.EncodeToString([]byte{0x8f, 0x01, 0xfe, 0x33, 0x90, 0x00, 0x12, 0x7f, 0xc4, 0x55, 0x21, 0xee}), nil}, // random bytes
		{"q=HelloWorldFromParis", nil}, // decodes to bytes that are not text
		{"n%2541me=%2541", []string{"n%41me=A"}},
	} {
		var got []string
		addDecodedQueryArgs(tc.query, func(k, v string) { got = append(got, k+"="+v) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: added %q, want %q", tc.query, got, tc.want)
		}
	}
}

// base64Text decodes base64 of text, padded or not, in either alphabet,
// and, as lenient decoders (encoding/base64, browsers' atob aside, MIME)
// do, base64 broken into lines by CR LF or LF.
func TestBase64Text(t *testing.T) {
	mime := func(s string, n int) string { // s's base64 in lines of n
		e := base64.StdEncoding.EncodeToString([]byte(s))
		var b strings.Builder
		for len(e) > n {
			b.WriteString(e[:n] + "\r\n")
			e = e[n:]
		}
		return b.String() + e
	}
	for _, tc := range []struct {
		in, want string // want "": refused
	}{
		{base64.StdEncoding.EncodeToString([]byte("' UNION SELECT password FROM users--")), "' UNION SELECT password FROM users--"},
		{base64.RawURLEncoding.EncodeToString([]byte("<img src=x onerror=alert(1)>")), "<img src=x onerror=alert(1)>"},
		{mime("<script>alert(document.cookie)</script>", 16), "<script>alert(document.cookie)</script>"},
		{mime("; cat /etc/passwd; echo done", 8) + "\r\n", "; cat /etc/passwd; echo done"},
		{strings.ReplaceAll(mime("<svg onload=alert(1)>", 12), "\r\n", "\n"), "<svg onload=alert(1)>"},
		{"\r\n\r\n\r\n\r\nc2hvcnQ", ""}, // "short": line breaks do not count toward minBase64
		{"PHN2Zz4K\tPHN2Zz4K", ""},      // a tab is no line break
		{"PHN2Zz4K PHN2Zz4K", ""},       // nor is a space (see decodedForms)
		{"HelloWorldFromParis", ""},
	} {
		got, ok := base64Text(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("base64Text(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// percentDecode agrees with net/url wherever net/url can decode; neither
// decoder grows a value.
func FuzzPercentDecode(f *testing.F) {
	for _, s := range []string{"", "a+b", "%41", "%4", "%zz%41", "%%41", "100%", "%C3%A9", "&lt;%26amp;", "q=%26%2360%3B&r=&#x41", "&#&#x&#1234567890;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := percentDecode(s)
		if len(d) > len(s) {
			t.Fatalf("%q decoded to a longer %q", s, d)
		}
		if want, err := url.QueryUnescape(s); err == nil && d != want {
			t.Fatalf("%q: %q, net/url %q", s, d, want)
		}
		if hasPercentEscape(s) == (d == strings.ReplaceAll(s, "+", " ")) {
			t.Fatalf("%q: hasPercentEscape %v, decoded %q", s, hasPercentEscape(s), d)
		}
		if r := numericRefDecode(s); len(r) > len(s) {
			t.Fatalf("%q: references decoded to a longer %q", s, r)
		}
		if d, ok := base64Text(s); ok && len(d) > len(s) {
			t.Fatalf("%q: base64 decoded to a longer %q", s, d)
		}
		n := 0
		addDecodedQueryArgs(s, func(k, v string) { n++ })
		if n > 3*(strings.Count(s, "&")+1) {
			t.Fatalf("%q: %d values added", s, n)
		}
	})
}

// decodedForms gives each value at most three forms, none longer than it;
// with spaces read back as '+', base64 is decoded as encoding/base64 does
// and as base64Text does the same value with '+'.
func TestDecodedForms(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("Is it ready? Let me know > soon ~Ann"))
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{b64, []string{"Is it ready? Let me know > soon ~Ann"}},
		{strings.ReplaceAll(b64, "+", " "), []string{"Is it ready? Let me know > soon ~Ann"}},                      // a form's unescaped '+'
		{strings.ReplaceAll(b64[:24]+"\r\n"+b64[24:], "+", " "), []string{"Is it ready? Let me know > soon ~Ann"}}, // and lines
		{"Hello there see you at noon", nil},                                                                       // words and spaces: base64's alphabet, not base64 of text
		{"  SXMgaXQgcmVhZHk/IExldCBtZSBrbm93", nil},                                                                // spaces that are not '+' break the decoding
		{"a%2541&#65;", []string{"a%41&#65;", "a%2541A"}},
		{"PHN2Zz4K%20&#60;", []string{"PHN2Zz4K &#60;", "PHN2Zz4K%20<"}},
		{"", nil},
	} {
		var got []string
		decodedForms(tc.value, func(d string) { got = append(got, d) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("decodedForms(%q) = %q, want %q", tc.value, got, tc.want)
		}
	}
}

func FuzzDecodedForms(f *testing.F) {
	for _, s := range []string{"SXMgaXQgcmVhZHk/IExldCBtZSBrbm93ID4gc29vbiB fkFubg", "a%2541&#65;", "Hello there see you", "PHN2Zz4K\r\nPHN2Zz4K", "  ", "&#000000060;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		decodedForms(s, func(d string) {
			if n++; n > 3 || len(d) > len(s) {
				t.Fatalf("%q: form %d %q", s, n, d)
			}
		})
		d, ok := base64TextSpaced(s)
		if !ok {
			return
		}
		if !strings.Contains(s, " ") {
			t.Fatalf("%q has no space, yet decoded as spaced base64", s)
		}
		if w, wok := base64Text(strings.ReplaceAll(s, " ", "+")); !wok || w != d {
			t.Fatalf("%q: %q, base64Text with '+' %q, %v", s, d, w, wok)
		}
		if _, plain := base64Text(s); plain {
			t.Fatalf("%q: base64Text accepts spaces", s)
		}
	})
}

// addDecodedQueryArgs gives the decoded forms of a raw query's arguments,
// as Coraza parses the query and decodedArgs then adds them.
func addDecodedQueryArgs(rawQuery string, add func(key, value string)) {
	for pair := range strings.SplitSeq(rawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, value := percentDecode(k), percentDecode(v)
		decodedForms(value, func(d string) { add(key, d) })
	}
}
