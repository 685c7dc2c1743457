package challenge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// MinKeyLen is the shortest key accepted from a file, in bytes.
const MinKeyLen = 32

// Keys is the fleet's MAC keys: the current one, which signs, and the one
// before it, which still verifies (so a key adopted from Redis after a
// start without it does not refuse every clearance issued in between).
type Keys struct {
	ring           atomic.Pointer[[][]byte]
	v4Bits, v6Bits int // the client address prefix tokens are bound to
}

// NewKeys starts with key, binding clients to their /v4Bits or /v6Bits.
func NewKeys(key []byte, v4Bits, v6Bits int) *Keys {
	k := &Keys{v4Bits: v4Bits, v6Bits: v6Bits}
	k.ring.Store(&[][]byte{key})
	return k
}

// Set makes key the current key; the current one becomes the previous.
func (k *Keys) Set(key []byte) {
	old := k.all()
	if bytes.Equal(old[0], key) {
		return
	}
	k.ring.Store(&[][]byte{key, old[0]})
}

func (k *Keys) current() []byte { return (*k.ring.Load())[0] }

// Current is the key that signs now.
func (k *Keys) Current() []byte { return k.current() }

// Prefixes is the IPv4 and IPv6 prefix lengths clients are bound to.
func (k *Keys) Prefixes() [2]int { return [2]int{k.v4Bits, k.v6Bits} }
func (k *Keys) all() [][]byte    { return *k.ring.Load() }

// RandomKey is a fresh 32-byte key.
func RandomKey() []byte {
	b := make([]byte, MinKeyLen)
	rand.Read(b)
	return b
}

// LoadKeyFile reads a key file: at least MinKeyLen bytes, a trailing line
// break not counted. A short or unreadable file is an error naming it.
func LoadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < MinKeyLen {
		return nil, fmt.Errorf("%s: a challenge key is at least %d bytes (it has %d): e.g. head -c 48 /dev/urandom | base64 > %s", path, MinKeyLen, len(b), path)
	}
	return b, nil
}

// FleetKeyName is the Redis key the fleet's challenge key is kept under.
const FleetKeyName = "sekisho:challenge:key"

// FleetKey returns the key every replica uses, creating it in Redis the
// first time any replica asks (SET NX: the first one wins, the others read it).
func FleetKey(ctx context.Context, rdb redis.Cmdable) ([]byte, error) {
	fresh := hex.EncodeToString(RandomKey())
	if err := rdb.SetNX(ctx, FleetKeyName, fresh, 0).Err(); err != nil {
		return nil, err
	}
	s, err := rdb.Get(ctx, FleetKeyName).Result()
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(s)
	if err != nil || len(key) < MinKeyLen {
		return nil, errors.New("redis " + FleetKeyName + " holds no valid key (hex, 32 bytes or more)")
	}
	return key, nil
}
