package waf

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/types"
)

// Match is one rule's part in a verdict, for a block that explains itself.
type Match struct {
	RuleID   int
	Message  string
	Variable string // what matched, as SecLang names it: ARGS:q, REQUEST_HEADERS:user-agent
	// Exclusion is a ready-to-paste rule for a rules folder's before-crs/
	// that stops exactly this: this rule, on the variables it matched
	// (Variable is the first), on this path. Empty where no such scope
	// exists (the anomaly score rules).
	Exclusion string
}

// matchOf explains one matched rule of a request to path. Its exclusion
// covers every variable the rule matched: one left out would still block.
func matchOf(mr types.MatchedRule, path string) Match {
	m := Match{RuleID: mr.Rule().ID(), Message: mr.Message()}
	var targets []string
	for _, md := range mr.MatchedDatas() {
		name := md.Variable().Name()
		if name == "REQUEST_XML" {
			// Coraza's internal name for XML: SecLang and ctl actions
			// know it as XML only (a REQUEST_XML exclusion excludes nothing).
			name = "XML"
		}
		if name == "TX" && !strings.HasPrefix(md.Key(), "sekisho_") {
			continue // the anomaly evaluation: scoring, not a request's part
		}
		v := name
		if k := md.Key(); k != "" {
			v += ":" + k
		}
		if m.Variable == "" {
			m.Variable = v
		}
		targets = append(targets, exclusionTarget(v))
	}
	if len(targets) > 0 && path != "" {
		m.Exclusion = exclusion(m.RuleID, targets, path)
	}
	return m
}

// exclusion is a run-time exclusion of rule for targets (as
// exclusionTarget writes them) on path: one rule, one ctl action per
// target. Its id is derived from what it excludes, so that the same
// suggestion pasted twice is the same rule, in a range of 2^52 ids above
// everything CRS and its plugins number (exclusionIDBase): two different
// exclusions share an id with odds of n²/2^53 for n of them (1 in 10^8 for
// 10,000), where the 88,000 ids of the range below CRS made a clash likely
// past a few hundred.
func exclusion(rule int, targets []string, path string) string {
	targets = slices.Compact(slices.Sorted(slices.Values(targets)))
	h := sha256.Sum256(fmt.Appendf(nil, "%d|%s|%s", rule, strings.Join(targets, "|"), path))
	id := exclusionIDBase + int64(binary.BigEndian.Uint64(h[:8])>>12)
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(path)
	ctls := make([]string, len(targets))
	for i, t := range targets {
		ctls[i] = fmt.Sprintf("ctl:ruleRemoveTargetById=%d;%s", rule, t)
	}
	return fmt.Sprintf(`SecRule REQUEST_FILENAME "@streq %s" "id:%d,phase:1,pass,t:none,nolog,%s"`,
		quoted, id, strings.Join(ctls, ","))
}

// exclusionIDBase is where suggested exclusions' ids start: past CRS
// (9xx,xxx) and its plugins (up to 9,999,999).
const exclusionIDBase = 10_000_000_000

// exclusionTarget is variable (COLLECTION:key) as a ctl action reads it.
// A key of letters, digits, '_', '-' and '.' is written as it is. Any other
// key becomes an anchored regular expression (case-insensitive, as Coraza
// compares keys) whose every other character is a \x{...} escape, so that
// no ',' ends the action, no quote opens a string and no ';', ':' or '/'
// is read as syntax. A key of a JSON body (json.items.2.html) matches
// every element of its arrays (\d+), since the same field in another
// element is the same false positive.
func exclusionTarget(variable string) string {
	coll, key, ok := strings.Cut(variable, ":")
	if !ok || key == "" {
		return variable
	}
	parts := []string{key}
	json := strings.HasPrefix(key, "json.")
	if json {
		parts = strings.Split(key, ".")
	}
	plain := true
	for _, p := range parts {
		if json && isDigits(p) {
			plain = false
		}
		for _, r := range p {
			if !(r < utf8.RuneSelf && (r == '_' || r == '-' || r == '.' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')) {
				plain = false
			}
		}
	}
	if plain {
		return variable
	}
	var b strings.Builder
	b.WriteString(coll + ":/(?i)^") // Coraza's collections match keys in any case
	for i, p := range parts {
		if i > 0 {
			b.WriteString(`\.`)
		}
		if json && isDigits(p) {
			b.WriteString(`\d+`)
			continue
		}
		for _, r := range p {
			if r < utf8.RuneSelf && (r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
				b.WriteRune(r)
			} else {
				fmt.Fprintf(&b, `\x{%x}`, r)
			}
		}
	}
	b.WriteString("$/")
	return b.String()
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
