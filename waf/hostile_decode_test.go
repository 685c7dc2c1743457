package waf

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// allocatedBytes runs f and returns the bytes the process allocated meanwhile.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Base64 of base64 of ... 50 levels deep decodes one level, once: one
// value is added, the next level's text, not the payload at the bottom,
// and the work is one pass over the value (bytes allocated a small
// multiple of its size). Wrapped in a percent-encoding, still one value
// for each decoding, none of them recursive.
func TestHostile_NestedBase64DecodesOneLevel(t *testing.T) {
	const levels = 50
	enc := make([]string, levels+1)
	enc[0] = "<" // a byte: 50 levels make ~1.8 MB
	for i := 1; i <= levels; i++ {
		enc[i] = base64.StdEncoding.EncodeToString([]byte(enc[i-1]))
	}
	top := enc[levels]
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"raw", "d=" + top, []string{"d=" + enc[levels-1]}},
		{"padding escaped", "d=" + strings.ReplaceAll(top, "=", "%3D"), []string{"d=" + enc[levels-1]}},
		// A second percent-encoding over it: the decoded value is added as
		// it is, not decoded as base64 in turn.
		{"double URL encoding", "d=" + strings.ReplaceAll(top, "V", "%2556"), []string{"d=" + top}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			alloc := allocatedBytes(func() {
				addDecodedQueryArgs(tc.query, func(k, v string) { got = append(got, k+"="+v) })
			})
			t.Logf("%d-byte query, %d levels: %d values added, %d bytes allocated (%.1fx)", len(tc.query), levels, len(got), alloc, float64(alloc)/float64(len(tc.query)))
			if len(got) != len(tc.want) {
				t.Fatalf("%d values added, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("value %d is %d bytes %.40q..., want one level decoded, %d bytes %.40q...", i, len(got[i]), got[i], len(tc.want[i]), tc.want[i])
				}
			}
			if bound := 8 * uint64(len(tc.query)); alloc > bound {
				t.Errorf("allocated %d bytes for a %d-byte query, bound %d", alloc, len(tc.query), bound)
			}
		})
	}
}

// Values built to make the decoders backtrack or rescan, 100 KiB and
// 200 KiB of them: the work is one pass. Each call allocates a fixed
// number of times, whatever the size (no allocation per escape or per
// reference), and bytes in proportion to the input; what is added is what
// one decoding step gives.
func TestHostile_DecodersLinear(t *testing.T) {
	for _, tc := range []struct {
		name  string
		unit  string                  // repeated to the size
		query func(v string) string   // the raw query holding it
		added func(v string) []string // the values addDecodedQueryArgs adds, or nil
		alone func(v string)          // the decoder on its own
		most  int                     // at most so many allocations by alone
	}{
		{
			name:  "%25 repeated",
			unit:  "%25",
			query: func(v string) string { return "q=" + v },
			added: func(v string) []string { return nil }, // "%%%...": no escape left
			alone: func(v string) { percentDecode(v) }, most: 2,
		},
		{
			name:  "%2525 repeated: a double encoding, decoded to %%%",
			unit:  "%2525",
			query: func(v string) string { return "q=" + v },
			added: func(v string) []string { return []string{"q=" + strings.Repeat("%", len(v)/5)} },
			alone: func(v string) { percentDecode(percentDecode(v)) }, most: 4,
		},
		{
			name:  "&#&# repeated",
			unit:  "&#",
			query: func(v string) string { return "q=" + url.QueryEscape(v) },
			added: func(v string) []string { return nil }, // no reference: nothing new
			alone: func(v string) { numericRefDecode(v) }, most: 1,
		},
		{
			name:  "&#1 repeated: every one a reference",
			unit:  "&#65",
			query: func(v string) string { return "q=" + url.QueryEscape(v) },
			added: func(v string) []string { return []string{"q=" + strings.Repeat("A", len(v)/4)} },
			alone: func(v string) { numericRefDecode(v) }, most: 1,
		},
		{
			name:  "&#x then endless digits",
			unit:  "9",
			query: func(v string) string { return "q=" + url.QueryEscape("&#x"+v) },
			added: func(v string) []string { return []string{"q=" + numericRefDecode("&#x"+v)} }, // one value; its text is FuzzNumericRefDecode's
			alone: func(v string) { numericRefDecode("&#x" + v) }, most: 2,
		},
		{
			name:  "base64 alphabet that is not text",
			unit:  "AAAA",
			query: func(v string) string { return "q=" + v },
			added: func(v string) []string { return nil },
			alone: func(v string) { base64Text(v) }, most: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var allocs [2]float64
			for i, size := range []int{100 << 10, 200 << 10} {
				v := strings.Repeat(tc.unit, size/len(tc.unit))
				q := tc.query(v)
				var got []string
				alloc := allocatedBytes(func() {
					addDecodedQueryArgs(q, func(k, v string) { got = append(got, k+"="+v) })
				})
				if want := tc.added(v); !slices.Equal(got, want) {
					t.Fatalf("%d bytes: added %d values, want %d (%.40q)", size, len(got), len(want), got)
				}
				if bound := 8 * uint64(len(q)); alloc > bound {
					t.Errorf("%d-byte query: %d bytes allocated, bound %d", len(q), alloc, bound)
				}
				allocs[i] = testing.AllocsPerRun(5, func() { tc.alone(v) })
				t.Logf("%d-byte query: %d bytes allocated (%.1fx); the decoder alone %.0f allocations", len(q), alloc, float64(alloc)/float64(len(q)), allocs[i])
				if allocs[i] > float64(tc.most) {
					t.Errorf("%d bytes: the decoder allocated %.0f times, want at most %d: an allocation per unit", size, allocs[i], tc.most)
				}
			}
			if allocs[1] != allocs[0] {
				t.Errorf("allocations grow with the size: %.0f for 100 KiB, %.0f for 200 KiB", allocs[0], allocs[1])
			}
		})
	}
}

// numericRefs is the HTML standard's reading of numeric character
// references, every digit of them, written as a regular expression.
var numericRefs = regexp.MustCompile(`&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));?`)

func numericRefReference(s string) string {
	return numericRefs.ReplaceAllStringFunc(s, func(m string) string {
		sub := numericRefs.FindStringSubmatch(m)
		digits, base := sub[2], 10
		if sub[1] != "" {
			digits, base = sub[1], 16
		}
		cp, err := strconv.ParseInt(strings.TrimLeft(digits, "0"), base, 32)
		if digits == strings.Repeat("0", len(digits)) {
			cp, err = 0, nil
		}
		if err != nil || cp == 0 || cp > utf8.MaxRune || (cp >= 0xD800 && cp <= 0xDFFF) {
			return "\uFFFD"
		}
		return string(rune(cp))
	})
}

// FuzzNumericRefDecode compares numericRefDecode with numericRefReference
// on all text (see also TestNumericRefDecode_LeadingZeros).
func FuzzNumericRefDecode(f *testing.F) {
	for _, s := range []string{"&#60;", "&#x3C;script", "&#X3c&#0;", "&#99999999;", "&#;&#x;", "a&#65;b&#x42", "&#55296;", "&#1114112;", "&#128;", "&#0", "&lt;&#&amp;", "&#000000060;", "&#x0000000000003c", "&#99999999999999999999;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := numericRefDecode(s)
		if len(d) > len(s) {
			t.Fatalf("%q decoded to a longer %q", s, d)
		}
		if !strings.Contains(s, "&#") && d != s {
			t.Fatalf("%q without a reference became %q", s, d)
		}
		if want := numericRefReference(s); d != want {
			t.Fatalf("%q: %q, the reference %q", s, d, want)
		}
	})
}

// FuzzBase64Text: what base64Text accepts decodes to text (valid UTF-8,
// no control character but tab and line breaks), shorter than the value,
// and every value encoding/base64 decodes to such text, padded or not, in
// either alphabet, broken into lines or not, is accepted with the same text.
func FuzzBase64Text(f *testing.F) {
	for _, s := range []string{"OyBjYXQgL2V0Yy9wYXNzd2Q=", "PHN2Zy9vbmxvYWQ9YWxlcnQoMSk-Pw", "c2hvcnQ=", "HelloWorldFromParis", "AAAAAAAAAAAAAAAA", "YWJj=ZGVm", "PD9waHAgc3lzdGVtKCRfR0VUWzBdKTsgPz4K", "PD9waHAgc3lz\r\ndGVtKCRfR0VU\nWzBdKTsgPz4K\r\n", "\r\n\r\n\r\n\r\nc2hvcnQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := base64Text(s)
		if ok {
			if len(d) >= len(s) || !utf8.ValidString(d) {
				t.Fatalf("%q: accepted as %q", s, d)
			}
			for _, r := range d {
				if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
					t.Fatalf("%q: accepted as %q, which holds %U", s, d, r)
				}
			}
		}
		if n := len(s) - strings.Count(s, "\r") - strings.Count(s, "\n"); n < minBase64 {
			return // too short once line breaks, which both skip, are left out
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			b, err := enc.DecodeString(s)
			if err != nil || !utf8.Valid(b) || strings.IndexFunc(string(b), func(r rune) bool {
				return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
			}) >= 0 {
				continue
			}
			if !ok || d != string(b) {
				t.Fatalf("%q: %q, %v; encoding/base64 %q", s, d, ok, b)
			}
		}
	})
}

// A browser reads every digit of a numeric reference (the HTML standard's
// numeric character reference states): &#000000060; is '<' to it, and
// leading zeros must not hide the character from the rules; a reference
// of more digits than any code point is U+FFFD, its digits all consumed.
func TestNumericRefDecode_LeadingZeros(t *testing.T) {
	for _, s := range []string{"&#000000060;", "&#x00000003c;", "&#0000000000000000000060", "&#00000000000000000000;x", "&#x0000000000000000000000000000000041", "&#999999999999999999999999;<", "&#x110000000000000041;"} {
		if got, want := numericRefDecode(s), numericRefReference(s); got != want {
			t.Errorf("%q decodes to %q, a browser reads %q", s, got, want)
		}
	}
}

// depthOf is the nesting of valid JSON as encoding/json reads it.
func depthOf(s []byte) int {
	dec := json.NewDecoder(bytes.NewReader(s))
	depth, most := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return most
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			most = max(most, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// FuzzNestingExceeds compares the one-pass depth check that guards
// gjson's recursion with encoding/json's reading of valid JSON: the two
// agree on the depth at every limit around it; on any input the check
// neither fails nor allocates.
func FuzzNestingExceeds(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"[[["}]}`, `"\\"`, `[[[[]]]]`, `{"a\"[":[[]]}`, `[]`, `1`, strings.Repeat("[", 40) + strings.Repeat("]", 40), `]]][[[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		if n := testing.AllocsPerRun(1, func() { nestingExceeds(s, 3) }); n != 0 {
			t.Fatalf("%d allocations", int(n))
		}
		if !json.Valid(s) {
			return
		}
		d := depthOf(s)
		for limit := max(d-2, 0); limit <= d+2; limit++ {
			if got := nestingExceeds(s, limit); got != (d > limit) {
				t.Fatalf("%q, depth %d: nestingExceeds(%d) = %v", s, d, limit, got)
			}
		}
	})
}
