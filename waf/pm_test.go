package waf

import (
	"slices"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

func TestPM(t *testing.T) {
	for _, c := range []struct {
		phrases, value string
		captures       []string // nil: no match
	}{
		{"passwd shadow", "/etc/PASSWD", []string{"PASSWD"}},
		{"passwd shadow", "/etc/hosts", nil},
		{"ab abc", "xABCd ab", []string{"ABC", "ab"}}, // leftmost-longest
		{"kill", "\u212aill", nil},                    // ASCII case only, as Coraza
		{"é", "café", []string{"é"}},
		// Coraza lowercases phrases rune-wise, which turns a stray byte into U+FFFD.
		{"a\xffb", "xA\xffBx", nil},
		{"a\xffb", "xA\ufffdBx", []string{"A\ufffdB"}},
		{"a  b", "zzz", []string{"", "", "", ""}},                                         // an empty phrase matches everywhere
		{"x", "xxxxxxxxxxxx", []string{"x", "x", "x", "x", "x", "x", "x", "x", "x", "x"}}, // 10 captures at most
	} {
		op, err := newPM(plugintypes.OperatorOptions{Arguments: c.phrases})
		if err != nil {
			t.Fatal(err)
		}
		ok, caps := ourRX(t, op, c.value)
		if ok != (c.captures != nil) || !slices.Equal(caps, c.captures) {
			t.Errorf("@pm %q on %q: %v %q, want %q", c.phrases, c.value, ok, caps, c.captures)
		}
	}
}
