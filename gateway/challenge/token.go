package challenge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
)

// Client is what a token or a clearance is bound to.
type Client struct {
	Addr      netip.Addr
	UserAgent string
	JA4       string // "" unless the policy binds to it
}

// binding is the client as the MAC covers it: the address's prefix, the
// User-Agent and the fingerprint, each length-prefixed.
func (c Client) binding(v4Bits, v6Bits int) []byte {
	a := c.Addr.Unmap()
	n := v6Bits
	if a.Is4() {
		n = v4Bits
	}
	p, err := a.Prefix(n)
	if err != nil {
		p = netip.PrefixFrom(a, a.BitLen())
	}
	b := p.AppendTo(nil)
	for _, s := range []string{c.UserAgent, c.JA4} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// A token is what a challenge page carries and its answer sends back:
//
//	version(1) mode(1) difficulty(1) issued(8, Unix seconds) nonce(12) mac(16)
//
// base64url without padding. The MAC covers the fields and the client.
const (
	tokenVersion = 1
	tokenFields  = 1 + 1 + 1 + 8 + 12
	macLen       = 16
	tokenLen     = tokenFields + macLen
	// TokenTTL is how long a challenge may take to answer.
	TokenTTL = 5 * time.Minute
)

// token is a decoded challenge token.
type token struct {
	mode       Mode
	difficulty int
	issued     time.Time
	raw        string // as sent: the proof of work is over these bytes
}

var errToken = errors.New("challenge token invalid")

// strict decodes only the one encoding of each value: the padding bits of
// the last character must be zero, so a token or clearance has one form.
var strict = base64.RawURLEncoding.Strict()

// newToken makes a token for c.
func (k *Keys) newToken(c Client, mode Mode, difficulty int, now time.Time) string {
	b := make([]byte, tokenFields, tokenLen)
	b[0], b[1], b[2] = tokenVersion, mode.code(), byte(difficulty)
	binary.BigEndian.PutUint64(b[3:], uint64(now.Unix()))
	rand.Read(b[11:tokenFields])
	b = append(b, k.mac(k.current(), "token", b, c)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseToken checks s as a token for c: its size, MAC (with any key the
// fleet holds) and age.
func (k *Keys) parseToken(s string, c Client, now time.Time) (token, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenLen) {
		return token{}, errToken
	}
	b, err := strict.DecodeString(s)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return token{}, errToken
	}
	if !k.verify("token", b[:tokenFields], b[tokenFields:], c) {
		return token{}, errToken
	}
	mode, ok := modeOf(b[1])
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[3:])), 0)
	if !ok || now.Sub(issued) > TokenTTL || issued.Sub(now) > time.Minute {
		return token{}, errToken
	}
	return token{mode: mode, difficulty: int(b[2]), issued: issued, raw: s}, nil
}

// solves reports whether SHA-256(token ":" answer) starts with the
// token's count of zero bits. answer is a decimal counter of bounded size.
func (t token) solves(answer string) bool {
	if len(answer) == 0 || len(answer) > 12 {
		return false
	}
	if _, err := strconv.ParseUint(answer, 10, 64); err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(t.raw + ":" + answer))
	return leadingZeroBits(sum[:]) >= t.difficulty
}

func leadingZeroBits(b []byte) int {
	n := 0
	for _, x := range b {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}

// A clearance is the cookie a passed challenge yields:
//
//	version(1) level(1) expires(8, Unix seconds) mac(16)
//
// base64url without padding; level is the mode passed (pow > js > cookie).
const (
	clearanceVersion = 1
	clearanceFields  = 1 + 1 + 8
	clearanceLen     = clearanceFields + macLen
)

// newClearance makes a clearance for c, passed with mode, until expires.
func (k *Keys) newClearance(c Client, mode Mode, expires time.Time) string {
	b := make([]byte, clearanceFields, clearanceLen)
	b[0], b[1] = clearanceVersion, mode.code()
	binary.BigEndian.PutUint64(b[2:], uint64(expires.Unix()))
	b = append(b, k.mac(k.current(), "clearance", b, c)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkClearance returns the mode a clearance for c was earned with, or
// false when s is not one: malformed, forged, for another client, expired.
func (k *Keys) checkClearance(s string, c Client, now time.Time) (Mode, bool) {
	if len(s) != base64.RawURLEncoding.EncodedLen(clearanceLen) {
		return "", false
	}
	b, err := strict.DecodeString(s)
	if err != nil || len(b) != clearanceLen || b[0] != clearanceVersion {
		return "", false
	}
	if !k.verify("clearance", b[:clearanceFields], b[clearanceFields:], c) {
		return "", false
	}
	mode, ok := modeOf(b[1])
	if !ok || !now.Before(time.Unix(int64(binary.BigEndian.Uint64(b[2:])), 0)) {
		return "", false
	}
	return mode, true
}

// mac is the truncated HMAC of what's fields for c under key.
func (k *Keys) mac(key []byte, what string, fields []byte, c Client) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("sekisho-" + what + "\x00"))
	h.Write(fields)
	h.Write(c.binding(k.v4Bits, k.v6Bits))
	return h.Sum(nil)[:macLen]
}

// verify checks sum against each key the fleet holds.
func (k *Keys) verify(what string, fields, sum []byte, c Client) bool {
	for _, key := range k.all() {
		if hmac.Equal(k.mac(key, what, fields, c), sum) {
			return true
		}
	}
	return false
}
