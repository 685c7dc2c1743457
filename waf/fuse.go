package waf

import (
	"bytes"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Coraza transforms each argument for each rule before the operator runs,
// and caches every intermediate result in a per-transaction map keyed by
// argument and transformation chain. For a 16 KiB JSON order (~330
// arguments, ~200 CRS rules) that map holds tens of thousands of entries and
// its lookups are most of the inspection's CPU. Yet most values are left as
// they are by most chains ("42", "Jane Doe" through urlDecodeUni,
// htmlEntityDecode, ...).
//
// So sekisho moves each CRS rule's transformations into its operator when
// the rules are loaded: `SecRule ARGS "@rx x" "...,t:none,t:urlDecodeUni"`
// becomes `SecRule ARGS "@sekisho_t urlDecodeUni rx x" "...,t:none"`. The
// operator applies the same transformations (Coraza's own functions) to the
// value, remembering per transaction which transformations leave each value
// unchanged, and then runs the original operator on the result. Verdicts are
// unchanged (TestCRSEquivalence); the one visible difference is that
// MATCHED_VAR, as logdata shows it, is the value as received rather than
// after the transformations. Rules whose actions (other than logdata) or
// chains read MATCHED_VAR(S) keep their transformations, as do multiMatch
// rules and rules that a SecRuleUpdateActionById gives transformations.

// fusedOperator is the operator name the rewritten rules use.
const fusedOperator = "sekisho_t"

// fuser rewrites the rule files of one WAF build.
type fuser struct {
	off      bool     // move no transformations
	keep     idRanges // rules whose transformations stay as they are
	semantic bool     // give rules their semantic checks (semantic.go)
	// semanticOff are the checks a policy's rules_off turns off.
	semanticOff map[string]bool

	mu        sync.Mutex
	rewritten int      // rules rewritten, chain links included
	fused     []int    // IDs of the rules rewritten
	touched   idRanges // rules a SecRuleUpdateActionById gives transformations
	unfusing  bool     // something reads MATCHED_VAR across rules: build without fusing

	// What the gate may remove (gate.go): each candidate rule's variables
	// and fused operator, rules a SecRuleUpdateTargetById gives more
	// variables, whether one by tag or message does; the build's gate.
	gated     map[int]gatedRule
	gateOps   map[int]*fusedOp
	gateKeep  idRanges
	gateExtra []gateExtra
	gateOff   bool
	gateKey   string
	g         *gateSet
	pl        int // the policy's paranoia level: rules above it are not gated
}

// idRanges is a list of inclusive rule ID ranges.
type idRanges [][2]int

func (rs idRanges) has(id int) bool {
	for _, r := range rs {
		if r[0] <= id && id <= r[1] {
			return true
		}
	}
	return false
}

// retry returns the fuser for a second build when this one rewrote a rule
// that must keep its transformations (an update adds to them, or a rule
// reads MATCHED_VAR across rules), or nil when this build stands.
func (f *fuser) retry() *fuser {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unfusing {
		if f.rewritten == 0 {
			return nil
		}
		return &fuser{off: true, semantic: f.semantic, semanticOff: f.semanticOff, pl: f.pl}
	}
	for _, id := range f.fused {
		if f.touched.has(id) {
			return &fuser{keep: append(slices.Clip(f.keep), f.touched...), semantic: f.semantic, semanticOff: f.semanticOff, pl: f.pl}
		}
	}
	return nil
}

// directive is one logical SecLang line: physical lines first..last
// (0-based) joined as Coraza joins them.
type directive struct {
	first, last int
	text        string
}

// logicalLines splits src into directives exactly as Coraza's parser reads
// them (trimmed lines, comments dropped, `\` continuations, backtick blocks).
func logicalLines(lines []string) []directive {
	var (
		out         []directive
		buf         strings.Builder
		first       = -1
		inBackticks bool
	)
	for i, raw := range lines {
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		if first < 0 {
			first = i
		}
		if !inBackticks && line[len(line)-1] == '`' {
			inBackticks = true
		} else if inBackticks && line[0] == '`' {
			inBackticks = false
		}
		if inBackticks {
			buf.WriteString(line)
			buf.WriteByte('\n')
			continue
		}
		if line[len(line)-1] == '\\' {
			buf.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		buf.WriteString(line)
		out = append(out, directive{first: first, last: i, text: buf.String()})
		buf.Reset()
		first = -1
	}
	return out
}

// secRule is a SecRule directive cut as Coraza cuts it.
type secRule struct {
	vars, op, actions string // op quoted as written; actions without their quotes
	acts              []action
}

// action is one action of a rule: its key, value and text as written.
type action struct {
	key, val, raw string
}

// parseSecRule returns the rule a directive holds, or false when it is not
// a SecRule in the plain form sekisho rewrites.
func parseSecRule(l string) (secRule, bool) {
	dir, opts, _ := strings.Cut(l, " ")
	if !strings.EqualFold(dir, "SecRule") || len(opts) >= 3 && opts[0] == '"' && opts[len(opts)-1] == '"' {
		return secRule{}, false
	}
	vars, rest, ok := strings.Cut(strings.Trim(opts, " "), " ")
	if !ok {
		return secRule{}, false
	}
	op, rest, ok := cutQuoted(strings.TrimLeft(rest, " "))
	if !ok {
		return secRule{}, false
	}
	rest = strings.TrimLeft(rest, " ")
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return secRule{}, false
	}
	r := secRule{vars: vars, op: op, actions: rest[1 : len(rest)-1]}
	r.acts, ok = splitActions(r.actions)
	return r, ok
}

// cutQuoted cuts the double-quoted string that s starts with, as Coraza
// does: a quote preceded by an odd number of backslashes is escaped.
func cutQuoted(s string) (quoted, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	escapes := 0
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			escapes++
		case s[i] == '"' && escapes%2 == 0:
			return s[:i+1], s[i+1:], true
		default:
			escapes = 0
		}
	}
	return "", "", false
}

// splitActions splits an action list at the commas Coraza splits it at. It
// refuses a list that ends inside quotes.
func splitActions(s string) ([]action, bool) {
	var out []action
	start, colon, inQuotes := 0, -1, false
	cut := func(end int) {
		a := action{raw: s[start:end]}
		if colon < 0 {
			a.key = s[start:end]
		} else {
			a.key, a.val = s[start:colon], s[colon+1:end]
		}
		a.key = strings.ToLower(strings.TrimSpace(a.key))
		a.val = unquoteAction(strings.TrimSpace(a.val))
		out = append(out, a)
		start, colon = end+1, -1
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if s[i-1] == '\\' {
			continue
		}
		if c == '\'' {
			inQuotes = !inQuotes
			continue
		}
		if inQuotes {
			continue
		}
		switch c {
		case ':':
			if colon < 0 {
				colon = i
			}
		case ',':
			cut(i)
		}
	}
	if inQuotes {
		return nil, false
	}
	cut(len(s))
	return out, true
}

func unquoteAction(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// readsMatchedVar tells whether s refers to MATCHED_VAR or MATCHED_VARS
// (the values; MATCHED_VAR_NAME and MATCHED_VARS_NAMES are names only).
func readsMatchedVar(s string) bool {
	const name = "matched_var"
	low := strings.ToLower(s)
	for {
		i := strings.Index(low, name)
		if i < 0 {
			return false
		}
		low = low[i+len(name):]
		rest := strings.TrimPrefix(low, "s")
		if rest == "" || rest[0] != '_' {
			return true
		}
	}
}

// rewrite returns src with every eligible rule's transformations moved into
// its operator. Line numbers stay as they were: a rewritten rule stands on
// its last line, as Coraza numbers it, and its other lines are left empty.
func (f *fuser) rewrite(src string) string {
	lines := strings.Split(src, "\n")
	dirs := logicalLines(lines)
	rules := make([]secRule, len(dirs))
	isRule := make([]bool, len(dirs))
	for i, d := range dirs {
		rules[i], isRule[i] = parseSecRule(d.text)
		f.noteUpdate(d.text)
	}
	changed := false
	for _, d := range dirs {
		if text, ok := f.keyGateAction(d.text); ok {
			for l := d.first; l < d.last; l++ {
				lines[l] = ""
			}
			lines[d.last], changed = text, true
		}
	}
	for i := 0; i < len(dirs); {
		// A chain is a rule and the SecRules that follow while "chain" says
		// so; a SecRule that cannot be read may chain too.
		j := i + 1
		if isSecRule(dirs[i].text) {
			for j < len(dirs) && isSecRule(dirs[j].text) && (!isRule[j-1] || hasAction(rules[j-1].acts, "chain")) {
				j++
			}
		}
		leave := false
		for k := i; k < j; k++ {
			leave = leave || !isRule[k] || readsMatchedVar(rules[k].vars) || readsMatchedVar(rules[k].op) || readsMatchedVarInActions(rules[k].acts)
		}
		if j == i+1 && isRule[i] && (readsMatchedVar(rules[i].vars) || readsMatchedVar(rules[i].op)) {
			// A lone rule that inspects MATCHED_VAR reads an earlier rule's match.
			f.mu.Lock()
			f.unfusing = true
			f.mu.Unlock()
		}
		for k := i; k < j && isRule[k]; k++ {
			// A chain that reads MATCHED_VAR keeps its transformations;
			// its rules may still get their semantic checks.
			if text, ok := f.fuse(rules[k], k == i, !leave); ok {
				d := dirs[k]
				for l := d.first; l < d.last; l++ {
					lines[l] = ""
				}
				lines[d.last] = text
				changed = true
			}
		}
		i = j
	}
	if !changed {
		return src
	}
	return strings.Join(lines, "\n")
}

func isSecRule(l string) bool {
	dir, _, _ := strings.Cut(l, " ")
	return strings.EqualFold(dir, "SecRule")
}

func hasAction(acts []action, key string) bool {
	for _, a := range acts {
		if a.key == key {
			return true
		}
	}
	return false
}

// readsMatchedVarInActions looks at every action but logdata, which only
// shows the value.
func readsMatchedVarInActions(acts []action) bool {
	for _, a := range acts {
		if a.key != "logdata" && readsMatchedVar(a.raw) {
			return true
		}
	}
	return false
}

// fuse returns r rewritten, or false when r is left as it is. A rule that
// keeps its transformations may still get its semantic check.
func (f *fuser) fuse(r secRule, head, move bool) (string, bool) {
	var (
		chain    []string
		kept     []string
		none     bool
		multi    bool
		movable  = move && !f.off
		id       = -1
		firstRaw = ""
	)
	for _, a := range r.acts {
		switch a.key {
		case "multimatch":
			multi = true
			continue
		case "id":
			n, err := strconv.Atoi(a.val)
			if err != nil {
				return "", false
			}
			id = n
		case "t":
			if a.val == "none" {
				none, chain = true, chain[:0]
				continue
			}
			// Transformations that add to inherited ones are left to Coraza.
			movable = movable && none && isName(a.val)
			chain = append(chain, a.val)
			continue
		}
		if len(kept) == 0 {
			firstRaw = a.raw
		}
		kept = append(kept, a.raw)
	}
	neg, body := splitOperator(r.op)
	check := ""
	if f.semantic && head && neg == "" {
		name, _, _ := strings.Cut(body, " ")
		if c := semanticFor(id, name); c != "" && !f.semanticOff[c] {
			check = c + "@" + strconv.Itoa(id)
		}
	}
	// Coraza scores each form of the value a multiMatch rule matches; the
	// fused operator matches once per value, so such a rule keeps its
	// transformations, unless it has a semantic check: that needs the value
	// as received, which only the fused operator has (it then scores once
	// per value, enough to reach any threshold a single match reaches).
	if multi && check == "" {
		movable = false
	}
	// Coraza's action parser never looks at the first byte of the list:
	// keep lists whose new first byte would have mattered.
	// A rule with no transformations is rewritten too when the gate may
	// remove it: the fused operator is how the gate learns its condition.
	gate, gated := gateOf(id, r)
	gated = gated && head && neg == "" && !multi
	movable = movable && (len(chain) > 0 || none && gated) && !(head && id < 0) &&
		(firstRaw == "" || strings.IndexByte(`':,\`, firstRaw[0]) < 0) && !(head && f.keep.has(id))
	var names string
	switch {
	case movable:
		flags := check
		if multi {
			flags += ",multi"
		} else if gated {
			f.noteGate(id, gate)
			flags += "," + gateFlag + strconv.Itoa(id)
		}
		flags = strings.TrimPrefix(flags, ",")
		names = strings.Join(chain, ",")
		if flags != "" {
			names = flags + "/" + names
		}
	case check != "":
		// Coraza transforms the value (the check sees what it is given),
		// the check confirms the match.
		names, kept = check+"/", nil
		for _, a := range r.acts {
			kept = append(kept, a.raw)
		}
	default:
		return "", false
	}
	text := "SecRule " + r.vars + ` "` + neg + "@" + fusedOperator + " " + names + " " + body + `" "` + strings.Join(kept, ",") + `"`
	if len(text) >= 60<<10 {
		// Coraza reads lines with bufio.Scanner, which stops (silently) at
		// a line of 64 KiB: the joined rule must stay well below.
		return "", false
	}
	if movable {
		f.mu.Lock()
		f.rewritten++
		if head {
			f.fused = append(f.fused, id)
		}
		f.mu.Unlock()
	}
	return text, true
}

// splitOperator returns a rule's operator as written (quotes and escapes
// kept: Coraza unquotes the rewritten one the same way) as its negation and
// "NAME ARGUMENTS".
func splitOperator(op string) (neg, body string) {
	inner := op[1 : len(op)-1]
	switch {
	case inner == "" || inner[0] != '@' && inner[0] != '!':
		return "", "rx " + inner
	case inner == "!":
		return "!", "rx"
	case inner[0] == '!' && (len(inner) < 2 || inner[1] != '@'):
		return "!", "rx " + inner[1:]
	case inner[0] == '@':
		return "", inner[1:]
	default: // "!@"
		return "!", inner[2:]
	}
}

func isName(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// noteUpdate records the rules that a SecRuleUpdateActionById gives
// transformations: they must keep Coraza's own.
func (f *fuser) noteUpdate(l string) {
	dir, opts, _ := strings.Cut(l, " ")
	if len(dir) > len("SecRuleUpdateTargetBy") && strings.EqualFold(dir[:len("SecRuleUpdateTargetBy")], "SecRuleUpdateTargetBy") {
		f.noteTargetUpdate(dir, opts)
		return
	}
	if !strings.EqualFold(dir, "SecRuleUpdateActionById") {
		return
	}
	// Coraza reads the ids as all fields but the last, the actions.
	fields := strings.Fields(opts)
	if len(fields) < 2 {
		return
	}
	parsed, ok := splitActions(strings.Trim(fields[len(fields)-1], `"`))
	if ok && !hasAction(parsed, "t") {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, one := range fields[:len(fields)-1] {
		one, _, _ = strings.Cut(one, ":") // a chain link's index
		r, ok := idRange(one)
		if !ok {
			r = [2]int{math.MinInt, math.MaxInt}
		}
		f.touched = append(f.touched, r)
	}
}

// idRange reads "ID" or "FIRST-LAST" as an inclusive range of rule IDs.
func idRange(s string) ([2]int, bool) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !isRange {
		b, err2 = a, nil
	}
	return [2]int{a, b}, err1 == nil && err2 == nil
}

// fusedFS serves the rule files of root rewritten by a fuser.
type fusedFS struct {
	root fs.FS
	f    *fuser
}

func (s fusedFS) Open(name string) (fs.File, error) {
	if !strings.HasSuffix(name, ".conf") {
		return s.root.Open(name)
	}
	return rewritten(s.root, name, func(data []byte) ([]byte, error) {
		return []byte(s.f.rewrite(string(data))), nil
	})
}

// rewritten opens name in fsys as edit rewrites its content.
func rewritten(fsys fs.FS, name string, edit func([]byte) ([]byte, error)) (fs.File, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	info, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if data, err = edit(data); err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(data), info: sizedInfo{info, int64(len(data))}}, nil
}

// memFile is a rewritten rule file.
type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (m *memFile) Stat() (fs.FileInfo, error) { return m.info, nil }
func (m *memFile) Close() error               { return nil }

// sizedInfo is a file's information with the size of its rewritten text.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
