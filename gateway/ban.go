package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/balancer/sticktable"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/waf/alert"
)

// banGuard bans a frontend's clients that misbehave (config.Ban).
// "ban-count:F", a stick table (in Redis when there is one), counts each
// client's offences by kind over Within. With Redis, "ban:F" holds the
// fleet's bans, each entry's server field saying "ACTION@UNTIL", looked up
// through the near-cache (at most one Redis call per request and second).
// The replica keeps its own copy of the bans it knows (known): without
// Redis it is the bans; with it, it answers while Redis does not, so an
// outage lifts no known ban.
type banGuard struct {
	cfg            config.Ban
	frontend       string
	bans, counts   sticktable.Store
	banCfg, cntCfg sticktable.Config
	known          knownBans
	alerts         *alert.Dispatcher
}

// ban is one client's ban.
type ban struct {
	action string // deny or challenge
	until  time.Time
}

func (g *Gateway) banGuard(frontend string, c *config.Ban) (*banGuard, error) {
	if c == nil {
		return nil, nil
	}
	b := &banGuard{cfg: *c, frontend: frontend, alerts: g.alerts, known: knownBans{max: c.Size, m: map[string]ban{}}}
	b.banCfg = sticktable.Config{Name: "ban:" + frontend, Type: sticktable.TypeIP, Size: c.Size, Expire: c.Duration}
	if c.Key == "src+ja4" {
		b.banCfg.Type, b.banCfg.KeyLen = sticktable.TypeString, sticktable.ClientKeyLen
	}
	b.cntCfg = sticktable.Config{Name: "ban-count:" + frontend, Type: sticktable.TypeString, KeyLen: 160,
		Size: c.Size, Expire: 2 * c.Within, RatePeriod: c.Within}
	var err error
	// The bans go to a shared table only when there is one to share: the
	// in-memory stick table interns its server field, meant for a
	// backend's few servers, and each ban's ACTION@UNTIL is another.
	if g.redis != nil {
		if b.bans, err = g.newStore(b.banCfg); err != nil {
			return nil, err
		}
	}
	if b.counts, err = g.newStore(b.cntCfg); err != nil {
		return nil, err
	}
	return b, nil
}

// check returns the client's ban, if it has one now.
func (b *banGuard) check(ctx context.Context, client string, now time.Time) (ban, bool) {
	key, err := b.banCfg.Key(client)
	if err != nil {
		return ban{}, false
	}
	if b.bans == nil {
		return b.known.get(client, now) // no Redis: this replica's bans are all there are
	}
	e, found, err := b.bans.Lookup(ctx, key)
	if err != nil {
		return b.known.get(client, now) // the store is out of reach: what this replica knows
	}
	bn, ok := parseBan(e.Server)
	if !found || !ok || !now.Before(bn.until) {
		b.known.drop(client)
		return ban{}, false
	}
	b.known.put(client, bn, now)
	return bn, true
}

func parseBan(s string) (ban, bool) {
	action, until, ok := strings.Cut(s, "@")
	sec, err := strconv.ParseInt(until, 10, 64)
	if !ok || err != nil || (action != "deny" && action != "challenge") {
		return ban{}, false
	}
	return ban{action: action, until: time.Unix(sec, 0)}, true
}

// offence counts what a finished request says against its client, and
// bans the client when a count reaches its threshold.
func (b *banGuard) offence(ctx context.Context, e *accesslog.Entry) {
	kind, limit := offenceOf(e, b.cfg)
	client := b.client(e)
	if limit == 0 || client == "" {
		return
	}
	key, err := b.cntCfg.Key(kind + "|" + client)
	if err != nil {
		return
	}
	c, err := b.counts.Hit(ctx, key)
	if err != nil || c.ReqRate < int64(limit) {
		return
	}
	now := time.Now()
	if _, banned := b.known.get(client, now); banned {
		return
	}
	bn := ban{action: b.cfg.Action, until: now.Add(b.cfg.Duration).Truncate(time.Second)}
	b.add(ctx, client, bn, now)
	b.alerts.Emit(alert.Event{Type: alert.EventBanAdded, Time: now, RequestID: e.RequestID, ClientIP: e.ClientIP,
		Host: e.Host, Path: e.Path, Fields: map[string]string{"frontend": b.frontend, "reason": strconv.Itoa(limit) + " " + kind + " within " + b.cfg.Within.String(),
			"action": bn.action, "until": bn.until.UTC().Format(time.RFC3339)}})
}

// client is what a request is banned by: its address, or with its JA4.
func (b *banGuard) client(e *accesslog.Entry) string {
	if e.ClientIP == "" {
		return ""
	}
	key, _ := sticktable.ClientKey(b.cfg.Key, e.ClientIP, e.JA4) // plain HTTP: "ADDRESS|"
	return key
}

// add bans client: in the shared table, and in what this replica knows.
func (b *banGuard) add(ctx context.Context, client string, bn ban, now time.Time) {
	b.known.put(client, bn, now)
	if key, err := b.banCfg.Key(client); err == nil && b.bans != nil {
		b.bans.Stick(ctx, key, bn.action+"@"+strconv.FormatInt(bn.until.Unix(), 10))
	}
}

// lift ends client's ban.
func (b *banGuard) lift(ctx context.Context, client string) error {
	b.known.drop(client)
	key, err := b.banCfg.Key(client)
	if err != nil || b.bans == nil {
		return err
	}
	return b.bans.Delete(ctx, key)
}

// list returns the bans in force: the shared table's, or without one this
// replica's.
func (b *banGuard) list(ctx context.Context, now time.Time) ([]admin.Ban, error) {
	var out []admin.Ban
	if b.bans == nil {
		return b.known.list(b.frontend, now), nil
	}
	entries, err := b.bans.Entries(ctx, 0, admin.MaxPage)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if bn, ok := parseBan(e.Server); ok && now.Before(bn.until) {
			out = append(out, admin.Ban{Frontend: b.frontend, Client: b.banCfg.Display(e.Key), Action: bn.action, Until: bn.until.UTC()})
		}
	}
	return out, nil
}

// offenceOf is what kind of offence a finished request is, with the
// count that bans for it (0: none). The gateway's own access answers (a
// challenge, a ban) are not offences.
func offenceOf(e *accesslog.Entry, c config.Ban) (string, int) {
	switch {
	case e.AccessDecision != "" && e.AccessDecision != "pass":
		return "", 0
	case e.WAFAction == "block":
		return "waf_blocks", c.WAFBlocks
	case e.Error == "rate limited":
		return "rate_limited", c.RateLimited
	case e.Status >= 400 && e.Status < 500:
		return "errors_4xx", c.Errors4xx
	}
	return "", 0
}

// banned answers a request whose client is banned: 403 for deny; for
// challenge, the route's challenge (or pow) unless the client holds a
// clearance for it. It reports whether the request was answered here.
func (h *handler) banned(q *request, rt *route) bool {
	if h.bans == nil {
		return false
	}
	bn, ok := h.bans.check(q.r.Context(), h.bans.client(q.e), time.Now())
	if !ok {
		return false
	}
	reason := "ban until " + bn.until.UTC().Format(time.RFC3339)
	if bn.action == "challenge" {
		return h.challengeFor(q, rt, reason)
	}
	q.e.AccessDecision, q.e.AccessReason = "deny", reason
	q.fail(http.StatusForbidden, "banned")
	return true
}

// knownBans is this replica's copy of the bans it made or saw, bounded.
type knownBans struct {
	mu  sync.Mutex
	m   map[string]ban
	max int
}

func (k *knownBans) get(client string, now time.Time) (ban, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	bn, ok := k.m[client]
	if ok && !now.Before(bn.until) {
		delete(k.m, client)
		return ban{}, false
	}
	return bn, ok
}

func (k *knownBans) put(client string, bn ban, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[client]; !ok && len(k.m) >= k.max {
		for c, old := range k.m {
			if !now.Before(old.until) {
				delete(k.m, c)
			}
		}
		for c := range k.m { // still full: any one goes
			if len(k.m) < k.max {
				break
			}
			delete(k.m, c)
		}
	}
	k.m[client] = bn
}

func (k *knownBans) list(frontend string, now time.Time) []admin.Ban {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []admin.Ban
	for c, bn := range k.m {
		if now.Before(bn.until) {
			out = append(out, admin.Ban{Frontend: frontend, Client: c, Action: bn.action, Until: bn.until.UTC()})
		}
	}
	return out
}

func (k *knownBans) drop(client string) {
	k.mu.Lock()
	delete(k.m, client)
	k.mu.Unlock()
}
