package waf

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// What the gate (gate.go) learns while a policy compiles: which rules it
// may remove, the collections each reads and its fused operator, from the
// rule text as the fuser rewrites it and from the operators Coraza builds.

// gateVariables are the collections the gate reads, each with the phase
// from which no rule changes it: the request's values once phase 2 begins
// (sekisho's views come before the gate), the response's once its body is
// read.
var gateVariables = map[string]types.RulePhase{
	"ARGS": 2, "ARGS_NAMES": 2, "ARGS_GET": 2, "ARGS_GET_NAMES": 2,
	"ARGS_POST": 2, "ARGS_POST_NAMES": 2, "ARGS_PATH": 2,
	"REQUEST_COOKIES": 2, "REQUEST_COOKIES_NAMES": 2,
	"REQUEST_HEADERS": 2, "REQUEST_HEADERS_NAMES": 2,
	"REQUEST_FILENAME": 2, "REQUEST_BASENAME": 2, "REQUEST_URI": 2,
	"REQUEST_URI_RAW": 2, "REQUEST_LINE": 2, "QUERY_STRING": 2,
	"REQUEST_BODY": 2, "REQUEST_METHOD": 2, "REQUEST_PROTOCOL": 2,
	"FILES": 2, "FILES_NAMES": 2, "XML": 2,
	"RESPONSE_BODY": 4, "RESPONSE_HEADERS": 4, "RESPONSE_HEADERS_NAMES": 4,
	"RESPONSE_STATUS": 4, "RESPONSE_PROTOCOL": 4, "RESPONSE_CONTENT_TYPE": 4,
}

// gateVars reads a rule's variable list ("ARGS|!ARGS:/x|y/|XML:/*") as the
// collections it reads and the phase from which they are all final, or
// false when the gate cannot vouch for one of them (a count, a collection
// outside gateVariables). Keys are skipped as Coraza's parser reads them:
// an XPath up to the next '|', a regular expression up to its closing '/',
// a quoted key up to its quote.
func gateVars(list string) ([]variables.RuleVariable, types.RulePhase, bool) {
	var out []variables.RuleVariable
	final := types.RulePhase(0)
	for list != "" {
		end := strings.IndexAny(list, ":|")
		name := list
		if end >= 0 {
			name = list[:end]
		}
		rest := ""
		if end >= 0 && list[end] == ':' {
			key := list[end+1:]
			skip := 0
			switch {
			case name == "XML" || name == "JSON" || name == "!XML" || name == "!JSON":
				skip = strings.IndexByte(key, '|')
			case strings.HasPrefix(key, "/") || strings.HasPrefix(key, "'"):
				close := closingIndex(key[1:], key[0])
				if close < 0 {
					return nil, 0, false
				}
				skip = close + 2
				if skip < len(key) && key[skip] != '|' {
					return nil, 0, false
				}
			default:
				skip = strings.IndexByte(key, '|')
			}
			if skip >= 0 && skip < len(key) {
				rest = key[skip+1:]
			}
		} else if end >= 0 {
			rest = list[end+1:]
		}
		list = rest
		if strings.HasPrefix(name, "!") {
			continue // an exclusion reads fewer values
		}
		phase, known := gateVariables[name]
		if !known {
			return nil, 0, false
		}
		v, err := variables.Parse(name)
		if err != nil {
			return nil, 0, false
		}
		out = append(out, v)
		final = max(final, phase)
	}
	return out, final, true
}

// closingIndex is the index in s of the first delim not escaped by '\'.
func closingIndex(s string, delim byte) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case delim:
			return i
		}
	}
	return -1
}

// gateFlag is the fused operator's flag that names its rule to the gate.
const gateFlag = "gate="

// gatedRule is what the fuser learns of a rule the gate may remove.
type gatedRule struct {
	phase types.RulePhase
	vars  []variables.RuleVariable
	pl    int // CRS's paranoia-level/N tag; 0 when none
}

// gateOf returns the phase and collections of rule r (with the given id)
// when the gate may remove it: it runs in phase 2 or 4 and reads only
// collections the gate reads that are final by then. Otherwise false.
func gateOf(id int, r secRule) (gatedRule, bool) {
	var phase types.RulePhase
	pl := 0
	for _, a := range r.acts {
		if n, ok := strings.CutPrefix(a.val, "paranoia-level/"); ok && a.key == "tag" {
			pl, _ = strconv.Atoi(n)
		}
		if a.key == "phase" {
			switch a.val {
			case "2", "request":
				phase = 2
			case "4", "response":
				phase = 4
			default:
				phase = 0
			}
		}
	}
	vars, final, ok := gateVars(r.vars)
	if id < 0 || phase == 0 || !ok || len(vars) == 0 || final > phase {
		return gatedRule{}, false
	}
	return gatedRule{phase: phase, vars: vars, pl: pl}, true
}

// noteGate records the rule with the given id as one the gate may remove.
func (f *fuser) noteGate(id int, r gatedRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gated == nil {
		f.gated = map[int]gatedRule{}
	}
	f.gated[id] = r
}

// varIndex returns the index of v in g.vars, noting that chain reads it.
func (g *ruleGate) varIndex(v variables.RuleVariable, chain *tchain) int {
	i := slices.IndexFunc(g.vars, func(x gateVar) bool { return x.v == v })
	if i < 0 {
		i = len(g.vars)
		g.vars = append(g.vars, gateVar{v: v})
	}
	if chain != nil && !slices.Contains(g.vars[i].chains, chain) {
		g.vars[i].chains = append(g.vars[i].chains, chain)
	}
	return i
}

// gateBuilds holds, while a policy compiles, the gate its gate rule will
// run: the action is created as the rule is parsed, before the rules it
// gates, and is given the build's key (keyGateAction).
var (
	gateBuilds sync.Map // key -> *gateSet
	gateSeq    atomic.Int64
)

// keyGateAction gives the gate action in directive l the key of f's gate.
func (f *fuser) keyGateAction(l string) (string, bool) {
	i := strings.Index(l, gateAction)
	if i < 0 || !isSecRule(l) && !strings.HasPrefix(l, "SecAction") {
		return "", false
	}
	end := i + len(gateAction)
	if end < len(l) && l[end] != '"' && l[end] != ',' {
		return "", false
	}
	f.mu.Lock()
	if f.g == nil {
		f.g = &gateSet{}
		f.gateKey = strconv.FormatInt(gateSeq.Add(1), 10)
		gateBuilds.Store(f.gateKey, f.g)
	}
	key := f.gateKey
	f.mu.Unlock()
	return l[:end] + ":" + key + l[end:], true
}

// noteGateOp records the fused operator of a rule the gate may remove.
func (f *fuser) noteGateOp(id int, op *fusedOp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gateOps == nil {
		f.gateOps = map[int]*fusedOp{}
	}
	f.gateOps[id] = op
}

// finishGate gives the build's gate rule the rules it may remove; it is
// called once the build is done (or failed), before any transaction.
func (f *fuser) finishGate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.g == nil {
		return
	}
	gateBuilds.Delete(f.gateKey)
	if f.gateOff {
		return
	}
	for id, gr := range f.gated {
		g, vars := &f.g.byPhase[gr.phase], gr.vars
		op := f.gateOps[id]
		// A rule above the policy's paranoia level is skipped by CRS itself:
		// asking about it would be wasted work (and leaving any rule to
		// Coraza is always safe).
		if op == nil || f.gateKeep.has(id) || gr.pl > f.pl {
			continue
		}
		if op.multi || !gateable(op.inner) {
			continue
		}
		late := false
		for _, x := range f.gateExtra {
			if x.ids[0] <= id && id <= x.ids[1] {
				vars = append(slices.Clip(vars), x.vars...)
				late = late || x.final > gr.phase
			}
		}
		if late {
			continue
		}
		rule := gateRule{id: id, op: op}
		for _, v := range vars {
			rule.vars = append(rule.vars, g.varIndex(v, op.chain))
		}
		for _, i := range rule.vars {
			rule.outAt = append(rule.outAt, g.vars[i].chainIndex(op.chain))
		}
		if r, ok := op.inner.(*rx); ok {
			for _, a := range r.pf.cond.atoms(nil) {
				for len(rule.atoms) <= a.id>>6 {
					rule.atoms = append(rule.atoms, 0)
				}
				rule.atoms[a.id>>6] |= 1 << (a.id & 63)
			}
			g.need = max(g.need, r.pf.need)
		}
		g.rules = append(g.rules, rule)
	}
	for i := range f.g.byPhase {
		// In rule order, for the debugger's sake: the outcome is the same.
		slices.SortFunc(f.g.byPhase[i].rules, func(a, b gateRule) int { return a.id - b.id })
	}
}

// gateable reports whether the gate can tell that op cannot match: an @rx
// with a condition on atoms, or a @pm (through its dictionary's DFA,
// built on first use, pmMayMatch).
func gateable(op plugintypes.Operator) bool {
	switch o := op.(type) {
	case *rx:
		return !o.latin1 && o.pf.cond != nil
	case *pm:
		return true
	}
	return false
}

// noteTargetUpdate records what a SecRuleUpdateTarget* directive adds: the
// rules it names then read those collections too, or cannot be gated.
func (f *fuser) noteTargetUpdate(dir, opts string) {
	fields := strings.Fields(opts)
	if len(fields) < 2 {
		return
	}
	targets := strings.Trim(fields[1], `"'`)
	adds, final, ok := gateVars(targets)
	if len(adds) == 0 && ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.EqualFold(dir, "SecRuleUpdateTargetById") {
		f.gateOff = true // by tag or message: any rule
		return
	}
	for _, one := range strings.Split(fields[0], ",") {
		r, valid := idRange(one)
		switch {
		case !valid:
			f.gateOff = true
			return
		case ok:
			f.gateExtra = append(f.gateExtra, gateExtra{ids: r, vars: adds, final: final})
		default:
			f.gateKeep = append(f.gateKeep, r)
		}
	}
}

// gateExtra is the collections a SecRuleUpdateTargetById adds to rules.
type gateExtra struct {
	ids   [2]int
	vars  []variables.RuleVariable
	final types.RulePhase
}
