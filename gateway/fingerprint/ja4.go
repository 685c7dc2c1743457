package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// The transports JA4's first character names.
const (
	TransportTCP  byte = 't' // TLS over TCP
	TransportQUIC byte = 'q' // QUIC
	TransportDTLS byte = 'd' // DTLS
)

// JA4 returns the JA4 fingerprint, e.g. t13d1516h2_8daaf6152771_e5627efa2ab1:
// ciphers and extensions sorted and hashed, so a client that shuffles
// its extensions (Chrome does) keeps one fingerprint. transport is
// TransportTCP, TransportQUIC or TransportDTLS.
func (h *ClientHello) JA4(transport byte) string { return h.ja4(transport, true, false) }

// JA4R returns JA4's raw form (JA4_r): the sorted lists JA4 hashes.
func (h *ClientHello) JA4R(transport byte) string { return h.ja4(transport, true, true) }

// JA4O returns JA4_o: hashed like JA4 but over the lists in the client's
// order, SNI and ALPN kept. It tells apart clients JA4 groups, but not a
// client from itself when it shuffles its extensions.
func (h *ClientHello) JA4O(transport byte) string { return h.ja4(transport, false, false) }

// JA4RO returns JA4_ro, the raw form of JA4O.
func (h *ClientHello) JA4RO(transport byte) string { return h.ja4(transport, false, true) }

// ja4 builds the three parts: a (protocol, version, SNI, counts, ALPN),
// b (cipher list) and c (extension list, then signature algorithms),
// GREASE left out everywhere.
func (h *ClientHello) ja4(transport byte, sorted, raw bool) string {
	ciphers := withoutGREASE(h.CipherSuites)
	exts := withoutGREASE(h.Extensions)
	a := h.ja4a(transport, len(ciphers), len(exts))
	if sorted {
		exts = slices.DeleteFunc(exts, func(e uint16) bool { return e == extServerName || e == extALPN })
		slices.Sort(ciphers)
		slices.Sort(exts)
	}
	b := appendHexList(make([]byte, 0, 5*len(ciphers)), ciphers)
	c := h.appendExtensionList(make([]byte, 0, 5*(len(exts)+len(h.SignatureAlgorithms))), exts)
	if raw {
		return string(a[:]) + "_" + string(b) + "_" + string(c)
	}
	bh, ch := hash12(b, len(ciphers)), hash12(c, len(exts))
	return string(a[:]) + "_" + string(bh[:]) + "_" + string(ch[:])
}

// appendExtensionList writes JA4_c's input: the extensions, then, if the
// client sent any, "_" and the signature algorithms in its order.
func (h *ClientHello) appendExtensionList(dst []byte, exts []uint16) []byte {
	dst = appendHexList(dst, exts)
	if sigs := withoutGREASE(h.SignatureAlgorithms); len(sigs) > 0 {
		dst = appendHexList(append(dst, '_'), sigs)
	}
	return dst
}

// ja4a formats JA4_a, a fixed 10 characters.
func (h *ClientHello) ja4a(transport byte, ciphers, exts int) [10]byte {
	var a [10]byte
	a[0] = transport
	v := versionCode(h.tlsVersion())
	a[1], a[2] = v[0], v[1]
	a[3] = 'i'
	if h.HasServerName {
		a[3] = 'd'
	}
	a[4], a[5] = twoDigits(ciphers)
	a[6], a[7] = twoDigits(exts)
	a[8], a[9] = '0', '0'
	if len(h.ALPN) > 0 {
		a[8], a[9] = alpnChars(h.ALPN[0])
	}
	return a
}

// tlsVersion is the highest non-GREASE supported_versions entry, else
// legacy_version: the record and handshake versions lie for compatibility.
func (h *ClientHello) tlsVersion() uint16 {
	best, found := h.Version, false
	for _, v := range h.SupportedVersions {
		if !isGREASE(v) && (!found || newerVersion(v, best)) {
			best, found = v, true
		}
	}
	return best
}

// newerVersion compares versions where DTLS counts down (0xfefc, DTLS
// 1.3, is newer than 0xfefd, DTLS 1.2), so "highest" means newest.
func newerVersion(a, b uint16) bool {
	if a>>8 == 0xfe && b>>8 == 0xfe {
		return a < b
	}
	return a > b
}

// versionCode is the spec's two-character name of a version, "00" if unknown.
func versionCode(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

// alpnChars is the first and last character of the first ALPN protocol,
// or, when either is not ASCII alphanumeric, the first and last hex digit
// of the whole protocol (so 0x61 0x20 gives "60"); "00" when empty.
func alpnChars(p string) (byte, byte) {
	if p == "" {
		return '0', '0'
	}
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return first, last
	}
	const digits = "0123456789abcdef"
	return digits[first>>4], digits[last&0x0f]
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isGREASE reports the reserved values of RFC 8701 (0x0a0a, 0x1a1a, ...,
// 0xfafa) that clients sprinkle in to keep servers tolerant.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// withoutGREASE copies list without GREASE, so sorting it leaves the
// ClientHello as parsed.
func withoutGREASE(list []uint16) []uint16 {
	dst := make([]uint16, 0, len(list))
	for _, v := range list {
		if !isGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

func twoDigits(n int) (byte, byte) {
	n = min(n, 99)
	return byte('0' + n/10), byte('0' + n%10)
}

// appendHexList writes values as 4 lower-case hex digits, comma-separated.
func appendHexList(dst []byte, list []uint16) []byte {
	const digits = "0123456789abcdef"
	for i, v := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
	}
	return dst
}

// hash12 is the first 12 hex digits of SHA-256, or twelve zeros when the
// list had no entries, which the spec prefers to the hash of nothing.
func hash12(s []byte, entries int) [12]byte {
	out := [12]byte([]byte("000000000000"))
	if entries > 0 {
		sum := sha256.Sum256(s)
		hex.Encode(out[:], sum[:6])
	}
	return out
}
