package tcpproxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/listen"
)

// backend is a line server behind go-proxyproto's listener (a header is
// taken, none is required): it answers each line with "<name> <client
// address it saw> <line>", QUIT with "bye" and a close, RESET with a
// reset, FLOOD with bytes until the connection breaks, and the client's
// half-close with "<name> EOF after <lines>".
type backend struct {
	name    string
	addr    string
	headers chan *proxyproto.Header // nil when the connection had none
	closed  chan struct{}           // one per connection that ended
}

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{
		Listener:          ln,
		ConnPolicy:        func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.USE, nil },
		ReadHeaderTimeout: 2 * time.Second,
	}
	b := &backend{name: name, addr: ln.Addr().String(), headers: make(chan *proxyproto.Header, 256), closed: make(chan struct{}, 256)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { b.serve(c) })
		}
	})
	t.Cleanup(func() { pl.Close(); wg.Wait() })
	return b
}

func (b *backend) serve(c net.Conn) {
	defer func() {
		c.Close()
		b.closed <- struct{}{}
	}()
	r := bufio.NewReader(c)
	if _, err := r.Peek(1); err != nil { // the header is read before the first byte
		return
	}
	b.headers <- c.(*proxyproto.Conn).ProxyHeader()
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" {
				fmt.Fprintf(c, "%s EOF after %d\n", b.name, n)
			}
			return
		}
		n++
		line = strings.TrimSuffix(line, "\n")
		switch line {
		case "QUIT":
			io.WriteString(c, "bye\n")
			return
		case "RESET":
			tc, _ := c.(*proxyproto.Conn).TCPConn()
			tc.SetLinger(0)
			return
		case "FLOOD": // until the connection breaks
			chunk := []byte(strings.Repeat("flood\n", 10000))
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
		fmt.Fprintf(c, "%s %s %s\n", b.name, c.RemoteAddr(), line)
	}
}

func (b *backend) header(t *testing.T) *proxyproto.Header {
	t.Helper()
	select {
	case h := <-b.headers:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("the backend got no connection")
		return nil
	}
}

func (b *backend) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-b.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's connection was not closed")
	}
}

// frontend is a Proxy serving what a gateway/listen listener accepts.
type frontend struct {
	addr   string
	pool   *balancer.Pool
	logs   chan Entry
	cancel context.CancelFunc
}

func startFrontend(t testing.TB, o Options, lo listen.Options) *frontend {
	t.Helper()
	f := &frontend{pool: o.Pool, logs: make(chan Entry, 256)}
	o.Log = func(e Entry) { f.logs <- e }
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	l := listen.New(ln, lo)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.Serve(ctx, c) })
		}
	})
	t.Cleanup(func() { cancel(); l.Close(); wg.Wait() })
	return f
}

func (f *frontend) entry(t *testing.T) Entry {
	t.Helper()
	select {
	case e := <-f.logs:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no log entry")
		return Entry{}
	}
}

func newPool(t testing.TB, c balancer.Config) *balancer.Pool {
	t.Helper()
	if c.Name == "" {
		c.Name = "tcp"
	}
	p, err := balancer.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func servers(bs ...*backend) []balancer.ServerConfig {
	var s []balancer.ServerConfig
	for _, b := range bs {
		s = append(s, balancer.ServerConfig{Name: b.name, Address: b.addr})
	}
	return s
}

// copyModes are the two ways bytes are copied between TCP sockets: each
// test of the copying runs in both.
var copyModes = []struct {
	name          string
	disableSplice bool
}{{"splice", false}, {"copy", true}}

// refusedAddr is an address nothing listens on.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// client is a connection from a loopback address other than the proxy's
// own, so the server can tell whose address it was given.
type client struct {
	*net.TCPConn
	r *bufio.Reader
}

func dial(t testing.TB, from, addr string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a stuck test fails instead of hanging
	return &client{TCPConn: c.(*net.TCPConn), r: bufio.NewReader(c)}
}

func (c *client) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (c *client) line(t *testing.T) string {
	t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %q, %v", s, err)
	}
	return s
}

// expectEOF checks the proxy closed the connection: EOF, nothing more.
func expectEOF(t *testing.T, r io.Reader) {
	t.Helper()
	if b, err := io.ReadAll(r); err != nil || len(b) > 0 {
		t.Fatalf("want EOF, got %q, %v", b, err)
	}
}

// TestRelaysLinesWithProxyHeader carries a line protocol through the
// proxy to a server that reads the PROXY header: the server sees the true
// client, lines round-trip, the client's half-close reaches the server,
// whose last answer still comes back, and the log counts every byte.
func TestRelaysLinesWithProxyHeader(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, tc := range []struct {
		name      string
		sendProxy string
		version   byte
		// viaLB: a load balancer in front of the gateway sends its own
		// PROXY header, with the first line in the same segment.
		viaLB bool
	}{
		{name: "no header"},
		{name: "v1", sendProxy: "v1", version: 1},
		{name: "v2", sendProxy: "v2", version: 2},
		{name: "v2 behind a load balancer", sendProxy: "v2", version: 2, viaLB: true},
	} {
		for _, mode := range copyModes {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				b := startBackend(t, "s1")
				var lo listen.Options
				if tc.viaLB {
					lo.Proxy = &listen.Proxy{Trusted: trusted, Require: true, HeaderTimeout: 2 * time.Second}
				}
				f := startFrontend(t, Options{Pool: newPool(t, balancer.Config{Servers: servers(b)}), SendProxy: tc.sendProxy, DisableSplice: mode.disableSplice}, lo)
				c := dial(t, "127.0.0.2", f.addr)

				wantSeen, wantDest := c.LocalAddr().String(), f.addr
				var lead string
				if tc.viaLB {
					wantSeen, wantDest = "203.0.113.7:4242", "198.51.100.1:443"
					lead = "PROXY TCP4 203.0.113.7 198.51.100.1 4242 443\r\n"
				}
				var in, out int64
				for i, line := range []string{"HELO client.example", "MAIL FROM:<a@example.org>", "DATA"} {
					if i == 0 {
						// One write: the line is read into go-proxyproto's
						// buffer with the load balancer's header.
						line = lead + line
					}
					c.send(t, line)
					line = strings.TrimPrefix(line, lead)
					got := c.line(t)
					in, out = in+int64(len(line)+1), out+int64(len(got))
					gotSeen, gotLine, _ := strings.Cut(strings.TrimPrefix(got, "s1 "), " ")
					if tc.version == 0 {
						// Without a header the server sees the proxy itself.
						if !strings.HasPrefix(gotSeen, "127.0.0.1:") || gotLine != line+"\n" {
							t.Fatalf("got %q, want the proxy's address and %q", got, line)
						}
						continue
					}
					if want := fmt.Sprintf("s1 %s %s\n", wantSeen, line); got != want {
						t.Fatalf("got %q, want %q", got, want)
					}
				}
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				final := c.line(t)
				if final != "s1 EOF after 3\n" {
					t.Fatalf("after the half-close got %q", final)
				}
				out += int64(len(final))
				expectEOF(t, c)

				h := b.header(t)
				switch {
				case tc.version == 0 && h != nil:
					t.Fatalf("sent a header: %+v", h)
				case tc.version != 0 && (h == nil || h.Version != tc.version):
					t.Fatalf("header %+v, want version %d", h, tc.version)
				case tc.version != 0 && (h.SourceAddr.String() != wantSeen || h.DestinationAddr.String() != wantDest):
					t.Fatalf("header says %v → %v, want %s → %s", h.SourceAddr, h.DestinationAddr, wantSeen, wantDest)
				}

				e := f.entry(t)
				wantIP, wantPort, _ := net.SplitHostPort(wantSeen)
				if tc.version == 0 {
					wantIP, wantPort, _ = net.SplitHostPort(c.LocalAddr().String())
				}
				if e.ClientIP != wantIP || fmt.Sprint(e.ClientPort) != wantPort {
					t.Errorf("entry client %s:%d, want %s:%s", e.ClientIP, e.ClientPort, wantIP, wantPort)
				}
				if e.BytesIn != in || e.BytesOut != out {
					t.Errorf("entry bytes in/out %d/%d, want %d/%d", e.BytesIn, e.BytesOut, in, out)
				}
				if e.Termination != ClientClosed || e.Server != "s1" || e.Backend != "tcp" || e.Retries != 0 || e.Err != "" || e.TLS != nil {
					t.Errorf("entry %+v", e)
				}
			})
		}
	}
}

// TestHalfCloseDeliversDataInFlight half-closes right after a burst: the
// EOF must reach the server after every line, and every answer, the last
// one sent after the EOF, must reach the client.
func TestHalfCloseDeliversDataInFlight(t *testing.T) {
	for _, mode := range copyModes {
		t.Run(mode.name, func(t *testing.T) { testHalfClose(t, mode.disableSplice) })
	}
}

func testHalfClose(t *testing.T, disableSplice bool) {
	b := startBackend(t, "s1")
	f := startFrontend(t, Options{Pool: newPool(t, balancer.Config{Servers: servers(b)}), SendProxy: "v1", DisableSplice: disableSplice}, listen.Options{})
	c := dial(t, "127.0.0.2", f.addr)
	const lines = 3000
	var sent int64
	wrote := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(c)
		for i := range lines {
			n, _ := fmt.Fprintf(w, "line %d\n", i)
			sent += int64(n)
		}
		err := w.Flush()
		if err == nil {
			err = c.CloseWrite()
		}
		wrote <- err
	}()
	var got int64
	for i := range lines {
		s := c.line(t)
		if !strings.HasSuffix(s, fmt.Sprintf(" line %d\n", i)) {
			t.Fatalf("answer %d is %q", i, s)
		}
		got += int64(len(s))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	final := c.line(t)
	if final != fmt.Sprintf("s1 EOF after %d\n", lines) {
		t.Fatalf("final answer %q", final)
	}
	got += int64(len(final))
	expectEOF(t, c)
	e := f.entry(t)
	if e.Termination != ClientClosed || e.BytesIn != sent || e.BytesOut != got {
		t.Errorf("entry %s in/out %d/%d, want %s %d/%d", e.Termination, e.BytesIn, e.BytesOut, ClientClosed, sent, got)
	}
}

// TestTLSFrontend terminates TLS with gateway/listen and checks that the
// PROXY v2 header tells the server what the client negotiated, and that a
// TLS close_notify is passed on as a half-close.
func TestTLSFrontend(t *testing.T) {
	cert, roots := selfSigned(t, "mail.example.test")
	b := startBackend(t, "s1")
	f := startFrontend(t, Options{Pool: newPool(t, balancer.Config{Servers: servers(b)}), SendProxy: "v2"}, listen.Options{
		TLS:              &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"imap"}},
		HandshakeTimeout: 5 * time.Second,
	})
	d := tls.Dialer{
		NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}},
		Config:    &tls.Config{ServerName: "mail.example.test", NextProtos: []string{"imap"}, RootCAs: roots},
	}
	conn, err := d.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := conn.(*tls.Conn)
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(tc)

	io.WriteString(tc, "a1 CAPABILITY\n")
	got, err := r.ReadString('\n')
	if want := fmt.Sprintf("s1 %s a1 CAPABILITY\n", tc.LocalAddr()); err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	final, err := r.ReadString('\n')
	if err != nil || final != "s1 EOF after 1\n" {
		t.Fatalf("after close_notify got %q, %v", final, err)
	}
	expectEOF(t, r)

	h := b.header(t)
	if h == nil || h.Version != 2 || h.SourceAddr.String() != tc.LocalAddr().String() {
		t.Fatalf("header %+v", h)
	}
	tlvs, err := h.TLVs()
	if err != nil {
		t.Fatal(err)
	}
	values := map[proxyproto.PP2Type]string{}
	for _, v := range tlvs {
		values[v.Type] = string(v.Value)
	}
	if values[proxyproto.PP2_TYPE_ALPN] != "imap" || values[proxyproto.PP2_TYPE_AUTHORITY] != "mail.example.test" {
		t.Errorf("ALPN %q, authority %q", values[proxyproto.PP2_TYPE_ALPN], values[proxyproto.PP2_TYPE_AUTHORITY])
	}
	e := f.entry(t)
	ssl, ok := tlvparse.FindSSL(tlvs)
	version, _ := ssl.SSLVersion()
	cipher, _ := ssl.SSLCipher()
	if !ok || !ssl.ClientSSL() || ssl.ClientCertConn() || ssl.Verified() || version != "TLSv1.3" ||
		e.TLS == nil || cipher != tls.CipherSuiteName(e.TLS.CipherSuite) {
		t.Errorf("SSL TLV %+v: version %q, cipher %q", ssl, version, cipher)
	}
	if e.TLS == nil || e.TLS.ServerName != "mail.example.test" || e.Termination != ClientClosed ||
		e.BytesIn != int64(len("a1 CAPABILITY\n")) || e.BytesOut != int64(len(got)+len(final)) {
		t.Errorf("entry %+v", e)
	}
}

// selfSigned makes a certificate for name and the pool that trusts it.
func selfSigned(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// TestTermination checks how connections end and what the log says.
func TestTermination(t *testing.T) {
	const idle = 300 * time.Millisecond
	serverCloses := func(t *testing.T, c *client, f *frontend) {
		c.send(t, "QUIT")
		if got := c.line(t); got != "bye\n" {
			t.Fatalf("got %q", got)
		}
		// The half-close reaches the client, which could still send.
		expectEOF(t, c.r)
		// The server's FIN is only a half-close to the proxy: the
		// connection lasts until the client closes too.
		c.Close()
	}
	for _, tc := range []struct {
		name string
		idle time.Duration
		// viaLB: the client comes through a load balancer that sends a
		// PROXY header, so gateway/listen hands over a go-proxyproto conn.
		viaLB bool
		run   func(t *testing.T, c *client, f *frontend)
		want  string
	}{
		{name: "client closes", want: ClientClosed, run: func(t *testing.T, c *client, f *frontend) {
			c.send(t, "hello")
			c.line(t)
			c.Close()
		}},
		{name: "server closes", want: ServerClosed, run: serverCloses},
		{name: "server closes, client via a load balancer", viaLB: true, want: ServerClosed, run: serverCloses},
		{name: "server resets", want: ServerError, run: func(t *testing.T, c *client, f *frontend) {
			c.send(t, "RESET")
			expectEOF(t, c.r)
		}},
		{name: "idle", idle: idle, want: IdleTimeout, run: func(t *testing.T, c *client, f *frontend) {
			// Lines more often than the timeout keep the connection
			// past it: every byte restarts it.
			for i := range 6 {
				c.send(t, fmt.Sprint("keep ", i))
				c.line(t)
				time.Sleep(idle / 3)
			}
			c.send(t, "last")
			c.line(t)
			quiet := time.Now()
			expectEOF(t, c.r)
			// Loose bounds: the client learns of the last byte a little
			// after the proxy moved it, and a loaded machine delays both.
			if d := time.Since(quiet); d < idle/2 || d > idle+time.Second {
				t.Errorf("closed %v after the last byte, want about %v", d, idle)
			}
		}},
		{name: "client stops reading", idle: idle, want: IdleTimeout, run: func(t *testing.T, c *client, f *frontend) {
			// The proxy's writes to the client stall: that is no activity.
			c.send(t, "FLOOD")
		}},
		{name: "shutdown", want: Shutdown, run: func(t *testing.T, c *client, f *frontend) {
			c.send(t, "hello")
			c.line(t)
			f.cancel()
			expectEOF(t, c.r)
		}},
	} {
		for _, mode := range copyModes {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				b := startBackend(t, "s1")
				var lo listen.Options
				if tc.viaLB {
					lo.Proxy = &listen.Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, HeaderTimeout: 2 * time.Second}
				}
				f := startFrontend(t, Options{Pool: newPool(t, balancer.Config{Servers: servers(b)}), IdleTimeout: tc.idle, SendProxy: "v2", DisableSplice: mode.disableSplice}, lo)
				c := dial(t, "127.0.0.2", f.addr)
				if tc.viaLB {
					io.WriteString(c, "PROXY TCP4 203.0.113.7 198.51.100.1 4242 443\r\n")
				}
				tc.run(t, c, f)
				b.waitClosed(t) // both sides end, whichever began
				if e := f.entry(t); e.Termination != tc.want {
					t.Errorf("termination %q (err %q), want %q", e.Termination, e.Err, tc.want)
				}
			})
		}
	}
}

// TestRetryOnRefusedServer: a server that refuses is reported to the
// passive checks and the connection goes to the next one.
func TestRetryOnRefusedServer(t *testing.T) {
	b := startBackend(t, "up")
	pool := newPool(t, balancer.Config{
		// Round robin starts with the first server: the refusing one.
		Servers:      []balancer.ServerConfig{{Name: "down", Address: refusedAddr(t)}, {Name: "up", Address: b.addr}},
		PassiveCheck: &balancer.PassiveConfig{Failures: 1, CoolDown: time.Minute},
	})
	f := startFrontend(t, Options{Pool: pool, Retries: 1, ConnectTimeout: time.Second}, listen.Options{})
	c := dial(t, "127.0.0.2", f.addr)
	c.send(t, "hello")
	if got := c.line(t); !strings.HasPrefix(got, "up ") {
		t.Fatalf("got %q", got)
	}
	c.Close()
	e := f.entry(t)
	if e.Retries != 1 || e.Server != "up" || e.Termination != ClientClosed {
		t.Errorf("entry %+v", e)
	}
	if !pool.Server("down").Down() {
		t.Error("the refusing server was not reported to the passive checks")
	}
}

// TestNoServer: when no server can be connected to, the client's
// connection is closed and the log says why.
func TestNoServer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers func(t *testing.T) []balancer.ServerConfig
		retries int
		want    string
		tries   int
	}{
		{name: "retries run out", retries: 1, want: ConnectFailed, tries: 1, servers: func(t *testing.T) []balancer.ServerConfig {
			return []balancer.ServerConfig{{Address: refusedAddr(t)}, {Address: refusedAddr(t)}, {Address: refusedAddr(t)}}
		}},
		{name: "every server refuses", retries: 5, want: ConnectFailed, tries: 1, servers: func(t *testing.T) []balancer.ServerConfig {
			return []balancer.ServerConfig{{Address: refusedAddr(t)}, {Address: refusedAddr(t)}}
		}},
		{name: "none usable", retries: 5, want: NoServer, servers: func(t *testing.T) []balancer.ServerConfig {
			return []balancer.ServerConfig{{Address: startBackend(t, "s1").addr, State: "maint"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFrontend(t, Options{Pool: newPool(t, balancer.Config{Servers: tc.servers(t)}), Retries: tc.retries}, listen.Options{})
			c := dial(t, "127.0.0.2", f.addr)
			expectEOF(t, c)
			e := f.entry(t)
			if e.Termination != tc.want || e.Retries != tc.tries || e.Err == "" {
				t.Errorf("entry %+v, want %s after %d retries", e, tc.want, tc.tries)
			}
			if tc.want == ConnectFailed && !strings.Contains(e.Err, "refused") {
				t.Errorf("error %q", e.Err)
			}
		})
	}
}

// TestMaxConnQueues: with a server at its maxconn, the next connection
// waits in the backend's queue and goes on when the first ends, or gives
// up at the queue timeout.
func TestMaxConnQueues(t *testing.T) {
	setup := func(t *testing.T, queue time.Duration) (*frontend, *client) {
		b := startBackend(t, "s1")
		pool := newPool(t, balancer.Config{
			Servers:      []balancer.ServerConfig{{Name: "s1", Address: b.addr, MaxConn: 1}},
			QueueTimeout: queue,
		})
		f := startFrontend(t, Options{Pool: pool}, listen.Options{})
		first := dial(t, "127.0.0.2", f.addr)
		first.send(t, "first")
		first.line(t)
		return f, first
	}
	t.Run("proceeds", func(t *testing.T) {
		f, first := setup(t, 5*time.Second)
		second := dial(t, "127.0.0.3", f.addr)
		second.send(t, "second")
		for deadline := time.Now().Add(2 * time.Second); f.pool.QueueLen() != 1; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the second connection did not queue")
			}
		}
		second.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := second.r.ReadString('\n'); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the second connection was served beyond maxconn: %v", err)
		}
		second.SetReadDeadline(time.Now().Add(5 * time.Second))
		first.Close()
		if got := second.line(t); !strings.HasSuffix(got, " second\n") {
			t.Fatalf("got %q", got)
		}
		if e := f.entry(t); e.Termination != ClientClosed {
			t.Errorf("first entry %+v", e)
		}
		second.Close()
		if e := f.entry(t); e.Termination != ClientClosed || e.Connect < 100*time.Millisecond {
			t.Errorf("second entry %+v, want a connect time with the wait", e)
		}
	})
	t.Run("times out", func(t *testing.T) {
		f, _ := setup(t, 100*time.Millisecond)
		second := dial(t, "127.0.0.3", f.addr)
		expectEOF(t, second)
		if e := f.entry(t); e.Termination != QueueTimeout {
			t.Errorf("entry %+v", e)
		}
	})
}

// TestSourceBalance: with balance source, each client address keeps to
// the server the source hash names for it, connection after connection.
func TestSourceBalance(t *testing.T) {
	bs := []*backend{startBackend(t, "s1"), startBackend(t, "s2"), startBackend(t, "s3")}
	pool := newPool(t, balancer.Config{Balance: "source", Servers: servers(bs...)})
	f := startFrontend(t, Options{Pool: pool}, listen.Options{})
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		want := pool.Pick(balancer.Request{ClientIP: ip}).Name
		for range 3 {
			c := dial(t, ip, f.addr)
			c.send(t, "hi")
			got := c.line(t)
			c.Close()
			if name, _, _ := strings.Cut(got, " "); name != want {
				t.Fatalf("client %s went to %s, want %s", ip, name, want)
			}
			f.entry(t)
		}
	}
}

// TestStickOnSrc: a stick table on the source address keeps a client on
// the server it first got, whatever round robin would choose next.
func TestStickOnSrc(t *testing.T) {
	bs := []*backend{startBackend(t, "s1"), startBackend(t, "s2"), startBackend(t, "s3")}
	pool := newPool(t, balancer.Config{Servers: servers(bs...), Stick: &balancer.StickConfig{On: "src"}})
	f := startFrontend(t, Options{Pool: pool}, listen.Options{})
	first := map[string]string{}
	for range 3 {
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			c := dial(t, ip, f.addr)
			c.send(t, "hi")
			name, _, _ := strings.Cut(c.line(t), " ")
			c.Close()
			f.entry(t)
			if first[ip] == "" {
				first[ip] = name
			} else if name != first[ip] {
				t.Fatalf("client %s went to %s, then %s", ip, first[ip], name)
			}
		}
	}
	if first["127.0.0.2"] == first["127.0.0.3"] {
		t.Fatalf("round robin put both clients on %s", first["127.0.0.2"])
	}
}

// TestNoDescriptorLeak: every connection's sockets are closed, however
// it ends (and the log says how).
func TestNoDescriptorLeak(t *testing.T) {
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd")
	}
	for _, mode := range copyModes {
		t.Run(mode.name, func(t *testing.T) {
			b := startBackend(t, "s1")
			f := startFrontend(t, Options{Pool: newPool(t, balancer.Config{Servers: servers(b)}), DisableSplice: mode.disableSplice}, listen.Options{})
			session := func(i int) {
				c := dial(t, "127.0.0.2", f.addr)
				want := []string{ClientClosed, ServerClosed, ClientError}[i%3]
				switch i % 3 {
				case 0: // both close cleanly
					c.send(t, "hi")
					c.line(t)
					c.CloseWrite()
					c.line(t)
					expectEOF(t, c)
				case 1: // the server closes first
					c.send(t, "QUIT")
					c.line(t)
					expectEOF(t, c)
				case 2: // the client resets
					c.send(t, "hi")
					c.line(t)
					c.SetLinger(0)
				}
				c.Close()
				if e := f.entry(t); e.Termination != want {
					t.Errorf("termination %q (err %q), want %q", e.Termination, e.Err, want)
				}
				b.waitClosed(t)
			}
			session(0) // the pools' first pipes and buffers
			// Sockets only: pipes dropped from the pool (as -race does at
			// random) stay open until a GC's cleanup.
			fds := func() int {
				d, _ := os.ReadDir("/proc/self/fd")
				n := 0
				for _, e := range d {
					if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "socket:") {
						n++
					}
				}
				return n
			}
			before := fds()
			for i := range 30 {
				session(i)
			}
			if after := fds(); after > before+5 {
				t.Errorf("%d sockets open after 30 connections, %d before", after, before)
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	pool := newPool(t, balancer.Config{Servers: []balancer.ServerConfig{{Address: "127.0.0.1:1"}}})
	for _, o := range []Options{{}, {Pool: pool, SendProxy: "v3"}, {Pool: pool, IdleTimeout: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
