package sticktable

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchRedis is a store on a redis-server of the benchmark's own, holding
// n session IDs stuck to servers.
func benchRedis(b *testing.B, o RedisOptions, n int) (*Redis, []string) {
	b.Helper()
	srv := startRedis(b)
	r := newRedisStore(b, srv.client(), Config{Name: "bench", Size: 100_000}, o)
	keys := sessionIDs(n)
	for i, k := range keys {
		if err := r.Stick(ctx, k, servers[i%len(servers)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	return r, keys
}

func BenchmarkRedisLookupNearCacheHit(b *testing.B) {
	r, keys := benchRedis(b, RedisOptions{NearCacheTTL: time.Hour}, 1000)
	for _, k := range keys {
		lookup(b, r, k)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok, err := r.Lookup(ctx, keys[i%len(keys)]); !ok || err != nil {
			b.Fatal(ok, err)
		}
		i++
	}
}

// BenchmarkRedisLookupRoundTrip is a Lookup that asks Redis: one EVALSHA
// over loopback, so the network part of a cross-zone round trip is not in
// it.
func BenchmarkRedisLookupRoundTrip(b *testing.B) {
	r, keys := benchRedis(b, noNear, 1000)
	i := 0
	for b.Loop() {
		if _, ok, err := r.Lookup(ctx, keys[i%len(keys)]); !ok || err != nil {
			b.Fatal(ok, err)
		}
		i++
	}
}

func BenchmarkRedisStick(b *testing.B) {
	r, keys := benchRedis(b, RedisOptions{}, 1000)
	i := 0
	for b.Loop() {
		if err := r.Stick(ctx, keys[i%len(keys)], servers[i%len(servers)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRedisTrack is a Track and its release: two round trips.
func BenchmarkRedisTrack(b *testing.B) {
	r, keys := benchRedis(b, RedisOptions{}, 1000)
	i := 0
	for b.Loop() {
		_, release, err := r.Track(ctx, keys[i%len(keys)])
		if err != nil {
			b.Fatal(err)
		}
		release()
		i++
	}
}

// BenchmarkRedisMemory1M measures what Redis takes per entry: a table of a
// million 32-byte session IDs, each stuck to a server, filled by the Stick
// script in pipelines, as INFO memory's used_memory grows by it. It runs
// once whatever b.N, and takes some seconds.
func BenchmarkRedisMemory1M(b *testing.B) {
	const n = 1_000_000
	srv := startRedis(b)
	client := srv.client()
	r := newRedisStore(b, client, Config{Name: "sessions", Size: n}, RedisOptions{Prefix: "sekisho:"})
	keys := sessionIDs(n)
	if err := stickScript.Load(ctx, client).Err(); err != nil {
		b.Fatal(err)
	}
	before := usedMemory(b, client)
	start := time.Now()
	now := time.Now().UnixMilli()
	for lo := 0; lo < n; lo += 1000 {
		pipe := client.Pipeline()
		for i := lo; i < lo+1000; i++ {
			stickScript.EvalSha(ctx, pipe, r.keys2(keys[i]), keys[i], now, r.argExpire, r.argSize, r.argPrefix, servers[i%len(servers)])
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	fill := time.Since(start)
	after := usedMemory(b, client)
	if l := storeLen(b, r); l != n {
		b.Fatalf("Len = %d, want %d", l, n)
	}
	perEntry := float64(after-before) / n
	b.Logf("%d entries with %d-byte keys (Redis key %q + key): %.0f bytes/entry in Redis (used_memory %d → %d); filled in %v",
		n, len(keys[0]), r.entryPrefix, perEntry, before, after, fill.Round(time.Millisecond))
	if stats, err := client.Info(ctx, "commandstats").Result(); err == nil {
		for line := range strings.SplitSeq(stats, "\r\n") {
			if strings.HasPrefix(line, "cmdstat_evalsha:") {
				b.Logf("%s", line)
			}
		}
	}
	for b.Loop() {
	}
	// After the loop, which would reset them.
	b.ReportMetric(perEntry, "bytes/entry")
	b.ReportMetric(fill.Seconds(), "s-to-fill")
}

func usedMemory(b *testing.B, c redis.UniversalClient) int64 {
	b.Helper()
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no used_memory in INFO memory: %q", info)
	return 0
}
