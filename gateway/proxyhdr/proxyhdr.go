// Package proxyhdr writes the PROXY protocol header (v1 or v2, with TLVs)
// that the gateway sends its servers, for HTTP backends and TCP frontends alike.
package proxyhdr

import (
	"crypto/tls"
	"net"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"github.com/sekisho/sekisho/gateway/accesslog"
)

// TLVs chooses what a v2 header carries besides the addresses.
type TLVs struct {
	ALPN      bool   // the protocol the client negotiated
	Authority bool   // the TLS SNI, else Host
	SSL       bool   // TLS version, cipher, the client certificate's CN and verify result
	Host      string // the authority when the client sent no SNI
	UniqueID  string // PP2_TYPE_UNIQUE_ID, when not empty (at most 128 bytes)
}

// All is every TLS TLV: what HAProxy's send-proxy-v2-ssl-cn sends.
var All = TLVs{ALPN: true, Authority: true, SSL: true}

// Header renders the header for a connection from client to local (the
// address the client reached). Addresses that are not TCP give the header
// of an unknown connection, which servers take as the proxy's own.
func Header(version byte, client, local net.Addr, st *tls.ConnectionState, want TLVs) ([]byte, error) {
	h := proxyproto.HeaderProxyFromAddrs(version, client, local)
	if version == 2 {
		if tlvs := want.build(st); len(tlvs) > 0 {
			if err := h.SetTLVs(tlvs); err != nil {
				return nil, err
			}
		}
	}
	return h.Format()
}

func (w TLVs) build(st *tls.ConnectionState) []proxyproto.TLV {
	var tlvs []proxyproto.TLV
	if w.ALPN && st != nil && st.NegotiatedProtocol != "" {
		tlvs = append(tlvs, proxyproto.TLV{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte(st.NegotiatedProtocol)})
	}
	if w.Authority {
		name := w.Host
		if st != nil && st.ServerName != "" {
			name = st.ServerName
		}
		if name != "" {
			tlvs = append(tlvs, proxyproto.TLV{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte(name)})
		}
	}
	if w.SSL && st != nil {
		if t, err := sslTLV(st).Marshal(); err == nil {
			tlvs = append(tlvs, t)
		}
	}
	if w.UniqueID != "" && len(w.UniqueID) <= 128 {
		tlvs = append(tlvs, proxyproto.TLV{Type: proxyproto.PP2_TYPE_UNIQUE_ID, Value: []byte(w.UniqueID)})
	}
	return tlvs
}

// sslTLV describes a TLS client connection as HAProxy's SSL TLV does:
// version, cipher and, with a client certificate, its CN and whether it
// was verified.
func sslTLV(st *tls.ConnectionState) tlvparse.PP2SSL {
	ssl := tlvparse.PP2SSL{
		Client: tlvparse.PP2_BITFIELD_CLIENT_SSL,
		// Zero means a client certificate that was verified (the spec's
		// reading, not "no error"): anything else is non-zero.
		Verify: 1,
		TLV: []proxyproto.TLV{
			{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte(version(st.Version))},
			// OpenSSL's name, as HAProxy sends it ("ECDHE-RSA-AES128-GCM-SHA256").
			{Type: proxyproto.PP2_SUBTYPE_SSL_CIPHER, Value: []byte(accesslog.OpenSSLCipher(st.CipherSuite))},
		},
	}
	if len(st.PeerCertificates) > 0 {
		ssl.Client |= tlvparse.PP2_BITFIELD_CLIENT_CERT_SESS
		if !st.DidResume {
			ssl.Client |= tlvparse.PP2_BITFIELD_CLIENT_CERT_CONN
		}
		if len(st.VerifiedChains) > 0 {
			ssl.Verify = 0
		}
		if cn := st.PeerCertificates[0].Subject.CommonName; cn != "" {
			ssl.TLV = append(ssl.TLV, proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_CN, Value: []byte(cn)})
		}
	}
	return ssl
}

// version names a TLS version as OpenSSL does, which is what servers
// reading HAProxy's SSL TLV expect: the access log's names, but "TLSv1"
// for 1.0.
func version(v uint16) string {
	if v == tls.VersionTLS10 {
		return "TLSv1"
	}
	return accesslog.TLSVersion(v)
}
