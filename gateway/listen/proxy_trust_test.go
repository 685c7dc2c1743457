package listen

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const v1Header = "PROXY TCP4 198.51.100.20 10.0.0.1 40000 443\r\n"

// The PROXY trust policy: a header is believed only from a trusted peer
// (CIDR bounds exact, IPv4-mapped peers unmapped); from any other peer a
// header closes the connection, and no header leaves the connection as it
// is; a trusted peer without a header is refused when the header is
// required and taken with its socket address when it is optional; a LOCAL
// header keeps the socket address.
func TestReadProxy_TrustPolicy(t *testing.T) {
	get := "GET / HTTP/1.1\r\n\r\n"
	local := "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00" // v2 LOCAL, UNSPEC, no addresses
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32")}
	const fromHeader = "198.51.100.20:40000"
	for _, c := range []struct {
		name, peer, data string
		require          bool
		trusted          []netip.Prefix
		remote           string // "" for refused; "socket" for the peer's own address
	}{
		{"trusted, v1", "127.0.0.1", v1Header + get, true, trusted, fromHeader},
		{"trusted, v2", "127.0.0.1", string(v2()) + get, true, trusted, fromHeader},
		{"trusted, v1, optional", "127.0.0.1", v1Header + get, false, trusted, fromHeader},
		{"first address of a CIDR", "10.0.0.0", v1Header + get, true, trusted, fromHeader},
		{"last address of a CIDR", "10.255.255.255", v1Header + get, true, trusted, fromHeader},
		{"IPv4-mapped trusted peer", "::ffff:10.0.0.1", v1Header + get, true, trusted, fromHeader},
		{"IPv6 trusted peer", "2001:db8::5", v1Header + get, true, trusted, fromHeader},
		{"just past a CIDR", "11.0.0.0", v1Header + get, true, trusted, ""},
		{"just before a CIDR", "9.255.255.255", v1Header + get, true, trusted, ""},
		{"neighbour of a /32", "127.0.0.2", v1Header + get, true, trusted, ""},
		{"IPv6 outside", "2001:db9::5", string(v2()) + get, true, trusted, ""},
		{"IPv4-mapped untrusted peer", "::ffff:11.0.0.1", v1Header + get, false, trusted, ""},
		{"untrusted, v2, optional", "127.0.0.2", string(v2()) + get, false, trusted, ""},
		{"no trusted peers at all", "127.0.0.1", v1Header + get, false, nil, ""},
		{"untrusted, no header", "127.0.0.2", get, true, trusted, "socket"},
		{"trusted, no header, required", "127.0.0.1", get, true, trusted, ""},
		{"trusted, no header, optional", "127.0.0.1", get, false, trusted, "socket"},
		{"trusted, LOCAL", "127.0.0.1", local + get, true, trusted, "socket"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &Proxy{Trusted: c.trusted, Require: c.require, HeaderTimeout: time.Second}
			server, client := net.Pipe()
			defer server.Close()
			go func() {
				client.Write([]byte(c.data))
				client.Close()
			}()
			peer := &net.TCPAddr{IP: net.ParseIP(c.peer), Port: 5555}
			pc, h, err := p.readProxy(addrConn{server, peer})
			if c.remote == "" {
				if err == nil {
					t.Fatalf("accepted (remote %s, header %v), want the connection refused", pc.RemoteAddr(), h)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want := c.remote
			if want == "socket" {
				want = peer.String()
			}
			if got := pc.RemoteAddr().String(); got != want {
				t.Fatalf("remote address %s, want %s", got, want)
			}
			// What follows the header, or the whole stream without one, is
			// the request, untouched.
			rest := make([]byte, len(get))
			if _, err := io.ReadFull(pc, rest); err != nil || string(rest) != get {
				t.Fatalf("after the header: %q, %v; want the request", rest, err)
			}
		})
	}
}

// A trusted peer that sends nothing is refused after the header timeout,
// not held.
func TestReadProxy_HeaderTimeout(t *testing.T) {
	p := &Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Require: true, HeaderTimeout: 100 * time.Millisecond}
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	start := time.Now()
	_, _, err := p.readProxy(addrConn{server, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}})
	if err == nil {
		t.Fatal("a silent trusted peer was accepted")
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Fatalf("refused after %s, want the 100ms header timeout", d)
	}
}

// Over real sockets, through the listener: the same request with the same
// header is served with the header's address from a trusted peer
// (127.0.0.1) and gets no answer from an untrusted one (127.0.0.2), whose
// requests without a header are served with its own address.
func TestListener_TrustByPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, Options{Proxy: &Proxy{HeaderTimeout: time.Second,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	seen := make(chan string, 8)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.RemoteAddr })}
	go srv.Serve(l)
	defer srv.Close()
	send := func(from, header string) string {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 3 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte(header + "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		resp, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(resp), "HTTP/1.1 200") {
			return ""
		}
		return <-seen
	}
	if a := send("127.0.0.1", v1Header); a != "198.51.100.20:40000" {
		t.Errorf("trusted peer with a header: served as %q, want the header's address", a)
	}
	if a := send("127.0.0.2", v1Header); a != "" {
		t.Errorf("untrusted peer with a header: served as %q, want the connection closed", a)
	}
	if a := send("127.0.0.2", ""); !strings.HasPrefix(a, "127.0.0.2:") {
		t.Errorf("untrusted peer without a header: served as %q, want its own address", a)
	}
	if a := send("127.0.0.1", ""); !strings.HasPrefix(a, "127.0.0.1:") {
		t.Errorf("trusted peer without a header (optional): served as %q, want its own address", a)
	}
}
