// Package fingerprint computes FoxIO's JA4 fingerprint of a TLS client
// and JA4H fingerprint of an HTTP client, so the gateway can recognise a
// client by how its software speaks rather than by what it claims (its
// User-Agent) or where it comes from (its address).
//
// JA4 is read from the ClientHello: ParseClientHello takes the raw
// handshake message (RecordingConn captures it from a TCP connection,
// ReadClientHelloRecords reassembles it from TLS records), and
// FromClientHelloInfo takes what crypto/tls hands GetConfigForClient,
// which is how a QUIC listener (quic-go uses crypto/tls) gets one. Both
// give a ClientHello whose JA4 method formats the fingerprint.
//
// JA4H is read from an HTTP request. Its second part hashes the header
// names in the order the client sent them, which net/http does not keep:
// JA4HOrdered takes that order from a caller that knows it, JA4H makes do
// with a sorted one (see its comment).
//
// The algorithms follow FoxIO's specification, FoxIO-LLC/ja4
// technical_details/JA4.md and JA4H.md (with the JA4H diagram in
// JA4H.png); this code is written from that text, not from FoxIO's
// implementations. Licensing differs between the two: JA4 is BSD
// 3-Clause, but JA4H, like the rest of JA4+, is under the FoxIO License
// 1.1, which allows internal use and asks for an OEM licence to sell it
// as part of a product; whoever ships JA4H in a product must check that
// licence.
package fingerprint
