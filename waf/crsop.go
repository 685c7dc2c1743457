package waf

import (
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// crsOperator runs the checks of several CRS rules, each with its own
// transformations, as one operator: `SecRule REQUEST_HEADERS|... "@sekisho_crs
// 942100 942140"` matches a value when any of the CRS rules named would. One
// sekisho rule per attack class so extends CRS's checks to a channel at the
// cost of one rule's evaluation rather than forty: Coraza gathers a rule's
// variables and applies its key exclusions once per rule, and for request
// headers that costs more than the checks themselves.
//
// The operator's arguments are the CRS rules' ids as written in the rule
// file; channelsFS replaces them, when the file is read, with keys into
// crsChecks, taken from the CRS in use (embedded or crs_dir).
const crsOperator = "sekisho_crs"

// crsCheck is the check of one CRS rule: its operator and transformations.
type crsCheck struct {
	id    int
	dir   string // of the rule's file: where @pmFromFile finds its data
	chain string // transformation names, comma-joined ("" for none)
	op    string // operator name, without @
	args  string // operator arguments, unescaped as Coraza does
	multi bool   // multiMatch: the operator also runs before each transformation
}

// crsChecks holds every crsCheck read so far, by key. Keys name a check's
// content, so WAF builds share them and a reload with changed rules adds
// new keys: the map grows only with distinct CRS rule texts.
var crsChecks sync.Map // string -> crsCheck

// key names c by its id and content.
func (c crsCheck) key() string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%t", c.dir, c.chain, c.op, c.args, c.multi)
	return strconv.Itoa(c.id) + "." + strconv.FormatUint(h.Sum64(), 36)
}

// crsIndex reads the rule files of root once: the ids of CRS's rules (any
// directive's, chained or not) and, by id, the checks sekisho can run on
// its own, of CRS's rules and of sekisho's detections: a rule whose match
// stands alone (no chain) and whose operator is not negated.
func crsIndex(root fs.FS) (ids map[int]bool, checks map[int]crsCheck, err error) {
	ids, checks = map[int]bool{}, map[int]crsCheck{}
	err = forEachRuleFile(root, func(file string, data []byte) {
		if file != detectionsFile {
			for _, m := range ruleIDRe.FindAllSubmatch(data, -1) {
				if id, err := strconv.Atoi(string(m[1])); err == nil {
					ids[id] = true
				}
			}
		}
		eachRule(data, func(r secRule) {
			if c, ok := checkOf(r, path.Dir(file)); ok {
				checks[c.id] = c
			}
		})
	})
	return ids, checks, err
}

// forEachRuleFile calls fn with each of CRS's rule files in root, and
// sekisho's detections, and its content.
func forEachRuleFile(root fs.FS, fn func(file string, data []byte)) error {
	files, err := fs.Glob(root, "@owasp_crs/*.conf")
	if err != nil {
		return err
	}
	for _, f := range append(files, detectionsFile) {
		data, err := fs.ReadFile(root, f)
		if err != nil {
			return err
		}
		fn(f, data)
	}
	return nil
}

// eachRule calls fn with each SecRule of a rule file, in the plain form
// sekisho reads.
func eachRule(data []byte, fn func(r secRule)) {
	for _, d := range logicalLines(strings.Split(string(data), "\n")) {
		if r, ok := parseSecRule(d.text); ok {
			fn(r)
		}
	}
}

// checkOf returns the check of rule r, or false when r's match does not
// stand alone.
func checkOf(r secRule, dir string) (crsCheck, bool) {
	c := crsCheck{id: -1, dir: dir}
	var chain []string
	for _, a := range r.acts {
		switch a.key {
		case "chain":
			return c, false
		case "multimatch":
			c.multi = true
		case "id":
			n, err := strconv.Atoi(a.val)
			if err != nil {
				return c, false
			}
			c.id = n
		case "t":
			if a.val == "none" {
				chain = chain[:0]
			} else {
				chain = append(chain, a.val)
			}
		}
	}
	neg, body := splitOperator(r.op)
	if neg != "" || r.op == `""` {
		return c, false
	}
	// Coraza unescapes the quotes of an operator it reads (seclang's
	// parseActionOperator); the fused rules leave that to it.
	name, args, _ := strings.Cut(body, " ")
	c.op, c.args, c.chain = strings.TrimSpace(name), strings.TrimSpace(strings.ReplaceAll(args, `\"`, `"`)), strings.Join(chain, ",")
	return c, c.id >= 0
}

// crsOp is a crsOperator: the checks it runs, in order, and the CRS
// rule of each.
type crsOp struct {
	checks []*fusedOp
	ids    []string
	clean  clean
}

// clean remembers, for one crsOp, the values that none of its checks
// matched: request headers repeat from request to request (a browser's
// User-Agent, a site's Referer), and the checks are a pure function of the
// value, so a value once found clean is clean until the rules are reloaded
// (which builds new operators). Only short values are kept, at most
// cleanMax of them; when full, the set starts over. A match is never
// remembered: it sets the transaction's captures each time.
type clean struct {
	mu     sync.Mutex
	values map[string]struct{}
}

// At most 1,024 values of at most 256 bytes (a browser's User-Agent is
// about 130): 256 KiB per class rule, under 3 MiB for all of them, whatever
// a client sends.
const (
	cleanMax      = 1024
	cleanValueMax = 256
)

func (c *clean) has(v string) bool {
	if len(v) > cleanValueMax {
		return false
	}
	c.mu.Lock()
	_, ok := c.values[v]
	c.mu.Unlock()
	return ok
}

func (c *clean) add(v string) {
	if len(v) > cleanValueMax {
		return
	}
	c.mu.Lock()
	if c.values == nil || len(c.values) >= cleanMax {
		c.values = make(map[string]struct{}, 64)
	}
	c.values[strings.Clone(v)] = struct{}{}
	c.mu.Unlock()
}

// newCRSOp builds a crsOperator from its keys.
func newCRSOp(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	op := &crsOp{}
	for _, key := range strings.Fields(o.Arguments) {
		v, ok := crsChecks.Load(key)
		if !ok {
			return nil, fmt.Errorf("@%s: no CRS rule %q (list CRS rule ids)", crsOperator, key)
		}
		c := v.(crsCheck)
		sub := &fusedOp{multi: c.multi}
		if c.chain != "" {
			chain, err := chainOf(c.chain)
			if err != nil {
				return nil, fmt.Errorf("@%s: CRS rule %d: %w", crsOperator, c.id, err)
			}
			sub.chain = chain
		}
		io := o
		io.Arguments, io.Path = c.args, []string{c.dir}
		inner, err := corazaOperator(c.op, io)
		if err != nil {
			return nil, fmt.Errorf("@%s: CRS rule %d: %w", crsOperator, c.id, err)
		}
		sub.inner = inner
		op.checks = append(op.checks, sub)
		op.ids = append(op.ids, strconv.Itoa(c.id))
	}
	if len(op.checks) == 0 {
		return nil, fmt.Errorf("@%s: no CRS rule to run", crsOperator)
	}
	return op, nil
}

// crsRuleVar is the TX variable that names the CRS rule whose check matched
// last, for a rule's msg or logdata (%{TX.sekisho_crs_rule}).
const crsRuleVar = "sekisho_crs_rule"

// Evaluate implements plugintypes.Operator.
func (o *crsOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.clean.has(value) {
		return false
	}
	m := memoOf(tx)
	for i, c := range o.checks {
		if c.matches(tx, m, value) {
			tx.Variables().TX().Set(crsRuleVar, []string{o.ids[i]})
			return true
		}
	}
	o.clean.add(value)
	return false
}
