package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

// Under a flood of Initials from addresses that never answer, real HTTP/3
// clients still complete: past the half-open threshold new clients get a
// Retry, which the real ones answer and the spoofed ones cannot, so the
// server holds a bounded number of handshakes. The Initials that never
// completed a handshake are neither counted as handshakes nor as distinct
// clients.
func TestQUIC_InitialFloodWithSpoofedSources(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	const threshold, floodSize, sources, clients = 50, 3000, 64, 5
	yaml := strings.Replace(h3GatewayYAML(backend.URL), "    http3: true\n",
		fmt.Sprintf("    http3: true\n    limits: {quic_retry_threshold: %d}\n", threshold), 1) + "admin: {address: \"127.0.0.1:0\"}\n"
	g, _, _, _ := runGatewayWith(t, yaml, Options{Log: zerolog.Nop()})
	addr := g.Addrs("web")[0].String()
	server, _ := net.ResolveUDPAddr("udp", addr)
	metricsURL := "http://" + g.AdminAddr().String() + "/metrics"

	start := time.Now()
	initials := captureInitials(t, server, floodSize)
	t.Logf("%d Initials made in %v", len(initials), time.Since(start))
	spoofed := spoofedSockets(t, sources)

	// The flood: bursts of 100 Initials every 20 ms (about 0.6 s), each from
	// one of the spoofed sources, while the real clients connect.
	var q *quicSocket
	for _, s := range g.frontend("web").quic {
		q = s
	}
	var maxHalfOpen int64
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for i, p := range initials {
			if _, err := spoofed[i%sources].WriteTo(p, server); err != nil {
				t.Errorf("flood: %v", err)
				return
			}
			if i%100 == 99 {
				maxHalfOpen = max(maxHalfOpen, q.halfOpen.Load())
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		time.Sleep(60 * time.Millisecond)
		wg.Go(func() {
			h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
			defer h3.Close()
			start := time.Now()
			defer func() { t.Logf("client %d: %v", i, time.Since(start)) }()
			resp, err := (&http.Client{Transport: h3, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				errs <- fmt.Errorf("client %d: %d %q", i, resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	<-flooded
	t.Logf("flood and clients done in %v", time.Since(start))
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if n := scrape(t, metricsURL, "", "sekisho_tls_handshakes_total", `transport="quic"`); n != clients {
		t.Errorf("QUIC handshakes counted: %v, want %d (the real clients'; a flood's Initials are not handshakes)", n, clients)
	}
	if n := scrape(t, metricsURL, "", "sekisho_quic_retries_total", `frontend="web"`); n < floodSize/2 {
		t.Errorf("Retries sent: %v of %d Initials, want most of them past the threshold", n, floodSize)
	}
	// Half-open handshakes stay near the threshold: the ones started before
	// it was reached, and the real clients' own.
	if maxHalfOpen > threshold+2*clients {
		t.Errorf("half-open handshakes reached %d with a threshold of %d", maxHalfOpen, threshold)
	}
	if u, _ := g.TLSUsage("web"); u.Distinct["TLSv1.3"] != 1 {
		t.Errorf("distinct TLS 1.3 clients %d, want 1 (127.0.0.1; the spoofed sources never completed a handshake)", u.Distinct["TLSv1.3"])
	}
}

// captureInitials makes n client Initials to server, each with a
// connection ID of its own, as quic-go's client sends them; they are
// captured, not sent.
func captureInitials(t *testing.T, server net.Addr, n int) [][]byte {
	t.Helper()
	c := &captureConn{out: make(chan []byte, 64), closed: make(chan struct{})}
	tr := &quic.Transport{Conn: c}
	defer tr.Close()
	defer close(c.closed)
	// X25519 alone keeps the ClientHello in one datagram (a post-quantum
	// key share takes two), so each Initial makes the server do a whole
	// key exchange and signature.
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}, CurvePreferences: []tls.CurveID{tls.X25519}}
	var pkts [][]byte
	for range n {
		ctx, cancel := context.WithCancel(context.Background())
		dialed := make(chan struct{})
		go func() { tr.Dial(ctx, server, tc, &quic.Config{}); close(dialed) }()
		select {
		case p := <-c.out:
			pkts = append(pkts, p)
		case <-time.After(5 * time.Second):
			t.Fatal("quic-go's client wrote no Initial")
		}
		cancel()
		<-dialed
		for len(c.out) > 0 { // a close after the Initial: not part of the flood
			<-c.out
		}
	}
	return pkts
}

// spoofedSockets are UDP sockets on n loopback addresses other than
// 127.0.0.1 that never read: sources that do not answer.
func spoofedSockets(t *testing.T, n int) []net.PacketConn {
	t.Helper()
	var out []net.PacketConn
	for i := range n {
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.%d.%d:0", 1+i/200, 2+i%200))
		if err != nil {
			t.Fatalf("binding a loopback address other than 127.0.0.1 (Linux allows all of 127.0.0.0/8): %v", err)
		}
		t.Cleanup(func() { pc.Close() })
		out = append(out, pc)
	}
	return out
}

// captureConn is a PacketConn that keeps what is written and receives
// nothing.
type captureConn struct {
	out    chan []byte
	closed chan struct{}
}

func (c *captureConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.closed
	return 0, nil, net.ErrClosed
}

func (c *captureConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case c.out <- append([]byte(nil), p...):
	default:
	}
	return len(p), nil
}

func (c *captureConn) Close() error { return nil }
func (c *captureConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }
