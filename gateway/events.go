package gateway

import (
	"os"

	"github.com/sekisho/sekisho/gateway/admin/console"
)

// eventRingSize bounds the events a replica keeps in memory for the console.
const eventRingSize = 10000

// eventStreamLen bounds the fleet's events kept in Redis.
const eventStreamLen = 100000

// consoleStore is where this generation's events go: the replica's ring,
// kept across reloads, and with Redis the fleet's stream.
func (g *Gateway) consoleStore(prev *Gateway) console.Store {
	if g.sh.events == nil {
		g.sh.events = console.NewRing(eventRingSize)
	}
	if g.redis == nil {
		return g.sh.events
	}
	if prev != nil && prev.redis == g.redis {
		if s, ok := prev.events.(*console.Stream); ok {
			return s
		}
	}
	return console.NewStream(g.redis, eventStreamLen, g.sh.events)
}

// recordEvent keeps a refused or flagged request for the console.
func (h *handler) recordEvent(q *request) {
	e := q.e
	kind := ""
	switch {
	case e.WAFAction == "block" || e.WAFAction == "detect":
		kind = e.WAFAction
	case e.AccessDecision == "deny":
		kind = "deny"
	default:
		return
	}
	ev := console.Event{ID: e.RequestID, Time: e.Time, Kind: kind, Frontend: e.Frontend, Route: q.route,
		Policy: e.WAFPolicy, Backend: e.Backend, ClientIP: e.ClientIP, Method: e.Method, Host: e.Host,
		Path: e.Path, Query: e.Query, UserAgent: e.UserAgent, Status: e.Status, Score: e.WAFScore, Reason: e.AccessReason,
		Replica: h.replica}
	for _, m := range e.WAFMatches {
		ev.Matches = append(ev.Matches, console.Match{RuleID: m.RuleID, Message: m.Message, Variable: m.Variable, Exclusion: m.Exclusion})
	}
	h.events.Add(ev)
}

// replicaName is this gateway's name in the fleet's events: its host name.
func replicaName() string {
	n, _ := os.Hostname()
	return n
}
