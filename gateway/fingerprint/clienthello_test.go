package fingerprint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// helloSpec describes a ClientHello for buildHello; tests write the
// hellos they need instead of carrying opaque captures.
type helloSpec struct {
	version uint16
	ciphers []uint16
	exts    []ext
	noExts  bool // omit the extensions block (pre-TLS 1.2 style)
	dtls    bool // add DTLS's cookie and 12-byte header
}

type ext struct {
	typ  uint16
	body []byte
}

// buildHello encodes spec as a handshake message, header included.
func buildHello(s helloSpec) []byte {
	var b cryptobyte.Builder
	b.AddUint16(s.version)
	b.AddBytes(make([]byte, 32)) // random
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(bytes.Repeat([]byte{7}, 32)) })
	if s.dtls {
		b.AddUint8(0) // empty cookie
	}
	body := helloTail(&b, s)
	n := len(body)
	header := []byte{typeClientHello, byte(n >> 16), byte(n >> 8), byte(n)}
	if s.dtls { // message_seq 0, fragment_offset 0, fragment_length n
		header = append(header, 0, 0, 0, 0, 0, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(header, body...)
}

// helloTail adds the fields after the session id (and cookie).
func helloTail(b *cryptobyte.Builder, s helloSpec) []byte {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { addUint16s(b, s.ciphers) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
	if !s.noExts {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range s.exts {
				b.AddUint16(e.typ)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.body) })
			}
		})
	}
	return b.BytesOrPanic()
}

func addUint16s(b *cryptobyte.Builder, vs []uint16) {
	for _, v := range vs {
		b.AddUint16(v)
	}
}

func sniExt(host string) ext {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(hostNameType)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(host)) })
	})
	return ext{extServerName, b.BytesOrPanic()}
}

func alpnExt(protos ...string) ext {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, p := range protos {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p)) })
		}
	})
	return ext{extALPN, b.BytesOrPanic()}
}

func versionsExt(vs ...uint16) ext {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { addUint16s(b, vs) })
	return ext{extSupportedVersions, b.BytesOrPanic()}
}

func sigAlgsExt(vs ...uint16) ext {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { addUint16s(b, vs) })
	return ext{extSignatureAlgorithms, b.BytesOrPanic()}
}

// records splits a handshake message into TLS records of at most size
// bytes of fragment each, as a TCP client may send it.
func records(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, recordTypeHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// specHello is the ClientHello of the worked example in FoxIO-LLC/ja4
// technical_details/JA4.md: its cipher list, extension list (in that
// order) and signature algorithms, with Chrome-style GREASE added at the
// front of each list, which the fingerprint must ignore.
func specHello() helloSpec {
	exts := []ext{{0x1a1a, nil}}
	for _, t := range []uint16{0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
		0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015} {
		switch t {
		case extServerName:
			exts = append(exts, sniExt("example.com"))
		case extALPN:
			exts = append(exts, alpnExt("h2", "http/1.1"))
		case extSignatureAlgorithms:
			exts = append(exts, sigAlgsExt(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601))
		case extSupportedVersions:
			exts = append(exts, versionsExt(0x7a7a, 0x0304, 0x0303))
		default:
			exts = append(exts, ext{t, nil})
		}
	}
	exts = append(exts, ext{0xfafa, []byte{0}})
	return helloSpec{
		version: 0x0303,
		ciphers: []uint16{0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
			0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
		exts: exts,
	}
}

func TestParseClientHello(t *testing.T) {
	h, err := ParseClientHello(buildHello(specHello()))
	if err != nil {
		t.Fatal(err)
	}
	want := &ClientHello{
		Version: 0x0303,
		CipherSuites: []uint16{0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
			0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
		Extensions: []uint16{0x1a1a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
			0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0xfafa},
		HasServerName:       true,
		ServerName:          "example.com",
		ALPN:                []string{"h2", "http/1.1"},
		SupportedVersions:   []uint16{0x7a7a, 0x0304, 0x0303},
		SignatureAlgorithms: []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got  %+v\nwant %+v", h, want)
	}
}

func TestParseClientHello_NoExtensions(t *testing.T) {
	h, err := ParseClientHello(buildHello(helloSpec{version: 0x0301, ciphers: []uint16{0x002f}, noExts: true}))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 0x0301 || len(h.Extensions) != 0 || h.HasServerName {
		t.Errorf("got %+v", h)
	}
}

func TestParseClientHello_RepeatedExtensionReadOnce(t *testing.T) {
	h, err := ParseClientHello(buildHello(helloSpec{version: 0x0303, exts: []ext{
		alpnExt("h2"), alpnExt("http/1.1"), sniExt("a.example"), sniExt("b.example"),
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Extensions) != 4 || h.ALPN[0] != "h2" || h.ServerName != "a.example" {
		t.Errorf("got %+v", h)
	}
}

func TestParseClientHello_Errors(t *testing.T) {
	good := buildHello(specHello())
	withBody := func(body []byte) []byte {
		return append([]byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	}
	body := good[4:]
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrIncomplete},
		{"short header", good[:3], ErrIncomplete},
		{"server hello", append([]byte{2}, good[1:]...), ErrNotClientHello},
		{"TLS record, not a handshake message", records(good, 1<<14), ErrNotClientHello},
		{"body cut", good[:len(good)-1], ErrIncomplete},
		{"too large", []byte{1, 0x01, 0x00, 0x01}, ErrTooLarge},
		{"no random", withBody(body[:20]), ErrMalformed},
		{"session id over 32", withBody(append(append([]byte{3, 3}, make([]byte, 32)...), 33)), ErrMalformed},
		{"odd cipher_suites", withBody(append(append([]byte{3, 3}, make([]byte, 33)...), 0, 3, 0x13, 0x01, 0x13, 0)), ErrMalformed},
		{"extensions overrun", withBody(body[:len(body)-1]), ErrMalformed},
		{"trailing bytes after extensions", withBody(append(bytes.Clone(body), 0)), ErrMalformed},
		{"ALPN overrun", buildHello(helloSpec{exts: []ext{{extALPN, []byte{0, 3, 2, 'h'}}}}), ErrMalformed},
		{"ALPN list shorter than the extension", buildHello(helloSpec{exts: []ext{{extALPN, []byte{0, 3, 2, 'h', '2', 0}}}}), ErrMalformed},
		{"odd supported_versions", buildHello(helloSpec{exts: []ext{{extSupportedVersions, []byte{3, 3, 4, 3}}}}), ErrMalformed},
		{"odd signature_algorithms", buildHello(helloSpec{exts: []ext{{extSignatureAlgorithms, []byte{0, 1, 4}}}}), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseClientHello(tc.in)
			if !errors.Is(err, tc.want) || h != nil {
				t.Errorf("got %v, %v; want %v", h, err, tc.want)
			}
		})
	}
}

// TestParseClientHello_EveryPrefix cuts a hello at every length: none may
// parse (the header says how long it is) and none may panic.
func TestParseClientHello_EveryPrefix(t *testing.T) {
	good := buildHello(specHello())
	for n := range len(good) {
		if _, err := ParseClientHello(good[:n]); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
}

func TestParseClientHello_MalformedSNIIsOnlyPresence(t *testing.T) {
	h, err := ParseClientHello(buildHello(helloSpec{exts: []ext{{extServerName, []byte{0, 9, 0}}}}))
	if err != nil {
		t.Fatal(err)
	}
	if !h.HasServerName || h.ServerName != "" {
		t.Errorf("got %+v", h)
	}
}

func TestParseDTLSClientHello(t *testing.T) {
	msg := buildHello(helloSpec{version: 0xfefd, ciphers: []uint16{0xc02b}, dtls: true, exts: []ext{
		versionsExt(0xfefc, 0xfefd), sigAlgsExt(0x0403),
	}})
	h, err := ParseDTLSClientHello(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.JA4(TransportDTLS); got[:4] != "dd3i" {
		t.Errorf("JA4 %s: want DTLS 1.3 (d3), the newer of fefc and fefd", got)
	}
	if _, err := ParseClientHello(msg); err == nil {
		t.Error("a DTLS hello parsed as TLS")
	}
	msg[8] = 1 // fragment_offset: a later fragment
	if _, err := ParseDTLSClientHello(msg); !errors.Is(err, ErrMalformed) {
		t.Errorf("fragment: %v", err)
	}
	if _, err := ParseDTLSClientHello(msg[:11]); !errors.Is(err, ErrIncomplete) {
		t.Errorf("short header: %v", err)
	}
}

func TestReadClientHelloRecords(t *testing.T) {
	msg := buildHello(specHello())
	for _, size := range []int{1, 3, 4, 5, 100, len(msg) - 1, len(msg), 1 << 14} {
		stream := append(records(msg, size), 23, 3, 3, 0, 1, 0) // then application data
		got, err := ReadClientHelloRecords(stream)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("records of %d: %v, got %d bytes", size, err, len(got))
		}
		for cut := range len(stream) - 6 {
			if _, err := ReadClientHelloRecords(stream[:cut]); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("records of %d cut at %d: %v", size, cut, err)
			}
		}
	}
}

func TestReadClientHelloRecords_Errors(t *testing.T) {
	msg := buildHello(specHello())
	split := records(msg, 100)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), ErrNotClientHello},
		{"SSLv2 hello", []byte{0x80, 0x2e, 0x01, 0x00, 0x02}, ErrNotClientHello},
		{"record version", []byte{22, 0xfe, 0xfd, 0, 1}, ErrNotClientHello},
		{"empty record", []byte{22, 3, 1, 0, 0}, ErrMalformed},
		{"record over 2^14", []byte{22, 3, 1, 0x40, 0x01}, ErrMalformed},
		{"alert between fragments", append(append(bytes.Clone(split[:105]), 21, 3, 3, 0, 2, 2, 40), split[105:]...), ErrNotClientHello},
		{"server hello", records(append([]byte{2}, msg[1:]...), 100), ErrNotClientHello},
		{"too large", records([]byte{1, 0x02, 0, 0}, 100), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadClientHelloRecords(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzParseClientHello: no input panics, and whatever parses has a JA4
// of the right shape, read whole or through records.
func FuzzParseClientHello(f *testing.F) {
	f.Add(buildHello(specHello()))
	f.Add(buildHello(helloSpec{version: 0x0301, noExts: true}))
	f.Add(records(buildHello(specHello()), 100))
	seeds, _ := filepath.Glob("testdata/*.hello")
	for _, name := range seeds {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if msg, err := ReadClientHelloRecords(b); err == nil {
			b = msg
		}
		h, err := ParseClientHello(b)
		if err != nil {
			if h != nil {
				t.Fatal("hello with an error")
			}
			return
		}
		for _, ja4 := range []string{h.JA4(TransportTCP), h.JA4O(TransportQUIC)} {
			checkJA4Shape(t, ja4)
		}
		if r := h.JA4R(TransportTCP); !strings.HasPrefix(r, h.JA4(TransportTCP)[:11]) {
			t.Fatalf("JA4_r %q and JA4 disagree on part a", r)
		}
	})
}
