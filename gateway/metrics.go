package gateway

import (
	"crypto/tls"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/config"
)

// requestMetrics count what the access log says, by series an operator
// graphs: requests by where they went and how they ended, and how long
// each part took.
type requestMetrics struct {
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	// byBackend is each request's total time by backend and status class.
	byBackend *prometheus.HistogramVec
	// Body bytes from clients and to them (HAProxy's bin and bout).
	bytesIn, bytesOut *prometheus.CounterVec
	// denied counts the requests the gateway refused on purpose, by
	// reason (HAProxy's dreq); deniedResp the responses the WAF refused
	// (dresp).
	denied, deniedResp *prometheus.CounterVec
	// reqErrors counts requests that ended in an error, by kind: request
	// (ereq), connect (econ), response (eresp), client_abort (cli_abrt).
	reqErrors *prometheus.CounterVec
	// retries counts the retries of requests on another server (HAProxy's
	// wretr; each is a redispatch, wredis, too).
	retries   *prometheus.CounterVec
	wafBlocks *prometheus.CounterVec
	blocked   *prometheus.CounterVec
	// unconfirmed counts the CRS matches a semantic check rejected.
	unconfirmed *prometheus.CounterVec
	// access counts the access step's decisions other than pass.
	access *prometheus.CounterVec

	// prepared is the generation whose label sets were made last (prepareMetrics).
	prepMu   sync.Mutex
	prepared *Gateway
}

// The reasons of sekisho_requests_denied_total, the kinds of
// sekisho_request_errors_total, the status classes and the access step's
// decisions, made at 0 for what the config names.
var (
	denyReasons    = []string{"waf", "access", "challenge", "rate_limit"}
	errorKinds     = []string{"request", "connect", "response", "client_abort"}
	codeClasses    = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	accessDecision = []string{"deny", "challenge", "cleared", "refused"}
	// failureReason's answers.
	handshakeFailures = []string{"version", "cipher", "sni", "not_tls", "client_gone", "other"}
)

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_requests_total", Help: "Requests by frontend, backend, server, status class and protocol.",
		}, []string{"frontend", "backend", "server", "code", "protocol"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sekisho_request_duration_seconds", Help: "Request time by part: total, waf (running the rules), server (until its response headers).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"frontend", "part"}),
		byBackend: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sekisho_backend_request_duration_seconds", Help: "Requests' total time (first byte of the request to the end of the response) by backend and status class.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"backend", "code"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_bytes_in_total", Help: "Request body bytes received from clients, by frontend, backend and server (HAProxy's bin).",
		}, []string{"frontend", "backend", "server"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_bytes_out_total", Help: "Response body bytes sent to clients, by frontend, backend and server (HAProxy's bout).",
		}, []string{"frontend", "backend", "server"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_requests_denied_total", Help: "Requests refused on purpose (HAProxy's dreq) by frontend, backend and reason: waf (blocked), access (access rules, bans, CrowdSec), challenge (challenged, or a challenge's answer refused), rate_limit.",
		}, []string{"frontend", "backend", "reason"}),
		deniedResp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_responses_denied_total", Help: "Server responses the WAF refused (HAProxy's dresp), by frontend, backend and server.",
		}, []string{"frontend", "backend", "server"}),
		reqErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_request_errors_total", Help: "Requests that ended in an error, by frontend, backend, server and kind: request (a bad request: HAProxy's ereq), connect (no server could be connected to: econ), response (the server broke the exchange or sent no headers in time: eresp), client_abort (the client went away: cli_abrt).",
		}, []string{"frontend", "backend", "server", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_retries_total", Help: "Requests tried again on another server after an attempt failed (HAProxy's wretr, and wredis: each retry goes to another server), by backend and the server that took the request in the end.",
		}, []string{"backend", "server"}),
		wafBlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_waf_blocks_total", Help: "Requests the WAF refused, by policy and matched rule.",
		}, []string{"policy", "rule"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_waf_blocked_requests_total", Help: "Requests the WAF refused, by policy.",
		}, []string{"policy"}),
		unconfirmed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_waf_unconfirmed_total", Help: "CRS matches a semantic check rejected (they did not score), by policy, rule and check.",
		}, []string{"policy", "rule", "check"}),
		access: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_access_decisions_total", Help: "Requests the access step answered itself (challenge, cleared, refused, deny), by frontend and decision.",
		}, []string{"frontend", "decision"}),
	}
}

// register registers the vectors whose labels the config cannot name
// (WAF rules). The others are collected by the state collector, after it
// has made the serving generation's label sets (prepareMetrics): a scrape never
// lacks a series of a frontend, backend, server or policy the config has.
func (m *requestMetrics) register(reg *prometheus.Registry) {
	reg.MustRegister(m.wafBlocks, m.unconfirmed)
}

// preparedVecs are the vectors the state collector collects.
func (m *requestMetrics) preparedVecs() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.durations, m.byBackend, m.bytesIn, m.bytesOut, m.denied, m.deniedResp, m.reqErrors, m.retries, m.blocked, m.access}
}

// codeClass is a status's class, "2xx"; "0xx" for none.
func codeClass(status int) string {
	if c := status / 100; c >= 1 && c <= 5 {
		return codeClasses[c-1]
	}
	return strconv.Itoa(status/100) + "xx"
}

// observe counts one request from its access log entry.
func (m *requestMetrics) observe(e *accesslog.Entry) {
	code := codeClass(e.Status)
	m.requests.WithLabelValues(e.Frontend, e.Backend, e.Server, code, e.Protocol).Inc()
	m.durations.WithLabelValues(e.Frontend, "total").Observe(e.Total.Seconds())
	if e.Backend != "" {
		m.byBackend.WithLabelValues(e.Backend, code).Observe(e.Total.Seconds())
	}
	if e.WAF > 0 {
		m.durations.WithLabelValues(e.Frontend, "waf").Observe(e.WAF.Seconds())
	}
	if e.Response > 0 {
		m.durations.WithLabelValues(e.Frontend, "server").Observe(e.Response.Seconds())
	}
	if e.BytesIn > 0 {
		m.bytesIn.WithLabelValues(e.Frontend, e.Backend, e.Server).Add(float64(e.BytesIn))
	}
	if e.BytesOut > 0 {
		m.bytesOut.WithLabelValues(e.Frontend, e.Backend, e.Server).Add(float64(e.BytesOut))
	}
	if e.Retries > 0 {
		m.retries.WithLabelValues(e.Backend, e.Server).Add(float64(e.Retries))
	}
	if r := deniedReason(e); r != "" {
		m.denied.WithLabelValues(e.Frontend, e.Backend, r).Inc()
	}
	if k := errorKind(e); k != "" {
		m.reqErrors.WithLabelValues(e.Frontend, e.Backend, e.Server, k).Inc()
	}
	for _, u := range e.WAFUnconfirmed {
		m.unconfirmed.WithLabelValues(e.WAFPolicy, strconv.Itoa(u.RuleID), u.Check).Inc()
	}
	if e.AccessDecision != "" && e.AccessDecision != "pass" {
		m.access.WithLabelValues(e.Frontend, e.AccessDecision).Inc()
	}
	if e.WAFAction == "block" {
		m.blocked.WithLabelValues(e.WAFPolicy).Inc()
		for _, id := range e.WAFRules {
			m.wafBlocks.WithLabelValues(e.WAFPolicy, strconv.Itoa(id)).Inc()
		}
		if strings.HasPrefix(e.TermState, "WH") || strings.HasPrefix(e.TermState, "WD") {
			m.deniedResp.WithLabelValues(e.Frontend, e.Backend, e.Server).Inc()
		}
	}
}

// deniedReason is why the gateway refused a request on purpose, or "":
// the WAF blocked it (the request; a refused response is dresp), the
// access step denied it (rules, a ban, CrowdSec) or challenged it, or it
// was over its rate limit.
func deniedReason(e *accesslog.Entry) string {
	switch {
	case e.WAFAction == "block" && strings.HasPrefix(e.TermState, "WR"):
		return "waf"
	case e.AccessDecision == "deny":
		return "access"
	case e.AccessDecision == "challenge" || e.AccessDecision == "refused":
		return "challenge"
	case e.Error == "rate limited":
		return "rate_limit"
	}
	return ""
}

// errorKind is the kind of error a request ended in, from its termination
// state, or "": a bad request (refused by the HTTP parser, or by the
// gateway's checks with a 400), no connection to a server (the last one
// tried refused, or none was left), a server that broke the exchange or
// sent no headers in time, a client that went away.
func errorKind(e *accesslog.Entry) string {
	ts := [2]byte{'-', '-'} // the first two of HAProxy's four characters, without allocating
	copy(ts[:], e.TermState)
	switch {
	case e.BadRequest, ts == [2]byte{'P', 'R'} && (e.Status == 400 || e.Status == 405):
		return "request"
	case e.ConnectFailed, ts == [2]byte{'S', 'C'}:
		return "connect"
	case (ts[0] == 'S' || ts[0] == 's') && (ts[1] == 'H' || ts[1] == 'D'):
		return "response"
	case ts[0] == 'C':
		return "client_abort"
	}
	return ""
}

// prepareMetrics makes, at 0, the series of what g's config names, once
// per generation: each HTTP frontend's requests by backend, server, status
// class and the protocols it serves, bytes, denials and errors; each
// backend's durations by class, retries and health checks; each policy's
// blocks; each TLS frontend's handshake failures by reason; config
// reloads. Dashboards and alerts then see 0 before the
// first request, and rate() misses no first increment.
func (g *Gateway) prepareMetrics() {
	m := g.metrics.requests
	m.prepMu.Lock()
	defer m.prepMu.Unlock()
	if m.prepared == g {
		return
	}
	m.prepared = g
	servers := map[string][]string{} // by backend: "" (no server yet) and the servers' names
	for _, p := range g.pools {
		names := []string{""}
		for _, s := range p.Servers() {
			names = append(names, s.Name)
			m.retries.WithLabelValues(p.Name, s.Name)
		}
		servers[p.Name] = names
		for _, c := range codeClasses {
			m.byBackend.WithLabelValues(p.Name, c)
		}
	}
	for _, b := range g.cfg.Backends {
		if b.HealthCheck == nil {
			continue
		}
		for _, s := range servers[b.Name][1:] {
			g.metrics.healthChecks.WithLabelValues(b.Name, s, "ok")
			g.metrics.healthChecks.WithLabelValues(b.Name, s, "failed")
		}
	}
	for _, f := range g.frontends {
		hasTLS := slices.ContainsFunc(f.binds, func(b config.Bind) bool { return b.TLS })
		if hasTLS {
			for _, r := range handshakeFailures {
				g.metrics.failed.WithLabelValues(f.name, r)
			}
		}
		if f.tcp != nil {
			continue // its requests are tcpproxy's log lines, not counted here
		}
		protocols := []string{"HTTP/1.1"}
		if hasTLS {
			protocols = append(protocols, "HTTP/2.0")
		}
		if len(f.quic) > 0 || f.cfg.HTTP3 {
			protocols = append(protocols, "HTTP/3.0")
			g.metrics.quicRetries.WithLabelValues(f.name)
		}
		for _, part := range []string{"total", "waf", "server"} {
			m.durations.WithLabelValues(f.name, part)
		}
		for _, d := range accessDecision {
			m.access.WithLabelValues(f.name, d)
		}
		m.reqErrors.WithLabelValues(f.name, "", "", "request") // refused before a route is chosen
		for _, b := range frontendBackends(f.cfg) {
			for _, r := range denyReasons {
				m.denied.WithLabelValues(f.name, b, r)
			}
			for i, s := range servers[b] {
				m.bytesIn.WithLabelValues(f.name, b, s)
				m.bytesOut.WithLabelValues(f.name, b, s)
				if i > 0 {
					m.deniedResp.WithLabelValues(f.name, b, s)
				}
				for _, k := range errorKinds[1:] {
					m.reqErrors.WithLabelValues(f.name, b, s, k)
				}
				for _, c := range codeClasses {
					for _, p := range protocols {
						m.requests.WithLabelValues(f.name, b, s, c, p)
					}
				}
			}
		}
	}
	for _, p := range g.policies {
		m.blocked.WithLabelValues(p.name)
		g.metrics.rulesReloads.WithLabelValues(p.name, "ok")
		g.metrics.rulesReloads.WithLabelValues(p.name, "failed")
	}
	g.metrics.configReloads.WithLabelValues("ok")
	g.metrics.configReloads.WithLabelValues("failed")
}

// frontendBackends are the backends an HTTP frontend's routes send to,
// its default backend included, in config order.
func frontendBackends(f config.Frontend) []string {
	var out []string
	for _, r := range f.Routes {
		if r.Backend != "" && !slices.Contains(out, r.Backend) {
			out = append(out, r.Backend)
		}
	}
	if f.DefaultBackend != "" && !slices.Contains(out, f.DefaultBackend) {
		out = append(out, f.DefaultBackend)
	}
	return out
}

// metrics are the gateway's Prometheus series, served on the admin listener.
type metrics struct {
	reg *prometheus.Registry
	// TLS handshakes by frontend, transport (tcp, quic), version and cipher.
	handshakes *prometheus.CounterVec
	// Handshakes below the policy that observe mode let through.
	below *prometheus.CounterVec
	// Failed handshakes by frontend and reason.
	failed *prometheus.CounterVec
	// QUIC clients asked to prove their address (Retry) under load.
	quicRetries *prometheus.CounterVec
	// WAF rules reloads, and what each policy runs.
	rulesReloads *prometheus.CounterVec
	rulesLoaded  *prometheus.GaugeVec
	// Requests, their parts' times and the WAF's blocks.
	requests *requestMetrics
	// Alerts by endpoint and result: delivered, failed, dropped_<reason>.
	alerts *prometheus.CounterVec
	// Active health checks by backend, server and result (ok, failed).
	healthChecks *prometheus.CounterVec
	// Config reloads by result, and when the serving config was loaded.
	configReloads *prometheus.CounterVec
	configLoaded  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_tls_handshakes_total", Help: "Completed TLS handshakes.",
		}, []string{"frontend", "transport", "version", "cipher"}),
		below: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_tls_handshakes_below_policy_total", Help: "Handshakes below the TLS policy, accepted in observe mode.",
		}, []string{"frontend", "version", "cipher", "reason"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_tls_handshake_failures_total", Help: "Failed TLS handshakes by reason.",
		}, []string{"frontend", "reason"}),
		quicRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_quic_retries_total", Help: "New QUIC clients sent a Retry to prove their address, past limits.quic_retry_threshold handshakes in progress.",
		}, []string{"frontend"}),
	}
	m.rulesReloads, m.rulesLoaded = rulesMetrics()
	m.requests = newRequestMetrics()
	m.requests.register(m.reg)
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_alerts_total", Help: "Alerts by endpoint and result: delivered, failed, dropped_<reason>.",
	}, []string{"endpoint", "result"})
	m.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_config_reloads_total", Help: "Config reloads by result (ok, failed).",
	}, []string{"result"})
	m.configLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sekisho_config_loaded_timestamp_seconds", Help: "When the serving config was loaded.",
	})
	m.configLoaded.SetToCurrentTime()
	m.healthChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sekisho_health_checks_total", Help: "Active health checks by backend, server and result (ok, failed).",
	}, []string{"backend", "server", "result"})
	m.reg.MustRegister(m.alerts, m.configReloads, m.configLoaded, m.healthChecks)
	m.reg.MustRegister(m.handshakes, m.below, m.failed, m.quicRetries, m.rulesReloads, m.rulesLoaded,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// handshake counts a completed handshake.
func (m *metrics) handshake(frontend, transport string, st *tls.ConnectionState) {
	m.handshakes.WithLabelValues(frontend, transport, accesslog.TLSVersion(st.Version), tls.CipherSuiteName(st.CipherSuite)).Inc()
}
