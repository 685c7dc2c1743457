package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/gateway/admin/console"
	"github.com/sekisho/sekisho/gateway/challenge"
	"github.com/sekisho/sekisho/gateway/listen"
	"github.com/sekisho/sekisho/gateway/quiclb"
	"github.com/sekisho/sekisho/waf/alert"
)

// A config reload builds a new Gateway (a generation) beside the one that
// serves, hands it what must outlive the old one, and retires the old one
// once its requests are done. shared is what outlives a generation: the
// bound sockets, the metrics, the admin listener, process-wide counters.
type shared struct {
	cur      atomic.Pointer[Gateway] // the generation that serves
	metrics  *metrics
	admin    *admin.Server // nil without one
	idle     *idleRelease
	started  time.Time
	active   atomic.Int64    // requests in flight over every frontend (HAProxy's %ac)
	redisUp  atomic.Bool     // the last state logged, so an outage is logged once
	reloadMu sync.Mutex      // one rules reload at a time
	reloads  chan chan error // to Run's loop, which owns the generations
	running  atomic.Bool
	errc     chan error // a listener that failed for good, for Run
	// Owned by Run's goroutine (and Listen before Run).
	sockets map[string]*listen.Socket
	quic    map[string]*quicSocket
	acme    map[*certs.ACME]bool // started
	ctx     context.Context      // for what outlives generations (ACME)
	// certWarned is when each certificate's cert.expiring last went out;
	// only watchCerts touches it.
	certWarned map[string]time.Time
	// conns counts each frontend's open connections, across generations:
	// those of a retiring one count until they close. Written by
	// newGateway only, which Run's goroutine calls.
	conns map[string]*atomic.Int64
	rates atomic.Pointer[requestRates] // for the stats page
	// challengeKeys sign clearances across generations; fleetKey is set
	// once they hold the fleet's key from Redis. Written by newGateway.
	challengeKeys *challenge.Keys
	fleetKey      atomic.Bool
	// events is the replica's latest refused and flagged requests, for
	// the console; it outlives generations. Written by newGateway.
	events *console.Ring
	// serverID is the QUIC server ID read at start, which every QUIC
	// socket's connection IDs carry for the process's life: the load
	// balancer routes by the ID the target was registered with. nil: random
	// connection IDs.
	serverID *quiclb.ServerID
}

// openConns is frontend's connection counter.
func (sh *shared) openConns(frontend string) *atomic.Int64 {
	n := sh.conns[frontend]
	if n == nil {
		n = new(atomic.Int64)
		sh.conns[frontend] = n
	}
	return n
}

// current is the generation that serves now (g itself before Run).
func (g *Gateway) current() *Gateway {
	if c := g.sh.cur.Load(); c != nil {
		return c
	}
	return g
}

// Reload reloads the config file, when the gateway has one
// (Options.LoadConfig), and then the WAF rules folders. A config that does
// not load or build leaves the old one serving: the error is returned,
// logged, counted and sent as a config.reload_failed alert. A rules
// folder that does not load is an error too (ReloadRules). It runs on
// SIGHUP and from the admin API.
func (g *Gateway) Reload() error {
	if g.opts.LoadConfig == nil || !g.sh.running.Load() {
		return g.current().ReloadRules()
	}
	done := make(chan error, 1)
	select {
	case g.sh.reloads <- done:
	case <-time.After(time.Minute):
		return errors.New("reload: the gateway is not serving")
	}
	return <-done
}

// reloadConfig is Run's half of Reload: it loads the config, builds and
// starts the next generation on the sockets that stay, and retires cur.
func (cur *Gateway) reloadConfig() error {
	start := time.Now()
	c, err := cur.opts.LoadConfig()
	var next *Gateway
	if err == nil {
		next, err = newGateway(c, cur.opts, cur)
	}
	if err == nil {
		if err = next.Listen(); err != nil {
			next.release(cur)
		}
	}
	if err != nil {
		cur.sh.metrics.configReloads.WithLabelValues("failed").Inc()
		cur.log.Error().Err(err).Msg("config reload failed; the old config keeps serving")
		cur.alerts.Emit(alert.Event{Type: alert.EventConfigReloadFailed, Message: err.Error()})
		return err
	}
	next.start()
	cur.sh.cur.Store(next)
	for _, f := range cur.frontends {
		if n := next.frontend(f.name); n != nil && f.tcp == nil && n.tcp == nil {
			f.handler.next.Store(n.handler)
		}
	}
	// The rules series of policies that went away (or were rebuilt with
	// other rules) go too.
	for _, p := range cur.policies {
		if np := next.policy(p.name); np == nil || np.cur.Load().Hash() != p.cur.Load().Hash() {
			cur.sh.metrics.rulesLoaded.DeleteLabelValues(p.name, p.cur.Load().Hash())
		}
	}
	cur.sh.metrics.configReloads.WithLabelValues("ok").Inc()
	cur.sh.metrics.configLoaded.Set(float64(time.Now().Unix()))
	next.log.Info().Dur("took", time.Since(start)).Msg("config reloaded")
	rulesErr := next.ReloadRules() // policies kept from cur may have new files
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), cur.shutdownTimeout)
		defer cancel()
		cur.stop(ctx, next)
	}()
	return rulesErr // the config is in force; a policy kept its old rules
}
