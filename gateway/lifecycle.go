package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/sekisho/sekisho/gateway/admin/console"
	"github.com/sekisho/sekisho/gateway/clientip"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/listen"
)

// A generation's life: Listen binds, Run serves until its context ends
// (reloads swap generations in between: start, stop, release).

// Listen binds every frontend's addresses and the admin listener; if one
// fails, those already bound are closed. After a reload, the sockets of
// the generation before at the same addresses are taken over instead.
func (g *Gateway) Listen() error {
	sh := g.sh
	if g.admin != nil {
		if err := g.admin.Listen(); err != nil {
			return err
		}
	}
	// First every socket, so that a bind that fails changes nothing.
	type bind struct {
		f    *frontend
		b    config.Bind
		sock *listen.Socket
		quic *quicSocket
	}
	var binds []bind
	sockets, quics := map[string]*listen.Socket{}, map[string]*quicSocket{}
	fail := func(err error) error {
		for k, s := range sockets {
			if sh.sockets[k] != s {
				s.Close()
			}
		}
		for k, q := range quics {
			if sh.quic[k] != q {
				q.close()
			}
		}
		return err
	}
	for _, f := range g.frontends {
		seen := map[string]int{}
		for _, b := range f.binds {
			key := listen.SocketKey(f.name, b.Address, seen)
			s := sh.sockets[key]
			if s == nil {
				ln, err := net.Listen("tcp", b.Address)
				if err != nil {
					return fail(fmt.Errorf("frontend %q: %w", f.name, err))
				}
				s = listen.NewSocket(ln)
			}
			sockets[key] = s
			x := bind{f: f, b: b, sock: s}
			if b.TLS && f.cfg.HTTP3 && f.tcp == nil {
				x.quic = sh.quic[key]
				if x.quic == nil {
					// QUIC on the UDP port of the same number (for :0, the one TCP got).
					pc, err := net.ListenPacket("udp", s.Addr().String())
					if err != nil {
						return fail(fmt.Errorf("frontend %q: http3: %w", f.name, err))
					}
					x.quic = newQUICSocket(pc, f, g.metrics, sh.serverID)
				}
				quics[key] = x.quic
			}
			binds = append(binds, x)
		}
	}
	// Then hand them over: nothing fails from here.
	for _, x := range binds {
		f, b, sock := x.f, x.b, x.sock
		o := listen.Options{HandshakeTimeout: f.srv.ReadHeaderTimeout}
		if pp := b.ProxyProtocol; pp != nil {
			o.Proxy = &listen.Proxy{Require: pp.Mode == "require", HeaderTimeout: pp.HeaderTimeout}
			for _, t := range pp.Trusted {
				p, _ := clientip.ParsePrefix(t) // validated
				o.Proxy.Trusted = append(o.Proxy.Trusted, p)
			}
			o.OnProxyError = f.proxyError
		}
		if b.TLS && f.tcp != nil {
			o.TLS = f.tcp.tlsConfig(f.tls)
		} else if b.TLS {
			o.TLS = f.tls
			o.OnHandshake, o.OnHandshakeError = f.watch.handshake, f.watch.handshakeError
			if h := f.handler; h.redirectHTTPS && h.httpsPort == "" {
				_, h.httpsPort, _ = net.SplitHostPort(sock.Addr().String()) // the bound port, for :0 too
			}
		}
		if f.tcp == nil {
			o.OnRefused = f.handler.refused // the requests net/http refuses itself are logged too
		}
		if q := x.quic; q != nil {
			if f.handler.altSvc == "" {
				_, port, _ := net.SplitHostPort(q.pc.LocalAddr().String())
				f.handler.altSvc = `h3=":` + port + `"; ma=86400`
			}
			f.quic = append(f.quic, q)
			if !q.serving {
				g.log.Info().Str("frontend", f.name).Str("address", q.pc.LocalAddr().String()).Msg("listening (HTTP/3)")
			}
		}
		f.lns = append(f.lns, sock.Attach(o))
		g.log.Info().Str("frontend", f.name).Str("address", sock.Addr().String()).Bool("tls", b.TLS).Msg("listening")
	}
	// QUIC takes the frontends as they are now complete.
	for _, f := range g.frontends {
		for _, q := range f.quic {
			q.front.Store(f)
		}
	}
	// Sockets the config no longer has stop taking connections now; the
	// requests they brought finish in the generation before.
	for k, s := range sh.sockets {
		if sockets[k] != s {
			s.Close()
		}
	}
	for k, q := range sh.quic {
		if quics[k] != q {
			go q.shutdown(context.Background())
		}
	}
	sh.sockets, sh.quic = sockets, quics
	return nil
}

// Addrs returns the bound addresses of a frontend, in bind order.
func (g *Gateway) Addrs(frontend string) []net.Addr {
	var out []net.Addr
	if f := g.current().frontend(frontend); f != nil {
		for _, ln := range f.lns {
			out = append(out, ln.Addr())
		}
	}
	return out
}

// Run binds the listeners if Listen was not called, serves until ctx is
// done, then shuts down: listeners close, in-flight requests get up to the
// shutdown timeout to finish, then remaining connections are closed.
// Config reloads (Reload) happen within it.
func (g *Gateway) Run(ctx context.Context) error {
	sh := g.sh
	if len(sh.sockets) == 0 {
		if err := g.Listen(); err != nil {
			return err
		}
	}
	sh.cur.Store(g)
	sctx, stopShared := context.WithCancel(context.Background())
	defer stopShared()
	sh.ctx = sctx
	go g.idle.run(sctx)
	if g.admin != nil {
		go g.admin.Serve()
		defer g.admin.Close()
	}
	g.start()
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go sh.watchRules(stopWatch)
	go sh.watchCerts(stopWatch)
	go sh.sampleRates(stopWatch, rateWindow)
	sh.running.Store(true)
	defer sh.running.Store(false)
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case runErr = <-sh.errc:
			break loop
		case done := <-sh.reloads:
			done <- sh.cur.Load().reloadConfig()
		}
	}
	cur := sh.cur.Load()
	cur.draining.Store(true)
	if cur.drainGrace > 0 {
		// Still serving, but /readyz says 503: the load balancer takes this
		// replica out before its listeners close.
		cur.log.Info().Dur("grace", cur.drainGrace).Msg("shutting down: not ready, still serving for the drain grace")
		select {
		case <-time.After(cur.drainGrace):
		case runErr = <-sh.errc:
		}
	}
	cur.log.Info().Dur("timeout", cur.shutdownTimeout).Msg("shutting down: finishing in-flight requests")
	dctx, cancel := context.WithTimeout(context.Background(), cur.shutdownTimeout)
	defer cancel()
	for _, s := range sh.sockets {
		s.Close()
	}
	var wg sync.WaitGroup
	for _, q := range sh.quic {
		wg.Go(func() {
			// GOAWAY to QUIC clients, then wait for their requests, as for TCP.
			if err := q.shutdown(dctx); err != nil {
				cur.log.Warn().Err(err).Msg("HTTP/3 shutdown deadline passed; closing connections")
			}
		})
	}
	cur.stop(dctx, nil)
	wg.Wait()
	cur.log.Info().Msg("stopped")
	return runErr
}

// start serves on the generation's listeners and starts its health checks
// and, for certificates new to it, ACME.
func (g *Gateway) start() {
	sh := g.sh
	report := func(err error) {
		select {
		case sh.errc <- err:
		default:
		}
	}
	for _, f := range g.frontends {
		for _, ln := range f.lns {
			g.served.Go(func() {
				serve := f.srv.Serve
				if f.tcp != nil {
					serve = f.tcp.serve
				}
				if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
					report(fmt.Errorf("frontend %q: serving %s: %w", f.name, ln.Addr(), err))
				}
			})
		}
		for _, q := range f.quic {
			if q.serving {
				continue
			}
			q.serving = true
			go func() {
				if err := q.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
					report(fmt.Errorf("frontend %q: serving HTTP/3 on %s: %w", f.name, q.pc.LocalAddr(), err))
				}
			}()
		}
	}
	var checks context.Context
	checks, g.stopChecks = context.WithCancel(context.Background())
	for _, p := range g.pools {
		p.RunHealthChecks(checks)
	}
	g.serving.Store(true)
	for _, f := range g.frontends {
		if f.acme != nil && !sh.acme[f.acme] {
			// The listeners serve now, so the CA's challenges reach them.
			sh.acme[f.acme] = true
			if err := f.acme.Start(sh.ctx); err != nil {
				g.log.Error().Str("frontend", f.name).Err(err).Msg("acme: starting certificate management")
			}
		}
	}
}

// retireSettle is how long a generation that a reload replaced goes on
// serving the requests of connections it accepted before it shuts down.
const retireSettle = time.Second

// stop lets the generation's requests finish until ctx ends and closes
// what it holds, but for what next, the generation after it, took over
// (nil when the gateway stops).
func (g *Gateway) stop(ctx context.Context, next *Gateway) {
	if next != nil {
		// http.Server.Shutdown drops a request that arrives on a connection
		// it accepted but had no request from yet, and a connection can be
		// accepted just before the sockets pass to next. So first no more
		// keep-alive (idle connections close, the rest after their current
		// request), and a moment for such late requests to come in.
		for _, f := range g.frontends {
			f.srv.SetKeepAlivesEnabled(false)
		}
		select {
		case <-time.After(retireSettle):
		case <-ctx.Done():
		}
	}
	var wg sync.WaitGroup
	for _, f := range g.frontends {
		wg.Go(func() {
			if f.tcp != nil {
				for _, ln := range f.lns {
					ln.Close()
				}
				f.tcp.shutdown(ctx)
				return
			}
			// HTTP/2 connections too: GOAWAY, then their streams finish.
			if err := f.srv.Shutdown(ctx); err != nil {
				g.log.Warn().Str("frontend", f.name).Err(err).Msg("shutdown deadline passed; closing connections")
				f.srv.Close()
			}
		})
	}
	wg.Wait()
	g.served.Wait()
	g.stopChecks()
	g.release(next)
}

// release closes what g holds and other does not share: other is the
// generation after g when g retires, or the one before g when g failed to
// start; nil closes everything.
func (g *Gateway) release(other *Gateway) {
	if other == nil {
		other = &Gateway{}
	}
	for _, b := range g.backends {
		b.Close()
	}
	for _, s := range g.stores {
		if !slices.Contains(other.stores, s) {
			s.Close()
		}
	}
	for _, f := range g.frontends {
		if f.acme != nil && g.sh.acme[f.acme] && !slices.ContainsFunc(other.frontends, func(o *frontend) bool { return o.acme == f.acme }) {
			f.acme.Stop()
			delete(g.sh.acme, f.acme)
		}
	}
	if g.redis != nil && g.redis != other.redis {
		g.redis.Close()
	}
	for name, l := range g.lists {
		if other.lists[name] != l {
			l.close()
		}
	}
	if g.crowdsec != nil && g.crowdsec != other.crowdsec {
		g.crowdsec.Close()
	}
	if g.tracing != nil && g.tracing != other.tracing {
		g.tracing.close()
	}
	if s, ok := g.events.(*console.Stream); ok && s != other.events {
		s.Close()
	}
	if g.audit != nil && g.audit != other.audit {
		g.audit.Close()
	}
	if g.alerts != nil && g.alerts != other.alerts {
		// What is queued gets a few seconds to leave; the rest is counted as dropped.
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		g.alerts.Close(actx)
		cancel()
	}
}
