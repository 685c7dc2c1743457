package certs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// RedisStorage is a certmagic Storage, with its Locker, kept in Redis so
// that replicas share ACME accounts, certificates and pending challenges,
// and only one of them orders a given certificate.
//
// Keys, all in one Redis Cluster hash slot (the {acme} tag) so that a
// Store's two writes go in one transaction:
//
//	<prefix>acme:{acme}:file:<key>  hash: value, modified (Unix ns)
//	<prefix>acme:{acme}:index       sorted set of every stored key (score 0), listed by lex range
//	<prefix>acme:{acme}:lock:<name> the owner's random token, with an expiry
type RedisStorage struct {
	rdb  redis.UniversalClient
	base string // <prefix>acme:{acme}:

	// lockTTL is how long a lock outlives a dead owner; its owner
	// refreshes it every lockTTL/3. pollEvery bounds a waiter's sleep.
	lockTTL   time.Duration
	pollEvery time.Duration

	mu   sync.Mutex
	held map[string]*heldLock // by lock name
}

// heldLock is a lock this replica holds.
type heldLock struct {
	token string
	stop  chan struct{} // closed on Unlock: ends the refresher
	done  chan struct{} // closed when the refresher has ended
}

// A crashed replica's lock is free at most defaultLockTTL later; a
// waiter looks again every lockPoll or so.
const (
	defaultLockTTL = 30 * time.Second
	lockPoll       = 250 * time.Millisecond
)

// NewRedisStorage returns a Storage under prefix (e.g. "sekisho:") in rdb.
func NewRedisStorage(rdb redis.UniversalClient, prefix string) *RedisStorage {
	return &RedisStorage{rdb: rdb, base: prefix + "acme:{acme}:", lockTTL: defaultLockTTL,
		pollEvery: lockPoll, held: map[string]*heldLock{}}
}

var _ interface {
	certmagic.Storage
	certmagic.TryLocker
	certmagic.LockLeaseRenewer
} = (*RedisStorage)(nil)

func (s *RedisStorage) fileKey(key string) string  { return s.base + "file:" + key }
func (s *RedisStorage) indexKey() string           { return s.base + "index" }
func (s *RedisStorage) lockKey(name string) string { return s.base + "lock:" + name }

// String names the storage in certmagic's logs; it holds no secret.
func (s *RedisStorage) String() string { return "redis:" + s.base }

// Store puts value at key.
func (s *RedisStorage) Store(ctx context.Context, key string, value []byte) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.fileKey(key), "value", value, "modified", strconv.FormatInt(time.Now().UnixNano(), 10))
		p.ZAdd(ctx, s.indexKey(), redis.Z{Member: key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis storage: store %s: %w", key, err)
	}
	return nil
}

// Load returns the value at key, fs.ErrNotExist when there is none.
func (s *RedisStorage) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.rdb.HGet(ctx, s.fileKey(key), "value").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("redis storage: load %s: %w", key, err)
	}
	return b, nil
}

// children lists the stored keys under the directory dir ("" for all),
// recursively.
func (s *RedisStorage) children(ctx context.Context, dir string) ([]string, error) {
	by := &redis.ZRangeBy{Min: "-", Max: "+"}
	if dir != "" {
		// "0" follows "/": the range is exactly the keys starting "dir/".
		by = &redis.ZRangeBy{Min: "[" + dir + "/", Max: "(" + dir + "0"}
	}
	keys, err := s.rdb.ZRangeByLex(ctx, s.indexKey(), by).Result()
	if err != nil {
		return nil, fmt.Errorf("redis storage: list %s: %w", dir, err)
	}
	return keys, nil
}

// Delete deletes key, and everything under it when it is a directory.
func (s *RedisStorage) Delete(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("redis storage: refusing to delete the whole storage")
	}
	keys, err := s.children(ctx, key)
	if err != nil {
		return err
	}
	keys = append(keys, key)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, s.fileKey(k))
		}
		members := make([]any, len(keys))
		for i, k := range keys {
			members[i] = k
		}
		p.ZRem(ctx, s.indexKey(), members...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis storage: delete %s: %w", key, err)
	}
	return nil
}

// Exists tells whether key is a stored value or a directory of some.
func (s *RedisStorage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys under dir: all of them when recursive, else its
// direct children, values and directories alike (as certmagic's
// FileStorage does); fs.ErrNotExist when there are none.
func (s *RedisStorage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	keys, err := s.children(ctx, dir)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		_, err := s.rdb.ZScore(ctx, s.indexKey(), dir).Result()
		switch {
		case err == nil:
			return nil, nil // a value, which has no children
		case errors.Is(err, redis.Nil):
			return nil, fmt.Errorf("%s: %w", dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("redis storage: list %s: %w", dir, err)
	}
	start := len(dir) + 1
	if dir == "" {
		start = 0
	}
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, k := range keys {
		// Each directory between dir and k is a key too.
		for i := start; i < len(k); i++ {
			if k[i] == '/' {
				add(k[:i])
				if !recursive {
					break
				}
			}
		}
		if recursive || !strings.Contains(k[start:], "/") {
			add(k)
		}
	}
	return out, nil
}

// Stat describes key: a value, or a directory when only keys under it are
// stored; fs.ErrNotExist when neither.
func (s *RedisStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	var modified *redis.SliceCmd
	var size *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		modified = p.HMGet(ctx, s.fileKey(key), "modified")
		size = p.HStrLen(ctx, s.fileKey(key), "value")
		return nil
	})
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("redis storage: stat %s: %w", key, err)
	}
	if m, ok := modified.Val()[0].(string); ok {
		ns, _ := strconv.ParseInt(m, 10, 64)
		return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, ns), Size: size.Val(), IsTerminal: true}, nil
	}
	under, err := s.children(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if len(under) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// Scripts compare the owner's token before touching a lock, so that a
// replica whose lock expired and went to another cannot release or
// extend the new owner's.
var (
	// unlockScript returns 1 when released, 0 when the lock was gone,
	// -1 when another owner holds it.
	unlockScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then return 0 end
if v ~= ARGV[1] then return -1 end
redis.call("DEL", KEYS[1])
return 1`)
	// refreshScript extends the lock to ARGV[2] ms unless it already has
	// longer; it returns 1 while the token still owns it, else 0.
	refreshScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call("PTTL", KEYS[1]) < tonumber(ARGV[2]) then redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 1`)
)

// Lock takes the named lock, waiting while another owner (this replica
// or another) holds it, until ctx ends.
func (s *RedisStorage) Lock(ctx context.Context, name string) error {
	for {
		ok, err := s.TryLock(ctx, name)
		if ok || err != nil && ctx.Err() != nil {
			return err
		}
		// Redis errors are waited out like a taken lock: the caller's
		// ctx bounds the wait.
		t := time.NewTimer(s.pollEvery/2 + mrand.N(s.pollEvery/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("redis storage: waiting for lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// TryLock takes the named lock if it is free, without waiting.
func (s *RedisStorage) TryLock(ctx context.Context, name string) (bool, error) {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	ok, err := s.rdb.SetNX(ctx, s.lockKey(name), token, s.lockTTL).Result()
	if err != nil {
		return false, fmt.Errorf("redis storage: lock %s: %w", name, err)
	}
	if !ok {
		return false, nil
	}
	h := &heldLock{token: token, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.held[name] = h
	s.mu.Unlock()
	go s.refresh(name, h)
	return true, nil
}

// refresh keeps a held lock from expiring while its owner lives: a lock
// held through a long ACME order outlasts lockTTL, and one whose owner
// died is free lockTTL later.
func (s *RedisStorage) refresh(name string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lockTTL/3)
		n, err := refreshScript.Run(ctx, s.rdb, []string{s.lockKey(name)}, h.token, s.lockTTL.Milliseconds()).Int()
		cancel()
		if err == nil && n == 0 {
			return // lost: RenewLockLease and Unlock report it
		}
	}
}

// RenewLockLease confirms this replica still holds the lock, certmagic's
// check before each attempt of a long order. The refresher already keeps
// the lock alive; extending it to leaseDuration (up to hours on late
// retries) would only keep others waiting that long if this replica died.
func (s *RedisStorage) RenewLockLease(ctx context.Context, name string, _ time.Duration) error {
	s.mu.Lock()
	h := s.held[name]
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("redis storage: lock %s is not held by this replica", name)
	}
	n, err := refreshScript.Run(ctx, s.rdb, []string{s.lockKey(name)}, h.token, s.lockTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redis storage: renewing lock %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("redis storage: lock %s expired and is no longer this replica's", name)
	}
	return nil
}

// Unlock releases a lock this replica holds; a lock another owner holds
// (this one's having expired) is left alone.
func (s *RedisStorage) Unlock(ctx context.Context, name string) error {
	// Out of the table before the lock is free in Redis, so that a waiter
	// of this process that takes it next is not dropped from the table.
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("redis storage: lock %s is not held by this replica", name)
	}
	close(h.stop)
	<-h.done
	n, err := unlockScript.Run(ctx, s.rdb, []string{s.lockKey(name)}, h.token).Int()
	if err != nil {
		return fmt.Errorf("redis storage: unlock %s: %w", name, err)
	}
	if n < 0 {
		return fmt.Errorf("redis storage: lock %s had expired and another replica holds it now", name)
	}
	return nil
}
