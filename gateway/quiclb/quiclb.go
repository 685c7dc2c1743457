// Package quiclb makes QUIC connection IDs that a load balancer routes to
// this replica by a server ID written in them: QUIC-LB's layout without a
// key (draft-ietf-quic-load-balancers-21, section 3 "First CID octet" and
// section 5 "Server ID Encoding in Connection IDs"), which AWS's Network
// Load Balancer routes QUIC and TCP_QUIC listeners' packets by. AWS names
// the 8-byte ID but not its position; QUIC-LB puts it after the first
// octet, where AWS's own QUIC examples do.
//
//	octet 0      config rotation (3 bits, 0) | 5 random bits
//	octets 1-8   the server ID, as registered (AWS's QuicServerId)
//	octets 9-19  random nonce
//
// A client whose address changes (NAT rebinding, Wi-Fi to mobile) keeps
// sending to connection IDs this replica issued, so the load balancer
// keeps routing it here, where hashing its address would not.
package quiclb

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/quic-go/quic-go"
)

// ServerIDLen is the server ID's length: AWS's QuicServerId is 8 bytes.
const ServerIDLen = 8

// Len is the connection IDs' length: QUIC's longest (RFC 9000, 17.2), so
// the nonce (11 bytes) is as unpredictable as it can be.
const Len = 20

// ServerID is a replica's server ID.
type ServerID [ServerIDLen]byte

// ParseServerID reads a server ID as AWS writes a QuicServerId: "0x" and
// 16 lowercase hexadecimal digits.
func ParseServerID(s string) (ServerID, error) {
	var id ServerID
	hexits, ok := strings.CutPrefix(s, "0x")
	switch {
	case !ok:
		return id, fmt.Errorf("%q: want 0x and 16 lowercase hexadecimal digits (AWS's QuicServerId)", s)
	case len(hexits) != 2*ServerIDLen:
		return id, fmt.Errorf("%q: %d hexadecimal digits, want 16", s, len(hexits))
	case strings.ToLower(hexits) != hexits:
		return id, fmt.Errorf("%q: letters must be lowercase, as AWS registers them", s)
	}
	if _, err := hex.Decode(id[:], []byte(hexits)); err != nil {
		return id, fmt.Errorf("%q: not hexadecimal", s)
	}
	return id, nil
}

// String is the ID as AWS writes it.
func (id ServerID) String() string { return "0x" + hex.EncodeToString(id[:]) }

// Generator issues this replica's connection IDs (quic.ConnectionIDGenerator).
type Generator struct{ ID ServerID }

var _ quic.ConnectionIDGenerator = Generator{}

// GenerateConnectionID returns a new connection ID carrying the server ID.
func (g Generator) GenerateConnectionID() (quic.ConnectionID, error) {
	var b [Len]byte
	if _, err := rand.Read(b[:]); err != nil {
		return quic.ConnectionID{}, err
	}
	b[0] &= 0x1f // config rotation 0: the load balancer's first (and only) config
	copy(b[1:], g.ID[:])
	return quic.ConnectionIDFromBytes(b[:]), nil
}

// ConnectionIDLen is Len.
func (Generator) ConnectionIDLen() int { return Len }

// ServerIDOf reads the server ID from a connection ID in this layout; ok
// is false when it is too short or its config rotation is not 0.
func ServerIDOf(cid []byte) (id ServerID, ok bool) {
	if len(cid) < 1+ServerIDLen || cid[0]>>5 != 0 {
		return id, false
	}
	copy(id[:], cid[1:])
	return id, true
}
