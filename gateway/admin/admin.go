// Package admin is the operators' listener: the admin API, the stats page
// and its CSV, the security events console, Prometheus metrics and the
// health probes, behind one token. It reads and changes the gateway only
// through the Gateway interface.
package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/admin/console"
	"github.com/sekisho/sekisho/gateway/config"
)

// Gateway is what the admin surface reads and changes. Each call is about
// the generation that serves when it is made, so a config reload shows at
// once.
type Gateway interface {
	// Ready tells whether the gateway should get traffic, and if not, why.
	Ready() (bool, []string)
	// Reload reloads the config file and the WAF rules folders.
	Reload() error
	// Stats reads what the stats page and its CSV show.
	Stats(ctx context.Context) *Snapshot
	// Pools are the backends, in the config's order.
	Pools() []*balancer.Pool
	// SetServerState and SetServerWeight change a server, and log it.
	SetServerState(backend, server string, st balancer.State) error
	SetServerWeight(backend, server string, w int) error
	// Tables are the stick tables (persistence, rate limits, bans).
	Tables() []Table
	// Bans lists the bans in force; LiftBan ends a client's on every frontend.
	Bans(ctx context.Context) ([]Ban, error)
	LiftBan(ctx context.Context, client string) error
	// TLSUsage is each frontend's TLS usage report, as JSON values.
	TLSUsage() map[string]any
	// Policies are the WAF policies and the rules each runs.
	Policies() []Policy
	// Events are the security events the console lists.
	Events() console.Lister
}

// Options are what the admin listener serves besides the Gateway.
type Options struct {
	Metrics prometheus.Gatherer
	Log     zerolog.Logger
}

// Server is the admin listener.
type Server struct {
	addr  string
	token string // "" on loopback without one
	srv   *http.Server
	ln    net.Listener
	log   zerolog.Logger
}

// New makes the admin listener of c; the token comes from c.TokenFile or
// the environment (config.AdminTokenEnv).
func New(c *config.Admin, g Gateway, o Options) (*Server, error) {
	s := &Server{addr: c.Address, log: o.Log}
	switch {
	case c.TokenFile != "":
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin.token_file: %w", err)
		}
		s.token = strings.TrimSpace(string(b))
		if s.token == "" {
			return nil, fmt.Errorf("admin.token_file: %s is empty", c.TokenFile)
		}
	default:
		s.token = os.Getenv(config.AdminTokenEnv)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics, promhttp.HandlerOpts{}))
	(&api{g: g, log: o.Log}).register(mux)
	(&console.Handler{Store: g.Events()}).Register(mux)
	open := http.NewServeMux()
	// Health probes (a container's HEALTHCHECK, a load balancer) carry no
	// token, and the answers tell nothing an attacker could use.
	health := Health(g.Ready)
	open.HandleFunc("GET /healthz", health)
	open.HandleFunc("GET /readyz", health)
	open.Handle("/", s.authenticate(mux))
	s.srv = &http.Server{Handler: open, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Listen binds the listener's address, once: a reload keeps it.
func (s *Server) Listen() error {
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.ln = ln
	s.log.Info().Str("address", ln.Addr().String()).Bool("token", s.token != "").Msg("admin listening")
	return nil
}

// Serve answers on the bound listener until Close.
func (s *Server) Serve() { s.srv.Serve(s.ln) }

// Close closes the listener and its connections.
func (s *Server) Close() error { return s.srv.Close() }

// Addr is the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// authenticate asks for the token, compared in constant time: as a bearer
// token, or as the password of HTTP Basic authentication, which browsers
// ask for (the stats page).
func (s *Server) authenticate(next http.Handler) http.Handler {
	want := []byte(s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token == "" {
			next.ServeHTTP(w, r)
			return
		}
		// The scheme's name is case-insensitive (RFC 9110, 11.1).
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") {
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

// Health answers /healthz (the process runs) and /readyz (ready): on the
// admin listener, and on a frontend's monitor_uri.
func Health(ready func() (bool, []string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasSuffix(r.URL.Path, "/healthz") {
			w.Write([]byte("ok\n"))
			return
		}
		if ok, why := ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + strings.Join(why, "; ") + "\n"))
			return
		}
		w.Write([]byte("ready\n"))
	}
}
