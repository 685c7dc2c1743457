package waf

import (
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	re2 "github.com/wasilibs/go-re2"
	re2x "github.com/wasilibs/go-re2/experimental"
)

// CRS spends ~90% of its time in @rx, and most CRS rules capture, which
// forces Go's regexp onto its NFA over the whole value (it has no DFA). RE2
// scans with a DFA and only does submatch work where it matched: a 4 KiB
// form goes from ~43 ms to ~5 ms of CPU. go-re2's default build runs RE2 as
// WebAssembly in pure Go (wazero), so the binary stays static and cgo-free.
//
// The operator keeps Coraza's semantics exactly (TestCRSEquivalence compares
// every CRS regression request against stock Coraza): the same (?sm) flags,
// byte-wise matching for patterns with non-UTF-8 byte escapes, up to 9
// captures, and Go's regexp for values that are not valid UTF-8.

// rxOnce guards the registration: Coraza's operator registry is process-wide
// and is read when rules are compiled, so it is set once, before the first WAF.
var (
	rxOnce       sync.Once
	rxRegistered atomic.Bool // for tests that need stock Coraza in the same binary
)

func registerRX() {
	rxOnce.Do(func() {
		plugins.RegisterOperator("rx", newRX)
		rxRegistered.Store(true)
	})
}

// rx is Coraza's @rx operator on RE2. RE2 and Go's regexp agree on valid
// UTF-8, but at a byte that is not UTF-8 RE2 matches nothing where Go sees
// U+FFFD (which "." and \W match); such values go to a Go regexp, compiled on
// first need.
type rx struct {
	re      *re2.Regexp
	pf      prefilter
	pattern string // for the Go fallback; "" for byte-wise patterns, which need none
	goOnce  sync.Once
	goRe    *regexp.Regexp
}

type matcher interface {
	FindStringSubmatchIndex(string) []int
	MatchString(string) bool
}

var _ plugintypes.Operator = (*rx)(nil)

func newRX(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	if matchesArbitraryBytes(o.Arguments) {
		// Coraza matches these byte-wise (binaryregexp) on the bare pattern: RE2's Latin-1 mode does the same.
		re, err := re2x.CompileLatin1(o.Arguments)
		if err != nil {
			return nil, err
		}
		return &rx{re: re}, nil
	}
	pattern := "(?sm)" + o.Arguments
	// The Go fallback must be able to compile it later: check now, at load time.
	if _, err := syntax.Parse(pattern, syntax.Perl); err != nil {
		return nil, err
	}
	re, err := re2.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return &rx{re: re, pf: newPrefilter(pattern), pattern: pattern}, nil
}

// Evaluate implements plugintypes.Operator.
func (o *rx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	var re matcher = o.re
	if o.pattern != "" {
		if !utf8.ValidString(value) {
			o.goOnce.Do(func() { o.goRe, _ = regexp.Compile(o.pattern) })
			if o.goRe != nil {
				re = o.goRe
			}
		} else if !o.pf.maybe(value) {
			return false
		}
	}
	if !tx.Capturing() {
		return re.MatchString(value)
	}
	m := re.FindStringSubmatchIndex(value)
	if m == nil {
		return false
	}
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			tx.CaptureField(i, value[m[2*i]:m[2*i+1]])
		} else {
			tx.CaptureField(i, "")
		}
	}
	return true
}

// matchesArbitraryBytes reports a pattern whose \xNN escapes decode to bytes
// that are not valid UTF-8 (Coraza's test for its byte-wise matcher).
func matchesArbitraryBytes(expr string) bool {
	decoded := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '\\' {
			decoded = append(decoded, c)
			continue
		}
		if i+3 >= len(expr) {
			decoded = append(decoded, expr[i:]...)
			break
		}
		if expr[i+1] != 'x' {
			decoded = append(decoded, expr[i])
			continue
		}
		sub, advance := expr[i:], 3
		if len(sub) >= 6 && sub[2] == '{' { // \x{bc}
			if end := strings.IndexByte(sub, '}'); end != -1 {
				sub, advance = `\x`+sub[3:end], end
			}
		}
		v, multibyte, _, err := strconv.UnquoteChar(sub, 0)
		if err != nil || multibyte {
			decoded = append(decoded, expr[i])
			continue
		}
		decoded = append(decoded, byte(v))
		i += advance
	}
	return !utf8.Valid(decoded)
}
