// Package sticktable holds stick tables as HAProxy has them: named tables of
// entries keyed by a string, an IP address or an integer, each entry holding
// the server its key is stuck to and the key's counters: requests in flight
// (HAProxy's conn_cur), a request rate (http_req_rate) and a general-purpose
// counter (gpc).
//
// # Store
//
// Store is a table as the gateway uses it. Every method takes a context and
// returns an error, and an Entry is a value that names its server, so that a
// store shared by several gateway replicas (Redis, across zones) stands
// behind the same interface as Memory, the one in this process. Raw keys go
// through Config.Key first, which gives one form per client whichever store
// holds it: an IPv4 address and its IPv4-mapped IPv6 form are one key.
//
// # Size and eviction
//
// A table holds at most Size entries. A new key in a full table evicts the
// least recently used entry, any call that finds or creates an entry being
// a use. Memory splits a table into shards, up to 64 of at least 1,024
// entries each, each under its own lock with an exact LRU list over its
// share of Size; the shares add up to Size. Eviction is thus exact LRU in a
// table of fewer than 2,048 entries (one shard) and per-shard approximate
// LRU in a larger one, which also evicts a little before it is full, as
// keys spread unevenly: a million-entry table holds 99.7% of a million
// distinct keys.
//
// An entry with a request in flight (ConnCur > 0) is neither evicted nor
// expired: it is passed over as if just used. When nothing else in its shard
// can go, a new key fails with ErrFull rather than overfill the table.
//
// # Expiry
//
// An entry expires Expire after its last use, the release of a Track
// included. As every use pushes expiry back by the same duration, LRU order
// is expiry order, so the expired entries are at the tail of the list: each
// call removes up to 16 from its shard's tail, without a goroutine, and an
// expired entry is absent to every call until it is removed. Len removes all
// of them before counting.
//
// # Request rate
//
// ReqRate is HAProxy's freq_ctr over RatePeriod: an entry counts the
// requests of the current period and of the one before, and the rate is
//
//	cur + prev × (time left in the current period) / RatePeriod
//
// rounded down, as if the previous period's requests had come evenly. Two
// counters give a sliding window without a timestamp per request. Periods
// are counted from the table's creation, not from each key's first request.
//
// # Memory
//
// Memory holds no pointer per entry, so the garbage collector has nothing
// to scan: a shard's entries are an array of 48-byte slots linked into the
// LRU list by index, one byte array of keys at a fixed stride (KeyLen; 16
// for ip, 8 for integer) and an open-addressing index of 8-byte buckets.
// Server names are interned per table and entries hold their index.
// BenchmarkMemory1M measured 98 bytes per entry for a full million-entry
// table of 32-byte session IDs and 82 for IPv6 addresses (heap after a
// collection). The stated bound, which TestMemory_MillionEntriesWithinBound
// checks, is 128 bytes per entry for 32-byte string keys: 128 MB for a
// million. A table's arrays grow as it fills and are not given back until
// Close.
//
// # Cost per call
//
// Lookup, Stick and AddGPC allocate nothing once the table's arrays have
// grown and the server names are interned; Track allocates its release func and the flag that makes it
// idempotent (48 bytes in two allocations). Each call reads the clock once,
// and a release once more; where time.Now is dear, NewMemory takes a
// coarser clock.
//
// # Redis
//
// Redis (NewRedis) keeps a table in Redis for every replica: one Lua script
// per call, so counts are exact fleet-wide. Keys Prefix+"st:{name}:e:"+key
// (a hash) and …:lru (a sorted set by last use) share a hash tag, so a
// Cluster keeps a table in one slot. Size is exact: the scripts keep a set
// member per entry and evict the least recently used down to Size on
// insert. Lookup answers are near-cached for up to NearCacheTTL (at most
// Expire/10): a replica may route by an answer that old, and sees its own
// writes at once. When Redis fails, calls are answered from a local Memory
// with no error; after FailuresToOpen failures a breaker stops waiting,
// probes every RetryAfter, writes back the keys learnt meanwhile (Redis's
// entry wins if it was used since, or holds another server than a swap
// expected), then closes. A failed lookup is unknown, not absent: what is
// learnt after it is a Swap, which keeps Redis's server. Each replica's
// local table also hears every change of a server the others store (a
// Redis channel), so it knows the fleet's sessions when Redis is slow,
// and republishes them when Redis comes back without the table (told by
// a random epoch key that an empty Redis lacks). BenchmarkRedisMemory1M
// measured 335 bytes per entry in Redis for a million 32-byte keys.
package sticktable
