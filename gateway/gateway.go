package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/balancer/sticktable"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/gateway/admin/console"
	"github.com/sekisho/sekisho/gateway/audit"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/crowdsec"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/gateway/listen"
	"github.com/sekisho/sekisho/gateway/reputation"
	"github.com/sekisho/sekisho/waf/alert"
)

// Options are what a Gateway gets besides its config.
type Options struct {
	// Log receives the gateway's own events (start, stop, failures).
	Log zerolog.Logger
	// Access receives access log lines; nil disables them.
	Access io.Writer
	// OnHealthEvent, when set, hears every change of a server's health
	// (active and passive checks) after it is logged: webhooks' way in.
	OnHealthEvent func(balancer.HealthEvent)
	// OnRedisStateChange, when set, hears Redis go away (with the error)
	// and come back, once per change, after it is logged.
	OnRedisStateChange func(up bool, err error)
	// LoadConfig, when set, reads the config again for Reload (SIGHUP, the
	// admin API); without it, Reload reloads the WAF rules folders only.
	LoadConfig func() (*config.Config, error)
	// Offline builds the gateway without reaching out: its Redis client
	// never dials (every call fails at once), as `sekisho validate` needs.
	Offline bool
}

// rateLimiter builds a route's limiter, or nil without a limit.
func (g *Gateway) rateLimiter(c *config.RateLimit) (*rateLimiter, error) {
	if c == nil {
		return nil, nil
	}
	l, err := newRateLimiter(*c, g.newStore)
	if err != nil {
		return nil, fmt.Errorf("rate_limit %q: %w", c.Name, err)
	}
	return l, nil
}

// newStore makes a stick table's store: shared through Redis when one is
// configured, else in this process.
func (g *Gateway) newStore(c sticktable.Config) (sticktable.Store, error) {
	var s sticktable.Store
	var err error
	if g.redis != nil {
		s, err = sticktable.NewRedis(g.redis, c, sticktable.RedisOptions{
			Prefix: g.redisCfg.Prefix, Timeout: g.redisCfg.Timeout, NearCacheTTL: g.redisCfg.NearCacheTTL,
			OnStateChange: func(up bool, err error) { g.current().redisStateChanged(up, err) },
		})
	} else {
		s, err = sticktable.NewMemory(c, nil)
	}
	if err != nil {
		return nil, err
	}
	g.stores = append(g.stores, s)
	g.tables = append(g.tables, namedStore{c.Name, c, s})
	return s, nil
}

// namedStore is a stick table with its name and config, for the metrics
// and the admin API.
type namedStore struct {
	name  string
	cfg   sticktable.Config
	store sticktable.Store
}

// redisStateChanged logs Redis going away and coming back once per change
// for the whole gateway (every table's store reports it), and passes it on.
func (g *Gateway) redisStateChanged(up bool, err error) {
	if g.sh.redisUp.Swap(up) == up {
		return
	}
	if up {
		g.log.Info().Msg("redis available again; shared tables resumed and what was learnt meanwhile written back")
		g.alerts.Emit(alert.Event{Type: alert.EventRedisUp})
	} else {
		g.log.Warn().Err(err).Dur("timeout", g.redisCfg.Timeout).Msg("redis unavailable; serving from the local tables")
		g.alerts.Emit(alert.Event{Type: alert.EventRedisDown, Message: err.Error()})
	}
	if g.onRedis != nil {
		g.onRedis(up, err)
	}
}

// SetServerState sets a server's administrative state (ready, drain,
// maint): the admin API's way in.
func (g *Gateway) SetServerState(backend, server string, st balancer.State) error {
	s, err := g.current().server(backend, server)
	if err != nil {
		return err
	}
	s.SetState(st)
	g.log.Info().Str("backend", backend).Str("server", server).Stringer("state", st).Msg("server state set")
	return nil
}

// SetServerWeight sets a server's weight (0 to 256; 0 takes no new
// requests): the admin API's way in.
func (g *Gateway) SetServerWeight(backend, server string, w int) error {
	s, err := g.current().server(backend, server)
	if err != nil {
		return err
	}
	if err := s.SetWeight(w); err != nil {
		return err
	}
	g.log.Info().Str("backend", backend).Str("server", server).Int("weight", w).Msg("server weight set")
	return nil
}

// server finds a backend's server by name.
func (g *Gateway) server(backend, server string) (*balancer.Server, error) {
	p := g.pool(backend)
	if p == nil {
		return nil, fmt.Errorf("no backend %q", backend)
	}
	s := p.Server(server)
	if s == nil {
		return nil, fmt.Errorf("backend %q has no server %q", backend, server)
	}
	return s, nil
}

// Gateway is a running configuration: frontends, WAF engines and backends.
type Gateway struct {
	sh              *shared // what outlives a config reload
	opts            Options
	cfg             *config.Config
	log             zerolog.Logger
	metrics         *metrics // sh's
	pools           []*balancer.Pool
	admin           *admin.Server // sh's; nil without one
	idle            *idleRelease
	shutdownTimeout time.Duration
	frontends       []*frontend
	backends        []*forward.Backend
	stores          []sticktable.Store // closed when the gateway stops
	tables          []namedStore       // every table, for the metrics
	policies        []*policy
	routed          []*balancer.Pool // the pools some route sends to: readiness needs each
	serving         atomic.Bool
	draining        atomic.Bool
	drainGrace      time.Duration
	lists           map[string]*ipList // by name; taken over at a reload when unchanged
	geo             *reputation.GeoDB  // nil without geoip:
	crowdsec        *crowdsec.Bouncer  // nil without crowdsec:
	tracing         *tracing           // nil without tracing:
	events          console.Store      // the console's: the replica's ring, or the fleet's stream
	redis           redis.UniversalClient
	redisCfg        config.Redis
	onRedis         func(up bool, err error)
	alerts          *alert.Dispatcher  // nil without alerts: Emit on nil does nothing
	audit           *audit.Log         // nil without an audit log
	stopChecks      context.CancelFunc // ends this generation's health checks
	served          sync.WaitGroup     // this generation's Serve loops
}

type frontend struct {
	name    string
	cfg     config.Frontend
	binds   []config.Bind
	tls     *tls.Config
	certs   *certs.TLS  // nil without TLS
	watch   *tlsWatch   // nil without TLS
	acme    *certs.ACME // nil without ACME
	handler *handler
	srv     *http.Server
	lns     []*listen.Listener
	quic    []*quicSocket // HTTP/3, one per TLS bind
	log     zerolog.Logger
	tcp     *tcpFrontend  // mode: tcp; then handler, srv and h2 serve nothing
	open    *atomic.Int64 // open connections, counted across reloads
	// proxyMu guards proxyLogs, which bounds the log lines about refused PROXY headers.
	proxyMu   sync.Mutex
	proxyLogs logBudget
}

// proxyError logs a connection closed for its PROXY header, within the
// log budget: a client that sends junk must not fill the log.
func (f *frontend) proxyError(err error, remote net.Addr) {
	f.proxyMu.Lock()
	ok, suppressed := f.proxyLogs.spend()
	f.proxyMu.Unlock()
	if ok {
		ip, _ := splitHostPort(remote.String())
		f.log.Info().Str("peer_ip", ip).Err(err).Int("suppressed", suppressed).Msg("connection refused: PROXY protocol header")
	}
}

// New builds everything a config describes (compiles each WAF policy once,
// loads certificates, makes the pools) without binding any address.
func New(c *config.Config, o Options) (*Gateway, error) { return newGateway(c, o, nil) }

// newGateway builds a generation; after prev, it takes over from prev what
// the config leaves the same: compiled WAF policies, servers' health, stick
// tables, certificates, the Redis client, alerts and the audit log.
func newGateway(c *config.Config, o Options, prev *Gateway) (g *Gateway, err error) {
	g = &Gateway{opts: o, cfg: c, log: o.Log, shutdownTimeout: c.ShutdownTimeout, drainGrace: c.DrainGrace}
	if err := g.shareState(c, prev); err != nil {
		return nil, err
	}
	if prev != nil {
		built := g
		defer func() {
			if err != nil {
				built.release(prev) // what it made so far, not what it took over
			}
		}()
	}
	fp := &frontendParts{proxyLog: log.New(o.Log.With().Str("component", "proxy").Logger(), "", 0)}
	if fp.engines, err = g.buildPolicies(c, prev); err != nil {
		return nil, err
	}
	if err := g.auditAndAlerts(c, prev); err != nil {
		return nil, err
	}
	if err := g.redisClient(c, prev); err != nil {
		return nil, err
	}
	if fp.backends, err = g.buildBackends(c, prev, fp.proxyLog); err != nil {
		return nil, err
	}
	g.markRouted(c)
	if fp.access, err = accessLogger(c, o.Access); err != nil {
		return nil, err
	}
	if err := g.accessParts(c, prev, fp); err != nil {
		return nil, err
	}
	fp.pools, fp.backendCfg = map[string]*balancer.Pool{}, map[string]config.Backend{}
	for _, p := range g.pools {
		fp.pools[p.Name] = p
	}
	for _, bc := range c.Backends {
		fp.backendCfg[bc.Name] = bc
	}
	for _, fc := range c.Frontends {
		f, err := g.newFrontend(fc, prev, fp, o.Log.With().Str("frontend", fc.Name).Logger())
		if err != nil {
			return nil, err
		}
		g.frontends = append(g.frontends, f)
	}
	// Compiling CRS leaves tens of MiB of garbage: count it as activity, so
	// that a gateway that starts and waits gives it back like after a burst.
	g.idle.touch()
	return g, nil
}

// policy, pool and frontend find what a generation had by name; nil on a
// nil generation.
func (g *Gateway) policy(name string) *policy {
	if g == nil {
		return nil
	}
	for _, p := range g.policies {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (g *Gateway) pool(name string) *balancer.Pool {
	if g == nil {
		return nil
	}
	for _, p := range g.pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (g *Gateway) frontend(name string) *frontend {
	if g == nil {
		return nil
	}
	for _, f := range g.frontends {
		if f.name == name {
			return f
		}
	}
	return nil
}
