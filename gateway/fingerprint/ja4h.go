package fingerprint

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JA4H returns r's JA4H fingerprint as far as net/http allows. r.Header
// is a map, so the order of the header names, which JA4H_b hashes, is
// lost (and HTTP/1 names come back canonicalised: "user-agent" reads
// "User-Agent"). JA4H therefore hashes the names sorted, lower-cased for
// HTTP/2 and HTTP/3, whose clients send them so: parts a, c and d equal
// any JA4H implementation's, part b compares only with other results of
// this function. Use JA4HOrdered wherever the order is known.
func JA4H(r *http.Request) string {
	proto := r.Proto
	if r.ProtoMajor > 0 {
		proto = "HTTP/" + strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
	}
	return JA4HOrdered(r.Method, proto, sortedHeaderNames(r), r.Header)
}

// JA4HOrdered returns the JA4H fingerprint of a request: method and proto
// as on the request line ("GET", "HTTP/1.1"; "HTTP/2.0" or "HTTP/3.0"),
// names all header field names, Cookie and Referer included, in the order
// and the case the client sent them (pseudo-headers such as ":path" are
// skipped), and h the values as net/http keys them, of which only Cookie
// and Accept-Language are read.
func JA4HOrdered(method, proto string, names []string, h http.Header) string {
	p := ja4hParts(method, proto, names, h)
	b := hash12([]byte(p.headers), p.nHeaders)
	c := hash12([]byte(p.cookieNames), p.nCookies)
	d := hash12([]byte(p.cookiePairs), p.nCookies)
	return p.a + "_" + string(b[:]) + "_" + string(c[:]) + "_" + string(d[:])
}

// ja4hFields is JA4H before hashing: part a, and the three lists (the
// spec's raw JA4H_r) that parts b, c and d hash.
type ja4hFields struct {
	a                                 string
	headers, cookieNames, cookiePairs string
	nHeaders, nCookies                int
}

// ja4hParts does all of JA4H but the hashing, which tests skip.
func ja4hParts(method, proto string, names []string, h http.Header) ja4hFields {
	var f ja4hFields
	cookie, referer := byte('n'), byte('n')
	kept := make([]string, 0, len(names))
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, ":"):
		case strings.EqualFold(n, "Cookie"):
			cookie = 'c'
		case strings.EqualFold(n, "Referer"):
			referer = 'r'
		default:
			kept = append(kept, n)
		}
	}
	f.headers, f.nHeaders = strings.Join(kept, ","), len(kept)
	cookies := parseCookies(h.Values("Cookie"))
	f.cookieNames, f.cookiePairs, f.nCookies = joinCookies(cookies)
	c1, c2 := twoDigits(len(kept))
	f.a = methodCode(method) + httpVersion(proto) + string([]byte{cookie, referer, c1, c2}) +
		languageCode(h.Get("Accept-Language"))
	return f
}

// methodCode is the method's first two letters, lower-cased ("ge" for
// GET), padded with '0' for a shorter one.
func methodCode(m string) string {
	code := []byte("00")
	for i := 0; i < len(code) && i < len(m); i++ {
		code[i] = m[i]
		if 'A' <= m[i] && m[i] <= 'Z' {
			code[i] += 'a' - 'A'
		}
	}
	return string(code)
}

// httpVersion is "10", "11", "20" or "30" from "HTTP/1.0" ... "HTTP/3";
// "00" for anything else.
func httpVersion(proto string) string {
	v, ok := strings.CutPrefix(proto, "HTTP/")
	switch {
	case !ok || len(v) == 0 || !isDigit(v[0]):
		return "00"
	case len(v) == 1:
		return v + "0"
	case len(v) == 3 && v[1] == '.' && isDigit(v[2]):
		return v[:1] + v[2:]
	}
	return "00"
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// languageCode is the first four characters of the primary (first)
// language, without '-' and lower-cased ("en-US,en;q=0.9" gives "enus"),
// padded with '0'; "0000" without Accept-Language.
func languageCode(v string) string {
	v, _, _ = strings.Cut(v, ",")
	v, _, _ = strings.Cut(v, ";")
	v = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(v), "-", ""))
	out, n := make([]byte, 0, 8), 0
	for _, r := range v {
		if n == 4 {
			break
		}
		out, n = utf8.AppendRune(out, r), n+1
	}
	for ; n < 4; n++ {
		out = append(out, '0')
	}
	return string(out)
}

// cookie is one name=value of a Cookie header; hasValue tells "a=" from "a".
type cookie struct {
	name, value string
	hasValue    bool
}

// parseCookies splits Cookie header values on ';' (RFC 6265 sends one
// header, HTTP/2 may split it across several) and sorts them by name,
// then value, as the spec's sorted cookie lists want.
func parseCookies(values []string) []cookie {
	var out []cookie
	for _, v := range values {
		for piece := range strings.SplitSeq(v, ";") {
			piece = strings.Trim(piece, " \t")
			if piece == "" {
				continue
			}
			name, value, ok := strings.Cut(piece, "=")
			out = append(out, cookie{name, value, ok})
		}
	}
	slices.SortFunc(out, func(x, y cookie) int {
		return cmp.Or(strings.Compare(x.name, y.name),
			cmp.Compare(b2i(x.hasValue), b2i(y.hasValue)),
			strings.Compare(x.value, y.value))
	})
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// joinCookies lists the sorted names and the sorted name=value pairs.
func joinCookies(cs []cookie) (names, pairs string, n int) {
	var nb, pb strings.Builder
	for i, c := range cs {
		if i > 0 {
			nb.WriteByte(',')
			pb.WriteByte(',')
		}
		nb.WriteString(c.name)
		pb.WriteString(c.name)
		if c.hasValue {
			pb.WriteByte('=')
			pb.WriteString(c.value)
		}
	}
	return nb.String(), pb.String(), len(cs)
}

// sortedHeaderNames rebuilds the names net/http received, repeats
// included, in sorted order; net/http moves Host and Transfer-Encoding
// out of an HTTP/1 request's Header, so they are put back.
func sortedHeaderNames(r *http.Request) []string {
	names := make([]string, 0, len(r.Header)+2)
	for k, vs := range r.Header {
		for range vs {
			names = append(names, k)
		}
	}
	if r.ProtoMajor < 2 {
		if _, ok := r.Header["Host"]; !ok && r.Host != "" {
			names = append(names, "Host")
		}
		if _, ok := r.Header["Transfer-Encoding"]; !ok && len(r.TransferEncoding) > 0 {
			names = append(names, "Transfer-Encoding")
		}
	} else {
		for i, n := range names {
			names[i] = strings.ToLower(n)
		}
	}
	slices.Sort(names)
	return names
}
