package listen

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// addrConn gives one end of a pipe the addresses of a TCP connection.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// FuzzReadProxy feeds anything a peer may send before its request through
// the listener's PROXY step: it must never panic, never hang past the
// header timeout, and a header it accepts must name a usable address.
func FuzzReadProxy(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.20 10.0.0.1 40000 443\r\nGET / HTTP/1.1\r\n\r\n"), true)
	f.Add([]byte("PROXY UNKNOWN\r\n"), false)
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x14\x0a\x00\x00\x01\x9c\x40\x01\xbb"), true)
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), true)
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"), true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), false)
	// TLVs, each header followed by a request (a peer that sends nothing
	// more gets EOF before the header counts): well formed, one whose
	// length runs past the header, a wrong CRC32C, a right one, an SSL TLV
	// whose sub-TLV runs past it.
	get := []byte("GET / HTTP/1.1\r\n\r\n")
	f.Add(cat(v2(cat(tlv(0x01, "h2"), tlv(0x02, "example.com"))...), get), true)
	f.Add(cat(v2(0x01, 0x00, 0x09, 'h', '2'), get), true)
	f.Add(cat(withCRC(false, tlv(0x01, "h2")...), get), true)
	f.Add(cat(withCRC(true), get), true)
	f.Add(cat(v2(tlv(0x20, "\x01\x00\x00\x00\x00\x21\x00\x40TLS")...), get), true)
	f.Fuzz(func(t *testing.T, data []byte, trusted bool) {
		p := &Proxy{Require: true, HeaderTimeout: 50 * time.Millisecond}
		if trusted {
			p.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		}
		server, client := net.Pipe()
		defer server.Close()
		go func() {
			client.Write(data)
			client.Close()
		}()
		raw := addrConn{server, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}}
		start := time.Now()
		c, h, err := p.readProxy(raw)
		if time.Since(start) > 2*time.Second {
			t.Fatalf("reading the header took %s", time.Since(start))
		}
		if err != nil {
			return
		}
		if !trusted && h != nil {
			t.Fatal("a header believed from an untrusted peer")
		}
		if h != nil && h.Version == 2 && h.Command.IsProxy() {
			if _, err := h.TLVs(); err != nil {
				t.Fatalf("accepted a header whose TLVs do not parse: %v", err)
			}
		}
		if h != nil && h.Command.IsProxy() {
			if _, err := netip.ParseAddrPort(c.RemoteAddr().String()); err != nil && h.SourceAddr != nil {
				t.Fatalf("accepted header gives remote address %q", c.RemoteAddr())
			}
		}
	})
}
