package gateway

import (
	"context"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sekisho/sekisho/balancer"
)

// stateCollector reads the gateway's state at each scrape: servers'
// health and load, queues, stick tables, Redis and requests in flight. It
// also collects the request metrics whose label sets the config names,
// after it has made those of the generation that serves (prepareMetrics).
type stateCollector struct{ g *Gateway }

var (
	descServerUp         = prometheus.NewDesc("sekisho_server_up", "1 when the server may take requests (ready, healthy, not resting).", []string{"backend", "server"}, nil)
	descServerAdminState = prometheus.NewDesc("sekisho_server_admin_state", "1 for the server's administrative state (ready, drain, maint), 0 for the others.", []string{"backend", "server", "state"}, nil)
	descServerState      = prometheus.NewDesc("sekisho_server_state", "1 for the server's state, 0 for the others: up, down (health checks or a passive check hold it out), drain (drain, or weight 0), maint.", []string{"backend", "server", "state"}, nil)
	descServerChanged    = prometheus.NewDesc("sekisho_server_last_change_timestamp_seconds", "When the server's state last changed (administrative state or health).", []string{"backend", "server"}, nil)
	descServerInflight   = prometheus.NewDesc("sekisho_server_requests_in_flight", "Requests on the server now.", []string{"backend", "server"}, nil)
	descServerLatency    = prometheus.NewDesc("sekisho_server_latency_seconds", "Moving average of the server's response and check times.", []string{"backend", "server"}, nil)
	descQueue            = prometheus.NewDesc("sekisho_backend_queue", "Requests waiting for a server below its maxconn.", []string{"backend"}, nil)
	descActive           = prometheus.NewDesc("sekisho_requests_in_flight", "Requests the gateway handles now.", nil, nil)
	descStick            = prometheus.NewDesc("sekisho_stick_table_entries", "Entries in each stick table or rate-limit table.", []string{"table"}, nil)
	descConns            = prometheus.NewDesc("sekisho_connections_open", "Client connections open on each frontend (HTTP/1, HTTP/2, HTTP/3 and TCP).", []string{"frontend"}, nil)
	descRedis            = prometheus.NewDesc("sekisho_redis_up", "1 while Redis answers (0: replicas serve from their local tables).", nil, nil)
	descBuildInfo        = prometheus.NewDesc("sekisho_build_info", "1, with the version sekisho was built as and the Go version.", []string{"version", "goversion"}, nil)
)

// serverStates are sekisho_server_state's states.
var serverStates = []string{"up", "down", "drain", "maint"}

// serverState is a server's state as one word: maint, down (health),
// drain (drain or weight 0: no new requests), else up.
func serverState(s *balancer.Server) string {
	switch {
	case s.State() == balancer.Maint:
		return "maint"
	case s.Down():
		return "down"
	case s.State() == balancer.Drain || s.Weight() == 0:
		return "drain"
	}
	return "up"
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServerUp, descServerAdminState, descServerState, descServerChanged, descServerInflight, descServerLatency,
		descQueue, descActive, descStick, descRedis, descCertExpiry, descConns, descBuildInfo} {
		ch <- d
	}
	for _, v := range c.g.sh.metrics.requests.preparedVecs() { // c.g.metrics is not set yet when this is registered
		v.Describe(ch)
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g.current()
	g.prepareMetrics()
	for _, v := range g.metrics.requests.preparedVecs() {
		v.Collect(ch)
	}
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, version(), runtime.Version())
	g.collectCerts(ch)
	for _, f := range g.frontends {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(f.open.Load()), f.name)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	one := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range g.pools {
		gauge(descQueue, float64(p.QueueLen()), p.Name)
		for _, s := range p.Servers() {
			gauge(descServerUp, one(s.Usable()), p.Name, s.Name)
			for st := balancer.Ready; st <= balancer.Maint; st++ {
				gauge(descServerAdminState, one(s.State() == st), p.Name, s.Name, st.String())
			}
			state := serverState(s)
			for _, st := range serverStates {
				gauge(descServerState, one(st == state), p.Name, s.Name, st)
			}
			gauge(descServerChanged, float64(s.LastChange().UnixNano())/1e9, p.Name, s.Name)
			gauge(descServerInflight, float64(s.Inflight()), p.Name, s.Name)
			gauge(descServerLatency, s.Latency().Seconds(), p.Name, s.Name)
		}
	}
	gauge(descActive, float64(g.sh.active.Load()))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for _, t := range g.tables {
		if n, err := t.store.Len(ctx); err == nil {
			gauge(descStick, float64(n), t.name)
		}
	}
	if g.redis != nil {
		gauge(descRedis, one(g.sh.redisUp.Load()))
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
