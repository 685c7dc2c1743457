package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
	"github.com/rs/zerolog"
)

type proxyConnKey struct{}

// proxyBackend is a server behind a go-proxyproto listener that requires
// the header: it answers with the client address it saw, and counts the
// connections it accepted.
func proxyBackend(t *testing.T) (addr string, accepted *atomic.Int32, headers func() []*proxyproto.Header) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = &atomic.Int32{}
	var mu sync.Mutex
	var seen []*proxyproto.Header
	pl := &proxyproto.Listener{Listener: countingListener{ln, accepted}, ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if pc, ok := r.Context().Value(proxyConnKey{}).(*proxyproto.Conn); ok {
				mu.Lock()
				seen = append(seen, pc.ProxyHeader())
				mu.Unlock()
			}
			io.WriteString(w, r.RemoteAddr)
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, proxyConnKey{}, c)
		},
	}
	go srv.Serve(pl)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), accepted, func() []*proxyproto.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]*proxyproto.Header(nil), seen...)
	}
}

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// keepAliveFrom is a keep-alive client whose connections leave from src.
func keepAliveFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "shop.example.com", NextProtos: []string{"http/1.1"}}}}
}

// proxy_v2 to a server that reads it: two clients interleaved over
// reused connections are each always seen with their own address, and
// the TLVs carry ALPN, the SNI, the TLS version and cipher and the
// request ID.
func TestClientOut_ProxyV2KeepsClientsApart(t *testing.T) {
	backend, accepted, headers := proxyBackend(t)
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [shop.example.com]}
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "%s"}]
    send_client_ip: {mode: proxy_v2, tlvs: [alpn, authority, ssl, unique_id]}
`, backend), Options{Log: zerolog.Nop()})
	plain := "http://" + g.Addrs("web")[0].String() + "/"
	clients := map[string]*http.Client{"127.0.0.2": keepAliveFrom("127.0.0.2"), "127.0.0.3": keepAliveFrom("127.0.0.3")}
	const rounds = 20
	for i := range rounds {
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			resp, err := clients[ip].Get(plain)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if host, _, _ := net.SplitHostPort(string(b)); host != ip {
				t.Fatalf("round %d: a request of %s reached the server as %s", i, ip, b)
			}
		}
	}
	if n := accepted.Load(); n > 4 {
		t.Fatalf("%d server connections for %d requests of 2 clients: connections were not reused", n, 2*rounds)
	}

	resp, err := keepAliveFrom("127.0.0.2").Get("https://" + g.Addrs("web")[1].String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	hs := headers()
	h := hs[len(hs)-1]
	tlvs, err := h.TLVs()
	if err != nil {
		t.Fatal(err)
	}
	got := map[proxyproto.PP2Type]string{}
	for _, tlv := range tlvs {
		got[tlv.Type] = string(tlv.Value)
	}
	if got[proxyproto.PP2_TYPE_ALPN] != "http/1.1" || got[proxyproto.PP2_TYPE_AUTHORITY] != "shop.example.com" ||
		got[proxyproto.PP2_TYPE_UNIQUE_ID] != resp.Header.Get("X-Request-Id") {
		t.Fatalf("TLVs %q; request ID %q", got, resp.Header.Get("X-Request-Id"))
	}
	ssl, ok := tlvparse.FindSSL(tlvs)
	v, _ := ssl.SSLVersion()
	c, _ := ssl.SSLCipher()
	if !ok || !ssl.ClientSSL() || v != "TLSv1.3" || !strings.HasPrefix(c, "TLS_") {
		t.Fatalf("SSL TLV: %v %+v version %q cipher %q", ok, ssl, v, c)
	}
	if src := h.SourceAddr.(*net.TCPAddr); src.IP.String() != "127.0.0.2" {
		t.Fatalf("PROXY source %v", h.SourceAddr)
	}

	// Over TLS 1.2 the cipher is OpenSSL's name, as HAProxy's
	// send-proxy-v2-ssl writes it (a new server connection: another client).
	tls12 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}}}
	resp, err = tls12.Get("https://" + g.Addrs("web")[1].String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	hs = headers()
	if tlvs, err = hs[len(hs)-1].TLVs(); err != nil {
		t.Fatal(err)
	}
	ssl, _ = tlvparse.FindSSL(tlvs)
	v, _ = ssl.SSLVersion()
	c, _ = ssl.SSLCipher()
	if v != "TLSv1.2" || c != "ECDHE-ECDSA-AES128-GCM-SHA256" {
		t.Fatalf("SSL TLV over TLS 1.2: version %q cipher %q, want TLSv1.2 and OpenSSL's ECDHE-ECDSA-AES128-GCM-SHA256", v, c)
	}
}

// xff mode's optional headers, and none: nothing about the client.
func TestClientOut_Headers(t *testing.T) {
	var mu sync.Mutex
	var last http.Header
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Clone()
		mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    routes:
      - {path_prefix: /none/, backend: quiet, waf_policy: "off"}
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "%[1]s"}]
    send_client_ip: {mode: xff, forwarded: true, x_real_ip: true}
  - name: quiet
    servers: [{address: "%[1]s"}]
    send_client_ip: {mode: none}
`, ln.Addr().String()), Options{Log: zerolog.Nop()})
	addr := g.Addrs("web")[0].String()
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		path string
		want map[string]string
	}{
		{"/", map[string]string{"X-Forwarded-For": "127.0.0.2", "X-Forwarded-Port": port, "X-Forwarded-Proto": "http",
			"X-Forwarded-Host": "shop.example.com", "X-Real-Ip": "127.0.0.2", "Forwarded": `for=127.0.0.2;proto=http;host="shop.example.com"`}},
		{"/none/", map[string]string{"X-Forwarded-For": "", "X-Forwarded-Port": "", "X-Real-Ip": "", "Forwarded": ""}},
	} {
		c := dialFrom(t, "127.0.0.2", addr)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: shop.example.com\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nConnection: close\r\n\r\n", tc.path)
		io.ReadAll(c)
		mu.Lock()
		for k, v := range tc.want {
			if got := last.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tc.path, k, got, v)
			}
		}
		mu.Unlock()
	}
}
