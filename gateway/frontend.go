package gateway

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"reflect"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/gateway/challenge"
	"github.com/sekisho/sekisho/gateway/clientip"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/crowdsec"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/gateway/listen"
	"github.com/sekisho/sekisho/gateway/reputation"
	"github.com/sekisho/sekisho/waf/alert"
)

// frontendParts is what a generation's frontends are built from: its
// policies, backends, log, and the access step's shared parts.
type frontendParts struct {
	engines    map[string]*policy
	backends   map[string]*forward.Backend
	pools      map[string]*balancer.Pool
	backendCfg map[string]config.Backend
	access     *accesslog.Logger
	proxyLog   *log.Logger
	issuer     *challenge.Issuer
	lists      map[string]*ipList
	geo        *reputation.GeoDB
	crowdsec   *crowdsec.Bouncer
}

// newFrontend builds one frontend: its TLS, its handler and routes, a TCP
// proxy for mode tcp, and its HTTP server.
func (g *Gateway) newFrontend(fc config.Frontend, prev *Gateway, p *frontendParts, flog zerolog.Logger) (*frontend, error) {
	f := &frontend{name: fc.Name, cfg: fc, binds: fc.Bind, log: flog}
	if err := g.frontendTLS(f, prev); err != nil {
		return nil, err
	}
	h, err := g.newHandler(f, p)
	if err != nil {
		return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
	}
	f.handler, f.open = h, g.sh.openConns(fc.Name)
	if fc.Mode == "tcp" {
		t, err := g.newTCPFrontend(fc, p.pools[fc.Backend], p.backendCfg[fc.Backend], p.access)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		t.open = f.open
		f.tcp = t
	}
	f.srv = newHTTPServer(h, fc.Limits, p.proxyLog, f.open)
	return f, nil
}

// frontendTLS gives f its certificates: prev's when its TLS config did
// not change (certificates, ACME and TLS counters stay), else new ones.
func (g *Gateway) frontendTLS(f *frontend, prev *Gateway) error {
	fc, flog := f.cfg, f.log
	if of := prev.frontend(fc.Name); of != nil && of.tls != nil && reflect.DeepEqual(fc.TLS, of.cfg.TLS) {
		f.tls, f.certs, f.watch, f.acme = of.tls, of.certs, of.watch, of.acme
		return nil
	}
	if fc.TLS == nil {
		return nil
	}
	t, err := certs.New(*fc.TLS, certs.Options{
		OnReload: func(file string, err error) {
			if err != nil {
				flog.Error().Str("file", file).Err(err).Msg("certificate reload failed")
				return
			}
			flog.Info().Str("file", file).Msg("certificate reloaded")
		},
		OnACMEEvent: func(event string, data map[string]any) { g.acmeEvent(flog, event, data) },
		Redis:       g.redis, RedisPrefix: g.redisCfg.Prefix, Name: fc.Name,
		OnTicketKeys: func(err error) {
			if err != nil {
				flog.Warn().Err(err).Msg("session-ticket keys: redis unavailable; this replica's own keys serve")
				return
			}
			flog.Info().Msg("session-ticket keys: shared through redis again")
		},
	})
	if err != nil {
		return fmt.Errorf("frontend %q: tls: %w", fc.Name, err)
	}
	f.tls, f.certs, f.watch, f.acme = t.Config, t, newTLSWatch(fc.Name, t.Policy, g.metrics, flog), t.ACME
	return nil
}

// acmeEvent logs an ACME event and alerts on a failed renewal.
func (g *Gateway) acmeEvent(flog zerolog.Logger, event string, data map[string]any) {
	ev := flog.Info()
	if err, ok := data["error"].(error); ok {
		ev = flog.Error().Err(err)
	}
	ev.Str("event", event).Any("identifier", data["identifier"]).Msg("acme")
	if event == "cert_failed" {
		name, _ := data["identifier"].(string)
		msg := ""
		if err, ok := data["error"].(error); ok {
			msg = err.Error()
		}
		g.current().alerts.Emit(alert.Event{Type: alert.EventCertRenewalFailed, Host: name, Message: msg})
	}
}

// newHandler builds f's request handler: its access step, its routes.
func (g *Gateway) newHandler(f *frontend, p *frontendParts) (*handler, error) {
	fc := f.cfg
	h := &handler{name: fc.Name, access: p.access, idle: g.idle, log: f.log, redirectHTTPS: fc.RedirectHTTPS, acme: f.acme,
		monitorURI: fc.MonitorURI, health: admin.Health(g.Ready), alerts: g.alerts, audit: g.audit,
		capture: fc.Capture, active: &g.sh.active, metrics: g.metrics.requests, challenge: p.issuer,
		rules: newAccessRules(fc.Access, p.lists, p.geo, p.crowdsec), geo: p.geo,
		ja4h: fc.JA4H, tracing: g.tracing, events: g.events, replica: replicaName()}
	if fc.JA4Header != "" {
		h.ja4Header = http.CanonicalHeaderKey(fc.JA4Header)
	}
	if fc.HSTS != nil {
		h.hsts = fc.HSTS.Header()
	}
	var err error
	if h.bans, err = g.banGuard(fc.Name, fc.Ban); err != nil {
		return nil, fmt.Errorf("ban: %w", err)
	}
	if ci := fc.ClientIP; ci != nil {
		if h.clientIP, err = clientip.New(ci.TrustedProxies, ci.Header); err != nil {
			return nil, fmt.Errorf("client_ip: %w", err)
		}
	}
	return h, g.addRoutes(h, fc, p)
}

// addRoutes gives h the frontend's routes and its default route.
func (g *Gateway) addRoutes(h *handler, fc config.Frontend, p *frontendParts) error {
	for i, rc := range fc.Routes {
		limit, err := g.rateLimiter(rc.RateLimit)
		if err != nil {
			return err
		}
		rt := route{host: rc.Host, prefix: rc.PathPrefix, backend: p.backends[rc.Backend], backendName: rc.Backend,
			policy: p.engines[rc.WAFPolicy], policyName: rc.WAFPolicy, limit: limit,
			access: newAccessRules(rc.Access, p.lists, p.geo, p.crowdsec), name: fmt.Sprintf("%s/routes[%d]", fc.Name, i)}
		rt.challenge, rt.wafScore = ruleOf(rc.Challenge)
		h.routes = append(h.routes, rt)
	}
	if fc.DefaultBackend == "" {
		return nil
	}
	limit, err := g.rateLimiter(fc.DefaultRateLimit)
	if err != nil {
		return err
	}
	h.def = &route{backend: p.backends[fc.DefaultBackend], backendName: fc.DefaultBackend,
		policy: p.engines[fc.DefaultWAFPolicy], policyName: fc.DefaultWAFPolicy, limit: limit, name: fc.Name + "/default"}
	h.def.challenge, h.def.wafScore = ruleOf(fc.DefaultChallenge)
	return nil
}

// newHTTPServer is the HTTP/1.1 and HTTP/2 server of a frontend.
func newHTTPServer(h *handler, l config.Limits, proxyLog *log.Logger, open *atomic.Int64) *http.Server {
	// The request line, headers and blank line of HTTP/1.x: net/http
	// reads HeaderReadSlack past its MaxHeaderBytes, so with this a head
	// of max_header_bytes passes and one byte more gets 431. HTTP/2
	// derives its SETTINGS_MAX_HEADER_LIST_SIZE from it too (+320),
	// counting 32 bytes more per field (RFC 9113 6.5.2): stricter there,
	// never looser.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes - config.HeaderReadSlack,
		ErrorLog:          proxyLog,
		// "OPTIONS *" goes to the handler, which refuses it (400), instead
		// of net/http answering 200 on the gateway's behalf.
		DisableGeneralOptionsHandler: true,
		// Counts HTTP/1 and HTTP/2 connections (handshakes that fail never get here).
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		},
		// HTTP/1 connections come as *listen.Conn, HTTP/2 ones as the
		// *tls.Conn on which net/http serves HTTP/2 itself.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if lc := listen.Take(c); lc != nil {
				return context.WithValue(ctx, connKey{}, lc)
			}
			return ctx
		},
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	return srv
}
