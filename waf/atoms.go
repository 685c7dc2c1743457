package waf

import (
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
)

// A regex's atoms are literal strings of which every match contains some
// combination: "(?i)union[\s]+select" needs both "union" and "select",
// "(?:eval|exec)\(" needs "eval(" or "exec(". All atoms of all patterns are
// looked for in one pass over a value (atomSet), and a pattern whose
// condition the value cannot meet skips RE2. This is RE2's own prefilter
// (re2/prefilter.cc, as used by FilteredRE2), rebuilt over Go's parser.
//
// Atoms and the values they are looked for in are both folded (foldRune):
// ASCII letters to lower case, and the two non-ASCII runes that Unicode
// case folding maps onto ASCII letters (the Kelvin sign, the long s) to
// theirs. A match of a rune implies a match of its folded form, so a
// condition over folded atoms can only be wrong towards "maybe".

// cond is a condition on the atoms found in a value. A nil *cond holds for
// every value: nothing is known.
type cond struct {
	op   condOp
	atom string  // condAtom: the folded literal
	id   int     // condAtom: its index in the atom table, once interned
	subs []*cond // condAnd, condOr: two or more, none nil
	// condOr, once interned: its atom children as a bit set over atom ids,
	// and the other children. A value holds few atoms; an OR can list
	// hundreds (CRS's SQL keywords), so the value's atoms are looked up in
	// the OR, not the other way round.
	anyOf  []uint64
	others []*cond
}

type condOp uint8

const (
	condAtom condOp = iota
	condAnd
	condOr
)

// Limits as in RE2: exact sets larger than this are turned into conditions,
// and alphanumeric atoms shorter than minAtomLen are in nearly every text,
// so a condition that needs one says nothing.
const (
	maxExactSet = 16
	minAtomLen  = 3
)

// foldRune maps r to the form atoms and values are compared in.
func foldRune(r rune) rune {
	switch {
	case 'A' <= r && r <= 'Z':
		return r + 'a' - 'A'
	case r == '\u212a': // Kelvin sign, folds to k
		return 'k'
	case r == '\u017f': // long s, folds to s
		return 's'
	}
	return r
}

// info is what is known of the strings a sub-expression matches: either
// exactly the set of them (exact, folded), or a condition on them.
type info struct {
	exact   []string // sorted, distinct; valid when isExact
	isExact bool
	match   *cond
}

func exactOf(ss ...string) info {
	slices.Sort(ss)
	return info{exact: slices.Compact(ss), isExact: true}
}

var anything = info{} // not exact, no condition

func analyse(re *syntax.Regexp) info {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return exactOf("")
	case syntax.OpLiteral:
		out := exactOf("")
		for _, r := range re.Rune {
			out = concat(out, runeSet(r, re.Flags&syntax.FoldCase != 0))
		}
		return out
	case syntax.OpCharClass:
		n := 0
		for i := 0; i < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
			if n > 3*maxExactSet { // folded classes hold every case; large ones say nothing
				return anything
			}
		}
		var ss []string
		for i := 0; i < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				ss = append(ss, string(foldRune(r)))
			}
		}
		out := exactOf(ss...)
		if len(out.exact) > maxExactSet {
			return anything
		}
		return out
	case syntax.OpCapture:
		return analyse(re.Sub[0])
	case syntax.OpPlus:
		return info{match: takeMatch(analyse(re.Sub[0]))}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return info{match: takeMatch(analyse(re.Sub[0]))}
		}
		return anything
	case syntax.OpConcat:
		out := exactOf("")
		for _, s := range re.Sub {
			out = concat(out, analyse(s))
		}
		return out
	case syntax.OpAlternate:
		subs := make([]info, len(re.Sub))
		allExact := true
		for i, s := range re.Sub {
			subs[i] = analyse(s)
			allExact = allExact && subs[i].isExact
		}
		if allExact {
			var ss []string
			for _, s := range subs {
				ss = append(ss, s.exact...)
			}
			out := exactOf(ss...)
			if len(out.exact) > maxExactSet {
				return info{match: takeMatch(out)}
			}
			return out
		}
		var or []*cond
		for _, s := range subs {
			c := takeMatch(s)
			if c == nil {
				return anything
			}
			or = append(or, c)
		}
		return info{match: orOf(or)}
	}
	// Star, quest, any character, no match: nothing is required.
	return anything
}

// runeSet is the exact set a single rune matches, folded.
func runeSet(r rune, fold bool) info {
	if !fold {
		return exactOf(string(foldRune(r)))
	}
	ss := []string{string(foldRune(r))}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		ss = append(ss, string(foldRune(f)))
	}
	return exactOf(ss...)
}

// concat is a followed by b.
func concat(a, b info) info {
	if a.isExact && b.isExact && len(a.exact)*len(b.exact) <= maxExactSet {
		ss := make([]string, 0, len(a.exact)*len(b.exact))
		for _, x := range a.exact {
			for _, y := range b.exact {
				ss = append(ss, x+y)
			}
		}
		return exactOf(ss...)
	}
	return info{match: andOf(takeMatch(a), takeMatch(b))}
}

// takeMatch turns what is known into a condition.
func takeMatch(i info) *cond {
	if !i.isExact {
		return i.match
	}
	// A string that contains another of the set is implied by it.
	var keep []string
	for _, s := range i.exact {
		if !usefulAtom(s) {
			return nil // some match needs nothing worth looking for
		}
		implied := false
		for _, t := range i.exact {
			if t != s && strings.Contains(s, t) {
				implied = true
				break
			}
		}
		if !implied {
			keep = append(keep, s)
		}
	}
	or := make([]*cond, len(keep))
	for k, s := range keep {
		or[k] = &cond{op: condAtom, atom: s}
	}
	return orOf(or)
}

// usefulAtom reports whether looking for s can tell values apart: a short
// run of letters, digits and spaces is in nearly every text. (Line breaks
// are not: most values have none.)
func usefulAtom(s string) bool {
	if len(s) >= minAtomLen {
		return true
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == ' ' || r == '\t') {
			return true
		}
	}
	return false
}

func andOf(a, b *cond) *cond {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	var subs []*cond
	for _, c := range []*cond{a, b} {
		if c.op == condAnd {
			subs = append(subs, c.subs...)
		} else {
			subs = append(subs, c)
		}
	}
	return &cond{op: condAnd, subs: subs}
}

// orOf is nil (anything) when conds is empty: no condition is known.
func orOf(conds []*cond) *cond {
	var subs []*cond
	for _, c := range conds {
		if c.op == condOr {
			subs = append(subs, c.subs...)
		} else {
			subs = append(subs, c)
		}
	}
	switch len(subs) {
	case 0:
		return nil
	case 1:
		return subs[0]
	}
	return &cond{op: condOr, subs: subs}
}

// atoms lists the atoms c refers to.
func (c *cond) atoms(out []*cond) []*cond {
	if c == nil {
		return out
	}
	if c.op == condAtom {
		return append(out, c)
	}
	for _, s := range c.subs {
		out = s.atoms(out)
	}
	return out
}

// holds evaluates c given which atoms a value contains.
func (c *cond) holds(found atomSet) bool {
	switch c.op {
	case condAtom:
		return found.has(c.id)
	case condAnd:
		for _, s := range c.subs {
			if !s.holds(found) {
				return false
			}
		}
		return true
	default:
		for _, id := range found {
			if w := int(id >> 6); w < len(c.anyOf) && c.anyOf[w]&(1<<(id&63)) != 0 {
				return true
			}
		}
		for _, s := range c.others {
			if s.holds(found) {
				return true
			}
		}
		return false
	}
}

// String writes c for tests and debugging.
func (c *cond) String() string {
	if c == nil {
		return "*"
	}
	switch c.op {
	case condAtom:
		return "\"" + c.atom + "\""
	case condAnd:
		return "and(" + joinConds(c.subs) + ")"
	}
	return "or(" + joinConds(c.subs) + ")"
}

func joinConds(cs []*cond) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, " ")
}

// atomTable holds the atoms of every compiled pattern and the DFA that finds
// them. It is process-wide, like Coraza's operator registry: every policy
// compiles the same CRS, so they share it.
var atomTable struct {
	mu   sync.Mutex
	ids  map[string]int
	list []string
	dfa  atomic.Pointer[acDFA]
}

// internAtoms gives each atom of c its id and returns how many atoms the
// DFA must know for c (its largest id + 1).
func internAtoms(c *cond) int {
	atomTable.mu.Lock()
	defer atomTable.mu.Unlock()
	if atomTable.ids == nil {
		atomTable.ids = map[string]int{}
	}
	need := 0
	for _, a := range c.atoms(nil) {
		id, ok := atomTable.ids[a.atom]
		if !ok {
			id = len(atomTable.list)
			atomTable.ids[a.atom] = id
			atomTable.list = append(atomTable.list, a.atom)
		}
		a.id = id
		need = max(need, id+1)
	}
	c.indexOrs()
	return need
}

func (c *cond) indexOrs() {
	for _, s := range c.subs {
		s.indexOrs()
	}
	if c.op != condOr {
		return
	}
	c.anyOf, c.others = nil, nil
	for _, s := range c.subs {
		if s.op != condAtom {
			c.others = append(c.others, s)
			continue
		}
		for len(c.anyOf) <= s.id>>6 {
			c.anyOf = append(c.anyOf, 0)
		}
		c.anyOf[s.id>>6] |= 1 << (s.id & 63)
	}
}

// atomDFA returns a DFA that knows at least need atoms, and every atom
// interned so far when it has to build one: when there is none yet or the
// current one is too old.
func atomDFA(need int) *acDFA {
	if d := atomTable.dfa.Load(); d != nil && d.n >= need {
		return d
	}
	atomTable.mu.Lock()
	defer atomTable.mu.Unlock()
	d := atomTable.dfa.Load()
	if d == nil || d.n < len(atomTable.list) {
		d = newACDFA(atomTable.list, 0)
		atomTable.dfa.Store(d)
	}
	return d
}
