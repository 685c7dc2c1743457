package waf

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	_ "unsafe" // go:linkname, below

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// The fused operator runs Coraza's own transformations and operators, which
// Coraza keeps in internal packages; their registries are reached by name
// rather than copied, so the rewritten rules behave exactly as the originals
// (and a Coraza upgrade that renames them fails the build, not detection).

//go:linkname corazaTransformation github.com/corazawaf/coraza/v3/internal/transformations.GetTransformation
func corazaTransformation(name string) (plugintypes.Transformation, error)

//go:linkname corazaOperator github.com/corazawaf/coraza/v3/internal/operators.Get
func corazaOperator(name string, options plugintypes.OperatorOptions) (plugintypes.Operator, error)

// fusedOp is a rule's operator with the rule's transformations: see fuse.go.
type fusedOp struct {
	chain   *tchain // nil: no transformation
	inner   plugintypes.Operator
	multi   bool      // multiMatch: also run before each transformation
	confirm *semantic // nil: a match stands as it is (semantic.go)
}

// newFusedOp reads "[FLAGS/]NAMES OPERATOR ARGUMENTS", NAMES being the
// rule's transformations joined by commas (possibly none), FLAGS "multi"
// for a multiMatch rule and the name of the semantic check that confirms
// its matches, joined by commas.
func newFusedOp(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	names, rest, _ := strings.Cut(o.Arguments, " ")
	op := &fusedOp{}
	gateID := -1
	if flags, chain, ok := strings.Cut(names, "/"); ok {
		names = chain
		for _, f := range strings.Split(flags, ",") {
			if f == "multi" {
				op.multi = true
			} else if id, ok := strings.CutPrefix(f, gateFlag); ok {
				n, err := strconv.Atoi(id)
				if err != nil {
					return nil, fmt.Errorf("@%s: bad flag %q", fusedOperator, f)
				}
				gateID = n
			} else if op.confirm = semanticCheck(f); op.confirm == nil {
				return nil, fmt.Errorf("@%s: unknown flag %q", fusedOperator, f)
			}
		}
	}
	if names != "" {
		chain, err := chainOf(names)
		if err != nil {
			return nil, err
		}
		op.chain = chain
	}
	// As Coraza's rule parser cuts an operator from its arguments.
	name, args, _ := strings.Cut(rest, " ")
	o.Arguments = strings.TrimSpace(args)
	inner, err := corazaOperator(strings.TrimSpace(name), o)
	if err != nil {
		return nil, err
	}
	op.inner = inner
	if fsys, ok := o.Root.(fusedFS); ok && gateID >= 0 {
		fsys.f.noteGateOp(gateID, op)
	}
	return op, nil
}

// Evaluate implements plugintypes.Operator.
func (o *fusedOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	return o.matches(tx, memoOf(tx), value)
}

// matches runs the check as Coraza runs its rule: on the transformed value,
// and for a multiMatch rule also on the value before each transformation
// that changes it. A semantic check then confirms the match or not.
func (o *fusedOp) matches(tx plugintypes.TransactionState, m *txMemo, value string) bool {
	raw := value
	if !o.multi || o.chain == nil {
		if o.chain != nil {
			value = o.chain.apply(m, value)
		}
		return o.eval(tx, m, value) && o.confirmed(tx, raw, value)
	}
	if o.eval(tx, m, value) && o.confirmed(tx, raw, value) {
		return true
	}
	for _, s := range o.chain.steps {
		out, changed, err := s.fn(value)
		if err != nil || !changed {
			continue
		}
		value = out
		if o.eval(tx, m, value) && o.confirmed(tx, raw, value) {
			return true
		}
	}
	return false
}

func (o *fusedOp) eval(tx plugintypes.TransactionState, m *txMemo, value string) bool {
	if r, ok := o.inner.(*rx); ok {
		return r.evaluate(tx, m, value) // one memo lookup for both
	}
	return o.inner.Evaluate(tx, value)
}

// confirmed asks the rule's semantic check, if it has one, about a match
// on value, which transformations made of raw. The check reads raw; it
// knows where the match is when the pattern matches raw as well.
func (o *fusedOp) confirmed(tx plugintypes.TransactionState, raw, value string) bool {
	if o.confirm == nil {
		return true
	}
	if hasPercentEscape(raw) {
		// Still URL-encoded (a multipart field, a double encoding): the
		// rule's transformations decoded it, and so does the check.
		raw = percentDecode(raw)
	}
	span := [2]int{-1, -1}
	if r, ok := o.inner.(*rx); ok && utf8.ValidString(raw) {
		// Where the pattern matches raw too, that is the match's place.
		if loc := r.re.FindStringIndex(raw); loc != nil {
			span = [2]int{loc[0], loc[1]}
		}
	}
	if o.confirm.check(raw, span) {
		return true
	}
	noteUnconfirmed(tx, o.confirm)
	return false
}

// tchain is a list of transformations, as a rule's t: actions give them.
type tchain struct {
	id    int32
	steps []tstep
	mask  uint64 // the steps' bits; 0 when a step has none (always run)
}

// tstep is one transformation and its bit in a value's memo.
type tstep struct {
	bit uint64
	fn  plugintypes.Transformation
}

// The chains and the transformations in them are numbered process-wide;
// CRS uses ~20 transformations in ~40 chains.
var chains = struct {
	sync.Mutex
	byNames map[string]*tchain
	bits    map[string]uint64
}{byNames: map[string]*tchain{}, bits: map[string]uint64{}}

func chainOf(names string) (*tchain, error) {
	chains.Lock()
	defer chains.Unlock()
	if c, ok := chains.byNames[names]; ok {
		return c, nil
	}
	c := &tchain{id: int32(len(chains.byNames))}
	fast := true
	for _, name := range strings.Split(names, ",") {
		fn, err := corazaTransformation(name)
		if err != nil {
			return nil, fmt.Errorf("transformation %q: %w", name, err)
		}
		key := strings.ToLower(name)
		bit, ok := chains.bits[key]
		if !ok && len(chains.bits) < 64 {
			bit = 1 << len(chains.bits)
			chains.bits[key] = bit
		}
		fast = fast && bit != 0
		c.steps = append(c.steps, tstep{bit: bit, fn: fn})
		c.mask |= bit
	}
	if !fast {
		c.mask = 0
	}
	chains.byNames[names] = c
	return c, nil
}

// run applies the chain from step `from` on, as Coraza does: a step that
// fails leaves the value as it was.
func (c *tchain) run(value string, from int) string {
	for _, s := range c.steps[from:] {
		if out, _, err := s.fn(value); err == nil {
			value = out
		}
	}
	return value
}

// apply returns value transformed by the chain. Per transaction it learns,
// for each value, which transformations leave it as it is: when all of the
// chain's do, so does the chain, and nothing is computed. Other results are
// remembered per value and chain.
func (c *tchain) apply(m *txMemo, value string) string {
	if m == nil || c.mask == 0 {
		return c.run(value, 0)
	}
	return c.applyTo(m.valueState(value), value)
}

// applyTo is apply with what the transaction learnt about value at hand.
func (c *tchain) applyTo(v *valueMemo, value string) string {
	if c.mask == 0 {
		return c.run(value, 0)
	}
	if unknown := c.mask &^ v.known; unknown != 0 {
		for _, s := range c.steps {
			if unknown&s.bit == 0 {
				continue
			}
			unknown &^= s.bit // a transformation named twice is tried once
			if out, _, err := s.fn(value); err == nil && out != value {
				v.changed |= s.bit
			}
			v.known |= s.bit
		}
	}
	if v.changed&c.mask == 0 {
		return value
	}
	for _, o := range v.outs {
		if o.chain == c.id {
			return o.value
		}
	}
	// Steps before the first that changes the value leave it as it is.
	from := 0
	for c.steps[from].bit&v.changed == 0 {
		from++
	}
	out := c.run(value, from)
	v.outs = append(v.outs, chainOut{chain: c.id, value: out})
	return out
}

// chainOut is a chain's result on a value that the chain changes.
type chainOut struct {
	chain int32
	value string
}
