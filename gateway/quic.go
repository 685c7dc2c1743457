package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/sekisho/sekisho/gateway/fingerprint"
	"github.com/sekisho/sekisho/gateway/quiclb"
)

// quicSocket is a UDP address serving HTTP/3. QUIC connections live in
// the server that accepted them, so the server outlives generations too:
// each request and handshake goes to the frontend that is current.
type quicSocket struct {
	pc      net.PacketConn
	tr      *quic.Transport
	srv     *http3.Server
	front   atomic.Pointer[frontend]
	serving bool
	// halfOpen counts handshakes in progress. A QUIC server answers an
	// Initial with its whole handshake flight before the client proves it
	// owns its address, so a flood from spoofed addresses costs a key
	// exchange and a signature each: past the frontend's threshold, new
	// clients first get a stateless Retry (RFC 9000, 8.1.2), which spoofed
	// addresses never answer, as HAProxy's tune.quic.retry-threshold.
	halfOpen atomic.Int64
	retries  prometheus.Counter
	// closing ends the handshakes still in progress when the socket
	// shuts down, instead of waiting out their handshake timeout.
	closing chan struct{}
	// hellos holds each handshake's JA4 by client address, from the
	// ClientHello until the connection is accepted (ConnContext).
	hellos helloFingerprints
}

// helloFingerprints maps a client address to the JA4 of its ClientHello,
// for the short time between the hello and the accepted connection.
// Bounded: handshakes that never complete are forgotten in bulk.
type helloFingerprints struct {
	mu sync.Mutex
	m  map[string]string
}

const maxPendingHellos = 10000

func (h *helloFingerprints) put(addr, ja4 string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxPendingHellos {
		h.m = map[string]string{}
	}
	h.m[addr] = ja4
}

func (h *helloFingerprints) take(addr string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ja4 := h.m[addr]
	delete(h.m, addr)
	return ja4
}

// ja4Key is the context key of an HTTP/3 connection's JA4.
type ja4Key struct{}

// halfOpenDone is the context key of a connection's release of its
// half-open count.
type halfOpenDone struct{}

// newQUICSocket serves HTTP/3 on pc. With a server ID, every connection
// ID it issues (the first, those in NEW_CONNECTION_ID frames, a Retry's)
// carries it, and only QUIC v1 is offered: AWS's NLB routes no other
// version.
func newQUICSocket(pc net.PacketConn, f *frontend, m *metrics, serverID *quiclb.ServerID) *quicSocket {
	q := &quicSocket{pc: pc, retries: m.quicRetries.WithLabelValues(f.name), closing: make(chan struct{})}
	q.front.Store(f)
	q.tr = &quic.Transport{Conn: pc, VerifySourceAddress: q.mustValidate, ConnContext: q.connStarted}
	qc := &quic.Config{Allow0RTT: false} // 0-RTT requests can be replayed
	if serverID != nil {
		q.tr.ConnectionIDGenerator = quiclb.Generator{ID: *serverID}
		qc.Versions = []quic.Version{quic.Version1}
	}
	l := f.srv // the frontend's limits, from the config that bound the socket
	q.srv = &http3.Server{
		Handler:        http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { q.front.Load().handler.ServeHTTP(w, r) }),
		QUICConfig:     qc,
		MaxHeaderBytes: l.MaxHeaderBytes,
		IdleTimeout:    l.IdleTimeout,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			go q.track(c, m)
			if ja4 := q.hellos.take(c.RemoteAddr().String()); ja4 != "" {
				ctx = context.WithValue(ctx, ja4Key{}, ja4)
			}
			return ctx
		},
	}
	return q
}

// serve accepts QUIC connections until the socket shuts down.
func (q *quicSocket) serve() error {
	tlsConf := http3.ConfigureTLSConfig(&tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		// QUIC carries the hello in CRYPTO frames that crypto/tls reads:
		// its ClientHelloInfo is the hello as parsed (fingerprint package).
		if hello.Conn != nil {
			q.hellos.put(hello.Conn.RemoteAddr().String(), fingerprint.FromClientHelloInfo(hello).JA4(fingerprint.TransportQUIC))
		}
		return q.front.Load().tls, nil
	}})
	ln, err := q.tr.ListenEarly(tlsConf, q.srv.QUICConfig)
	if err != nil {
		return err
	}
	defer ln.Close()
	return q.srv.ServeListener(ln)
}

// mustValidate says whether a new client, whose address is not proven
// yet, gets a Retry first.
func (q *quicSocket) mustValidate(net.Addr) bool {
	if q.halfOpen.Load() < int64(q.front.Load().cfg.Limits.QUICRetryThreshold) {
		return false
	}
	q.retries.Inc()
	return true
}

// connStarted counts a handshake in progress until it completes or the
// connection ends, whichever comes first.
func (q *quicSocket) connStarted(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	q.halfOpen.Add(1)
	var once sync.Once
	done := func() { once.Do(func() { q.halfOpen.Add(-1) }) }
	context.AfterFunc(ctx, done)
	return context.WithValue(ctx, halfOpenDone{}, done), nil
}

// track counts a connection once its handshake has completed: a client
// that sent only an Initial is neither a handshake in the metrics nor a
// client in the TLS usage report. It is then open until its context ends;
// the counter is the frontend's in every generation.
func (q *quicSocket) track(c *quic.Conn, m *metrics) {
	done, _ := c.Context().Value(halfOpenDone{}).(func())
	select {
	case <-c.HandshakeComplete():
	case <-c.Context().Done():
		return
	case <-q.closing:
		c.CloseWithError(0, "shutting down")
		return
	}
	if done != nil {
		done()
	}
	f := q.front.Load()
	st := c.ConnectionState().TLS
	m.handshake(f.name, "quic", &st)
	if f.watch != nil {
		f.watch.usage.count(&st, c.RemoteAddr())
	}
	f.open.Add(1)
	<-c.Context().Done()
	f.open.Add(-1)
}

// shutdown sends GOAWAY, waits for requests until ctx ends, and closes.
func (q *quicSocket) shutdown(ctx context.Context) error {
	close(q.closing)
	err := q.srv.Shutdown(ctx)
	q.close()
	return err
}

// close ends the transport and its socket.
func (q *quicSocket) close() {
	q.tr.Close()
	q.pc.Close()
}
