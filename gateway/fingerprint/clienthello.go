package fingerprint

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// ClientHello is what JA4 reads from a TLS ClientHello. The lists keep the
// order and the GREASE values the client sent, so that the fingerprint,
// not the parser, decides what to ignore.
type ClientHello struct {
	// Version is legacy_version: a TLS 1.3 client says 0x0303 there and
	// its real versions in SupportedVersions.
	Version uint16
	// CipherSuites lists the cipher suites in the client's order.
	CipherSuites []uint16
	// Extensions lists the extension types in the client's order.
	Extensions []uint16
	// HasServerName tells whether the server_name extension was sent:
	// JA4 reads its presence, not its value.
	HasServerName bool
	// ServerName is the first host_name of server_name, unvalidated
	// client input, empty when absent or malformed.
	ServerName string
	// ALPN lists the application_layer_protocol_negotiation protocols.
	ALPN []string
	// SupportedVersions lists the supported_versions extension's
	// versions; nil when the extension was not sent.
	SupportedVersions []uint16
	// SignatureAlgorithms lists the signature_algorithms extension's
	// schemes in the client's order.
	SignatureAlgorithms []uint16
}

// Errors the parsers wrap, so a caller can tell "read more" from "give up".
var (
	// ErrIncomplete means the bytes end before the ClientHello does.
	ErrIncomplete = errors.New("fingerprint: ClientHello incomplete")
	// ErrNotClientHello means the bytes are not a TLS ClientHello at all.
	ErrNotClientHello = errors.New("fingerprint: not a TLS ClientHello")
	// ErrTooLarge means the ClientHello claims more than 64 KiB (the
	// limit crypto/tls sets too), or for RecordingConn does not end
	// within 16 KiB.
	ErrTooLarge = errors.New("fingerprint: ClientHello too large")
	// ErrMalformed means a length inside the ClientHello does not fit.
	ErrMalformed = errors.New("fingerprint: malformed ClientHello")
)

// Wire constants from RFC 8446 (and RFC 9147 for DTLS).
const (
	typeClientHello        = 1
	recordTypeHandshake    = 22
	maxRecordLen           = 1 << 14 // a plaintext record's limit
	maxHelloLen            = 1 << 16 // crypto/tls's own handshake message limit
	extServerName          = 0x0000
	extSignatureAlgorithms = 0x000d
	extALPN                = 0x0010
	extSupportedVersions   = 0x002b
	hostNameType           = 0
)

func malformed(what string) error {
	return fmt.Errorf("%w: bad %s", ErrMalformed, what)
}

// ParseClientHello parses a TLS ClientHello handshake message, from its
// 4-byte header on, as TCP carries it once the record headers are gone
// (see ReadClientHelloRecords) or QUIC carries it in CRYPTO frames. Bytes
// after the message are ignored. The input is untrusted: every length is
// checked and the work is linear in len(b).
func ParseClientHello(b []byte) (*ClientHello, error) {
	body, err := handshakeBody(b)
	if err != nil {
		return nil, err
	}
	return parseHelloBody(cryptobyte.String(body), false)
}

// ParseDTLSClientHello is ParseClientHello for DTLS, whose handshake
// header is 12 bytes and whose hello carries a cookie. Only an
// unfragmented message is accepted: reassembling DTLS fragments is the
// transport's job.
func ParseDTLSClientHello(b []byte) (*ClientHello, error) {
	if len(b) < 12 {
		return nil, fmt.Errorf("%w: %d-byte DTLS handshake header", ErrIncomplete, len(b))
	}
	offset := uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8])
	fragLen := uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
	n := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if b[0] == typeClientHello && (offset != 0 || fragLen != n) {
		return nil, fmt.Errorf("%w: fragmented DTLS ClientHello", ErrMalformed)
	}
	body, err := handshakeBody(append(b[:4:4], b[12:]...))
	if err != nil {
		return nil, err
	}
	return parseHelloBody(cryptobyte.String(body), true)
}

// handshakeBody checks the 4-byte handshake header and returns the body.
func handshakeBody(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] != typeClientHello {
		return nil, fmt.Errorf("%w: handshake type %d", ErrNotClientHello, b[0])
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d-byte handshake header", ErrIncomplete, len(b))
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if n > maxHelloLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	if len(b)-4 < n {
		return nil, fmt.Errorf("%w: %d of %d bytes", ErrIncomplete, len(b)-4, n)
	}
	return b[4 : 4+n], nil
}

// parseHelloBody reads the fields of RFC 8446 section 4.1.2 (plus the
// DTLS cookie); extensions may be absent altogether, as before TLS 1.2.
func parseHelloBody(s cryptobyte.String, dtls bool) (*ClientHello, error) {
	h := &ClientHello{}
	var sessionID, cookie, suites, compression cryptobyte.String
	if !s.ReadUint16(&h.Version) || !s.Skip(32) {
		return nil, malformed("legacy_version or random")
	}
	if !s.ReadUint8LengthPrefixed(&sessionID) || len(sessionID) > 32 {
		return nil, malformed("legacy_session_id")
	}
	if dtls && !s.ReadUint8LengthPrefixed(&cookie) {
		return nil, malformed("cookie")
	}
	if !s.ReadUint16LengthPrefixed(&suites) || len(suites)%2 != 0 {
		return nil, malformed("cipher_suites")
	}
	h.CipherSuites = readUint16s(suites)
	if !s.ReadUint8LengthPrefixed(&compression) {
		return nil, malformed("legacy_compression_methods")
	}
	if s.Empty() {
		return h, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, malformed("extensions length")
	}
	if err := h.parseExtensions(exts); err != nil {
		return nil, err
	}
	return h, nil
}

// parseExtensions records every extension type and reads the bodies JA4
// uses; a repeated extension (which TLS forbids) counts, but only its
// first body is read.
func (h *ClientHello) parseExtensions(exts cryptobyte.String) error {
	h.Extensions = make([]uint16, 0, 24)
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return malformed("extension header")
		}
		if err := h.parseExtension(typ, data); err != nil {
			return err
		}
		h.Extensions = append(h.Extensions, typ)
	}
	return nil
}

// parseExtension reads one body; a field already set (non-nil) means a
// repeat, skipped without a scan so the work stays linear.
func (h *ClientHello) parseExtension(typ uint16, data cryptobyte.String) error {
	switch {
	case typ == extServerName && !h.HasServerName:
		h.HasServerName = true
		h.ServerName = firstHostName(data)
	case typ == extALPN && h.ALPN == nil:
		return h.parseALPN(data)
	case typ == extSupportedVersions && h.SupportedVersions == nil:
		var list cryptobyte.String
		if !data.ReadUint8LengthPrefixed(&list) || !data.Empty() || len(list)%2 != 0 {
			return malformed("supported_versions")
		}
		h.SupportedVersions = readUint16s(list)
	case typ == extSignatureAlgorithms && h.SignatureAlgorithms == nil:
		var list cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() || len(list)%2 != 0 {
			return malformed("signature_algorithms")
		}
		h.SignatureAlgorithms = readUint16s(list)
	}
	return nil
}

// parseALPN keeps empty protocol names, which RFC 7301 forbids, because
// the JA4 specification says how to print them.
func (h *ClientHello) parseALPN(data cryptobyte.String) error {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
		return malformed("application_layer_protocol_negotiation")
	}
	h.ALPN = make([]string, 0, 2)
	for !list.Empty() {
		var proto cryptobyte.String
		if !list.ReadUint8LengthPrefixed(&proto) {
			return malformed("application_layer_protocol_negotiation")
		}
		h.ALPN = append(h.ALPN, string(proto))
	}
	return nil
}

// firstHostName is lenient: JA4 needs only server_name's presence, so a
// malformed list just leaves the name empty.
func firstHostName(data cryptobyte.String) string {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) {
		return ""
	}
	for !list.Empty() {
		var typ uint8
		var name cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&name) {
			return ""
		}
		if typ == hostNameType {
			return string(name)
		}
	}
	return ""
}

func readUint16s(s cryptobyte.String) []uint16 {
	out := make([]uint16, len(s)/2)
	for i := range out {
		out[i] = uint16(s[2*i])<<8 | uint16(s[2*i+1])
	}
	return out
}

// ReadClientHelloRecords reassembles the ClientHello handshake message
// from the TLS handshake records (content type 22) at the start of b, as
// they come off a TCP connection, for ParseClientHello. It stops at the
// message's end, ignoring what follows; ErrIncomplete says the records
// read so far do not hold it all yet. When one record holds the whole
// message the result aliases b.
func ReadClientHelloRecords(b []byte) ([]byte, error) {
	var msg []byte
	aliased := false // msg is still the first fragment, inside b
	for first := true; ; first = false {
		frag, rest, err := nextHandshakeRecord(b)
		if err != nil {
			return nil, err
		}
		b = rest
		switch {
		case first && len(frag) >= 4:
			msg, aliased = frag, true
		case aliased:
			msg, aliased = append(bytes.Clone(msg), frag...), false
		default:
			msg = append(msg, frag...)
		}
		if _, err := handshakeBody(msg); !errors.Is(err, ErrIncomplete) {
			if err != nil {
				return nil, err
			}
			n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
			return msg[:4+n], nil
		}
	}
}

// nextHandshakeRecord splits the first TLS record off b and returns its
// fragment, refusing anything but a non-empty handshake record.
func nextHandshakeRecord(b []byte) (frag, rest []byte, err error) {
	if len(b) > 0 && b[0] != recordTypeHandshake {
		return nil, nil, fmt.Errorf("%w: record type %d", ErrNotClientHello, b[0])
	}
	if len(b) > 1 && b[1] != 3 {
		return nil, nil, fmt.Errorf("%w: record version %#02x..", ErrNotClientHello, b[1])
	}
	if len(b) < 5 {
		return nil, nil, fmt.Errorf("%w: %d-byte record header", ErrIncomplete, len(b))
	}
	n := int(b[3])<<8 | int(b[4])
	if n == 0 || n > maxRecordLen {
		return nil, nil, fmt.Errorf("%w: record length %d", ErrMalformed, n)
	}
	if len(b)-5 < n {
		return nil, nil, fmt.Errorf("%w: record has %d of %d bytes", ErrIncomplete, len(b)-5, n)
	}
	return b[5 : 5+n], b[5+n:], nil
}

// FromClientHelloInfo gives JA4 what crypto/tls hands GetConfigForClient,
// for listeners where the raw hello is out of reach (QUIC: quic-go uses
// crypto/tls). It shares info's slices. ClientHelloInfo lacks
// legacy_version: JA4 does not need it when supported_versions was sent
// (Version stays 0); otherwise crypto/tls derived SupportedVersions from
// it and Version is their highest, which differs from the raw hello's
// only for SSL 3.0 ("00", not "s3") and for versions crypto/tls does not
// know (0x0305 reads "13", not "00"). SNI presence is read from
// Extensions (Go 1.24+). With ECH accepted, info describes the inner
// hello, RecordingConn the outer one.
func FromClientHelloInfo(info *tls.ClientHelloInfo) *ClientHello {
	h := &ClientHello{
		CipherSuites:        info.CipherSuites,
		Extensions:          info.Extensions,
		ServerName:          info.ServerName,
		ALPN:                info.SupportedProtos,
		SignatureAlgorithms: make([]uint16, len(info.SignatureSchemes)),
	}
	for i, s := range info.SignatureSchemes {
		h.SignatureAlgorithms[i] = uint16(s)
	}
	// A ClientHelloInfo made by hand may have no Extensions: then its
	// ServerName and SupportedVersions are taken at their word.
	byHand := info.Extensions == nil
	h.HasServerName = slices.Contains(info.Extensions, extServerName) || byHand && info.ServerName != ""
	if byHand || slices.Contains(info.Extensions, extSupportedVersions) {
		h.SupportedVersions = info.SupportedVersions
	} else {
		for _, v := range info.SupportedVersions {
			h.Version = max(h.Version, v)
		}
	}
	return h
}
