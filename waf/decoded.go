package waf

import (
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Every argument, of the query and of the body, that still holds an
// encoding after the one decoding a server applies is presented a second
// time to the rules, decoded (decodedArgs, views.go): percent escapes (a
// double URL encoding), HTML numeric character references (&#60;, &#x3c;),
// base64 of text. Named references (&lt;, &amp;) stay: they are what
// escaping text for display produces, and such text is inert (CRS's own
// test 933100-33 forbids flagging "&lt;?"), while writing characters as
// numbers is how payloads hide. Each decoded form is one more value of the
// same argument (ARGS:q), so that every CRS rule inspects it, waf_matches
// names the argument, and an exclusion of the argument covers its decoded
// forms too. CRS's rules decode some of this themselves (t:urlDecodeUni,
// t:htmlEntityDecode), but most of its SQL and shell rules do not.
// Decoding is one step, linear in the value's length.

// decodedForms calls add with each form of value that one more decoding
// step gives, at most three, none longer than value: its percent escapes
// decoded (a second URL encoding), the text it is base64 of, its numeric
// character references decoded. Base64 is tried as it is and, when that
// fails, with its spaces read back as '+': a client that puts standard
// base64 in a query or a form unescaped has its '+' read as a space.
func decodedForms(value string, add func(string)) {
	if hasPercentEscape(value) {
		add(percentDecode(value))
	}
	if d, ok := base64Text(value); ok {
		add(d)
	} else if d, ok := base64TextSpaced(value); ok {
		add(d)
	}
	if strings.Contains(value, "&#") {
		if d := numericRefDecode(value); d != value {
			add(d)
		}
	}
}

// percentDecode decodes %XX escapes and '+' as a form does, leaving an
// invalid escape as it is (as Coraza's urlDecodeUni does), so that a stray
// '%' cannot make a value undecodable.
func percentDecode(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// hasPercentEscape reports whether s holds a valid %XX escape.
func hasPercentEscape(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		if isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// numericRefDecode decodes HTML numeric character references, &#DDD; and
// &#xHHH; (the ';' optional, as browsers read them), as an HTML parser
// does: every digit is read, and a code point that is not a character
// becomes U+FFFD. Anything else, named references included, stays as it is.
func numericRefDecode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "&#")
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
		k, base := i+2, 10
		if k < len(s) && (s[k] == 'x' || s[k] == 'X') {
			k, base = k+1, 16
		}
		// Every digit is read, as a browser does, leading zeros included;
		// the value stops growing past the last code point, so that a run
		// of any length is one pass and never overflows.
		start, cp := k, 0
		for k < len(s) && digitOf(s[k], base) >= 0 {
			if cp <= utf8.MaxRune {
				cp = cp*base + digitOf(s[k], base)
			}
			k++
		}
		if k == start {
			b.WriteString("&#") // not a reference
			i += 2
			continue
		}
		if k < len(s) && s[k] == ';' {
			k++
		}
		if cp == 0 || cp > utf8.MaxRune || (cp >= 0xD800 && cp <= 0xDFFF) {
			cp = utf8.RuneError
		}
		b.WriteRune(rune(cp))
		i = k
	}
	return b.String()
}

// digitOf is c's value as a digit in base 10 or 16, or -1.
func digitOf(c byte, base int) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case base == 16 && isHex(c):
		return int(unhex(c))
	}
	return -1
}

// minBase64 is the shortest value tried as base64: shorter ones are words
// and numbers as often as encodings, and too short to carry an attack.
const minBase64 = 12

// base64Text decodes s when it is base64 (standard or URL alphabet, padded
// or not, broken into lines by CR LF or LF as MIME and lenient decoders
// allow) of text: valid UTF-8 without control characters other than tab
// and line breaks. Random tokens, hashes and binary data decode to bytes
// that are not such text and are left alone.
func base64Text(s string) (string, bool) {
	if len(s) < minBase64 {
		return "", false
	}
	breaks := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			breaks++
			continue
		}
		if !isBase64Char(c) {
			return "", false
		}
	}
	if breaks > 0 {
		if len(s)-breaks < minBase64 {
			return "", false
		}
		s = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
	}
	raw := strings.TrimRight(s, "=")
	var d []byte
	var err error
	if strings.ContainsAny(raw, "-_") {
		d, err = base64.RawURLEncoding.DecodeString(raw)
	} else {
		d, err = base64.RawStdEncoding.DecodeString(raw)
	}
	if err != nil || !utf8.Valid(d) {
		return "", false
	}
	for _, r := range string(d) {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return "", false
		}
	}
	return string(d), true
}

// base64TextSpaced is base64Text of s with its spaces read back as '+',
// for s that holds spaces and nothing else outside base64's alphabet and
// line breaks (checked before anything is copied).
func base64TextSpaced(s string) (string, bool) {
	if len(s) < minBase64 || strings.IndexByte(s, ' ') < 0 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\r' && c != '\n' && !isBase64Char(c) {
			return "", false
		}
	}
	return base64Text(strings.ReplaceAll(s, " ", "+"))
}

// isBase64Char reports whether c is in either base64 alphabet or padding.
func isBase64Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}
