// Package console is the security events console on the admin listener:
// the latest WAF blocks, detections and access refusals, filtered, counted
// and explained, each with the scoped exclusion that would let it through,
// downloadable as a rules file. Pages are rendered on the server, need no
// script and load nothing from elsewhere. Everything an event holds came
// from a client, so every value is escaped for where it lands (html/template)
// and the pages send a Content-Security-Policy that allows no script.
package console

import (
	"strings"
	"time"
)

// Event is one request the gateway refused or flagged.
type Event struct {
	ID        string    `json:"id"` // the request id
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"` // block, detect (WAF) or deny (access step)
	Frontend  string    `json:"frontend"`
	Route     string    `json:"route"`
	Policy    string    `json:"policy,omitempty"`
	Backend   string    `json:"backend,omitempty"`
	Replica   string    `json:"replica,omitempty"` // which gateway saw it
	ClientIP  string    `json:"client_ip"`
	Method    string    `json:"method"`
	Host      string    `json:"host"`
	Path      string    `json:"path"`
	Query     string    `json:"query,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Status    int       `json:"status"`
	Score     int       `json:"score,omitempty"`
	Reason    string    `json:"reason,omitempty"` // the access step's
	Matches   []Match   `json:"matches,omitempty"`
}

// Match is one matched rule, as the WAF explains it.
type Match struct {
	RuleID    int    `json:"rule_id"`
	Message   string `json:"msg"`
	Variable  string `json:"var"`
	Exclusion string `json:"exclusion,omitempty"`
}

// Filter selects events; empty fields match all.
type Filter struct {
	Since, Until time.Time
	Route        string
	Rule         string // a rule id, or words of its message
	Client       string
	Path         string // a prefix
	RequestID    string
}

// matches reports whether e passes f.
func (f Filter) matches(e Event) bool {
	switch {
	case !f.Since.IsZero() && e.Time.Before(f.Since), !f.Until.IsZero() && e.Time.After(f.Until):
		return false
	case f.Route != "" && e.Route != f.Route, f.Client != "" && e.ClientIP != f.Client:
		return false
	case f.Path != "" && !strings.HasPrefix(e.Path, f.Path), f.RequestID != "" && e.ID != f.RequestID:
		return false
	}
	return f.Rule == "" || e.hasRule(f.Rule)
}

func (e Event) hasRule(q string) bool {
	q = strings.ToLower(q)
	for _, m := range e.Matches {
		if itoa(m.RuleID) == q || strings.Contains(strings.ToLower(m.Message), q) {
			return true
		}
	}
	return false
}

// Exclusions is the rules file that would let e through: each match's
// scoped exclusion, for a rules folder's before-crs/.
func (e Event) Exclusions() string {
	var b strings.Builder
	b.WriteString("# sekisho: exclusions for request " + oneLine(e.ID) + " (" + e.Time.UTC().Format(time.RFC3339) + ")\n")
	b.WriteString("# " + oneLine(e.Method+" "+e.Host+e.Path) + "\n# Put this file in the policy's rules folder, under before-crs/, then reload.\n")
	for _, m := range e.Matches {
		if m.Exclusion != "" {
			b.WriteString("\n# " + itoa(m.RuleID) + ": " + oneLine(m.Message) + " (" + oneLine(m.Variable) + ")\n" + m.Exclusion + "\n")
		}
	}
	return b.String()
}

// oneLine keeps a client's text from starting a line of its own in a
// rules file: a comment must not end early.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 {
			return '?'
		}
		return r
	}, s)
}
