package waf

import (
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

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
// captures, and Go's reading of bytes that are not UTF-8 (below).

// rx is Coraza's @rx operator on RE2.
type rx struct {
	re     *re2.Regexp
	pf     prefilter
	latin1 bool // byte-wise: every value is matched as it is
}

var _ plugintypes.Operator = (*rx)(nil)

func newRX(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	if o.Memoizer == nil {
		return compileRX(o.Arguments)
	}
	// Coraza's memoizer is process-wide: policies that load the same CRS
	// share one compiled operator per pattern (it holds no mutable state).
	op, err := o.Memoizer.Do("sekisho.rx:"+o.Arguments, func() (any, error) { return compileRX(o.Arguments) })
	if err != nil {
		return nil, err
	}
	return op.(*rx), nil
}

func compileRX(expr string) (*rx, error) {
	if matchesArbitraryBytes(expr) {
		// Coraza matches these byte-wise (binaryregexp) on the bare pattern: RE2's Latin-1 mode does the same.
		re, err := re2x.CompileLatin1(expr)
		if err != nil {
			return nil, err
		}
		return &rx{re: re, latin1: true}, nil
	}
	pattern := "(?sm)" + expr
	// Stock Coraza refuses what Go's regexp cannot compile; so do we.
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	re, err := re2.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return &rx{re: re, pf: prefilterOf(parsed)}, nil
}

// Evaluate implements plugintypes.Operator.
func (o *rx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	return o.evaluate(tx, memoOf(tx), value)
}

// evaluate is Evaluate with the transaction's memo at hand.
func (o *rx) evaluate(tx plugintypes.TransactionState, m *txMemo, value string) bool {
	subject, fixes := value, []int(nil)
	if !o.latin1 {
		if !utf8.ValidString(value) {
			subject, fixes = goViewOf(m, value)
		}
		if !o.pf.maybe(m, subject) {
			return false
		}
	}
	if !tx.Capturing() {
		return o.re.MatchString(subject)
	}
	loc := o.re.FindStringSubmatchIndex(subject)
	if loc == nil {
		return false
	}
	for i := 0; i < len(loc)/2 && i < 9; i++ {
		if loc[2*i] >= 0 {
			tx.CaptureField(i, value[originalOffset(loc[2*i], fixes):originalOffset(loc[2*i+1], fixes)])
		} else {
			tx.CaptureField(i, "")
		}
	}
	return true
}

// Go's regexp reads each byte that is not part of valid UTF-8 as U+FFFD
// (which "." and \W match); RE2 would match nothing there. readAsGo writes
// U+FFFD for each such byte, so RE2 sees the runes Go sees, and returns
// where in the result it did so, to map match offsets back to value.
// (Running Go's regexp on such values instead costs ~75× more: a CRS
// transformation such as base64Decode makes them out of every long text.)
func readAsGo(value string) (string, []int) {
	b := make([]byte, 0, len(value)+len(value)/2)
	var fixes []int
	valid := 0 // value[valid:i] is valid UTF-8 not yet copied
	for i := 0; i < len(value); {
		if value[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(value[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, value[valid:i]...)
			fixes = append(fixes, len(b))
			b = utf8.AppendRune(b, utf8.RuneError)
			valid = i + 1
		}
		i += n
	}
	b = append(b, value[valid:]...)
	return unsafe.String(unsafe.SliceData(b), len(b)), fixes
}

// originalOffset maps an offset in readAsGo's result back to value: each
// replacement before it stands for one byte but took three.
func originalOffset(off int, fixes []int) int {
	n := 0
	for _, f := range fixes {
		if f >= off {
			break
		}
		n++
	}
	return off - 2*n
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
