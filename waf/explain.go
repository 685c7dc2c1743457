package waf

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/corazawaf/coraza/v3/types"
)

// Match is one rule's part in a verdict, for a block that explains itself.
type Match struct {
	RuleID   int
	Message  string
	Variable string // what matched, as SecLang names it: ARGS:q, REQUEST_HEADERS:user-agent
	// Exclusion is a ready-to-paste rule for a rules folder's before-crs/
	// that stops exactly this: this rule, on this variable, on this path.
	// Empty where no such scope exists (the anomaly score rules).
	Exclusion string
}

// matchOf explains one matched rule of a request to path.
func matchOf(mr types.MatchedRule, path string) Match {
	m := Match{RuleID: mr.Rule().ID(), Message: mr.Message()}
	for _, md := range mr.MatchedDatas() {
		name := md.Variable().Name()
		if name == "TX" {
			continue // the anomaly evaluation: scoring, not a request's part
		}
		m.Variable = name
		if k := md.Key(); k != "" {
			m.Variable += ":" + k
		}
		break
	}
	if m.Variable != "" && path != "" {
		m.Exclusion = exclusion(m.RuleID, m.Variable, path)
	}
	return m
}

// exclusion is a run-time exclusion of rule for target on path, with an
// id from the range CRS leaves to sites, derived from what it excludes so
// that pasting the same suggestion twice gives the same id.
func exclusion(rule int, target, path string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d|%s|%s", rule, target, path)
	id := 11000 + h.Sum32()%88000
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(path)
	return fmt.Sprintf(`SecRule REQUEST_FILENAME "@streq %s" "id:%d,phase:1,pass,t:none,nolog,ctl:ruleRemoveTargetById=%d;%s"`,
		quoted, id, rule, target)
}
