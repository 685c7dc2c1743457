package waf

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// Coraza pays for every rule it evaluates, match or not: it fills the RULE
// collection, expands the rule's msg and logdata, and gathers each of its
// variables into a fresh list of MatchData before the operator sees a
// value. On a benign GET that bookkeeping, for ~150 attack rules that
// cannot match, is most of the WAF's time.
//
// So once a request's values are all known (the start of phase 2, after
// sekisho's views, rule 200032; and of phase 4 for the response body, rule
// 200033), the gate asks, for each rule of that phase whose operator is a
// fused @rx with a known condition on atoms (prefilter.go) or a fused @pm:
// could any value of its variables, through its transformations, match?
// For @rx it answers with the union of the atoms of those values (the
// condition only ever asks "contains", so a union that does not meet it
// proves that no single value does) and the longest of them (against the
// pattern's shortest match); for @pm with the dictionary's DFA on each
// value as the rule's chain makes it. A rule that certainly cannot match
// is removed for this transaction (as ctl:ruleRemoveById does); every
// doubt keeps it.
//
// The values a rule reads are taken as the whole collection of each of its
// variables: a key selection or an exclusion only ever reads fewer. Rules
// are gated only on collections no rule changes from then on, are not
// negated, not multiMatch, and a SecRuleUpdateTarget* that gives them
// other variables is followed (gatebuild.go).

// gateAction is the action name of the rule that runs the gate (views.conf).
const gateAction = "sekisho_gate"

// gateRule is one rule the gate may remove.
type gateRule struct {
	id    int
	vars  []int // its collections, by index in the gate's vars
	outAt []int // for each, where its chain's output is (chainIndex)
	op    *fusedOp
	atoms []uint64 // every atom its condition names: it needs one of them
}

// gateVar is a collection gated rules read, with their transformations.
type gateVar struct {
	v      variables.RuleVariable
	chains []*tchain // distinct, none nil
}

// chainIndex is where, among a value's outputs in gateState.outs, chain's
// is: 0 for the value itself (no chain), 1+i for v.chains[i].
func (v *gateVar) chainIndex(chain *tchain) int {
	return 1 + slices.Index(v.chains, chain) // -1+1 when nil
}

// gateSet is the gates of one compiled policy, by phase: 2 for the request
// (rule 200032), 4 for the response body (rule 200033).
type gateSet struct {
	byPhase [types.PhaseLogging + 1]ruleGate
}

// ruleGate is the rules of one phase of a policy that the gate may remove.
type ruleGate struct {
	rules []gateRule
	vars  []gateVar
	need  int // atoms the DFA must know for every rule's condition
}

// gateState is one transaction's view of its values for the gate: per
// collection, the atoms its values hold as they are and through each chain
// of the rules that read it, and the longest of them.
type gateState struct {
	bits   []uint64 // one atom set per collection of the gate, in order
	maxLen []int
	// Every collection's values, each followed by what each of the
	// collection's chains makes of it (gateVar.chainIndex), and where each
	// collection's end in outs.
	outs    []string
	outsEnd []int
	removed int // rules removed, for tests
}

func (s *gateState) reset() {
	s.bits, s.maxLen, s.outs, s.outsEnd = s.bits[:0], s.maxLen[:0], s.outs[:0], s.outsEnd[:0]
}

// ruleRemover is Coraza's transaction, which can drop a rule for itself.
type ruleRemover interface{ RemoveRuleByID(id int) }

// run removes, for tx, the rules that cannot match its values. It returns
// how many it removed.
func (g *ruleGate) run(tx plugintypes.TransactionState, m *txMemo) int {
	rm, ok := tx.(ruleRemover)
	if len(g.rules) == 0 || m == nil || !ok {
		return 0
	}
	s := &m.gate
	words := atomDFA(g.need).words()
	s.reset()
	for i := range g.vars {
		s.collect(tx, m, &g.vars[i], words, g.need)
	}
	s.removed = 0
	for i := range g.rules {
		if r := &g.rules[i]; !r.mayMatch(s, g, words) {
			rm.RemoveRuleByID(r.id)
			s.removed++
		}
	}
	return s.removed
}

// mayMatch reports whether some value of r's variables could match r.
func (r *gateRule) mayMatch(s *gateState, g *ruleGate, words int) bool {
	if p, ok := r.op.inner.(*pm); ok {
		return r.pmMayMatch(s, g, p)
	}
	pf := &r.op.inner.(*rx).pf
	for _, i := range r.vars {
		found := s.bits[i*words : (i+1)*words]
		if s.maxLen[i] >= pf.minLen && intersects(r.atoms, found) && pf.cond.holdsBits(found) {
			return true
		}
	}
	return false
}

// pmMayMatch reports whether one of r's phrases could be in a value of
// r's variables through r's chain: the dictionary's own DFA, which says
// "maybe" wherever @pm could match, on each of them.
func (r *gateRule) pmMayMatch(s *gateState, g *ruleGate, p *pm) bool {
	dfa := p.dict.prefilter()
	if dfa == nil {
		return true // a phrase is empty, or the DFA would be too large
	}
	for k, i := range r.vars {
		lo := 0
		if i > 0 {
			lo = s.outsEnd[i-1]
		}
		stride := 1 + len(g.vars[i].chains)
		for j := lo + r.outAt[k]; j < s.outsEnd[i]; j += stride {
			if out := s.outs[j]; len(out) >= p.minLen && dfa.any(out) {
				return true
			}
		}
	}
	return false
}

// collect adds the atom set and longest length of v's values, as they are
// and through each of v's chains, to s.
func (s *gateState) collect(tx plugintypes.TransactionState, m *txMemo, v *gateVar, words, need int) {
	off := len(s.bits)
	s.bits = append(s.bits, make([]uint64, words)...)
	maxLen := 0
	col := tx.Collection(v.v)
	if col == nil {
		s.maxLen, s.outsEnd = append(s.maxLen, 0), append(s.outsEnd, len(s.outs))
		return
	}
	for _, md := range col.FindAll() {
		value := md.Value()
		start := len(s.outs)
		s.outs = append(s.outs, value)
		vs := m.valueState(value) // good until the next valueState: none below
		for _, c := range v.chains {
			s.outs = append(s.outs, c.applyTo(vs, value))
		}
		for k, out := range s.outs[start:] {
			if k > 0 && out == value {
				continue // its atoms are the value's
			}
			if !utf8.ValidString(out) {
				out, _ = goViewOf(m, out) // as rx reads it
			}
			maxLen = max(maxLen, len(out))
			for _, id := range atomsIn(m, out, need) {
				s.bits[off+int(id>>6)] |= 1 << (id & 63)
			}
		}
	}
	s.maxLen, s.outsEnd = append(s.maxLen, maxLen), append(s.outsEnd, len(s.outs))
}

// intersects reports whether two sets of bits have one in common.
func intersects(a, b []uint64) bool {
	for i := range min(len(a), len(b)) {
		if a[i]&b[i] != 0 {
			return true
		}
	}
	return false
}

// holdsBits is holds over a set of atoms given as bits by id.
func (c *cond) holdsBits(found []uint64) bool {
	switch c.op {
	case condAtom:
		w := c.id >> 6
		return w < len(found) && found[w]&(1<<(c.id&63)) != 0
	case condAnd:
		for _, s := range c.subs {
			if !s.holdsBits(found) {
				return false
			}
		}
		return true
	default:
		for w, bits := range c.anyOf {
			if w < len(found) && bits&found[w] != 0 {
				return true
			}
		}
		for _, s := range c.others {
			if s.holdsBits(found) {
				return true
			}
		}
		return false
	}
}

// gateAct is the action that runs the gate of its build, for the phase of
// its rule.
type gateAct struct{ set *gateSet }

func newGateAction() plugintypes.Action { return &gateAct{} }

// Init implements plugintypes.Action: data is the build's key. Without one
// (the rule was not loaded through sekisho's rewriting), the action does
// nothing.
func (a *gateAct) Init(_ plugintypes.RuleMetadata, data string) error {
	if data == "" {
		return nil
	}
	g, ok := gateBuilds.Load(data)
	if !ok {
		return fmt.Errorf("%s: no policy is being compiled with key %q", gateAction, data)
	}
	a.set = g.(*gateSet)
	return nil
}

// Evaluate implements plugintypes.Action.
func (a *gateAct) Evaluate(r plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	rm, ok := r.(types.RuleMetadata)
	if a.set == nil || !ok || int(rm.Phase()) >= len(a.set.byPhase) {
		return
	}
	a.set.byPhase[rm.Phase()].run(tx, memoOf(tx))
}

// Type implements plugintypes.Action.
func (*gateAct) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }
