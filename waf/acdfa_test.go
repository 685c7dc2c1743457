package waf

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/waf/waftest"
)

// naiveAtoms is what acDFA.scan must find: each atom contained in the text,
// both folded, byte for byte.
func naiveAtoms(atoms []string, text string) []bool {
	b := []byte(strings.NewReplacer("\u212a", "k", "\u017f", "s").Replace(text))
	for i, c := range b {
		b[i] = foldByte(c)
	}
	folded := string(b)
	out := make([]bool, len(atoms))
	for i, a := range atoms {
		out[i] = strings.Contains(folded, a)
	}
	return out
}

func checkScan(t *testing.T, atoms []string, text string) {
	t.Helper()
	d := newACDFA(atoms, 0)
	found := make([]uint64, d.words())
	seen := make([]uint64, d.seenWords())
	d.scan(text, found, seen)
	want := naiveAtoms(atoms, text)
	anyWant := false
	for i, w := range want {
		if got := found[i>>6]&(1<<(i&63)) != 0; got != w {
			t.Errorf("atoms %q in %q: atom %q found=%v, want %v", atoms, text, atoms[i], got, w)
		}
		anyWant = anyWant || w
	}
	for _, w := range seen {
		if w != 0 {
			t.Fatalf("scan left its scratch dirty")
		}
	}
	if got := d.any(text); got != anyWant {
		t.Errorf("atoms %q in %q: any=%v, want %v", atoms, text, got, anyWant)
	}
}

func TestACDFA(t *testing.T) {
	cases := []struct {
		atoms []string
		text  string
	}{
		{[]string{"he", "she", "his", "hers"}, "ushers"},
		{[]string{"abc", "bc", "c"}, "xxABCxx"},
		{[]string{"select", "union", "from"}, "SeLeCt * FrOm t"},
		{[]string{"aaa", "aa"}, "aaaa"},
		{[]string{"kill", "system"}, "\u212aill \u017fystem"}, // Kelvin sign, long s
		{[]string{"é", "<script"}, "café <SCRIPT>"},
		{[]string{"x", "y"}, ""},
		{[]string{"abcd", "bcx"}, "abcx"}, // needs the failure link
		{[]string{"\x00", "a\xffb"}, "a\xffb\x00"},
	}
	for _, c := range cases {
		checkScan(t, c.atoms, c.text)
	}
}

func FuzzACDFA(f *testing.F) {
	f.Add("he she his hers", "ushers")
	f.Add("ab abc bca", "xxABCAbc")
	f.Add("kill", "\u212aill")
	f.Fuzz(func(t *testing.T, atoms, text string) {
		var as []string
		for _, a := range strings.Fields(atoms) {
			as = append(as, strings.Map(foldRune, a))
		}
		if len(as) == 0 || len(as) > 64 {
			return
		}
		slices.Sort(as)
		checkScan(t, slices.Compact(as), text)
	})
}

// BenchmarkACDFA_Scan finds CRS's atoms in the load harness's lorem ipsum
// message, as a 4 KiB form's value.
func BenchmarkACDFA_Scan(b *testing.B) {
	for _, p := range crsPatterns(b) {
		newPrefilter(p)
	}
	d := atomDFA(math.MaxInt)
	text := strings.ToLower(strings.Repeat(strings.ReplaceAll(waftest.Lorem, "+", " "), 13)[:4000])
	found := make([]uint64, d.words())
	seen := make([]uint64, d.seenWords())
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		clear(found)
		d.scan(text, found, seen)
	}
}

func TestACDFA_TooLarge(t *testing.T) {
	if d := newACDFA([]string{"passwd", "shadow"}, 10); d != nil {
		t.Errorf("a table of up to %d entries was built under a limit of 10", 13*d.ncls)
	}
	if d := newACDFA([]string{"passwd", "shadow"}, 1000); d == nil {
		t.Error("a small table was refused")
	}
}
