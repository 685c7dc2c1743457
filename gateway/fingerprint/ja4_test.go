package fingerprint

import (
	"crypto/tls"
	"regexp"
	"strings"
	"testing"
)

// TestJA4_SpecExample checks the worked example of FoxIO-LLC/ja4
// technical_details/JA4.md ("Example" and "Raw Output"): specHello holds
// its cipher, extension and signature algorithm lists, plus GREASE.
func TestJA4_SpecExample(t *testing.T) {
	h, err := ParseClientHello(buildHello(specHello()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"JA4", h.JA4(TransportTCP), "t13d1516h2_8daaf6152771_e5627efa2ab1"},
		{"JA4_r", h.JA4R(TransportTCP), "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601"},
		{"JA4_o", h.JA4O(TransportTCP), "t13d1516h2_acb858a92679_18f69afefd3d"},
		{"JA4_ro", h.JA4RO(TransportTCP), "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015_0403,0804,0401,0503,0805,0501,0806,0601"},
		{"QUIC", h.JA4(TransportQUIC), "q13d1516h2_8daaf6152771_e5627efa2ab1"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %s\nwant   %s", tc.name, tc.got, tc.want)
		}
	}
}

// TestJA4_SpecNoSignatureAlgorithms: JA4.md's "no signature algorithms"
// case, where the extension string ends without an underscore
// (0005,...,ff01 = 6d807ffa2a79). An empty signature_algorithms list
// keeps the example's extension list while giving no algorithms.
func TestJA4_SpecNoSignatureAlgorithms(t *testing.T) {
	s := specHello()
	for i, e := range s.exts {
		if e.typ == extSignatureAlgorithms {
			s.exts[i] = sigAlgsExt()
		}
	}
	h, err := ParseClientHello(buildHello(s))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.JA4(TransportTCP), "t13d1516h2_8daaf6152771_6d807ffa2a79"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestJA4_EmptyCases(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    ClientHello
		want string
	}{
		{"nothing at all", ClientHello{}, "t00i000000_000000000000_000000000000"},
		{"only GREASE", ClientHello{Version: 0x0303, CipherSuites: []uint16{0x2a2a}, Extensions: []uint16{0x3a3a}},
			"t12i000000_000000000000_000000000000"},
		{"only SNI and ALPN: part c has no extensions", ClientHello{Version: 0x0303, CipherSuites: []uint16{0x1301},
			Extensions: []uint16{0x0000, 0x0010}, HasServerName: true, ALPN: []string{"http/1.1"}},
			"t12d0102h1_" + sha12("1301") + "_000000000000"},
		{"signature algorithms GREASE ignored", ClientHello{Version: 0x0303, CipherSuites: []uint16{0x1301},
			Extensions: []uint16{0x000d}, SignatureAlgorithms: []uint16{0x0a0a, 0x0403}},
			"t12i010100_" + sha12("1301") + "_" + sha12("000d_0403")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.JA4(TransportTCP); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// sha12 is hash12 for a test's hand-written list.
func sha12(s string) string {
	h := hash12([]byte(s), 1)
	return string(h[:])
}

// TestJA4_Counts: the counts include SCSV and reserved values but not
// GREASE, and stop at 99.
func TestJA4_Counts(t *testing.T) {
	h := ClientHello{Version: 0x0303, CipherSuites: []uint16{0x00ff, 0x5600, 0xfe00, 0x0a0a}}
	for i := range 150 {
		h.Extensions = append(h.Extensions, uint16(0x1000+i))
	}
	if got := h.JA4(TransportTCP)[:10]; got != "t12i039900" {
		t.Errorf("got %s", got)
	}
}

// TestJA4_ALPN covers every example of JA4.md's "ALPN Extension Value".
func TestJA4_ALPN(t *testing.T) {
	for _, tc := range []struct{ alpn, want string }{
		{"h2", "h2"},
		{"http/1.1", "h1"},
		{"h3", "h3"},
		{"", "00"},
		{"x", "xx"},
		{"\xab", "ab"},
		{"\x20", "20"},
		{"\xab\xcd", "ad"},
		{"\x20\x61", "21"},
		{"\x30\xab", "3b"},
		{"\x61\x20", "60"},
		{"\x30\x31\xab\xcd", "3d"},
		{"\x30\xab\xcd\x31", "01"},
	} {
		h := ClientHello{ALPN: []string{tc.alpn, "ignored"}}
		if got := h.JA4(TransportTCP)[8:10]; got != tc.want {
			t.Errorf("ALPN %q: got %s, want %s", tc.alpn, got, tc.want)
		}
	}
}

// TestJA4_Version: the newest non-GREASE supported_versions entry wins
// over legacy_version, whatever the order; the spec's table names them.
func TestJA4_Version(t *testing.T) {
	for _, tc := range []struct {
		legacy    uint16
		supported []uint16
		want      string
	}{
		{0x0303, []uint16{0x0a0a, 0x0304, 0x0303}, "13"},
		{0x0303, []uint16{0x0303, 0x0304}, "13"},
		{0x0303, nil, "12"},
		{0x0303, []uint16{0x4a4a}, "12"},
		{0x0302, nil, "11"},
		{0x0301, nil, "10"},
		{0x0300, nil, "s3"},
		{0x0002, nil, "s2"},
		{0xfeff, nil, "d1"},
		{0xfefd, []uint16{0xfefd, 0xfefc}, "d3"},
		{0xfefd, []uint16{0xfeff, 0xfefd}, "d2"},
		{0x0303, []uint16{0x7f17}, "00"},
	} {
		h := ClientHello{Version: tc.legacy, SupportedVersions: tc.supported}
		if got := h.JA4(TransportTCP)[1:3]; got != tc.want {
			t.Errorf("%#04x %x: got %s, want %s", tc.legacy, tc.supported, got, tc.want)
		}
	}
}

func TestIsGREASE(t *testing.T) {
	n := 0
	for v := range 1 << 16 {
		if isGREASE(uint16(v)) {
			n++
			if b := byte(v); byte(v>>8) != b || b&0x0f != 0x0a {
				t.Errorf("%#04x is not GREASE", v)
			}
		}
	}
	if n != 16 {
		t.Errorf("%d GREASE values, want 16", n)
	}
}

// TestFromClientHelloInfo: the same hello, handed over by crypto/tls,
// gives the same JA4 as when parsed raw.
func TestFromClientHelloInfo(t *testing.T) {
	raw, err := ParseClientHello(buildHello(specHello()))
	if err != nil {
		t.Fatal(err)
	}
	info := &tls.ClientHelloInfo{
		CipherSuites:      raw.CipherSuites,
		ServerName:        raw.ServerName,
		SupportedProtos:   raw.ALPN,
		SupportedVersions: raw.SupportedVersions,
		Extensions:        raw.Extensions,
	}
	for _, s := range raw.SignatureAlgorithms {
		info.SignatureSchemes = append(info.SignatureSchemes, tls.SignatureScheme(s))
	}
	if got, want := FromClientHelloInfo(info).JA4(TransportQUIC), raw.JA4(TransportQUIC); got != want {
		t.Errorf("got %s, want %s", got, want)
	}

	// Without supported_versions crypto/tls extrapolates the list from
	// legacy_version: its highest is the version.
	info = &tls.ClientHelloInfo{SupportedVersions: []uint16{0x0303, 0x0302, 0x0301}, Extensions: []uint16{0x000a}}
	if h := FromClientHelloInfo(info); h.Version != 0x0303 || h.SupportedVersions != nil || h.HasServerName {
		t.Errorf("got %+v", h)
	}
	// A hand-made ClientHelloInfo without Extensions still says SNI.
	if h := FromClientHelloInfo(&tls.ClientHelloInfo{ServerName: "a.example"}); !h.HasServerName {
		t.Error("ServerName without Extensions: no SNI")
	}
}

var ja4Shape = regexp.MustCompile(`^[tqd](1[0-3]|s[23]|d[123]|00)[di][0-9]{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)

func checkJA4Shape(t *testing.T, ja4 string) {
	t.Helper()
	if !ja4Shape.MatchString(ja4) {
		t.Fatalf("JA4 %q has the wrong shape", ja4)
	}
}

// chromeLikeHello is specHello grown to a current browser's size: a
// key_share with an X25519MLKEM768 and an X25519 share, a session ticket
// and padding, about 1.9 KB in all.
func chromeLikeHello() []byte { return buildHello(chromeLikeHelloSpec()) }

func chromeLikeHelloSpec() helloSpec {
	s := specHello()
	for i, e := range s.exts {
		switch e.typ {
		case 0x0033: // key_share
			s.exts[i].body = make([]byte, 2+4+1216+4+32)
		case 0x0023: // session_ticket
			s.exts[i].body = make([]byte, 192)
		case 0x0015: // padding
			s.exts[i].body = make([]byte, 200)
		}
	}
	return s
}

// BenchmarkJA4 is the per-connection cost: parse a browser-sized hello
// and fingerprint it.
func BenchmarkJA4(b *testing.B) {
	msg := chromeLikeHello()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		h, err := ParseClientHello(msg)
		if err != nil {
			b.Fatal(err)
		}
		if ja4 := h.JA4(TransportTCP); !strings.HasPrefix(ja4, "t13d1516h2_") {
			b.Fatal(ja4)
		}
	}
}

// BenchmarkJA4_ClientHelloInfo is the cost on the GetConfigForClient path.
func BenchmarkJA4_ClientHelloInfo(b *testing.B) {
	raw, err := ParseClientHello(chromeLikeHello())
	if err != nil {
		b.Fatal(err)
	}
	info := &tls.ClientHelloInfo{CipherSuites: raw.CipherSuites, SupportedProtos: raw.ALPN,
		SupportedVersions: raw.SupportedVersions, Extensions: raw.Extensions}
	for _, s := range raw.SignatureAlgorithms {
		info.SignatureSchemes = append(info.SignatureSchemes, tls.SignatureScheme(s))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = FromClientHelloInfo(info).JA4(TransportQUIC)
	}
}
