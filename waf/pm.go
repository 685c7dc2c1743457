package waf

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// Coraza's @pm (and @pmFromFile, @pmf) runs an Aho-Corasick automaton that
// walks an NFA with failure links, at ~10 ns a byte: a sixth of the time
// of a 4 KiB form. Nearly every value contains none of the phrases, and a
// dense DFA (acDFA) says so several times faster. Where it finds a phrase,
// Coraza's own matcher, built exactly as Coraza builds it, gives the answer
// and the captures, so the semantics are Coraza's by construction.

// maxPMTable bounds a dictionary's DFA to 16 MiB; CRS's largest needs 11.
const maxPMTable = 4 << 20

// pm is Coraza's @pm with a DFA in front.
type pm struct {
	dict   *pmDict
	minLen int
}

// pmDict is a dictionary's matchers, shared by the rules that use it.
type pmDict struct {
	phrases []string
	matcher ahocorasick.AhoCorasick
	// dfa is built on first use: some dictionaries serve only response
	// rules that may never run, and one of those alone needs 11 MiB.
	once sync.Once
	dfa  *acDFA // nil when a phrase is empty: every value matches
}

var _ plugintypes.Operator = (*pm)(nil)

func newPM(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data := strings.ToLower(o.Arguments)
	return newPMOf(o.Memoizer, "sekisho.pm:"+data, strings.Split(data, " "), true)
}

func newPMFromFile(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data, err := loadFromFile(o.Arguments, o.Path, o.Root)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		lines = append(lines, strings.ToLower(l))
	}
	return newPMOf(o.Memoizer, "sekisho.pmFromFile:"+strings.Join(o.Path, ",")+o.Arguments, lines, false)
}

// newPMOf builds the operator as Coraza does: ASCII-case-insensitive,
// leftmost-longest; Coraza asks for a DFA for @pm only, which its
// library may or may not honour.
func newPMOf(m plugintypes.Memoizer, key string, phrases []string, dfa bool) (plugintypes.Operator, error) {
	build := func() (any, error) {
		b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{
			AsciiCaseInsensitive: true,
			MatchOnlyWholeWords:  false,
			MatchKind:            ahocorasick.LeftMostLongestMatch,
			DFA:                  dfa,
		})
		return &pmDict{phrases: phrases, matcher: b.Build(phrases)}, nil
	}
	var d any
	if m != nil {
		d, _ = m.Do(key, build)
	} else {
		d, _ = build()
	}
	minLen := 0
	for i, p := range phrases {
		if i == 0 || len(p) < minLen {
			minLen = len(p)
		}
	}
	return &pm{dict: d.(*pmDict), minLen: minLen}, nil
}

// Evaluate implements plugintypes.Operator.
func (o *pm) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if len(value) < o.minLen {
		return false
	}
	if dfa := o.dict.prefilter(); dfa != nil && !dfa.any(value) {
		return false
	}
	iter := o.dict.matcher.Iter(value)
	if !tx.Capturing() {
		return iter.Next() != nil
	}
	n := 0
	for m := iter.Next(); m != nil && n < 10; m = iter.Next() {
		tx.CaptureField(n, value[m.Start():m.End()])
		n++
	}
	return n > 0
}

func (d *pmDict) prefilter() *acDFA {
	d.once.Do(func() {
		for _, p := range d.phrases {
			if p == "" {
				return
			}
		}
		// The DFA folds ASCII like the matcher, and also the Kelvin sign
		// and the long s, which the matcher doesn't: it may only say
		// "maybe" more often, never less. Other bytes stay as they are,
		// valid UTF-8 or not.
		folded := make([]string, len(d.phrases))
		for i, p := range d.phrases {
			folded[i] = foldToASCII.Replace(p)
		}
		d.dfa = newACDFA(folded, maxPMTable) // nil when too large: the matcher alone answers
	})
	return d.dfa
}

// loadFromFile reads a data file as Coraza does: an absolute path from the
// root, otherwise the first of the rule file's folders that has it.
func loadFromFile(name string, dirs []string, root fs.FS) ([]byte, error) {
	if path.IsAbs(name) {
		return fs.ReadFile(root, name)
	}
	if len(dirs) == 0 {
		return nil, errors.New("empty dirs")
	}
	var err error
	for _, dir := range dirs {
		var content []byte
		content, err = fs.ReadFile(root, path.Join(dir, name))
		if err == nil {
			return content, nil
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
	}
	return nil, err
}
