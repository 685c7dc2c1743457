package waf

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// transformProbe runs stock Coraza's transformations: one rule per
// transformation copies the transformed value of a request header into a
// TX variable. It must be built before sekisho registers its own.
type transformProbe struct{ w coraza.WAF }

var (
	stockTransforms *transformProbe
	errProbeTooLate = errors.New("sekisho's plugins are already registered")
)

func newTransformProbe() (*transformProbe, error) {
	if pluginsRegistered.Load() {
		return nil, errProbeTooLate
	}
	var rules strings.Builder
	for i, name := range slices.Sorted(maps.Keys(transformations)) {
		fmt.Fprintf(&rules, "SecRule REQUEST_HEADERS:x-in \"@unconditionalMatch\" \"id:%d,phase:1,pass,nolog,t:none,t:%s,setvar:'tx.%s=v%%{MATCHED_VAR}'\"\n", i+1, name, strings.ToLower(name))
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives("SecRuleEngine On\n" + rules.String()))
	return &transformProbe{w}, err
}

// run returns what stock Coraza's transformation makes of in.
func (p *transformProbe) run(t testing.TB, name, in string) string {
	t.Helper()
	tx := p.w.NewTransaction()
	defer tx.Close()
	tx.AddRequestHeader("X-In", in)
	tx.ProcessRequestHeaders()
	// The "v" keeps setvar from reading a leading + or - as arithmetic.
	return strings.TrimPrefix(tx.(plugintypes.TransactionState).Variables().TX().Get(strings.ToLower(name))[0], "v")
}

func checkTransforms(t *testing.T, in string) {
	t.Helper()
	for name, transform := range transformations {
		got, changed, err := transform(in)
		want := stockTransforms.run(t, name, in)
		if err != nil || got != want {
			t.Errorf("%s(%q) = %q, %v; stock Coraza: %q", name, in, got, err, want)
		}
		// Coraza reports a change only where the value really changed,
		// except that bytes that are not UTF-8 may be rewritten silently.
		if changed != (got != in) && !(strings.ToValidUTF8(in, "\uFFFD") != in) {
			t.Errorf("%s(%q): changed = %v, but the output is %q", name, in, changed, got)
		}
	}
}

func TestTransformations(t *testing.T) {
	for _, in := range []string{
		"", "abc", "ABC", "XYZ@[`{", "Lorem ipsum DOLOR", " \t\n\v\f\r ", "a b\tc\nd",
		"caf\u00e9 CAF\u00c9", "x\u00a0y\u0085z\u2003w", "\u212a\u017f", "bad\xffutf8 X", "\xff",
		"tr\xe2\x82ailing", "ÀÉÎ ÕÜ", "İstanbul", "ǅ", strings.Repeat("Ab ", 100),
	} {
		checkTransforms(t, in)
	}
}

func FuzzTransformations(f *testing.F) {
	f.Add("Lorem Ipsum")
	f.Add("a\u00a0B\xff")
	f.Fuzz(func(t *testing.T, in string) {
		checkTransforms(t, in)
	})
}
