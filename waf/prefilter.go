package waf

import (
	"regexp/syntax"
	"unicode/utf8"
)

// prefilter answers, before RE2 is asked, whether a value certainly cannot
// match a pattern. Most CRS evaluations on benign traffic do not match, and
// each RE2 call has a fixed cost and scans the whole value; these checks
// cost a length compare and a look at the atoms the value holds, found once
// per value for all patterns (atomsIn). They may only ever say "cannot
// match" when that is certain: every doubt says "maybe" and RE2 decides.
type prefilter struct {
	minLen int   // no match is shorter than this many bytes
	cond   *cond // on the atoms of every match; nil when none is known
	need   int   // atoms the DFA must know for cond
}

// newPrefilter analyses a pattern as Go's regexp parses it.
func newPrefilter(pattern string) prefilter {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return prefilter{}
	}
	return prefilterOf(re)
}

// prefilterOf analyses a parsed pattern.
func prefilterOf(re *syntax.Regexp) prefilter {
	re = re.Simplify()
	p := prefilter{minLen: minLen(re), cond: takeMatch(analyse(re))}
	if p.cond != nil {
		p.need = internAtoms(p.cond)
	}
	return p
}

// maybe reports whether value could match. value must be valid UTF-8; m
// is the transaction's memo of the atoms of its values (nil: none).
func (p *prefilter) maybe(m *txMemo, value string) bool {
	return len(value) >= p.minLen && (p.cond == nil || p.cond.holds(atomsIn(m, value, p.need)))
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
