package gateway

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/alert"
)

// policy is a WAF policy whose engine a reload replaces: requests take
// the current one when they start and keep it to their end.
type policy struct {
	name       string
	cfg        waf.Config
	cur        atomic.Pointer[waf.Engine]
	failedHash string // the last version that failed to build, reported once
	failedErr  error  // why, for whoever asks for a reload again
}

// rulesCheckEvery is how often rules folders are checked for changes.
const rulesCheckEvery = time.Second

// ReloadRules rebuilds every policy whose rules changed (its rules folder's
// files), off the request path, and swaps each new engine in at once. A
// policy that fails to build keeps its old engine serving; the failure is
// logged with the file and line and sent as a rules.reload_failed alert,
// once per broken version, and returned every time it is asked for (the
// admin API's 422), as the folder watcher usually saw it first.
// It runs on SIGHUP, every second for the folders, and from the admin API.
func (g *Gateway) ReloadRules() error {
	g = g.current()
	g.sh.reloadMu.Lock()
	defer g.sh.reloadMu.Unlock()
	var errs []error
	for _, p := range g.policies {
		if p.cfg.RulesDir == "" && p.cfg.CRSDir == "" {
			continue
		}
		old := p.cur.Load()
		hash, err := waf.RulesHash(p.cfg)
		if err == nil && hash == old.Hash() {
			continue
		}
		start := time.Now()
		var e *waf.Engine
		if err == nil {
			e, err = waf.New(p.cfg, rules.FS())
		}
		if err != nil {
			if hash != "" && hash == p.failedHash {
				errs = append(errs, p.failedErr) // this broken version was logged already
				continue
			}
			p.failedHash, p.failedErr = hash, err
			errs = append(errs, err)
			g.metrics.rulesReloads.WithLabelValues(p.name, "failed").Inc()
			g.log.Error().Str("policy", p.name).Err(err).Str("serving", old.Hash()).Msg("waf rules reload failed; the old rules keep serving")
			g.alerts.Emit(alert.Event{Type: alert.EventRulesReloadFailed, Policy: p.name, Message: err.Error()})
			continue
		}
		p.failedHash, p.failedErr = "", nil
		p.cur.Store(e)
		g.metrics.rulesReloads.WithLabelValues(p.name, "ok").Inc()
		g.metrics.rulesLoaded.DeleteLabelValues(p.name, old.Hash()) // one series per policy: what it runs
		g.metrics.rulesLoaded.WithLabelValues(p.name, e.Hash()).Set(float64(e.LoadedAt().Unix()))
		g.log.Info().Str("policy", p.name).Str("hash", e.Hash()).Str("was", old.Hash()).Dur("took", time.Since(start)).Msg("waf rules reloaded")
	}
	return errors.Join(errs...)
}

// watchRules checks the rules folders of the generation that serves
// every second until stop is closed.
func (sh *shared) watchRules(stop <-chan struct{}) {
	t := time.NewTicker(rulesCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = sh.cur.Load().ReloadRules() // logged and alerted there
		}
	}
}

// rulesMetrics are the reload results and what each policy runs.
func rulesMetrics() (*prometheus.CounterVec, *prometheus.GaugeVec) {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_waf_rules_reloads_total", Help: "WAF rules reloads by policy and result (ok, failed).",
		}, []string{"policy", "result"}),
		prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sekisho_waf_rules_loaded_timestamp_seconds", Help: "When each policy's rules (by hash) were loaded.",
		}, []string{"policy", "hash"})
}
