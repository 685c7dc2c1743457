package sticktable

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for RedisOptions.
const (
	// DefaultRedisTimeout bounds one Redis call, and so the latency Redis
	// can add to a request: a round trip across zones is a millisecond or
	// two, so 50ms is a Redis in trouble, not a slow one.
	DefaultRedisTimeout = 50 * time.Millisecond
	// DefaultNearCacheTTL is how long a replica may route by a Lookup
	// answer without asking Redis again.
	DefaultNearCacheTTL = time.Second
	// DefaultNearCacheSize bounds the near-cache's answers: hot keys are
	// the sessions active within a second, far fewer than a table holds.
	DefaultNearCacheSize = 16384
	// DefaultFailuresToOpen is how many consecutive failed calls declare
	// Redis down.
	DefaultFailuresToOpen = 3
	// DefaultRetryAfter spaces the probes while Redis is down.
	DefaultRetryAfter = time.Second
	// MaxPending bounds the keys stuck or deleted locally that wait to be
	// written back to Redis.
	MaxPending = 100_000
)

// Script budgets. purgeScan bounds the expired LRU members one insert
// removes, like Memory's purgeBudget; passScan bounds the in-flight
// entries one insert passes over before giving up with ErrFull; lenScan
// bounds what Len purges before counting.
const (
	redisPurgeScan = 16
	redisPassScan  = 64
	redisLenScan   = 1000
	writeBackBatch = 256
)

// RedisOptions tune a Redis store.
type RedisOptions struct {
	// Prefix namespaces the keys, e.g. "sekisho:".
	Prefix string
	// Timeout bounds each Redis call (DefaultRedisTimeout when zero).
	Timeout time.Duration
	// NearCacheTTL is how long a Lookup answer may be served locally
	// (DefaultNearCacheTTL when zero; negative disables the near-cache).
	// It is capped at the table's Expire/10.
	NearCacheTTL time.Duration
	// NearCacheSize bounds the answers the near-cache holds
	// (DefaultNearCacheSize when zero; at most the table's Size, rounded
	// up to a power of two).
	NearCacheSize int
	// FailuresToOpen is how many consecutive failed or timed-out calls
	// open the breaker (DefaultFailuresToOpen when zero); timed-out ones
	// only once they started at least 2 × Timeout apart.
	FailuresToOpen int
	// RetryAfter spaces the probes while the breaker is open
	// (DefaultRetryAfter when zero); one that succeeds closes it.
	RetryAfter time.Duration
	// OnStateChange is called once per change of the breaker: up false
	// with the error that opened it, up true when Redis is back and the
	// entries learned meanwhile are written back. It runs on the goroutine
	// that saw the change, so it should only log and emit an event.
	OnStateChange func(up bool, err error)
	// Now is the clock (time.Now when nil); see Redis on what it times.
	Now func() time.Time
}

// Redis is a Store in Redis, shared by every gateway replica that uses the
// same Prefix and table name, in front of a local Memory that serves when
// Redis cannot. Standalone, Sentinel and Cluster deployments all work
// through redis.UniversalClient, which must be made with
// ContextTimeoutEnabled so that Timeout bounds each call.
//
// Keys. A table's keys share the hash tag {name}, so that Cluster keeps
// them in one slot, where one script may touch several:
//
//	Prefix+"st:{"+name+"}:e:"+key  hash: s (server), c (conn_cur), g (gpc),
//	                                rc, rp, p (rate counters and period), n
//	Prefix+"st:{"+name+"}:lru"     sorted set: key → last use, Unix ms
//	Prefix+"st:{"+name+"}:gen"     counter for tracked entries' n
//	Prefix+"st:{"+name+"}:epoch"   random, set by the first replica to sync
//	Prefix+"st:{"+name+"}:ch"      channel (not a key): changes of servers
//
// An entry holds only its non-zero fields (a stuck-only one holds s) and
// lives by PEXPIRE, refreshed on every use, on Redis's clock.
//
// Atomicity. Each method is one Lua script (EVALSHA), so every replica's
// Track, AddGPC and Stick on a key apply one after the other: a fleet-wide
// limit of N requests per RatePeriod admits exactly N across replicas.
// Track and AddGPC always ask Redis.
//
// Size is exact: the live entries never exceed it. Every entry hash has a
// member in the LRU set, the scripts changing both together, and a script
// that adds a member first removes members of expired entries (up to 16,
// oldest first), then evicts least recently used entries until the set
// holds Size. Members of expired entries count until removed, so a table
// may evict a little early, never late. The cost: a ZADD (O(log n)) per
// use, ZCARD and a ZRANGE per insert into a full table, and the set's
// member per entry. An entry with a request in flight is passed over as
// in Memory (up to 64 per insert), and ErrFull is returned when none can
// go. Unlike Memory, such an entry still expires Expire after its last
// use: a release lost with a replica or an outage must not pin it.
//
// Clocks. Rate periods and LRU scores use the caller's clock, Now in Unix
// ms, passed to the scripts: tests drive them with a fake clock, and
// periods are numbered from the Unix epoch, so every replica numbers them
// alike. Clock skew between replicas (well under a millisecond with NTP
// across zones) only blurs the LRU order of uses close together in time;
// a period number ahead of the caller's, from a replica running ahead, is
// kept rather than rolled back, so no request goes uncounted. Expiry is
// PEXPIRE's, on Redis's clock.
//
// Near-cache. A Lookup answer (the entry, or its absence) is kept locally
// for NearCacheTTL, capped at Expire/10; this replica's own Stick, Delete,
// Track and AddGPC replace it once Redis has them. The rule: a replica may
// route by an answer up to NearCacheTTL old, so for at most NearCacheTTL
// after another replica changed the entry (the balancer already
// redispatches away from a server that is down); it sees its own changes
// at once, and another replica's change of a server as soon as the
// mirror's message (redis_mirror.go) drops the answer. Counters in a
// near-cache answer are as old. Keys answered from the near-cache are
// refreshed in Redis on its misses, so at least once per NearCacheTTL
// while in use: Redis keeps them at least 0.9 × Expire after their last
// use. The near-cache is bounded (NearCacheSize answers in 4-way buckets)
// and a hit allocates nothing.
//
// Failures. A call that fails or outlasts Timeout is answered from the
// local table, without an error: errors are for ErrClosed, ErrFull and
// malformed keys only. A failed Lookup is not an absence: the local table
// may not know a key that Redis holds, so a response learnt after it is a
// Swap from none, which keeps Redis's server (the balancer's Learn swaps
// from the server the request was routed by). A Lookup of a key the local
// table does not know, and a Swap, that time out are tried once more
// while the breaker is closed: Redis or this host stalled for a moment
// answers the second call, and either wrong answer would send the
// session's request, or its next one through another replica, to a
// server picked blind.
//
// FailuresToOpen failed calls in a row open the breaker, timeouts only
// when the failed calls started at least 2 × Timeout apart (a stall fails
// every call in flight at once): calls then serve from the local table
// without waiting on Redis, but for a Lookup of a key the local table
// does not know and a Swap, which are tried once (a Swap is what the
// other replicas need on the client's next request), and a goroutine
// probes Redis once per RetryAfter. Once a probe succeeds it writes back
// the keys stuck, swapped or deleted locally meanwhile (up to MaxPending
// or Size), then closes the breaker; a key not yet written back is
// answered locally. Writing back a swap keeps Redis's entry when it holds
// another server than the one expected, and the local table adopts it;
// writing back a Stick keeps Redis's entry when another replica used it
// after the local change (its LRU score is later), as the fleet has been
// routing by it. OnStateChange is called once per transition.
//
// The local table mirrors every Redis answer, Stick and Swap, and every
// change of a server another replica makes (the mirror, redis_mirror.go),
// so it routes the fleet's sessions; its counters start from zero at an
// outage and count this replica only. Redis that comes back without the
// table (restarted without persistence) is told by the table's epoch, and
// every replica republishes what its local table holds (redis_epoch.go).
// A release that cannot reach Redis is dropped: ConnCur stays one too
// high until the entry expires.
//
// Memory. BenchmarkRedisMemory1M measured 335 bytes per entry in Redis
// (used_memory) for a million 32-byte session IDs stuck to servers, with
// the prefix "sekisho:" and table "sessions": about 335 MB a million.
type Redis struct {
	client redis.UniversalClient
	name   string
	stride int
	fixed  bool
	size   int
	opt    RedisOptions
	now    func() time.Time

	entryPrefix string // entryPrefix + key is a key's hash
	lruKey      string // sorted set of keys by last use, in ms
	genKey      string // counter naming tracked entries' generations
	epochKey    string // the table's epoch, which an empty Redis lacks
	channel     string // where the scripts tell changes of servers
	// Constant script arguments, boxed once so a call does not box them.
	argExpire, argSize, argPrefix, argPeriod any
	periodMS                                 int64

	local *Memory
	near  *nearCache // nil when disabled

	// down is the breaker: set while Redis is deemed unreachable, when
	// every call is served by local without waiting on Redis.
	down  atomic.Bool
	fails atomic.Int32 // consecutive failures while up
	// epoch is the table's epoch in Redis as this replica last synced
	// with it, nil before the first sync; lost is set while Redis holds
	// another (it lost the table), when calls are served by local, and
	// resync while a sync is due. See redis_epoch.go.
	epoch  atomic.Pointer[epochID]
	lost   atomic.Bool
	resync atomic.Bool
	// failSince is when the first of them started, Unix ns by time.Now.
	failSince atomic.Int64
	// stateMu orders breaker transitions and their OnStateChange calls,
	// so that the calls alternate down, up, down…
	stateMu sync.Mutex

	mu        sync.Mutex
	pending   map[string]pendingOp // keys changed locally, not yet in Redis
	npending  atomic.Int32         // len(pending), read without mu
	repairing bool                 // the repair goroutine runs
	mirroring bool                 // the mirror's subscription runs
	closed    atomic.Bool
	base      context.Context // canceled by Close, for the repair goroutine
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

var _ Store = (*Redis)(nil)

// pendingOp is a change made locally that Redis has not got: a stick (the
// server is read back from the local table, which the outage may have
// changed again), a swap from old, or a delete, and when it was made, by
// Now in ms.
type pendingOp struct {
	at   int64
	del  bool
	swap bool   // a Swap: written back only over old or none
	old  string // the server the Swap expected
}

// NewRedis returns a store for table c in Redis through client, with
// defaults filled in. The client stays the caller's: Close does not close
// it, so that several tables can share one.
func NewRedis(client redis.UniversalClient, c Config, o RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("sticktable: NewRedis needs a client")
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("sticktable %s: %w", c.Name, err)
	}
	// Without it go-redis bounds a call by its ReadTimeout (3s by
	// default), not by the context, and Timeout would bound nothing.
	if !deadlinesHonoured(client) {
		return nil, fmt.Errorf("sticktable %s: the Redis client must be made with ContextTimeoutEnabled: true, so that Timeout bounds each call", c.Name)
	}
	// Braces would move the hash tag, and with it the slot Cluster puts
	// the table's keys in, which the scripts need to be one.
	if strings.ContainsAny(c.Name, "{}") {
		return nil, fmt.Errorf("sticktable %s: name: a Redis table's name may not contain { or }", c.Name)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	if o.NearCacheTTL == 0 {
		o.NearCacheTTL = DefaultNearCacheTTL
	}
	// An entry served from the near-cache is refreshed in Redis only on a
	// near-cache miss, so at least every NearCacheTTL while it is in use:
	// with the cap, Redis keeps it at least 0.9 × Expire after its last use.
	o.NearCacheTTL = min(o.NearCacheTTL, c.Expire/10)
	if o.NearCacheSize <= 0 {
		o.NearCacheSize = DefaultNearCacheSize
	}
	if o.FailuresToOpen <= 0 {
		o.FailuresToOpen = DefaultFailuresToOpen
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	local, err := NewMemory(c, o.Now)
	if err != nil {
		return nil, err
	}
	tag := o.Prefix + "st:{" + c.Name + "}:"
	period := max(c.RatePeriod.Milliseconds(), 1)
	r := &Redis{
		client:      client,
		name:        c.Name,
		stride:      c.keyLen(),
		fixed:       c.Type != TypeString,
		size:        c.Size,
		opt:         o,
		now:         o.Now,
		entryPrefix: tag + "e:",
		lruKey:      tag + "lru",
		genKey:      tag + "gen",
		epochKey:    tag + "epoch",
		channel:     tag + "ch",
		argExpire:   strconv.FormatInt(max(c.Expire.Milliseconds(), 1), 10),
		argSize:     strconv.Itoa(c.Size),
		argPrefix:   tag + "e:",
		argPeriod:   strconv.FormatInt(period, 10),
		periodMS:    period,
		local:       local,
		pending:     map[string]pendingOp{},
	}
	if o.NearCacheTTL > 0 {
		r.near = newNearCache(min(o.NearCacheSize, c.Size), o.NearCacheTTL)
	}
	r.base, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Lookup implements Store. It answers from the near-cache when it can,
// else from Redis; from the local table while Redis is down (but for a
// key the local table does not know), for a key changed locally and not
// yet written back, and when this call to Redis fails.
func (r *Redis) Lookup(ctx context.Context, key string) (Entry, bool, error) {
	if err := r.check(key); err != nil {
		return Entry{}, false, err
	}
	if r.lost.Load() || r.isPending(key) {
		return r.local.Lookup(ctx, key)
	}
	if r.down.Load() {
		// The breaker is open: the local table, which hears the fleet's
		// changes, answers what it knows without waiting. A key it does
		// not know is asked of Redis once, as a server picked blind
		// would lose the session: a breaker opened by this host's stall
		// with Redis well, or a message not heard yet, must not cost it.
		if e, found, err := r.local.Lookup(ctx, key); found || err != nil {
			return e, found, err
		}
	}
	t := r.now()
	var ver uint32
	if r.near != nil {
		e, found, hit, v := r.near.get(key, t.UnixNano())
		if hit {
			return e, found, nil
		}
		ver = v
	}
	ep := r.epochArg()
	v, err := r.eval(ctx, lookupScript, r.keysE(key), key, t.UnixMilli(), r.argExpire, r.argSize, r.argPrefix, ep)
	if err != nil {
		e, found, lerr := r.local.Lookup(ctx, key)
		if found || lerr != nil {
			return e, found, lerr
		}
		// Unknown here, and Redis was slow rather than gone: one more
		// Timeout is cheaper than a server picked blind, which loses the
		// session's state for this request.
		if v, err = r.retry(ctx, err, lookupScript, r.keysE(key), key, t.UnixMilli(), r.argExpire, r.argSize, r.argPrefix, ep); err != nil {
			return Entry{}, false, nil
		}
	}
	if r.epochLost(v) {
		return r.local.Lookup(ctx, key)
	}
	e, found := r.entry(v, t.UnixMilli())
	// The local table mirrors what Redis answers, so that it can route
	// this replica's sessions while Redis is down.
	if found {
		_ = r.local.Stick(ctx, key, e.Server)
	} else {
		_ = r.local.Delete(ctx, key)
	}
	if r.near != nil {
		r.near.fill(key, ver, e, found, t.UnixNano())
	}
	return e, found, nil
}

// Stick implements Store: written to Redis before it returns, so another
// replica finds it on the client's next request; to the local table (and
// later written back) when Redis cannot take it.
func (r *Redis) Stick(ctx context.Context, key, server string) error {
	if err := r.check(key); err != nil {
		return err
	}
	if r.down.Load() {
		return r.stickLocal(ctx, key, server)
	}
	t := r.now()
	v, err := r.eval(ctx, stickScript, r.keys2(key), key, t.UnixMilli(), r.argExpire, r.argSize, r.argPrefix, server)
	if err != nil {
		return r.stickLocal(ctx, key, server)
	}
	if isFull(v) {
		return ErrFull
	}
	_ = r.local.Stick(ctx, key, server)
	r.unpend(key)
	if r.near != nil {
		e, _ := r.entry(v, t.UnixMilli())
		r.near.set(key, e, true, t.UnixNano())
	}
	return nil
}

// Swap implements Store: in Redis, whose entry wins over this replica's
// guess, and which the local table then mirrors; in the local table when
// Redis cannot answer, written back later under the same condition, so
// that a replica that could not see Redis's entry never replaces it.
func (r *Redis) Swap(ctx context.Context, key, old, server string) (string, error) {
	if err := r.check(key); err != nil {
		return "", err
	}
	if r.lost.Load() {
		return r.swapLocal(ctx, key, old, server)
	}
	// Tried even with the breaker open, once: a swap is a new session or
	// a redispatch, rare next to lookups, and it is what the other
	// replicas need on the client's next request, before any write-back;
	// a breaker opened by this host's stall, with Redis well, must not
	// keep the fleet from knowing the sessions made here.
	down := r.down.Load()
	t := r.now()
	ep := r.epochArg()
	v, err := r.eval(ctx, swapScript, r.keysE(key), key, t.UnixMilli(), r.argExpire, r.argSize, r.argPrefix, old, server, ep)
	if err != nil && !down {
		// A swap left in the local table reaches Redis only when written
		// back, after the client may have asked another replica, which
		// would then pick a server of its own: worth one more Timeout.
		v, err = r.retry(ctx, err, swapScript, r.keysE(key), key, t.UnixMilli(), r.argExpire, r.argSize, r.argPrefix, old, server, ep)
	}
	if err != nil || r.epochLost(v) {
		return r.swapLocal(ctx, key, old, server)
	}
	if isFull(v) {
		return "", ErrFull
	}
	e, _ := r.entry(v, t.UnixMilli())
	_ = r.local.Stick(ctx, key, e.Server)
	r.unpend(key)
	if r.near != nil {
		r.near.set(key, e, true, t.UnixNano())
	}
	return e.Server, nil
}

// swapLocal swaps in the local table and, when that took, records the
// swap for writing back.
func (r *Redis) swapLocal(ctx context.Context, key, old, server string) (string, error) {
	cur, err := r.local.Swap(ctx, key, old, server)
	if err != nil {
		return "", err
	}
	if cur == server {
		r.pend(key, pendingOp{at: r.now().UnixMilli(), swap: true, old: old})
	}
	return cur, nil
}

func (r *Redis) stickLocal(ctx context.Context, key, server string) error {
	if err := r.local.Stick(ctx, key, server); err != nil {
		return err
	}
	r.pend(key, pendingOp{at: r.now().UnixMilli()})
	return nil
}

// Track implements Store. It always asks Redis, never the near-cache, so
// that a rate counts every replica's requests; while Redis is down it
// counts in the local table, which knows only this replica's.
func (r *Redis) Track(ctx context.Context, key string) (Entry, func(), error) {
	if r.down.Load() {
		return r.local.Track(ctx, key)
	}
	e, gen, err := r.count(ctx, key, 1)
	if err == errFallback {
		return r.local.Track(ctx, key)
	}
	if err != nil {
		return Entry{}, noRelease, err
	}
	rel := &redisRelease{r: r, key: key, gen: gen}
	return e, rel.do, nil
}

// Hit implements Store: Track's script without the connection.
func (r *Redis) Hit(ctx context.Context, key string) (Entry, error) {
	if r.down.Load() {
		return r.local.Hit(ctx, key)
	}
	e, _, err := r.count(ctx, key, 0)
	if err == errFallback {
		return r.local.Hit(ctx, key)
	}
	return e, err
}

// errFallback tells Track and Hit that Redis failed and the local table answers.
var errFallback = errors.New("sticktable: redis failed; the local table answers")

// count counts a request for key in Redis, conns (1 or 0) going to ConnCur,
// and returns the entry and its generation.
func (r *Redis) count(ctx context.Context, key string, conns int) (Entry, int64, error) {
	if err := r.check(key); err != nil {
		return Entry{}, 0, err
	}
	t := r.now()
	var ver uint32
	if r.near != nil {
		ver = r.near.version(key)
	}
	v, err := r.eval(ctx, trackScript, r.keys3(key), key, t.UnixMilli(), r.argExpire, r.argSize, r.argPrefix, r.argPeriod, conns)
	if err != nil {
		return Entry{}, 0, errFallback
	}
	if isFull(v) {
		return Entry{}, 0, ErrFull
	}
	e, _ := r.entry(v, t.UnixMilli())
	var gen int64
	if a, ok := v.([]any); ok && len(a) > 6 {
		gen, _ = a[6].(int64)
	}
	if r.near != nil {
		r.near.fill(key, ver, e, true, t.UnixNano())
	}
	return e, gen, nil
}

// redisRelease takes back one Track's connection in Redis. gen names the
// entry tracked, as Memory's slot generation does: a release after the key
// was deleted (or evicted) and made again does nothing.
type redisRelease struct {
	r    *Redis
	key  string
	gen  int64
	done atomic.Bool
}

// do has no context, so it bounds itself with Timeout. A release that
// cannot reach Redis is dropped: the entry's ConnCur stays one too high
// until the entry expires, which every replica's use postpones, so a
// lost release can outlive its request by Expire after the key's last use.
func (x *redisRelease) do() {
	if x.done.Swap(true) {
		return
	}
	r := x.r
	if r.closed.Load() || r.down.Load() {
		return
	}
	if _, err := r.eval(r.base, releaseScript, r.keys2(x.key), x.key, r.now().UnixMilli(), r.argExpire, r.argSize, r.argPrefix, x.gen); err == nil && r.near != nil {
		r.near.invalidate(x.key) // its ConnCur is one less now
	}
}

// AddGPC implements Store, in Redis (exact across replicas) or, while it
// is down, in the local table.
func (r *Redis) AddGPC(ctx context.Context, key string, n int64) (int64, error) {
	if err := r.check(key); err != nil {
		return 0, err
	}
	if r.down.Load() {
		return r.local.AddGPC(ctx, key, n)
	}
	t := r.now()
	var ver uint32
	if r.near != nil {
		ver = r.near.version(key)
	}
	v, err := r.eval(ctx, gpcScript, r.keys2(key), key, t.UnixMilli(), r.argExpire, r.argSize, r.argPrefix, n)
	if err != nil {
		return r.local.AddGPC(ctx, key, n)
	}
	if isFull(v) {
		return 0, ErrFull
	}
	e, _ := r.entry(v, t.UnixMilli())
	if r.near != nil {
		r.near.fill(key, ver, e, true, t.UnixNano())
	}
	return e.GPC, nil
}

// Delete implements Store, written through like Stick.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.check(key); err != nil {
		return err
	}
	if !r.down.Load() {
		if _, err := r.eval(ctx, deleteScript, r.keys2(key), key, r.now().UnixMilli(), r.argExpire, r.argSize, r.argPrefix); err == nil {
			_ = r.local.Delete(ctx, key)
			r.unpend(key)
			if r.near != nil {
				r.near.set(key, Entry{}, false, r.now().UnixNano())
			}
			return nil
		}
	}
	if err := r.local.Delete(ctx, key); err != nil {
		return err
	}
	r.pend(key, pendingOp{at: r.now().UnixMilli(), del: true})
	return nil
}

// Len implements Store: the LRU set's size once up to 1,000 members of
// expired entries are purged, so approximate while more linger (never
// below the live entries); the local table's while Redis is down.
func (r *Redis) Len(ctx context.Context) (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	if !r.down.Load() {
		v, err := r.eval(ctx, lenScript, []string{r.lruKey}, r.now().UnixMilli(), r.argExpire, r.argPrefix)
		if n, ok := v.(int64); err == nil && ok {
			return int(n), nil
		}
	}
	return r.local.Len(ctx)
}

// Entries implements Store: from Redis, most recently used first; the
// local table's while Redis is down.
func (r *Redis) Entries(ctx context.Context, offset, limit int) ([]KeyEntry, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if !r.down.Load() {
		t := r.now().UnixMilli()
		v, err := r.eval(ctx, entriesScript, []string{r.lruKey}, t, r.argExpire, r.argPrefix, offset, limit)
		if rows, ok := v.([]any); err == nil && ok {
			out := make([]KeyEntry, 0, len(rows))
			for _, row := range rows {
				a, _ := row.([]any)
				if len(a) < 7 {
					continue
				}
				key, _ := a[0].(string)
				if e, ok := r.entry(a[1:], t); ok {
					out = append(out, KeyEntry{Key: key, Entry: e})
				}
			}
			return out, nil
		}
	}
	return r.local.Entries(ctx, offset, limit)
}

// Close implements Store: it stops the repair goroutine and drops the
// local table; entries not yet written back are lost with it.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed.Swap(true) {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return r.local.Close()
}

// deadlinesHonoured reports whether client's calls end at their context's
// deadline; true for a client of a type it cannot tell.
func deadlinesHonoured(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

func (r *Redis) check(key string) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if n := len(key); n == 0 || n > r.stride || r.fixed && n != r.stride {
		want := fmt.Sprintf("1 to %d bytes", r.stride)
		if r.fixed {
			want = fmt.Sprintf("%d bytes", r.stride)
		}
		return fmt.Errorf("sticktable %s: a key of %d bytes, want %s (keys come from Config.Key)", r.name, len(key), want)
	}
	return nil
}

func (r *Redis) keys2(key string) []string {
	return []string{r.entryPrefix + key, r.lruKey}
}

// keysE are the keys of the scripts that check the table's epoch.
func (r *Redis) keysE(key string) []string {
	return []string{r.entryPrefix + key, r.lruKey, r.epochKey}
}

func (r *Redis) keys3(key string) []string {
	return []string{r.entryPrefix + key, r.lruKey, r.genKey}
}

// eval runs one script within Timeout and keeps the breaker's count. A nil
// reply is not an error: it is how a script says "no entry". A call the
// caller gave up on says nothing about Redis, so it is not counted.
func (r *Redis) eval(ctx context.Context, s *redis.Script, keys []string, args ...any) (any, error) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	v, err := s.Run(cctx, r.client, keys, args...).Result()
	cancel()
	if err == nil || errors.Is(err, redis.Nil) {
		if r.fails.Load() != 0 {
			r.fails.Store(0)
		}
		return v, nil
	}
	if ctx.Err() == nil {
		r.failed(err, start)
	}
	return nil, err
}

// retry runs a call once more after it failed with err, if err was a
// timeout, the breaker is still closed and the caller still waits: Redis
// slow for a moment (or this host starved of CPU) most often answers the
// second call, where the first was given up a moment too soon. Its
// failure is err again.
func (r *Redis) retry(ctx context.Context, err error, s *redis.Script, keys []string, args ...any) (any, error) {
	if !timedOut(err) || r.down.Load() || ctx.Err() != nil {
		return nil, err
	}
	return r.eval(ctx, s, keys, args...)
}

// failed counts a call, started at start, that failed, and opens the
// breaker at FailuresToOpen in a row. Timeouts open it only once the calls
// that failed started at least stallSpan × Timeout apart: a stall of Redis
// or of this host fails every call in flight at once, and the next calls
// find Redis again, so routing by the local table, which may not know a
// session another replica has just made, would cost more than the wait.
// Only one caller makes the transition; the others, finding it under way,
// go on without waiting for OnStateChange.
func (r *Redis) failed(err error, start time.Time) {
	n := r.fails.Add(1)
	if n == 1 {
		r.failSince.Store(start.UnixNano())
	}
	if n < int32(r.opt.FailuresToOpen) || r.down.Load() {
		return
	}
	if timedOut(err) && start.UnixNano()-r.failSince.Load() < stallSpan*int64(r.opt.Timeout) {
		return
	}
	if !r.stateMu.TryLock() {
		return
	}
	defer r.stateMu.Unlock()
	if r.down.Load() {
		return
	}
	r.down.Store(true)
	if r.opt.OnStateChange != nil {
		r.opt.OnStateChange(false, err)
	}
	r.mu.Lock()
	r.startRepair()
	r.mu.Unlock()
}

// stallSpan is how many Timeouts apart the first and the last of
// FailuresToOpen timed-out calls must have started to open the breaker.
const stallSpan = 2

// timedOut reports a call that outlasted its deadline, as opposed to one
// that Redis or the network refused.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// entry decodes a script's reply: server, conn_cur, gpc, rate counters
// and their period, which the scripts send as integers so that decoding
// parses nothing.
func (r *Redis) entry(v any, t int64) (Entry, bool) {
	a, ok := v.([]any)
	if !ok || len(a) < 6 {
		return Entry{}, false
	}
	s, _ := a[0].(string)
	conn, _ := a[1].(int64)
	gpc, _ := a[2].(int64)
	cur, _ := a[3].(int64)
	prev, _ := a[4].(int64)
	per, _ := a[5].(int64)
	return Entry{Server: s, ConnCur: conn, GPC: gpc, ReqRate: rateAt(cur, prev, per, t, r.periodMS)}, true
}

func isFull(v any) bool {
	n, ok := v.(int64)
	return ok && n < 0
}

// rateAt is Memory.rate for counters kept in Redis: periods are numbered
// from the Unix epoch in ms, so that every replica numbers them alike. A
// period number ahead of t's is another replica's clock running ahead: its
// period has only begun, so the previous one counts in full.
func rateAt(cur, prev, per, t, period int64) int64 {
	now := t / period
	var remain int64
	switch d := now - per; {
	case d < 0:
		remain = period
	case d == 0:
		remain = period - t%period
	case d == 1:
		cur, prev = 0, cur
		remain = period - t%period
	default:
		return 0
	}
	if prev <= 0 {
		return cur
	}
	hi, lo := bits.Mul64(uint64(prev), uint64(remain))
	q, _ := bits.Div64(hi, lo, uint64(period)) // q ≤ prev, so no overflow
	return cur + int64(q)
}

// isPending reports whether key was changed locally and not yet written
// back; such a key is answered locally, as Redis does not know it yet.
func (r *Redis) isPending(key string) bool {
	if r.npending.Load() == 0 {
		return false
	}
	r.mu.Lock()
	_, ok := r.pending[key]
	r.mu.Unlock()
	return ok
}

// pend records a local change for writing back. Past MaxPending (or the
// table's Size) further keys are not recorded: they stay local only.
func (r *Redis) pend(key string, op pendingOp) {
	if r.near != nil {
		r.near.invalidate(key)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return
	}
	if _, ok := r.pending[key]; !ok && len(r.pending) >= min(MaxPending, r.size) {
		return
	}
	r.pending[key] = op
	r.npending.Store(int32(len(r.pending)))
	r.startRepair()
}

// unpend forgets a local change that a write to Redis has superseded.
func (r *Redis) unpend(key string) {
	if r.npending.Load() == 0 {
		return
	}
	r.mu.Lock()
	delete(r.pending, key)
	r.npending.Store(int32(len(r.pending)))
	r.mu.Unlock()
}

// startRepair starts the repair goroutine unless it runs; r.mu is held.
func (r *Redis) startRepair() { r.startOnce(&r.repairing, r.repair) }

// startOnce starts fn, one of the table's goroutines, unless *running says
// it runs or the table is closed; r.mu is held. fn calls r.wg.Done.
func (r *Redis) startOnce(running *bool, fn func()) {
	if *running || r.closed.Load() {
		return
	}
	*running = true
	r.wg.Add(1)
	go fn()
}

// repair brings Redis up to date and closes the breaker. While the
// breaker is open it probes once per RetryAfter; once a probe succeeds it
// writes back what is pending and then closes the breaker, so that Redis
// knows what this replica learnt before the replica routes by Redis
// again. Keys still pending then (more came meanwhile) are answered
// locally until written back, which it goes on doing. It also runs with
// the breaker closed, for the keys of single failed calls, and ends when
// nothing is pending, or at Close.
func (r *Redis) repair() {
	defer r.wg.Done()
	wait := r.down.Load()
	for {
		if wait {
			t := time.NewTimer(r.opt.RetryAfter)
			select {
			case <-r.base.Done():
				t.Stop()
				r.stopRepair()
				return
			case <-t.C:
			}
		}
		wait = true
		probed := false
		if r.down.Load() {
			// Not PING: in Cluster that goes to any node, and this asks
			// the one holding the table's slot.
			ctx, cancel := context.WithTimeout(r.base, r.opt.Timeout)
			err := r.client.Exists(ctx, r.lruKey).Err()
			cancel()
			if err != nil {
				continue
			}
			probed = true
		}
		if r.resync.Load() {
			if err := r.republish(); err != nil {
				if r.base.Err() != nil {
					r.stopRepair()
					return
				}
				continue
			}
		}
		if err := r.writeBack(); err != nil {
			if r.base.Err() != nil {
				r.stopRepair()
				return
			}
			wait = err != errLost
			continue
		}
		if r.settle(probed) {
			return
		}
		wait = r.down.Load()
	}
}

func (r *Redis) stopRepair() {
	r.mu.Lock()
	r.repairing = false
	r.mu.Unlock()
}

// settle closes the breaker after a successful probe and write-back, and
// ends the goroutine (true) when nothing is left pending. A breaker that
// opened during the write-back stays open until the next probe.
func (r *Redis) settle(probed bool) bool {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	r.mu.Lock()
	up := false
	if r.down.Load() && probed && !r.closed.Load() {
		r.fails.Store(0)
		r.down.Store(false)
		up = true
	}
	done := r.closed.Load() || len(r.pending) == 0 && !r.down.Load() && !r.resync.Load()
	if done {
		r.repairing = false
	}
	r.mu.Unlock()
	if up {
		// Answers cached before the outage may predate changes made
		// during it.
		if r.near != nil {
			r.near.clear()
		}
		if r.opt.OnStateChange != nil {
			r.opt.OnStateChange(true, nil)
		}
	}
	return done
}

// writeBack makes one pass over the pending keys, writing them to Redis in
// pipelined batches of 256 scripts, each batch bounded by 10 × Timeout.
// The script keeps Redis's entry rather than this replica's when another
// replica used it after the local change (its LRU score is later): the
// fleet has been routing by Redis's choice more recently. A key Redis
// refuses with an error reply is dropped, as retrying would not help; a
// network error ends the pass with the key still pending.
func (r *Redis) writeBack() error {
	type item struct {
		key string
		op  pendingOp
		cmd *redis.Cmd
	}
	batch := make([]item, 0, writeBackBatch)
	r.mu.Lock()
	passes := len(r.pending)/writeBackBatch + 1
	r.mu.Unlock()
	for loaded := false; passes > 0; passes-- {
		batch = batch[:0]
		r.mu.Lock()
		for k, op := range r.pending {
			if len(batch) == writeBackBatch {
				break
			}
			batch = append(batch, item{key: k, op: op})
		}
		r.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(r.base, 10*r.opt.Timeout)
		if !loaded {
			// EVALSHA in a pipeline cannot fall back to EVAL, and a
			// restarted Redis has lost its scripts.
			if err := loadScripts(ctx, r.client, writeBackScript, swapScript); err != nil {
				cancel()
				return err
			}
			loaded = true
		}
		pipe := r.client.Pipeline()
		now := r.now().UnixMilli()
		for i := range batch {
			it := &batch[i]
			server, del := "", "1"
			if !it.op.del {
				e, ok, err := r.local.Lookup(ctx, it.key)
				if err != nil {
					cancel()
					return err
				}
				if !ok {
					continue // expired here meanwhile: nothing to teach
				}
				server, del = e.Server, "0"
			}
			if it.op.swap && !it.op.del {
				it.cmd = swapScript.EvalSha(ctx, pipe, r.keysE(it.key), it.key, now, r.argExpire, r.argSize, r.argPrefix, it.op.old, server, r.epochArg())
				continue
			}
			it.cmd = writeBackScript.EvalSha(ctx, pipe, r.keys2(it.key), it.key, now, r.argExpire, r.argSize, r.argPrefix, it.op.at, server, del)
		}
		_, _ = pipe.Exec(ctx)
		cancel()
		var failed error
		r.mu.Lock()
		for _, it := range batch {
			if it.cmd != nil {
				if err := it.cmd.Err(); err != nil && !errors.Is(err, redis.Nil) && !refused(err) {
					failed = err
					continue
				}
				if isLost(it.cmd.Val()) {
					failed = errLost // pending until the table is republished
					continue
				}
			}
			// A newer local change stays pending.
			if op, ok := r.pending[it.key]; ok && op == it.op {
				delete(r.pending, it.key)
				if it.op.swap && it.cmd != nil {
					// Redis's entry, if it kept its own, is the fleet's:
					// this replica routes by it from now on.
					if e, ok := r.entry(it.cmd.Val(), now); ok {
						_ = r.local.Stick(ctx, it.key, e.Server)
					}
				}
			}
		}
		r.npending.Store(int32(len(r.pending)))
		r.mu.Unlock()
		if failed == errLost {
			r.requestResync(true)
		}
		if failed != nil {
			return failed
		}
	}
	return nil
}

// loadScripts loads scripts into Redis for EVALSHA in a pipeline.
func loadScripts(ctx context.Context, c redis.UniversalClient, scripts ...*redis.Script) error {
	for _, s := range scripts {
		if err := s.Load(ctx, c).Err(); err != nil {
			return err
		}
	}
	return nil
}

// refused reports an error reply that a retry would meet again, as
// opposed to Redis loading, failing over or unreachable.
func refused(err error) bool {
	return redis.HasErrorPrefix(err, "ERR") || redis.HasErrorPrefix(err, "WRONGTYPE")
}

// nearCache holds recent Lookup answers in a fixed number of 4-way
// buckets, so it is bounded without bookkeeping and a hit allocates
// nothing; a full bucket drops the answer closest to going stale. A
// bucket's version counts the writes to it: a Lookup fills its answer in
// only if no write came between its question to Redis and then, lest an
// answer older than a local Stick overwrite the Stick's.
type nearCache struct {
	seed    maphash.Seed
	mask    uint64
	ttl     int64
	buckets []nearBucket
}

const nearWays = 4

type nearBucket struct {
	mu    sync.Mutex
	ver   uint32
	slots [nearWays]nearSlot
}

type nearSlot struct {
	key   string // "" for an empty slot; keys are never empty
	found bool
	until int64 // Unix ns by Now
	e     Entry
}

func newNearCache(size int, ttl time.Duration) *nearCache {
	n := 1
	for n*nearWays < size {
		n *= 2
	}
	return &nearCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), ttl: int64(ttl), buckets: make([]nearBucket, n)}
}

func (c *nearCache) bucket(key string) *nearBucket {
	return &c.buckets[maphash.String(c.seed, key)&c.mask]
}

// get returns key's answer if cached and fresh (hit), else the bucket's
// version for a later fill.
func (c *nearCache) get(key string, now int64) (e Entry, found, hit bool, ver uint32) {
	b := c.bucket(key)
	b.mu.Lock()
	for i := range b.slots {
		if s := &b.slots[i]; s.key == key {
			if now < s.until {
				e, found = s.e, s.found
				b.mu.Unlock()
				return e, found, true, 0
			}
			break
		}
	}
	ver = b.ver
	b.mu.Unlock()
	return Entry{}, false, false, ver
}

func (c *nearCache) version(key string) uint32 {
	b := c.bucket(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ver
}

// fill caches an answer read from Redis unless a write reached the bucket
// since ver was read.
func (c *nearCache) fill(key string, ver uint32, e Entry, found bool, now int64) {
	b := c.bucket(key)
	b.mu.Lock()
	if b.ver == ver {
		b.put(key, e, found, now, now+c.ttl)
	}
	b.mu.Unlock()
}

// set caches what this replica has just written to Redis, whatever the
// bucket held: it is the newest answer this replica knows.
func (c *nearCache) set(key string, e Entry, found bool, now int64) {
	b := c.bucket(key)
	b.mu.Lock()
	b.ver++
	b.put(key, e, found, now, now+c.ttl)
	b.mu.Unlock()
}

// put takes key's slot, else a free or stale one, else the one that goes
// stale first.
func (b *nearBucket) put(key string, e Entry, found bool, now, until int64) {
	v := 0
	for i := range b.slots {
		s := &b.slots[i]
		if s.key == key {
			v = i
			break
		}
		if s.key == "" || s.until <= now {
			v = i
		} else if o := &b.slots[v]; o.key != "" && o.until > now && s.until < o.until {
			v = i
		}
	}
	b.slots[v] = nearSlot{key: key, found: found, until: until, e: e}
}

func (c *nearCache) invalidate(key string) {
	b := c.bucket(key)
	b.mu.Lock()
	b.ver++
	for i := range b.slots {
		if b.slots[i].key == key {
			b.slots[i] = nearSlot{}
		}
	}
	b.mu.Unlock()
}

func (c *nearCache) clear() {
	for i := range c.buckets {
		b := &c.buckets[i]
		b.mu.Lock()
		b.ver++
		b.slots = [nearWays]nearSlot{}
		b.mu.Unlock()
	}
}

// The scripts. Each takes KEYS[1] = the entry's hash, KEYS[2] = the
// table's LRU set, and ARGV = key, now (ms), expire (ms), size, entry key
// prefix, then its own arguments. An entry is a hash of the fields it
// needs: s (server), c (conn_cur), g (gpc), rc/rp (requests in the current
// and previous period), p (the period's number) and n (the generation of a
// tracked entry); fields left out are zero, so a stuck-only entry holds one.
//
// Invariant: every entry hash has a member in the LRU set (the scripts
// change both together), so ZCARD ≥ live entries, and an insert evicts
// until ZCARD ≤ Size: the table never holds more than Size entries.
// Members outlive their hash when it expires; they are purged by score
// from the old end, and only once their hash is gone, so PEXPIRE alone
// decides expiry. The evicted entries' keys are not in KEYS, which
// Cluster allows as the {table} hash tag puts them in the script's slot.
var scriptPrelude = `
local e, lru, k = KEYS[1], KEYS[2], ARGV[1]
local now, exp, size, pfx = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]

-- room makes the set hold at most size members: first it drops members
-- of expired entries (oldest first, a few), then it evicts the least
-- recently used entries, passing over (as if just used) those with
-- requests in flight.
local function room()
  local over = redis.call('ZCARD', lru) - size
  if over <= 0 then return true end
  local old = redis.call('ZRANGEBYSCORE', lru, '-inf', tonumber(now) - tonumber(exp), 'LIMIT', 0, ` + strconv.Itoa(redisPurgeScan) + `)
  for _, m in ipairs(old) do
    if m ~= k and redis.call('EXISTS', pfx .. m) == 0 then
      redis.call('ZREM', lru, m)
      over = over - 1
      if over <= 0 then return true end
    end
  end
  local cand = redis.call('ZRANGE', lru, 0, over + ` + strconv.Itoa(redisPassScan) + `)
  for _, m in ipairs(cand) do
    if m ~= k then
      if tonumber(redis.call('HGET', pfx .. m, 'c') or 0) > 0 then
        redis.call('ZADD', lru, now, m)
      else
        redis.call('DEL', pfx .. m)
        redis.call('ZREM', lru, m)
        over = over - 1
        if over <= 0 then return true end
      end
    end
  end
  return false
end

-- open makes key's entry the most recently used and refreshes its expiry,
-- creating its place when create is set: 1 found, 2 created (the caller
-- sets a field, then PEXPIRE), 0 absent, -1 no room (ErrFull).
local function open(create)
  if redis.call('PEXPIRE', e, exp) == 1 then
    -- A member missing (the set was removed) comes back under Size.
    if redis.call('ZADD', lru, now, k) == 0 or room() then return 1 end
    redis.call('ZREM', lru, k)
    return -1
  end
  if not create then return 0 end
  redis.call('ZADD', lru, now, k)
  if room() then return 2 end
  redis.call('ZREM', lru, k)
  return -1
end

-- lost tells that Redis no longer holds the table as the replica knew it:
-- the epoch in KEYS[3] is not ep, the replica's (it is gone when Redis
-- came back empty). An ep of '' (the replica has not synced yet) passes.
local function lost(ep)
  return ep ~= '' and redis.call('GET', KEYS[3]) ~= ep
end

-- tell publishes a change of the key's server to every replica's local
-- table (see redis_mirror.go), on the table's channel: KEYS[2] with ch
-- for its lru. A server s is told as 's' .. #s .. ':' .. s .. key, a
-- delete (srv nil) as 'd' .. key. pcall: an ACL user without the
-- channel loses the mirror, not the change.
local function tell(srv)
  local ch = string.sub(lru, 1, -4) .. 'ch'
  if srv then
    redis.pcall('PUBLISH', ch, 's' .. #srv .. ':' .. srv .. k)
  else
    redis.pcall('PUBLISH', ch, 'd' .. k)
  end
end

local function reply()
  local v = redis.call('HMGET', e, 's', 'c', 'g', 'rc', 'rp', 'p')
  return {v[1] or '', tonumber(v[2] or 0), tonumber(v[3] or 0), tonumber(v[4] or 0), tonumber(v[5] or 0), tonumber(v[6] or 0)}
end
`

var (
	// ARGV[6] is the replica's epoch of the table; KEYS[3] the epoch.
	lookupScript = redis.NewScript(scriptPrelude + `
if lost(ARGV[6]) then return -2 end
if open(false) == 0 then return false end
return reply()
`)

	// ARGV[6] is the server, "" for none.
	stickScript = redis.NewScript(scriptPrelude + `
local cur = redis.call('HGET', e, 's') or ''
local o = open(true)
if o < 0 then return -1 end
redis.call('HSET', e, 's', ARGV[6])
if o == 2 then redis.call('PEXPIRE', e, exp) end
if cur ~= ARGV[6] then tell(ARGV[6]) end
return reply()
`)

	// ARGV[6] is the server expected, ARGV[7] the new one: it is set only
	// over the one expected or none, else the entry stays as it is (used
	// all the same) and the reply names the server that won. ARGV[8] is
	// the replica's epoch of the table; KEYS[3] the epoch.
	swapScript = redis.NewScript(scriptPrelude + `
if lost(ARGV[8]) then return -2 end
local cur = redis.call('HGET', e, 's') or ''
local o = open(true)
if o < 0 then return -1 end
local set = cur == '' or cur == ARGV[6]
if set then redis.call('HSET', e, 's', ARGV[7]) end
if o == 2 then redis.call('PEXPIRE', e, exp) end
if set and cur ~= ARGV[7] then tell(ARGV[7]) end
return reply()
`)

	// ARGV[6] is RatePeriod in ms, ARGV[7] what ConnCur gains (1 for
	// Track, 0 for Hit); KEYS[3] the generation counter. The
	// counters roll as Memory.count does; a stored period ahead of now's
	// is another replica's clock running ahead, and is kept.
	trackScript = redis.NewScript(scriptPrelude + `
local o = open(true)
if o < 0 then return -1 end
local v = redis.call('HMGET', e, 'rc', 'rp', 'p', 'n')
local per = math.floor(tonumber(now) / tonumber(ARGV[6]))
local rc, rp, p = tonumber(v[1] or 0), tonumber(v[2] or 0), tonumber(v[3] or per)
if per > p then
  if per == p + 1 then rp = rc else rp = 0 end
  rc, p = 0, per
end
local n = tonumber(v[4] or 0)
if n == 0 then n = redis.call('INCR', KEYS[3]) end
redis.call('HSET', e, 'rc', rc + 1, 'rp', rp, 'p', p, 'n', n)
if tonumber(ARGV[7]) > 0 then redis.call('HINCRBY', e, 'c', ARGV[7]) end
if o == 2 then redis.call('PEXPIRE', e, exp) end
local r = reply()
r[7] = n
return r
`)

	// ARGV[6] is the generation Track returned. ZADD XX: a release does
	// not bring back an LRU member, lest the set outgrow Size.
	releaseScript = redis.NewScript(scriptPrelude + `
local v = redis.call('HMGET', e, 'n', 'c')
if tonumber(v[1] or 0) ~= tonumber(ARGV[6]) then return 0 end
if tonumber(v[2] or 0) > 0 then redis.call('HINCRBY', e, 'c', -1) end
redis.call('PEXPIRE', e, exp)
redis.call('ZADD', lru, 'XX', now, k)
return 1
`)

	// ARGV[6] is the amount.
	gpcScript = redis.NewScript(scriptPrelude + `
local o = open(true)
if o < 0 then return -1 end
redis.call('HINCRBY', e, 'g', ARGV[6])
if o == 2 then redis.call('PEXPIRE', e, exp) end
return reply()
`)

	deleteScript = redis.NewScript(scriptPrelude + `
if redis.call('DEL', e) == 1 then tell(nil) end
redis.call('ZREM', lru, k)
return 1
`)

	// KEYS[1] is the LRU set; ARGV = now, expire, entry key prefix.
	// ARGV[4] and ARGV[5] are the offset and limit; read-only, so no
	// expiry is refreshed. Members whose entry expired are passed over.
	entriesScript = redis.NewScript(`
local lru, pfx = KEYS[1], ARGV[3]
local keys = redis.call('ZREVRANGEBYSCORE', lru, '+inf', tonumber(ARGV[1]) - tonumber(ARGV[2]), 'LIMIT', tonumber(ARGV[4]), tonumber(ARGV[5]))
local out = {}
for _, k in ipairs(keys) do
  local v = redis.call('HMGET', pfx .. k, 's', 'c', 'g', 'rc', 'rp', 'p')
  if redis.call('EXISTS', pfx .. k) == 1 then
    out[#out + 1] = {k, v[1] or '', tonumber(v[2] or 0), tonumber(v[3] or 0), tonumber(v[4] or 0), tonumber(v[5] or 0), tonumber(v[6] or 0)}
  end
end
return out
`)

	lenScript = redis.NewScript(`
local lru, pfx = KEYS[1], ARGV[3]
local old = redis.call('ZRANGEBYSCORE', lru, '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]), 'LIMIT', 0, ` + strconv.Itoa(redisLenScan) + `)
local dead = {}
for _, m in ipairs(old) do
  if redis.call('EXISTS', pfx .. m) == 0 then dead[#dead + 1] = m end
end
if #dead > 0 then redis.call('ZREM', lru, unpack(dead)) end
return redis.call('ZCARD', lru)
`)

	// ARGV[6] is when the key was changed locally (ms), ARGV[7] the
	// server, ARGV[8] "1" for a delete. Redis's entry stays when it was
	// used after the local change.
	writeBackScript = redis.NewScript(scriptPrelude + `
local used = redis.call('ZSCORE', lru, k)
if used and tonumber(used) > tonumber(ARGV[6]) and redis.call('EXISTS', e) == 1 then return 0 end
if ARGV[8] == '1' then
  if redis.call('DEL', e) == 1 then tell(nil) end
  redis.call('ZREM', lru, k)
  return 1
end
local cur = redis.call('HGET', e, 's') or ''
local o = open(true)
if o < 0 then return -1 end
redis.call('HSET', e, 's', ARGV[7])
if o == 2 then redis.call('PEXPIRE', e, exp) end
if cur ~= ARGV[7] then tell(ARGV[7]) end
return 1
`)
)
