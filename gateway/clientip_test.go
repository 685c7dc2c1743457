package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/rs/zerolog"
)

// recordingServer answers 200 "ok" and keeps the X-Forwarded-For of each request.
func recordingServer(t *testing.T) (addr string, xff func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-Forwarded-For"))
		mu.Unlock()
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

// clientIPGateway: a plain bind without PROXY (client_ip trusts
// 127.0.0.1 for X-Forwarded-For), a bind that requires PROXY from
// 127.0.0.1, and one where it is optional. The WAF denies 198.51.100.66 by
// REMOTE_ADDR; /limited/ allows one request per 10 s per client.
func clientIPGateway(t *testing.T, backend string) (*Gateway, *syncBuffer) {
	t.Helper()
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind:
      - {address: "127.0.0.1:0"}
      - {address: "127.0.0.1:0", proxy_protocol: {trusted: [127.0.0.1/32], header_timeout: 500ms}}
      - {address: "127.0.0.1:0", proxy_protocol: {trusted: [127.0.0.1], mode: optional, header_timeout: 500ms}}
    client_ip: {trusted_proxies: [127.0.0.1/32, 10.0.0.0/8]}
    routes:
      - {path_prefix: /limited/, backend: app, waf_policy: deny-ip, rate_limit: {requests: 1, period: 10s}}
    default_backend: app
    default_waf_policy: deny-ip
waf:
  policies:
    - name: deny-ip
      mode: block
      directives: |
        SecRule REMOTE_ADDR "@ipMatch 198.51.100.66" "id:9010001,phase:1,deny,status:403,log"
backends:
  - name: app
    servers: [{address: "%s"}]
`, backend), Options{Log: zerolog.Nop(), Access: &access})
	return g, &access
}

// dialFrom connects to addr from a loopback source address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes prefix and a GET on c and reads the answer; status 0
// when the connection was closed without one.
func roundTrip(t *testing.T, c net.Conn, prefix []byte, path, xff string) int {
	t.Helper()
	var req bytes.Buffer
	req.Write(prefix)
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: shop.example.com\r\n", path)
	if xff != "" {
		fmt.Fprintf(&req, "X-Forwarded-For: %s\r\n", xff)
	}
	req.WriteString("Connection: close\r\n\r\n")
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(req.Bytes()); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func proxyHeader(t *testing.T, version byte, src string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: version, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr: &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}, DestinationAddr: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 443}}
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lastLog is the last access log line.
func lastLog(t *testing.T, access *syncBuffer) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(access.String()), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// One client IP for everything: a spoofed X-Forwarded-For from an
// untrusted peer reaches neither the WAF, the rate limit, the log nor the
// backend; a trusted proxy's chain is believed from the right.
func TestClientIP_XForwardedForTrustedOnlyFromTrustedPeers(t *testing.T) {
	backend, xff := recordingServer(t)
	g, access := clientIPGateway(t, backend)
	plain := g.Addrs("web")[0].String()

	// Untrusted peer (127.0.0.2) claims to be the denied address: ignored.
	if got := roundTrip(t, dialFrom(t, "127.0.0.2", plain), nil, "/", "198.51.100.66"); got != 200 {
		t.Fatalf("spoofed XFF from an untrusted peer: %d, want 200 (not the denied address)", got)
	}
	if l := lastLog(t, access); l["client_ip"] != "127.0.0.2" || l["peer_ip"] != "" {
		t.Fatalf("log: client %v peer %v", l["client_ip"], l["peer_ip"])
	}
	if x := xff(); x[len(x)-1] != "127.0.0.2" {
		t.Fatalf("backend saw X-Forwarded-For %q", x[len(x)-1])
	}
	// The rate limit counts the untrusted peer, whatever it claims.
	if got := roundTrip(t, dialFrom(t, "127.0.0.2", plain), nil, "/limited/", "203.0.113.1"); got != 200 {
		t.Fatalf("first limited request: %d", got)
	}
	if got := roundTrip(t, dialFrom(t, "127.0.0.2", plain), nil, "/limited/", "203.0.113.2"); got != 429 {
		t.Fatalf("second limited request with another spoofed XFF: %d, want 429", got)
	}

	// Trusted peer (127.0.0.1): the first untrusted hop from the right.
	if got := roundTrip(t, dialFrom(t, "127.0.0.1", plain), nil, "/", "6.6.6.6, 198.51.100.66, 10.1.1.1"); got != 403 {
		t.Fatalf("trusted chain naming the denied address: %d, want 403", got)
	}
	if l := lastLog(t, access); l["client_ip"] != "198.51.100.66" || l["peer_ip"] != "127.0.0.1" {
		t.Fatalf("log: client %v peer %v", l["client_ip"], l["peer_ip"])
	}
	if got := roundTrip(t, dialFrom(t, "127.0.0.1", plain), nil, "/", "6.6.6.6, 198.51.100.20"); got != 200 {
		t.Fatalf("trusted chain: %d", got)
	}
	if x := xff(); x[len(x)-1] != "198.51.100.20, 127.0.0.1" {
		t.Fatalf("backend saw X-Forwarded-For %q, want the resolved client and the trusted peer", x[len(x)-1])
	}
	// Each resolved client has its own count.
	if got := roundTrip(t, dialFrom(t, "127.0.0.1", plain), nil, "/limited/", "198.51.100.21"); got != 200 {
		t.Fatalf("another client behind the trusted proxy: %d", got)
	}
}

// PROXY v1 and v2 from a trusted peer set the client IP; from an untrusted
// peer, and malformed, truncated, late or missing where required, the
// connection is closed; v2 LOCAL (a load balancer's health check) passes
// with the socket address; AWS's VPC endpoint TLV reaches the log.
func TestClientIP_ProxyProtocol(t *testing.T) {
	backend, xff := recordingServer(t)
	g, access := clientIPGateway(t, backend)
	required, optional := g.Addrs("web")[1].String(), g.Addrs("web")[2].String()

	for _, v := range []byte{1, 2} {
		if got := roundTrip(t, dialFrom(t, "127.0.0.1", required), proxyHeader(t, v, "198.51.100.20"), "/", ""); got != 200 {
			t.Fatalf("PROXY v%d: %d", v, got)
		}
		if x := xff(); x[len(x)-1] != "198.51.100.20" {
			t.Fatalf("PROXY v%d: backend saw %q", v, x[len(x)-1])
		}
		// The log names the load balancer too: the socket's peer.
		if l := lastLog(t, access); l["client_ip"] != "198.51.100.20" || l["peer_ip"] != "127.0.0.1" {
			t.Fatalf("PROXY v%d: log: client %v peer %v, want the header's client and the socket's peer", v, l["client_ip"], l["peer_ip"])
		}
		if got := roundTrip(t, dialFrom(t, "127.0.0.1", required), proxyHeader(t, v, "198.51.100.66"), "/", ""); got != 403 {
			t.Fatalf("PROXY v%d from the denied address: %d, want 403 (the WAF sees it)", v, got)
		}
	}
	vpce := proxyproto.TLV{Type: 0xEA, Value: append([]byte{0x01}, "vpce-08d2bf15fac5001c9"...)}
	roundTrip(t, dialFrom(t, "127.0.0.1", required), proxyHeader(t, 2, "198.51.100.20", vpce), "/", "")
	if l := lastLog(t, access); l["vpce_id"] != "vpce-08d2bf15fac5001c9" || l["client_ip"] != "198.51.100.20" {
		t.Fatalf("log: vpce %v client %v", l["vpce_id"], l["client_ip"])
	}
	local, _ := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}).Format()
	if got := roundTrip(t, dialFrom(t, "127.0.0.1", required), local, "/", ""); got != 200 {
		t.Fatalf("v2 LOCAL (health check): %d", got)
	}
	if l := lastLog(t, access); l["client_ip"] != "127.0.0.1" || l["peer_ip"] != "" {
		t.Fatalf("v2 LOCAL: client %v peer %v, want the socket's and none", l["client_ip"], l["peer_ip"])
	}

	v2 := proxyHeader(t, 2, "198.51.100.20")
	for _, tc := range []struct {
		name   string
		src    string
		addr   string
		prefix []byte
	}{
		{"untrusted peer sends a header", "127.0.0.2", required, proxyHeader(t, 1, "198.51.100.20")},
		{"untrusted peer, optional bind", "127.0.0.2", optional, v2},
		{"required, none sent", "127.0.0.1", required, nil},
		{"v1 malformed", "127.0.0.1", required, []byte("PROXY TCP4 198.51.100.20 10.0.0.1 notaport 443\r\n")},
		{"v1 too long", "127.0.0.1", required, []byte("PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n")},
		{"v2 truncated, then nothing", "127.0.0.1", required, v2[:20]},
		{"v2 length past the data", "127.0.0.1", required, append(append([]byte(nil), v2[:14]...), 0xff, 0xff)},
		{"v2 TLV length past the header", "127.0.0.1", required, func() []byte {
			// A TLV that says 64 bytes and brings 1, the header's length
			// counting that 1: the header ends, the TLV does not.
			h := append(append([]byte(nil), v2...), 0x02, 0x00, 0x40, 'x')
			h[15] += 4
			return h
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(xff())
			c := dialFrom(t, tc.src, tc.addr)
			if strings.HasSuffix(tc.name, "then nothing") {
				// The header's end never comes: the header timeout closes it.
				c.Write(tc.prefix)
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				start := time.Now()
				if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || time.Since(start) > 2*time.Second {
					t.Fatalf("read %d bytes, %v after %s; want the connection closed at the 500ms header timeout", n, err, time.Since(start))
				}
			} else if got := roundTrip(t, c, tc.prefix, "/", ""); got != 0 {
				t.Fatalf("answered %d, want the connection closed", got)
			}
			if len(xff()) != n {
				t.Fatal("the request reached the backend")
			}
		})
	}
	// Optional: a trusted peer without a header is taken as it is.
	if got := roundTrip(t, dialFrom(t, "127.0.0.1", optional), nil, "/", ""); got != 200 {
		t.Fatalf("optional bind, no header: %d", got)
	}
	// An untrusted peer without a header is served as itself.
	if got := roundTrip(t, dialFrom(t, "127.0.0.2", optional), nil, "/", ""); got != 200 {
		t.Fatalf("untrusted peer, no header: %d", got)
	}
}
