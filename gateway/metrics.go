package gateway

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sekisho/sekisho/gateway/accesslog"
)

// requestMetrics count what the access log says, by series an operator
// graphs: requests by where they went and how they ended, and how long
// each part took.
type requestMetrics struct {
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	wafBlocks *prometheus.CounterVec
	blocked   *prometheus.CounterVec
	// unconfirmed counts the CRS matches a semantic check rejected.
	unconfirmed *prometheus.CounterVec
	// access counts the access step's decisions other than pass.
	access *prometheus.CounterVec
}

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_requests_total", Help: "Requests by frontend, backend, server, status class and protocol.",
		}, []string{"frontend", "backend", "server", "code", "protocol"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sekisho_request_duration_seconds", Help: "Request time by part: total, waf (running the rules), server (until its response headers).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"frontend", "part"}),
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

func (m *requestMetrics) register(reg *prometheus.Registry) {
	reg.MustRegister(m.requests, m.durations, m.wafBlocks, m.blocked, m.unconfirmed, m.access)
}

// observe counts one request from its access log entry.
func (m *requestMetrics) observe(e *accesslog.Entry) {
	code := strconv.Itoa(e.Status/100) + "xx"
	m.requests.WithLabelValues(e.Frontend, e.Backend, e.Server, code, e.Protocol).Inc()
	m.durations.WithLabelValues(e.Frontend, "total").Observe(e.Total.Seconds())
	if e.WAF > 0 {
		m.durations.WithLabelValues(e.Frontend, "waf").Observe(e.WAF.Seconds())
	}
	if e.Response > 0 {
		m.durations.WithLabelValues(e.Frontend, "server").Observe(e.Response.Seconds())
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
	}
}

// stateCollector reads the gateway's state at each scrape: servers'
// health and load, queues, stick tables, Redis and requests in flight.
type stateCollector struct{ g *Gateway }

var (
	descServerUp       = prometheus.NewDesc("sekisho_server_up", "1 when the server may take requests (ready, healthy, not resting).", []string{"backend", "server"}, nil)
	descServerState    = prometheus.NewDesc("sekisho_server_admin_state", "1 for the server's administrative state.", []string{"backend", "server", "state"}, nil)
	descServerInflight = prometheus.NewDesc("sekisho_server_requests_in_flight", "Requests on the server now.", []string{"backend", "server"}, nil)
	descServerLatency  = prometheus.NewDesc("sekisho_server_latency_seconds", "Moving average of the server's response and check times.", []string{"backend", "server"}, nil)
	descQueue          = prometheus.NewDesc("sekisho_backend_queue", "Requests waiting for a server below its maxconn.", []string{"backend"}, nil)
	descActive         = prometheus.NewDesc("sekisho_requests_in_flight", "Requests the gateway handles now.", nil, nil)
	descStick          = prometheus.NewDesc("sekisho_stick_table_entries", "Entries in each stick table or rate-limit table.", []string{"table"}, nil)
	descConns          = prometheus.NewDesc("sekisho_connections_open", "Client connections open on each frontend (HTTP/1, HTTP/2, HTTP/3 and TCP).", []string{"frontend"}, nil)
	descRedis          = prometheus.NewDesc("sekisho_redis_up", "1 while Redis answers (0: replicas serve from their local tables).", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServerUp, descServerState, descServerInflight, descServerLatency, descQueue, descActive, descStick, descRedis, descCertExpiry, descConns} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g.current()
	g.collectCerts(ch)
	for _, f := range g.frontends {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(f.open.Load()), f.name)
	}
	for _, p := range g.pools {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(p.QueueLen()), p.Name)
		for _, s := range p.Servers() {
			up := 0.0
			if s.Usable() {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descServerUp, prometheus.GaugeValue, up, p.Name, s.Name)
			ch <- prometheus.MustNewConstMetric(descServerState, prometheus.GaugeValue, 1, p.Name, s.Name, s.State().String())
			ch <- prometheus.MustNewConstMetric(descServerInflight, prometheus.GaugeValue, float64(s.Inflight()), p.Name, s.Name)
			ch <- prometheus.MustNewConstMetric(descServerLatency, prometheus.GaugeValue, s.Latency().Seconds(), p.Name, s.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(g.sh.active.Load()))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for _, t := range g.tables {
		if n, err := t.store.Len(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(descStick, prometheus.GaugeValue, float64(n), t.name)
		}
	}
	if g.redis != nil {
		up := 0.0
		if g.sh.redisUp.Load() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descRedis, prometheus.GaugeValue, up)
	}
}

// sums adds up the series of one metric vector that match, by the values
// of the labels in by (joined with "|"): what the stats page and its rates
// show, read back from the counters. It collects c alone, not the whole
// registry, whose state collector asks every stick table (Redis) its size.
func sums(c prometheus.Collector, match map[string]string, by ...string) map[string]float64 {
	out := map[string]float64{}
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
series:
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		labels := map[string]string{}
		for _, lp := range d.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for k, v := range match {
			if labels[k] != v {
				continue series
			}
		}
		key := make([]string, len(by))
		for i, l := range by {
			key[i] = labels[l]
		}
		out[strings.Join(key, "|")] += d.GetCounter().GetValue()
	}
	return out
}
