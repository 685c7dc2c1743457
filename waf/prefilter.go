package waf

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// prefilter answers, before RE2 is asked, whether a value certainly cannot
// match a pattern. Most CRS evaluations on benign traffic do not match, and
// each RE2 call has a fixed cost; these checks cost a length compare and a
// few vectorised substring scans. They may only ever say "cannot match" when
// that is certain: every doubt says "maybe" and the regex decides.
type prefilter struct {
	minLen int       // no match is shorter than this many bytes
	lits   []literal // every match contains each of these
}

// literal is a substring that every match contains.
type literal struct {
	s    string // lower case when fold
	fold bool   // compared ASCII-case-insensitively
}

// newPrefilter analyses a pattern as Go's regexp parses it.
func newPrefilter(pattern string) prefilter {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return prefilter{}
	}
	re = re.Simplify()
	p := prefilter{minLen: minLen(re)}
	// Single characters count too: a quote or a parenthesis that a pattern
	// needs rules out most benign values, and IndexByte finds it fastest.
	p.lits = required(re)
	// Longest first: the rarer the literal, the sooner a value is ruled out.
	slices.SortStableFunc(p.lits, func(a, b literal) int { return len(b.s) - len(a.s) })
	if len(p.lits) > 3 {
		p.lits = p.lits[:3]
	}
	return p
}

// maybe reports whether value could match. value must be valid UTF-8.
func (p *prefilter) maybe(value string) bool {
	if len(value) < p.minLen {
		return false
	}
	ascii := -1 // not looked at yet
	for _, l := range p.lits {
		if !l.fold {
			if !strings.Contains(value, l.s) {
				return false
			}
			continue
		}
		// Unicode case folding maps some non-ASCII runes onto ASCII letters
		// (the Kelvin sign K onto k, the long s onto s): with any non-ASCII
		// byte in the value, an ASCII-only search could miss a match.
		if ascii < 0 {
			ascii = 1
			for i := 0; i < len(value); i++ {
				if value[i] >= utf8.RuneSelf {
					ascii = 0
					break
				}
			}
		}
		if ascii == 1 && indexFoldASCII(value, l.s) < 0 {
			return false
		}
	}
	return true
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
	return 0 // empty-width assertions, star, quest, empty match, no match
}

// required lists literals that every match contains (each of them, not one
// of them). Case-folded literals count only when they are all ASCII.
func required(re *syntax.Regexp) []literal {
	switch re.Op {
	case syntax.OpLiteral:
		fold := re.Flags&syntax.FoldCase != 0
		b := make([]byte, 0, len(re.Rune))
		for _, r := range re.Rune {
			if fold {
				if r >= utf8.RuneSelf {
					return nil
				}
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
			}
			b = utf8.AppendRune(b, r)
		}
		return []literal{{string(b), fold}}
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var out []literal
		for _, s := range re.Sub {
			out = append(out, required(s)...)
		}
		return out
	}
	return nil
}

// indexFoldASCII finds lower (ASCII, lower case) in s ignoring ASCII case.
// Candidates for the first byte, in either case, are found with IndexByte.
func indexFoldASCII(s, lower string) int {
	n := len(lower)
	lo, up := lower[0], lower[0]
	if 'a' <= lo && lo <= 'z' {
		up = lo - ('a' - 'A')
	}
	nextLo, nextUp := -2, -2 // -2: not searched yet; -1: none left
	for start := 0; start+n <= len(s); {
		if nextLo != -1 && nextLo < start {
			nextLo = indexByteFrom(s, lo, start)
		}
		if up != lo && nextUp != -1 && nextUp < start {
			nextUp = indexByteFrom(s, up, start)
		}
		i := nextLo
		if up != lo && nextUp >= 0 && (i < 0 || nextUp < i) {
			i = nextUp
		}
		if i < 0 || i+n > len(s) {
			return -1
		}
		if equalFoldASCII(s[i+1:i+n], lower[1:]) {
			return i
		}
		start = i + 1
	}
	return -1
}

func indexByteFrom(s string, c byte, from int) int {
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return -1
}

// equalFoldASCII compares s with lower (lower case) ignoring ASCII case.
func equalFoldASCII(s, lower string) bool {
	for j := 0; j < len(lower); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[j] {
			return false
		}
	}
	return true
}
