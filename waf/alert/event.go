package alert

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The event types the gateway emits.
const (
	EventWAFBlock           = "waf.block"            // a request refused by a policy in block mode
	EventWAFDetect          = "waf.detect"           // a request a policy in detect mode would have refused
	EventBackendDown        = "backend.down"         // a server failed its health checks
	EventBackendUp          = "backend.up"           // a server passed them again
	EventRulesReloadFailed  = "rules.reload_failed"  // a rules file did not load; the old rules stay
	EventConfigReloadFailed = "config.reload_failed" // a config did not load; the old config stays
	EventCertRenewalFailed  = "cert.renewal_failed"  // an ACME renewal failed
	EventCertExpiring       = "cert.expiring"        // a certificate is close to its expiry
	EventRedisDown          = "redis.down"           // Redis stopped answering; state is local
	EventRedisUp            = "redis.up"             // Redis answers again
	EventRateLimitTriggered = "rate_limit.triggered" // a client went over a rate limit
	EventBanAdded           = "ban.added"            // a client was banned for its behaviour
	EventIPListFailed       = "ip_list.failed"       // an address list did not load; its last good copy stays
	EventAccessDenied       = "access.denied"        // the access step refused a request (list, country, AS, CrowdSec, ban)
	EventAccessChallenged   = "access.challenged"    // the access step answered with a challenge
)

// eventTypes lists each type with its severity when the emitter leaves it
// unset: critical for what leaves the gateway degraded, warning for what an
// operator should look at, info for good news and detections.
var eventTypes = []struct {
	name     string
	severity Severity
}{
	{EventAccessChallenged, SeverityInfo},
	{EventAccessDenied, SeverityWarning},
	{EventBackendDown, SeverityCritical},
	{EventBackendUp, SeverityInfo},
	{EventBanAdded, SeverityWarning},
	{EventCertExpiring, SeverityWarning},
	{EventCertRenewalFailed, SeverityCritical},
	{EventConfigReloadFailed, SeverityCritical},
	{EventIPListFailed, SeverityWarning},
	{EventRateLimitTriggered, SeverityWarning},
	{EventRedisDown, SeverityCritical},
	{EventRedisUp, SeverityInfo},
	{EventRulesReloadFailed, SeverityCritical},
	{EventWAFBlock, SeverityWarning},
	{EventWAFDetect, SeverityInfo},
}

// EventTypes lists the known event types, sorted.
func EventTypes() []string {
	out := make([]string, 0, len(eventTypes))
	for _, t := range eventTypes {
		out = append(out, t.name)
	}
	return out
}

func knownType(t string) bool {
	for _, k := range eventTypes {
		if k.name == t {
			return true
		}
	}
	return false
}

// categories lists the prefixes of the known types ("waf", "backend"...), sorted.
func categories() []string {
	var out []string
	for _, t := range eventTypes {
		c, _, _ := strings.Cut(t.name, ".")
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// DefaultSeverity is the severity Emit gives an event of type t that has none.
func DefaultSeverity(t string) Severity {
	// A switch, not a map: this is on Emit's path.
	switch t {
	case EventWAFBlock, EventCertExpiring, EventRateLimitTriggered, EventBanAdded, EventIPListFailed, EventAccessDenied:
		return SeverityWarning
	case EventBackendDown, EventRulesReloadFailed, EventConfigReloadFailed, EventCertRenewalFailed, EventRedisDown:
		return SeverityCritical
	}
	return SeverityInfo
}

// Severity ranks events; the zero value means "the type's default".
type Severity int

// The severities, lowest first.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityCritical
)

var severityNames = [...]string{SeverityInfo: "info", SeverityWarning: "warning", SeverityCritical: "critical"}

// ParseSeverity reads "info", "warning" or "critical".
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if n != "" && n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not one of info, warning, critical", s)
}

// String is the severity's name, as configured and as sent.
func (s Severity) String() string {
	if s >= SeverityInfo && s <= SeverityCritical {
		return severityNames[s]
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText makes the severity its name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name, so that receivers written in Go can decode the JSON.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Match is one rule that matched a request.
type Match struct {
	RuleID  int    `json:"rule_id"`
	Message string `json:"message,omitempty"`
	// Variable is what matched, as SecLang names it ("ARGS:q", "REQUEST_HEADERS:User-Agent").
	Variable string `json:"variable,omitempty"`
	// Exclusion is a SecLang snippet that stops this rule from looking at
	// Variable on this path only, ready to paste into a policy's directives.
	Exclusion string `json:"exclusion,omitempty"`
}

// Event is something that happened; the emitter fills what applies and
// leaves the rest empty. After Emit, its Matches and Fields belong to the
// dispatcher and must not be changed.
type Event struct {
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// Severity is the type's default when left zero.
	Severity Severity `json:"severity"`
	// Time is when it happened; Emit's time when left zero.
	Time time.Time `json:"time"`

	// Request events (waf.*, rate_limit.triggered).
	RequestID string  `json:"request_id,omitempty"`
	ClientIP  string  `json:"client_ip,omitempty"`
	Host      string  `json:"host,omitempty"` // for cert.* events, the certificate's name
	Path      string  `json:"path,omitempty"`
	Route     string  `json:"route,omitempty"`
	Policy    string  `json:"policy,omitempty"`
	Matches   []Match `json:"matches,omitempty"`
	Score     int     `json:"score,omitempty"` // the inbound anomaly score

	// Backend events.
	Backend string `json:"backend,omitempty"`
	Server  string `json:"server,omitempty"`

	// Message is free text: a reload error with its file:line, a Redis error.
	Message string `json:"message,omitempty"`
	// Fields holds whatever else applies (a certificate's expiry, a rate limit's name).
	Fields map[string]string `json:"fields,omitempty"`
}

// Alert is what an endpoint receives: one event standing for Count events
// of the same key seen from First to Last. Alerts of one key never overlap,
// so their counts add up to the events emitted.
type Alert struct {
	Event
	Count int       `json:"count"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Summary is the alert on one line, for chat messages and templates.
func (a *Alert) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s", a.Severity, a.Type)
	if a.Count > 1 {
		fmt.Fprintf(&b, " ×%d", a.Count)
	}
	var parts []string
	if len(a.Matches) > 0 {
		ids := make([]string, 0, len(a.Matches))
		for _, m := range a.Matches {
			ids = append(ids, strconv.Itoa(m.RuleID))
		}
		w := "rule "
		if len(ids) > 1 {
			w = "rules "
		}
		parts = append(parts, w+strings.Join(ids, ", "))
	}
	if a.ClientIP != "" {
		parts = append(parts, "from "+a.ClientIP)
	}
	if a.Host != "" || a.Path != "" {
		parts = append(parts, "on "+a.Host+a.Path)
	}
	for _, kv := range [...][2]string{{"route", a.Route}, {"policy", a.Policy}, {"backend", a.Backend}, {"server", a.Server}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if a.Score != 0 {
		parts = append(parts, "score "+strconv.Itoa(a.Score))
	}
	if len(parts) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(parts, ", "))
	}
	if a.Message != "" {
		b.WriteString(": ")
		b.WriteString(a.Message)
	}
	// One line, whatever the message or a hostile path holds.
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, b.String())
}
