package gateway

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/gateway/challenge"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/crowdsec"
	"github.com/sekisho/sekisho/gateway/reputation"
	"github.com/sekisho/sekisho/waf/alert"
)

// ipList is a loaded list: its current set, and what to stop when the
// list goes.
type ipList struct {
	cfg   config.IPList
	set   func() *reputation.PrefixSet
	close func()
}

// ipLists loads the config's lists, taking over from prev those whose
// config did not change (their watchers keep running, their last good copy
// serving). A list that cannot be read is an error naming it.
func (g *Gateway) ipLists(c *config.Config, prev *Gateway) (map[string]*ipList, error) {
	out := map[string]*ipList{}
	for i, lc := range c.IPLists {
		if prev != nil {
			if old := prev.lists[lc.Name]; old != nil && reflect.DeepEqual(old.cfg, lc) {
				out[lc.Name] = old
				continue
			}
		}
		l, err := g.loadIPList(lc)
		if err != nil {
			for _, made := range out {
				if prev == nil || prev.lists[made.cfg.Name] != made {
					made.close()
				}
			}
			return nil, fmt.Errorf("ip_lists[%d] (%s): %w", i, lc.Name, err)
		}
		out[lc.Name] = l
	}
	return out, nil
}

func (g *Gateway) loadIPList(lc config.IPList) (*ipList, error) {
	onError := func(err error) {
		g.current().log.Warn().Str("list", lc.Name).Err(err).Msg("ip list: the last good copy stays")
		g.current().alerts.Emit(alert.Event{Type: alert.EventIPListFailed, Message: "ip list " + lc.Name + ": " + err.Error(),
			Fields: map[string]string{"list": lc.Name}})
	}
	switch {
	case lc.File != "":
		f := &reputation.FileList{Path: lc.File, Interval: cmp.Or(lc.Interval, 2*time.Second), OnError: onError}
		if err := f.Load(); err != nil {
			return nil, err
		}
		return &ipList{cfg: lc, set: f.Set, close: f.Close}, nil
	case lc.URL != "":
		u := &reputation.URLList{URL: lc.URL, Interval: cmp.Or(lc.Interval, time.Hour), MaxBytes: lc.MaxBytes,
			CachePath: lc.CacheFile, OnError: onError}
		if err := u.Load(); err != nil {
			return nil, err
		}
		return &ipList{cfg: lc, set: u.Set, close: u.Close}, nil
	}
	var ps []netip.Prefix
	for _, s := range lc.CIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, _ := netip.ParseAddr(s) // validated
			p = netip.PrefixFrom(a, a.BitLen())
		}
		ps = append(ps, p)
	}
	set := reputation.NewPrefixSet(ps)
	return &ipList{cfg: lc, set: func() *reputation.PrefixSet { return set }, close: func() {}}, nil
}

// geoDB opens the config's databases. At a reload a database that no
// longer opens keeps prev's copy serving, with a warning.
func (g *Gateway) geoDB(c *config.Config, prev *Gateway) (*reputation.GeoDB, error) {
	if c.GeoIP == nil {
		return nil, nil
	}
	db, err := reputation.OpenGeo(c.GeoIP.CountryDB, c.GeoIP.ASNDB)
	if err == nil {
		return db, nil
	}
	if prev != nil && prev.geo != nil && reflect.DeepEqual(c.GeoIP, prev.cfg.GeoIP) {
		g.log.Warn().Err(err).Msg("geoip: the database does not open; the one loaded before stays")
		return prev.geo, nil
	}
	return nil, fmt.Errorf("geoip: %w", err)
}

// accessRules is a frontend's or route's access config, with its lists.
type accessRules struct {
	allow, deny, challenge                         []*ipList
	allowCountries, denyCountries, challengeCounts []string
	allowASNs, denyASNs, challengeASNs             []uint
	geo                                            *reputation.GeoDB
	crowdsec                                       *crowdsec.Bouncer // nil unless the rules apply CrowdSec's decisions
}

func newAccessRules(a *config.Access, lists map[string]*ipList, geo *reputation.GeoDB, cs *crowdsec.Bouncer) *accessRules {
	if a == nil {
		return nil
	}
	pick := func(names []string) []*ipList {
		var out []*ipList
		for _, n := range names {
			out = append(out, lists[n])
		}
		return out
	}
	r := &accessRules{allow: pick(a.Allow), deny: pick(a.Deny), challenge: pick(a.Challenge),
		allowCountries: a.AllowCountries, denyCountries: a.DenyCountries, challengeCounts: a.ChallengeCountries,
		allowASNs: a.AllowASNs, denyASNs: a.DenyASNs, challengeASNs: a.ChallengeASNs, geo: geo}
	if a.CrowdSec {
		r.crowdsec = cs
	}
	return r
}

// decide is what the rules say of addr: allow, deny, challenge, or ""
// when none applies; with the rule that said it.
func (a *accessRules) decide(addr netip.Addr, info reputation.GeoInfo) (string, string) {
	if l := inAny(a.allow, addr); l != "" {
		return "allow", "list " + l
	}
	if r := geoReason(a.allowCountries, a.allowASNs, info); r != "" {
		return "allow", r
	}
	if l := inAny(a.deny, addr); l != "" {
		return "deny", "list " + l
	}
	if r := geoReason(a.denyCountries, a.denyASNs, info); r != "" {
		return "deny", r
	}
	if a.crowdsec != nil {
		if d, reason := crowdSecSays(a.crowdsec, addr); d != "" {
			return d, reason
		}
	}
	if l := inAny(a.challenge, addr); l != "" {
		return "challenge", "list " + l
	}
	if r := geoReason(a.challengeCounts, a.challengeASNs, info); r != "" {
		return "challenge", r
	}
	return "", ""
}

// geoReason names the country or AS of info that a rule lists, or "".
func geoReason(countries []string, asns []uint, info reputation.GeoInfo) string {
	if info.Country != "" && slices.Contains(countries, info.Country) {
		return "country " + info.Country
	}
	if info.ASN != 0 && slices.Contains(asns, info.ASN) {
		return "asn " + strconv.FormatUint(uint64(info.ASN), 10)
	}
	return ""
}

func inAny(lists []*ipList, addr netip.Addr) string {
	for _, l := range lists {
		if l.set().Contains(addr) {
			return l.cfg.Name
		}
	}
	return ""
}

// screened applies the route's (or frontend's) access rules: an allowed
// client skips the rest of the access step (skip is true), a denied one
// gets 403, one to challenge the challenge unless it has a clearance. It
// reports whether the request was answered here.
func (h *handler) screened(q *request, rt *route) (answered, skip bool) {
	rules := rt.access
	if rules == nil {
		rules = h.rules
	}
	if rules == nil && h.geo == nil {
		return false, false
	}
	addr := q.client()
	if !addr.IsValid() {
		return false, false
	}
	var info reputation.GeoInfo
	if h.geo != nil {
		info = h.geo.Lookup(addr)
		q.e.Country, q.e.ASN = info.Country, info.ASN
	}
	if rules == nil {
		return false, false
	}
	decision, reason := rules.decide(addr, info)
	switch decision {
	case "allow":
		q.e.AccessDecision, q.e.AccessReason = "pass", "allowed by "+reason
		return false, true
	case "deny":
		q.e.AccessDecision, q.e.AccessReason = "deny", reason
		q.fail(http.StatusForbidden, "denied by access rules")
		return true, false
	case "challenge":
		return h.challengeFor(q, rt, reason), false
	}
	return false, false
}

// challengeFor challenges a client that an access rule or a ban says to,
// with the route's challenge (or pow) unless it holds a clearance for it.
// It reports whether the request was answered here. The issuer exists
// whenever anything may challenge (usesChallenge).
func (h *handler) challengeFor(q *request, rt *route, reason string) bool {
	rule := challenge.Rule{Mode: challenge.ModePoW}
	if rt.challenge != nil && rt.challenge.Mode != challenge.ModeStatus {
		rule = *rt.challenge
	}
	if h.challenge.Cleared(q.r, q.challengeClient(), rule) {
		q.e.AccessDecision, q.e.AccessReason = "pass", "clearance despite "+reason
		return false
	}
	h.serveChallenge(q, rule)
	q.e.AccessReason += "; " + reason
	return true
}
