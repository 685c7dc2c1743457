package listen

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// v2 builds a PROXY v2 PROXY/TCP4 header from 198.51.100.20:40000 to
// 10.0.0.1:443 followed by tlvs, as raw bytes (the length field counts
// them, whatever they say of themselves).
func v2(tlvs ...byte) []byte {
	h := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x00")
	binary.BigEndian.PutUint16(h[14:], uint16(12+len(tlvs)))
	h = append(h, 198, 51, 100, 20, 10, 0, 0, 1, 0x9c, 0x40, 0x01, 0xbb)
	return append(h, tlvs...)
}

// tlv is one TLV whose length field is len(v).
func tlv(typ byte, v string) []byte {
	return append([]byte{typ, byte(len(v) >> 8), byte(len(v))}, v...)
}

// withCRC is v2(tlvs + a CRC32C TLV), its checksum right when good.
func withCRC(good bool, tlvs ...byte) []byte {
	h := v2(append(tlvs, 0x03, 0, 4, 0, 0, 0, 0)...)
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	if !good {
		sum++
	}
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestReadProxy_TLVs: a v2 header whose TLVs HAProxy would refuse is an
// error (the connection is closed, its address never taken); well-formed
// ones are read.
func TestReadProxy_TLVs(t *testing.T) {
	for _, c := range []struct {
		name   string
		header []byte
		ok     bool
	}{
		{"no TLVs", v2(), true},
		{"ALPN and authority", v2(cat(tlv(0x01, "h2"), tlv(0x02, "example.com"))...), true},
		{"authority of 255 bytes", v2(tlv(0x02, strings.Repeat("a", 255))...), true},
		{"NOOP padding", v2(tlv(0x04, "\x00\x00\x00")...), true},
		{"right CRC32C", withCRC(true, tlv(0x01, "h2")...), true},
		{"SSL with sub-TLVs", v2(tlv(0x20, "\x01\x00\x00\x00\x00"+string(tlv(0x21, "TLSv1.3")))...), true},
		{"LOCAL with a broken TLV: not read", func() []byte { h := v2(0x01, 0, 9); h[12] = 0x20; return h }(), true},
		{"TLV length past the header", v2(0x01, 0x00, 0x09, 'h', '2'), false},
		{"TLV length far past the header", v2(0x02, 0xff, 0xff, 'x'), false},
		{"type without a length", v2(0x01), false},
		{"half a length", v2(0x01, 0x00), false},
		{"good TLV then one past the end", v2(cat(tlv(0x01, "h2"), []byte{0x05, 0, 200, 'x'})...), false},
		{"authority of 256 bytes", v2(tlv(0x02, strings.Repeat("a", 256))...), false},
		{"unique id of 129 bytes", v2(tlv(0x05, strings.Repeat("u", 129))...), false},
		{"wrong CRC32C", withCRC(false, tlv(0x01, "h2")...), false},
		{"CRC32C of 3 bytes", v2(tlv(0x03, "abc")...), false},
		{"SSL shorter than its fixed part", v2(tlv(0x20, "\x01\x00")...), false},
		{"SSL sub-TLV past the SSL TLV", v2(tlv(0x20, "\x01\x00\x00\x00\x00\x21\x00\x40TLS")...), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &Proxy{Require: true, HeaderTimeout: time.Second,
				Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
			server, client := net.Pipe()
			defer server.Close()
			go func() {
				client.Write(append(c.header, "GET / HTTP/1.1\r\n\r\n"...))
				client.Close()
			}()
			pc, h, err := p.readProxy(addrConn{server, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}})
			if c.ok != (err == nil) {
				t.Fatalf("accepted = %v, want %v (err %v)", err == nil, c.ok, err)
			}
			if err == nil && h.Command.IsProxy() && pc.RemoteAddr().String() != "198.51.100.20:40000" {
				t.Fatalf("remote address %s", pc.RemoteAddr())
			}
		})
	}
}

// TestListener_MalformedTLVCloses: over a real socket, a header whose TLV
// runs past its end gets no response at all: the connection is closed
// before the server sees a request.
func TestListener_MalformedTLVCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, Options{Proxy: &Proxy{Require: true, HeaderTimeout: time.Second,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	seen := make(chan string, 4)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.RemoteAddr
	})}
	go srv.Serve(l)
	defer srv.Close()

	for _, good := range []bool{true, false} {
		tlvs := tlv(0x02, "example.com")
		if !good {
			tlvs = []byte{0x02, 0x00, 0x40, 'x'}
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write(append(v2(tlvs...), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"...))
		resp, _ := io.ReadAll(c)
		c.Close()
		if got := strings.HasPrefix(string(resp), "HTTP/1.1 200"); got != good {
			t.Fatalf("well-formed=%v: response %q", good, resp)
		}
		if good {
			if a := <-seen; a != "198.51.100.20:40000" {
				t.Fatalf("client address %s", a)
			}
		}
	}
	select {
	case a := <-seen:
		t.Fatalf("the malformed header's request reached the server from %s", a)
	default:
	}
}
