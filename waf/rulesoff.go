package waf

import (
	"fmt"
	"strconv"
	"strings"
)

// A policy's rules_off turns detections off by CRS or sekisho rule id, by
// an id range, or by the name of a sekisho detection:
//
//   - a class of attack, "sqli", "xss", "rce", "lfi", "rfi", "php",
//     "generic", "ssrf", "ldap", "ssti", "nosql", "mail", "xxe": sekisho's rules
//     for it (tag sekisho/NAME);
//   - a class in a channel, "sqli.header" ...: the rules for that class in
//     that channel (tag sekisho/NAME);
//   - a semantic check, "semantic.sql", "semantic.sqlvalue",
//     "semantic.shell", "semantic.script", "semantic.file",
//     "semantic.payload": the rules it confirms score every match again
//     (semantic.go).
//
// Ids and ranges become SecRuleRemoveById, names SecRuleRemoveByTag, after
// every other rule file; a name sekisho does not know is an error.

// detectionClasses are the classes of sekisho's rules (channels.conf and
// detections.conf tags).
var detectionClasses = []string{"lfi", "rfi", "rce", "php", "generic", "ssrf", "xss", "sqli", "ldap", "ssti", "nosql", "mail", "xxe"}

// detectionChannels are the channels a class is named in.
var detectionChannels = []string{"header"}

// ruleOff is one entry of rules_off, read.
type ruleOff struct {
	directive string // SecLang that removes it; "" for a semantic check
	semantic  string // the check it turns off
}

func parseRuleOff(s string) (ruleOff, error) {
	if check, ok := strings.CutPrefix(s, "semantic."); ok {
		if _, known := semanticChecks[check]; !known {
			return ruleOff{}, fmt.Errorf("%q: no semantic check %q", s, check)
		}
		return ruleOff{semantic: check}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	switch {
	case !isRange && errA == nil && a > 0:
		return ruleOff{directive: "SecRuleRemoveById " + s}, nil
	case isRange && errA == nil && errB == nil && 0 < a && a <= b:
		return ruleOff{directive: "SecRuleRemoveById " + s}, nil
	}
	class, channel, _ := strings.Cut(s, ".")
	if !contains(detectionClasses, class) || channel != "" && !contains(detectionChannels, channel) {
		return ruleOff{}, fmt.Errorf("%q is not a rule id, an id range (942100-942999), a detection (%s, with .header for one channel) or semantic.CHECK",
			s, strings.Join(detectionClasses, ", "))
	}
	return ruleOff{directive: "SecRuleRemoveByTag sekisho/" + s}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// rulesOffDirectives is the SecLang of c.RulesOff (validated).
func rulesOffDirectives(c Config) string {
	var b strings.Builder
	for _, s := range c.RulesOff {
		if r, err := parseRuleOff(s); err == nil && r.directive != "" {
			b.WriteString(r.directive + "\n")
		}
	}
	return b.String()
}

// semanticOff is the set of semantic checks c.RulesOff turns off.
func semanticOff(c Config) map[string]bool {
	off := map[string]bool{}
	for _, s := range c.RulesOff {
		if r, err := parseRuleOff(s); err == nil && r.semantic != "" {
			off[r.semantic] = true
		}
	}
	return off
}
