package waf

import (
	"regexp/syntax"
	"unicode/utf8"
)

// prefilter answers, before RE2 is asked, whether a value certainly cannot
// match a pattern. Most CRS evaluations on benign traffic do not match, and
// each RE2 call has a fixed cost; these checks cost a length compare and a
// substring scan. They may only ever say "cannot match" when that is
// certain: every doubt says "maybe" and the regex decides.
type prefilter struct {
	minLen int    // no match is shorter than this many bytes
	lit    string // every match contains this (lower case when fold), "" if none known
	fold   bool   // lit is compared ASCII-case-insensitively
}

// newPrefilter analyses a pattern as Go's regexp parses it.
func newPrefilter(pattern string) prefilter {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return prefilter{}
	}
	re = re.Simplify()
	p := prefilter{minLen: minLen(re)}
	if lit, fold, ok := longestRequired(re); ok {
		p.lit, p.fold = lit, fold
	}
	return p
}

// maybe reports whether value could match. value must be valid UTF-8.
func (p *prefilter) maybe(value string) bool {
	if len(value) < p.minLen {
		return false
	}
	if p.lit == "" {
		return true
	}
	if !p.fold {
		return indexOf(value, p.lit) >= 0
	}
	// Unicode case folding maps some non-ASCII runes onto ASCII letters (the
	// Kelvin sign K onto k, the long s onto s): with any non-ASCII byte in
	// the value, an ASCII-only search could miss a match.
	for i := 0; i < len(value); i++ {
		if value[i] >= utf8.RuneSelf {
			return true
		}
	}
	return indexFoldASCII(value, p.lit) >= 0
}

// minLen is a lower bound, in bytes, of the length of any match.
func minLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				n++ // a folded variant may be a single byte
			} else {
				n += utf8.RuneLen(r)
			}
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n += minLen(s)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, s := range re.Sub {
			if m := minLen(s); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0 // empty-width assertions, star, quest, empty and no match
}

// longestRequired finds the longest literal that every match contains.
// Case-folded literals count only when they are all ASCII.
func longestRequired(re *syntax.Regexp) (lit string, fold, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		f := re.Flags&syntax.FoldCase != 0
		b := make([]byte, 0, len(re.Rune))
		for _, r := range re.Rune {
			if f {
				if r >= utf8.RuneSelf {
					return "", false, false
				}
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
			}
			b = utf8.AppendRune(b, r)
		}
		return string(b), f, true
	case syntax.OpCapture, syntax.OpPlus:
		return longestRequired(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return longestRequired(re.Sub[0])
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if l, f, k := longestRequired(s); k && len(l) > len(lit) {
				lit, fold, ok = l, f, true
			}
		}
		return lit, fold, ok
	}
	return "", false, false
}

func indexOf(s, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if s[i] == sub[0] && s[i:i+n] == sub {
			return i
		}
	}
	return -1
}

// indexFoldASCII finds lower (ASCII, lower case) in s ignoring ASCII case.
func indexFoldASCII(s, lower string) int {
	n := len(lower)
	c0 := lower[0]
	c0u := c0
	if 'a' <= c0 && c0 <= 'z' {
		c0u = c0 - ('a' - 'A')
	}
outer:
	for i := 0; i+n <= len(s); i++ {
		if s[i] != c0 && s[i] != c0u {
			continue
		}
		for j := 1; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				continue outer
			}
		}
		return i
	}
	return -1
}
