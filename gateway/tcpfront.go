package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/tcpproxy"
)

// tcpFrontend serves a mode: tcp frontend: each accepted connection
// (after its PROXY header and TLS handshake, as configured) goes to
// tcpproxy, with one access log line when it ends.
type tcpFrontend struct {
	proxy  *tcpproxy.Proxy
	ctx    context.Context // cancelled at the shutdown deadline: open connections close
	cancel context.CancelFunc
	conns  sync.WaitGroup
	open   *atomic.Int64 // the frontend's open connections, for the metrics
}

func (g *Gateway) newTCPFrontend(fc config.Frontend, pool *balancer.Pool, bc config.Backend, access *accesslog.Logger) (*tcpFrontend, error) {
	p, err := tcpproxy.New(tcpproxy.Options{
		Pool: pool, ConnectTimeout: bc.ConnectTimeout, IdleTimeout: fc.IdleTimeout, Retries: *bc.Retries,
		SendProxy: fc.SendProxy,
		Log: func(e tcpproxy.Entry) {
			access.Write(&accesslog.Entry{
				Time: e.Start, ClientIP: e.ClientIP, ClientPort: e.ClientPort, Frontend: fc.Name,
				Backend: e.Backend, Server: e.Server, Protocol: "tcp", BytesIn: e.BytesIn, BytesOut: e.BytesOut,
				Connect: e.Connect, Total: e.Duration, TLS: e.TLS, Retries: e.Retries, Error: e.Err,
				Termination: e.Termination,
			})
		},
	})
	if err != nil {
		return nil, err
	}
	t := &tcpFrontend{proxy: p}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t, nil
}

// tlsConfig is the frontend's TLS config without HTTP's ALPN protocols: a
// TCP service is not HTTP (ACME's own protocol stays).
func (t *tcpFrontend) tlsConfig(base *tls.Config) *tls.Config {
	c := base.Clone()
	c.NextProtos = slices.DeleteFunc(slices.Clone(c.NextProtos), func(p string) bool { return p == "h2" || p == "http/1.1" })
	return c
}

// serve accepts connections until ln is closed.
func (t *tcpFrontend) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		t.conns.Add(1)
		t.open.Add(1)
		go func() {
			defer t.conns.Done()
			defer t.open.Add(-1)
			t.proxy.Serve(t.ctx, c)
		}()
	}
}

// shutdown lets open connections finish until ctx ends, then closes them.
func (t *tcpFrontend) shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() { t.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	t.cancel()
}
