package accesslog

import "strings"

// An escape set is what HAProxy writes as '#' and two upper-case hex
// digits in a log line (its log.c: hdr_encode_map, url_encode_map): bytes
// below 32 and from 127 up, '"' and '#', and for captured headers '{', '|'
// and '}' too, the delimiters of their block. Without it a client could
// close a field and write fields, or a whole line, of its own.
type escapeSet [256]bool

var (
	// urlEscapes is for the request line and its parts (%r, %HM, %HU, %HV).
	urlEscapes = newEscapeSet(`"#`)
	// headerEscapes is for captured headers (%hr, %hs).
	headerEscapes = newEscapeSet(`"#{|}`)
)

func newEscapeSet(chars string) *escapeSet {
	var s escapeSet
	for c := range 256 {
		s[c] = c < 32 || c >= 127
	}
	for i := range len(chars) {
		s[chars[i]] = true
	}
	return &s
}

// escape writes v with the bytes of set as HAProxy does.
func (set *escapeSet) escape(b *strings.Builder, v string) {
	const hex = "0123456789ABCDEF"
	for i := range len(v) {
		c := v[i]
		if set[c] {
			b.WriteByte('#')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
}

// String is v escaped.
func (set *escapeSet) String(v string) string {
	var b strings.Builder
	set.escape(&b, v)
	return b.String()
}
