package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/gateway/challenge"
	"github.com/sekisho/sekisho/gateway/config"
)

// challengeIssuer builds the issuer of clearances for c, or nil when no
// route asks for a challenge. The keys outlive config reloads (a reload
// must not void every clearance): a key file is read again at each, a
// fleet key is adopted from Redis once, a key of its own is kept.
func (g *Gateway) challengeIssuer(c *config.Config) (*challenge.Issuer, error) {
	if !usesChallenge(c) {
		return nil, nil
	}
	cc := c.Challenge
	if cc == nil {
		cc = &config.Challenge{}
		cc.SetDefaults()
	}
	keys := g.sh.challengeKeys
	if keys == nil || keys.Prefixes() != [2]int{cc.IPv4Prefix, cc.IPv6Prefix} {
		key := challenge.RandomKey()
		if keys != nil {
			key = keys.Current()
		}
		keys = challenge.NewKeys(key, cc.IPv4Prefix, cc.IPv6Prefix)
		g.sh.challengeKeys = keys
	}
	switch {
	case cc.KeyFile != "":
		key, err := challenge.LoadKeyFile(cc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("challenge.key_file: %w", err)
		}
		keys.Set(key)
	case g.redis != nil && !g.sh.fleetKey.Load():
		g.adoptFleetKey(keys)
	}
	return &challenge.Issuer{Keys: keys, Cookie: cc.Cookie, TTL: cc.TTL, BindJA4: cc.BindJA4}, nil
}

// usesChallenge reports whether anything in c may answer with a challenge:
// a route's challenge, a ban or rate limit whose action is challenge, or
// access rules that challenge.
func usesChallenge(c *config.Config) bool {
	challenges := func(a *config.Access) bool {
		return a != nil && (len(a.Challenge)+len(a.ChallengeCountries)+len(a.ChallengeASNs) > 0 || a.CrowdSec)
	}
	for _, f := range c.Frontends {
		if f.DefaultChallenge != nil || challenges(f.Access) || f.Ban != nil && f.Ban.Action == "challenge" ||
			f.DefaultRateLimit != nil && f.DefaultRateLimit.Action == "challenge" {
			return true
		}
		for _, r := range f.Routes {
			if r.Challenge != nil || challenges(r.Access) || r.RateLimit != nil && r.RateLimit.Action == "challenge" {
				return true
			}
		}
	}
	return false
}

// adoptFleetKey makes keys use the fleet's key from Redis: now if Redis
// answers within a second, else in the background, every 10 s for at most
// an hour. Until then clearances are signed with this replica's own key,
// which other replicas refuse (their clients are challenged again).
func (g *Gateway) adoptFleetKey(keys *challenge.Keys) {
	try := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		key, err := challenge.FleetKey(ctx, g.redis)
		if err != nil {
			g.log.Warn().Err(err).Msg("challenge: the fleet's key is not in reach yet; clearances are this replica's until it is")
			return false
		}
		keys.Set(key)
		g.sh.fleetKey.Store(true)
		return true
	}
	if try() {
		return
	}
	go func() {
		for range 360 {
			time.Sleep(10 * time.Second)
			if g.sh.fleetKey.Load() || try() {
				return
			}
		}
	}()
}

// ruleOf is a route's challenge as the issuer takes it, and the WAF score
// it is limited to; nil without one.
func ruleOf(rc *config.RouteChallenge) (*challenge.Rule, int) {
	if rc == nil {
		return nil, 0
	}
	return &challenge.Rule{Mode: challenge.Mode(rc.Mode), Difficulty: rc.Difficulty}, rc.WhenWAFScore
}

// challengeAnswer checks an answer to a challenge page, whichever route
// its path would match (or none): a right one earns a clearance and goes
// back where it came from. It reports whether the request was one.
func (h *handler) challengeAnswer(q *request) bool {
	if h.challenge == nil || q.r.URL.Path != challenge.VerifyPath {
		return false
	}
	// The token names the challenge it answers; a js rule is the least a
	// page's answer must meet.
	h.serveChallenge(q, challenge.Rule{Mode: challenge.ModeJS})
	return true
}

// challenged lets through a request whose client holds a clearance for
// the route's challenge, and answers the others with the challenge. It
// reports whether the request was answered here.
func (h *handler) challenged(q *request, rt *route) bool {
	if h.challenge == nil || rt.challenge == nil || rt.wafScore > 0 {
		return false // a challenge by WAF score comes after the WAF (suspicious)
	}
	if h.challenge.Cleared(q.r, q.challengeClient(), *rt.challenge) {
		q.e.AccessDecision, q.e.AccessReason = "pass", "clearance"
		return false
	}
	h.serveChallenge(q, *rt.challenge)
	return true
}

func (h *handler) serveChallenge(q *request, rule challenge.Rule) {
	o := h.challenge.Serve(q.w, q.r, q.challengeClient(), rule, q.e.TLS != nil)
	q.e.AccessDecision, q.e.AccessReason = o.Decision, "challenge "+o.Reason
}

// challengeClient is the client a clearance is bound to.
func (q *request) challengeClient() challenge.Client {
	return challenge.Client{Addr: q.client(), UserAgent: q.r.UserAgent(), JA4: q.e.JA4}
}

// suspicious challenges a request the WAF let through with a score at
// or above the route's when_waf_score, unless its client holds a
// clearance. It reports whether the request was answered here.
func (h *handler) suspicious(q *request, rt *route, score int) bool {
	if rt.wafScore == 0 || score < rt.wafScore {
		return false
	}
	return h.challengeFor(q, rt, "waf score "+strconv.Itoa(score))
}
