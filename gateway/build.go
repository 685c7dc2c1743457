package gateway

import (
	"fmt"
	"io"
	"log"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/gateway/audit"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/gateway/listen"
	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/alert"
)

// The builders newGateway calls, in its order: each makes one part of a
// generation from the config, or takes it over from prev when its config
// did not change.

// shareState makes what outlives generations (metrics, the admin
// listener, sockets, counters), or takes prev's.
func (g *Gateway) shareState(c *config.Config, prev *Gateway) error {
	if prev == nil {
		g.sh = &shared{metrics: newMetrics(), started: time.Now(), idle: &idleRelease{quietAfter: time.Second, release: releaseMemory},
			reloads: make(chan chan error), errc: make(chan error, 1),
			sockets: map[string]*listen.Socket{}, quic: map[string]*quicSocket{}, acme: map[*certs.ACME]bool{}, certWarned: map[string]time.Time{},
			conns: map[string]*atomic.Int64{}}
		if c.Admin != nil {
			a, err := admin.New(c.Admin, adminView{g}, admin.Options{Metrics: g.sh.metrics.reg, Log: g.opts.Log})
			if err != nil {
				return err
			}
			g.sh.admin = a
		}
		g.sh.metrics.reg.MustRegister(stateCollector{g})
	} else {
		g.sh = prev.sh
		if !reflect.DeepEqual(c.Admin, prev.cfg.Admin) {
			g.opts.Log.Warn().Msg("admin: the change applies at the next restart; the admin listener stays as it was")
		}
	}
	g.metrics, g.admin, g.idle = g.sh.metrics, g.sh.admin, g.sh.idle
	return g.keepServerID(c, prev)
}

// keepServerID reads the QUIC server ID at start; a reload keeps it, as
// the load balancer keeps routing by the ID the target was registered
// with (AWS allows no change but a new registration).
func (g *Gateway) keepServerID(c *config.Config, prev *Gateway) error {
	id, ok, err := c.ServerID()
	if err != nil {
		return err
	}
	switch {
	case prev == nil && ok:
		g.sh.serverID = &id
		g.opts.Log.Info().Stringer("quic_server_id", id).Msg("QUIC connection IDs carry this server ID")
	case prev != nil && (ok != (g.sh.serverID != nil) || ok && id != *g.sh.serverID):
		g.opts.Log.Warn().Msg("quic_server_id: the change applies at the next restart; QUIC connection IDs keep the server ID they had")
	}
	return nil
}

// buildPolicies compiles the WAF policies that routes use.
func (g *Gateway) buildPolicies(c *config.Config, prev *Gateway) (map[string]*policy, error) {
	// A policy costs ~12 MiB once compiled: only those that routes use are.
	used := map[string]bool{}
	for _, f := range c.Frontends {
		for _, r := range f.Routes {
			used[r.WAFPolicy] = true
		}
		if f.DefaultBackend != "" {
			used[f.DefaultWAFPolicy] = true
		}
	}
	engines := map[string]*policy{}
	ruleFS := rules.FS()
	for _, p := range c.WAF.Policies {
		if !used[p.Name] {
			continue
		}
		if old := prev.policy(p.Name); old != nil && reflect.DeepEqual(old.cfg, p) {
			engines[p.Name] = old
			g.policies = append(g.policies, old)
			continue
		}
		start := time.Now()
		e, err := waf.New(p, ruleFS)
		if err != nil {
			return nil, err
		}
		pol := &policy{name: p.Name, cfg: p}
		pol.cur.Store(e)
		engines[p.Name] = pol
		g.policies = append(g.policies, pol)
		g.metrics.rulesLoaded.WithLabelValues(p.Name, e.Hash()).Set(float64(e.LoadedAt().Unix()))
		g.opts.Log.Info().Str("policy", p.Name).Str("hash", e.Hash()).Dur("took", time.Since(start)).Msg("waf policy compiled")
	}
	return engines, nil
}

// auditAndAlerts opens the audit log and the alerts' dispatcher.
func (g *Gateway) auditAndAlerts(c *config.Config, prev *Gateway) error {
	if prev != nil && prev.audit != nil && reflect.DeepEqual(c.AuditLog, prev.cfg.AuditLog) {
		g.audit = prev.audit
	} else if c.AuditLog != nil {
		l, err := audit.Open(*c.AuditLog, func(err error) { g.opts.Log.Warn().Err(err).Msg("audit log") })
		if err != nil {
			return fmt.Errorf("audit_log.%w", err)
		}
		g.audit = l
	}
	if prev != nil && prev.alerts != nil && reflect.DeepEqual(c.Alerts, prev.cfg.Alerts) {
		g.alerts = prev.alerts
	} else if c.Alerts != nil {
		d, err := alert.New(*c.Alerts, alert.Options{
			OnDrop: func(endpoint string, n int, reason string, err error) {
				g.metrics.alerts.WithLabelValues(endpoint, "dropped_"+reason).Add(float64(n))
				g.opts.Log.Warn().Str("endpoint", endpoint).Int("alerts", n).Str("reason", reason).AnErr("detail", err).Msg("alerts dropped")
			},
			OnDeliver: func(endpoint string, status int, err error) {
				result := "delivered"
				if err != nil {
					result = "failed"
				}
				g.metrics.alerts.WithLabelValues(endpoint, result).Inc()
				if err != nil {
					g.opts.Log.Warn().Str("endpoint", endpoint).Int("status", status).Err(err).Msg("alert not delivered")
				}
			},
		})
		if err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		g.alerts = d
	}
	return nil
}

// redisClient connects the Redis the replicas share, if any.
func (g *Gateway) redisClient(c *config.Config, prev *Gateway) error {
	if prev != nil && prev.redis != nil && reflect.DeepEqual(c.Redis, prev.cfg.Redis) {
		g.redis, g.redisCfg, g.onRedis = prev.redis, prev.redisCfg, g.opts.OnRedisStateChange
	} else if c.Redis != nil {
		client, err := newRedisClient(*c.Redis, g.opts.Offline)
		if err != nil {
			return err
		}
		g.redis, g.redisCfg, g.onRedis = client, *c.Redis, g.opts.OnRedisStateChange
		g.sh.redisUp.Store(true)
	}
	return nil
}

// buildBackends makes each backend's pool (balancing, checks, stick
// table) and its forwarder.
func (g *Gateway) buildBackends(c *config.Config, prev *Gateway, proxyLog *log.Logger) (map[string]*forward.Backend, error) {
	backends := map[string]*forward.Backend{}
	for _, bc := range c.Backends {
		pool, err := g.newPool(bc, prev)
		if err != nil {
			return nil, err
		}
		g.pools = append(g.pools, pool)
		if bc.Source == "client" {
			if err := forward.CanTransparent(); err != nil {
				return nil, fmt.Errorf("backend %q: source: client connects from the clients' addresses, which needs CAP_NET_ADMIN (run as root, setcap cap_net_admin+ep on the binary, or add the capability to the container): %w", bc.Name, err)
			}
		}
		retryOn, _ := forward.ParseRetryOn(bc.RetryOn) // validated
		b := forward.New(pool, forward.Options{
			ConnectTimeout:        bc.ConnectTimeout,
			ResponseHeaderTimeout: bc.ResponseHeaderTimeout,
			MaxIdleConnsPerServer: bc.MaxIdleConnsPerServer,
			Retries:               *bc.Retries,
			ClientOut:             bc.SendClientIP,
			Transparent:           bc.Source == "client",
			RetryOn:               retryOn,
			ErrorLog:              proxyLog,
		})
		backends[bc.Name] = b
		g.backends = append(g.backends, b)
	}
	return backends, nil
}

// newPool makes a backend's pool: its servers taken over from prev's, its
// health checks reported, its stick table (kept when unchanged).
func (g *Gateway) newPool(bc config.Backend, prev *Gateway) (*balancer.Pool, error) {
	pool, err := balancer.New(bc.Config)
	if err != nil {
		return nil, err
	}
	note, err := pool.PrepareHealthChecks()
	if err != nil {
		return nil, err
	}
	if note != "" {
		g.opts.Log.Warn().Str("backend", bc.Name).Msg(note)
	}
	pool.OnCheck(func(s *balancer.Server, r balancer.CheckResult) {
		result := "ok"
		if r.Err != "" {
			result = "failed"
		}
		g.metrics.healthChecks.WithLabelValues(bc.Name, s.Name, result).Inc()
	})
	pool.OnEvent(func(e balancer.HealthEvent) {
		ev := g.opts.Log.Warn()
		if e.Up {
			ev = g.opts.Log.Info()
		}
		ev.Str("backend", e.Backend).Str("server", e.Server).Bool("up", e.Up).Str("reason", e.Reason).Msg("server health changed")
		typ := alert.EventBackendDown
		if e.Up {
			typ = alert.EventBackendUp
		}
		g.alerts.Emit(alert.Event{Type: typ, Backend: e.Backend, Server: e.Server, Message: e.Reason})
		if g.opts.OnHealthEvent != nil {
			g.opts.OnHealthEvent(e)
		}
	})
	old := prev.pool(bc.Name)
	if old != nil {
		pool.Adopt(old)
	}
	if err := g.poolStickTable(pool, old, prev); err != nil {
		return nil, fmt.Errorf("backend %q: stick.table: %w", bc.Name, err)
	}
	return pool, nil
}

// poolStickTable gives pool its stick table: old's, with what it learnt,
// when unchanged; in Redis when there is one; else the pool's own.
func (g *Gateway) poolStickTable(pool, old *balancer.Pool, prev *Gateway) error {
	st := pool.StickTable()
	switch {
	case st == nil:
	case old != nil && old.StickTable() != nil && reflect.DeepEqual(*st, *old.StickTable()) && g.redis == prev.redis:
		store := old.StickStore()
		pool.UseStickStore(store)
		if slices.Contains(prev.stores, store) {
			g.stores = append(g.stores, store)
		}
		g.tables = append(g.tables, namedStore{st.Table.Name, st.Table, store})
	case g.redis != nil:
		store, err := g.newStore(st.Table)
		if err != nil {
			return err
		}
		pool.UseStickStore(store)
	default:
		g.tables = append(g.tables, namedStore{st.Table.Name, st.Table, pool.StickStore()})
	}
	return nil
}

// markRouted notes the pools a frontend sends to: readiness asks only
// about those.
func (g *Gateway) markRouted(c *config.Config) {
	routed := map[string]bool{}
	for _, f := range c.Frontends {
		for _, r := range f.Routes {
			routed[r.Backend] = true
		}
		routed[f.DefaultBackend] = true
		routed[f.Backend] = true
	}
	for _, p := range g.pools {
		if routed[p.Name] {
			g.routed = append(g.routed, p)
		}
	}
}

// accessLogger is the access log in the config's format.
func accessLogger(c *config.Config, w io.Writer) (*accesslog.Logger, error) {
	if c.Log.Format != "httplog" && c.Log.LogFormat == "" {
		return accesslog.New(w), nil
	}
	layout := accesslog.HTTPLog
	if c.Log.LogFormat != "" {
		layout = c.Log.LogFormat
	}
	f, err := accesslog.ParseFormat(layout)
	if err != nil {
		return nil, err
	}
	return accesslog.NewText(w, f), nil
}

// accessParts builds the access step's shared parts: clearances, address
// lists, GeoIP, CrowdSec; and tracing and the console's events.
func (g *Gateway) accessParts(c *config.Config, prev *Gateway, fp *frontendParts) error {
	var err error
	if fp.issuer, err = g.challengeIssuer(c); err != nil {
		return err
	}
	if g.lists, err = g.ipLists(c, prev); err != nil {
		return err
	}
	if g.geo, err = g.geoDB(c, prev); err != nil {
		return err
	}
	if g.crowdsec, err = g.crowdSecBouncer(c, prev); err != nil {
		return err
	}
	if g.tracing, err = g.newTracing(c, prev); err != nil {
		return err
	}
	g.events = g.consoleStore(prev)
	fp.lists, fp.geo, fp.crowdsec = g.lists, g.geo, g.crowdsec
	return nil
}
