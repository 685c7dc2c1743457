package waf

import (
	"regexp"
	"slices"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// captureTx records what an operator captures; nothing else of a
// transaction is used by @rx.
type captureTx struct {
	plugintypes.TransactionState
	captures []string
}

func (c *captureTx) Capturing() bool { return true }

func (c *captureTx) CaptureField(i int, v string) {
	for len(c.captures) <= i {
		c.captures = append(c.captures, "")
	}
	c.captures[i] = v
}

// goRX is what stock Coraza's @rx answers: Go's regexp, up to 9 captures.
func goRX(re *regexp.Regexp, v string) (bool, []string) {
	m := re.FindStringSubmatch(v)
	if m == nil {
		return false, nil
	}
	return true, m[:min(len(m), 9)]
}

func ourRX(t testing.TB, o plugintypes.Operator, v string) (bool, []string) {
	t.Helper()
	tx := &captureTx{}
	ok := o.Evaluate(tx, v)
	return ok, tx.captures
}

func mustRX(t testing.TB, expr string) plugintypes.Operator {
	t.Helper()
	o, err := newRX(plugintypes.OperatorOptions{Arguments: expr})
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	return o
}

// TestRX_InvalidUTF8 covers values that are not UTF-8 (CRS makes them with
// base64Decode and friends): Go reads each stray byte as U+FFFD, and the
// capture must hold the original bytes.
func TestRX_InvalidUTF8(t *testing.T) {
	for _, c := range []struct {
		expr, value string
		match       bool
		captures    []string
	}{
		{`a(.)b`, "xa\xffb", true, []string{"a\xffb", "\xff"}},
		{`a(\W+)b`, "a\xff\xfeb", true, []string{"a\xff\xfeb", "\xff\xfe"}},
		{"\ufffd", "\xc3", true, []string{"\xc3"}},
		{`(é)(.)`, "\xe2\x82é\xa0", true, []string{"é\xa0", "é", "\xa0"}},
		{`^(.{3})$`, "\xff\xfe\xfd", true, []string{"\xff\xfe\xfd", "\xff\xfe\xfd"}},
		{`^.{4}$`, "\xff\xfe\xfd", false, nil},
		{`(b+)`, "\x80bbb\x80", true, []string{"bbb", "bbb"}},
		{`[a-z]\b`, "ab\x80", true, []string{"b"}},
	} {
		ok, caps := ourRX(t, mustRX(t, c.expr), c.value)
		if ok != c.match || !slices.Equal(caps, c.captures) {
			t.Errorf("%q on %q: got %v %q, want %v %q", c.expr, c.value, ok, caps, c.match, c.captures)
		}
		wantOK, wantCaps := goRX(regexp.MustCompile("(?sm)"+c.expr), c.value)
		if ok != wantOK || !slices.Equal(caps, wantCaps) {
			t.Errorf("%q on %q: Go's regexp says %v %q, we say %v %q", c.expr, c.value, wantOK, wantCaps, ok, caps)
		}
	}
}

// FuzzRX compares the operator with Go's regexp (stock Coraza) on CRS
// patterns and arbitrary bytes: the same verdict and the same captures.
func FuzzRX(f *testing.F) {
	patterns := append(crsPatterns(f), "(?sm)(.)(.)(.)", "(?sm)([^a]+)z", `(?sm)\b(\w+)\b`)
	ops := make([]plugintypes.Operator, len(patterns))
	gos := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		ops[i], gos[i] = mustRX(f, p[len("(?sm)"):]), regexp.MustCompile(p)
	}
	f.Add(uint16(len(patterns)-3), "\xff\xfeabc")
	f.Add(uint16(len(patterns)-2), "b\xc3z")
	f.Add(uint16(0), "select * from users \xe2\x82")
	f.Fuzz(func(t *testing.T, i uint16, v string) {
		k := int(i) % len(patterns)
		ok, caps := ourRX(t, ops[k], v)
		wantOK, wantCaps := goRX(gos[k], v)
		if ok != wantOK || !slices.Equal(caps, wantCaps) {
			t.Fatalf("pattern %q value %q: got %v %q, Go's regexp %v %q", patterns[k], v, ok, caps, wantOK, wantCaps)
		}
	})
}
