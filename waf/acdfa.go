package waf

import (
	"strings"
	"unicode/utf8"
)

// acDFA finds which of a set of atoms occur in a text, in one pass: an
// Aho-Corasick automaton compiled to a dense DFA over byte classes, ASCII
// letters folded to lower case. Atoms must be folded already (foldRune);
// of atoms given twice, only the first is reported.
type acDFA struct {
	n       int       // atoms, ids 0..n-1
	class   [256]byte // byte -> column
	ncls    int
	delta   []uint32 // state*ncls + class -> next state*ncls | hasOutput
	atomAt  []int32  // state -> atom that ends there, or -1
	outLink []int32  // state -> nearest suffix state with an atom, or -1
}

const hasOutput = 1 << 31

// newACDFA builds the DFA, or returns nil when its table could exceed
// maxEntries (0: no limit): a dense table costs states x classes x 4 bytes,
// and a dictionary of tens of thousands of phrases would take hundreds of MiB.
func newACDFA(atoms []string, maxEntries int) *acDFA {
	d := &acDFA{n: len(atoms)}
	// Byte classes: one per distinct (folded) byte of any atom, 0 for the
	// rest. There are at most 230 folded byte values: a byte holds a class.
	states := 1
	for _, a := range atoms {
		states += len(a)
		for i := 0; i < len(a); i++ {
			if c := foldByte(a[i]); d.class[c] == 0 {
				d.ncls++
				d.class[c] = byte(d.ncls)
			}
		}
	}
	d.ncls++
	if maxEntries > 0 && states*d.ncls > maxEntries {
		return nil
	}
	for c := 'A'; c <= 'Z'; c++ {
		d.class[c] = d.class[c+'a'-'A']
	}
	// The trie, its transitions kept directly in the DFA table.
	next := func(s int) []uint32 { return d.delta[s*d.ncls : (s+1)*d.ncls] }
	newState := func() int {
		d.delta = append(d.delta, make([]uint32, d.ncls)...)
		d.atomAt = append(d.atomAt, -1)
		d.outLink = append(d.outLink, -1)
		return len(d.atomAt) - 1
	}
	newState() // the root, 0
	for id, a := range atoms {
		s := 0
		for i := 0; i < len(a); i++ {
			c := d.class[a[i]]
			t := int(next(s)[c])
			if t == 0 {
				t = newState()
				next(s)[c] = uint32(t)
			}
			s = t
		}
		if d.atomAt[s] < 0 { // the same atom twice keeps its first id
			d.atomAt[s] = int32(id)
		}
	}
	// Breadth first: failure links, then missing transitions through them.
	fail := make([]int32, len(d.atomAt))
	queue := make([]int32, 0, len(d.atomAt))
	for c := 0; c < d.ncls; c++ {
		if t := next(0)[c]; t != 0 {
			queue = append(queue, int32(t))
		}
	}
	for k := 0; k < len(queue); k++ {
		s := queue[k]
		f := fail[s]
		if d.atomAt[f] >= 0 {
			d.outLink[s] = f
		} else {
			d.outLink[s] = d.outLink[f]
		}
		row, frow := next(int(s)), next(int(f))
		for c := 0; c < d.ncls; c++ {
			if t := row[c]; t != 0 {
				fail[t] = int32(frow[c])
				queue = append(queue, int32(t))
			} else {
				row[c] = frow[c]
			}
		}
	}
	// Rows hold the next row's offset: no multiplication per byte.
	for i, t := range d.delta {
		if d.atomAt[t] >= 0 || d.outLink[t] >= 0 {
			d.delta[i] = t*uint32(d.ncls) | hasOutput
		} else {
			d.delta[i] = t * uint32(d.ncls)
		}
	}
	return d
}

func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// words is the size of a found-atoms bit set.
func (d *acDFA) words() int { return (d.n + 63) / 64 }

// seenWords is the size of scan's scratch bit set.
func (d *acDFA) seenWords() int { return (len(d.atomAt) + 63) / 64 }

// scan sets in found the bit of every atom that occurs in text. seen is
// scratch of seenWords() words, all clear; scan clears it again.
func (d *acDFA) scan(text string, found, seen []uint64) {
	text = foldedForAtoms(text)
	delta, class, ncls := d.delta, &d.class, uint32(d.ncls)
	row, hits := uint32(0), false
	for i := 0; i < len(text); i++ {
		row = delta[row+uint32(class[text[i]])]
		if row&hasOutput == 0 {
			continue
		}
		row &^= hasOutput
		hits = true
		for t := int32(row / ncls); t >= 0; t = d.outLink[t] {
			if seen[t>>6]&(1<<(t&63)) != 0 {
				break // this state and its suffixes are recorded
			}
			seen[t>>6] |= 1 << (t & 63)
			if id := d.atomAt[t]; id >= 0 {
				found[id>>6] |= 1 << (id & 63)
			}
		}
	}
	if hits { // most values hold no atom: their scratch is still clear
		clear(seen)
	}
}

// foldedForAtoms folds the two non-ASCII runes that case folding maps onto
// ASCII letters; the DFA folds ASCII itself. Other bytes, valid UTF-8 or
// not, stay as they are. Most texts have neither rune.
func foldedForAtoms(text string) string {
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			if strings.Contains(text[i:], "\u212a") || strings.Contains(text[i:], "\u017f") {
				return foldToASCII.Replace(text)
			}
			break
		}
	}
	return text
}

var foldToASCII = strings.NewReplacer("\u212a", "k", "\u017f", "s")

// any reports whether text contains any atom at all.
func (d *acDFA) any(text string) bool {
	text = foldedForAtoms(text)
	delta, class := d.delta, &d.class
	row := uint32(0)
	for i := 0; i < len(text); i++ {
		row = delta[row+uint32(class[text[i]])]
		if row&hasOutput != 0 {
			return true
		}
	}
	return false
}
