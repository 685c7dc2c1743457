package gateway

import (
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/config"
)

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

// admin is the operators' listener.
type admin struct {
	addr  string
	token string // "" on loopback without one
	srv   *http.Server
	ln    net.Listener
}

func newAdmin(c *config.Admin, m *metrics, health http.HandlerFunc, api func(*http.ServeMux)) (*admin, error) {
	a := &admin{addr: c.Address}
	switch {
	case c.TokenFile != "":
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin.token_file: %w", err)
		}
		a.token = strings.TrimSpace(string(b))
		if a.token == "" {
			return nil, fmt.Errorf("admin.token_file: %s is empty", c.TokenFile)
		}
	default:
		a.token = os.Getenv(config.AdminTokenEnv)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	api(mux)
	open := http.NewServeMux()
	// Health probes (a container's HEALTHCHECK, a load balancer) carry no
	// token, and the answers tell nothing an attacker could use.
	open.HandleFunc("GET /healthz", health)
	open.HandleFunc("GET /readyz", health)
	open.Handle("/", a.authenticate(mux))
	a.srv = &http.Server{Handler: open, ReadHeaderTimeout: 10 * time.Second}
	return a, nil
}

// authenticate asks for the token, compared in constant time: as a bearer
// token, or as the password of HTTP Basic authentication, which browsers
// ask for (the stats page).
func (a *admin) authenticate(next http.Handler) http.Handler {
	want := []byte(a.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.token == "" {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			_, got, _ = r.BasicAuth()
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="sekisho admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AdminAddr is the admin listener's bound address, or nil without one.
func (g *Gateway) AdminAddr() net.Addr {
	if g.admin == nil || g.admin.ln == nil {
		return nil
	}
	return g.admin.ln.Addr()
}
