package sticktable

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// newRedisStore makes a store of table c (named "test" by default) on
// client, closed at the test's end.
func newRedisStore(t testing.TB, client redis.UniversalClient, c Config, o RedisOptions) *Redis {
	t.Helper()
	if c.Name == "" {
		c.Name = "test"
	}
	if o.Prefix == "" {
		o.Prefix = "sekisho:"
	}
	r, err := NewRedis(client, c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// noNear turns the near-cache off, for tests of what Redis holds; its Timeout is generous because the
// tests that use it check semantics, and a slow run (-race) must not turn
// a call into a fallback.
var noNear = RedisOptions{NearCacheTTL: -1, Timeout: 2 * time.Second}

func withClock(o RedisOptions, clk *fakeClock) RedisOptions {
	o.Now = clk.now
	return o
}

// storeDo is do for any store: ops like "stick a", "lookup a", "track a"
// (released at once), "gpc a" and "delete a". The clock, when given, moves
// 1ms before each op so that no two uses tie in LRU order.
func storeDo(t *testing.T, s Store, clk *fakeClock, ops ...string) {
	t.Helper()
	for _, op := range ops {
		if clk != nil {
			clk.add(time.Millisecond)
		}
		verb, key, _ := strings.Cut(op, " ")
		var err error
		switch verb {
		case "stick":
			err = s.Stick(ctx, key, "s1")
		case "lookup":
			_, _, err = s.Lookup(ctx, key)
		case "track":
			var release func()
			_, release, err = s.Track(ctx, key)
			release()
		case "gpc":
			_, err = s.AddGPC(ctx, key, 1)
		case "delete":
			err = s.Delete(ctx, key)
		default:
			t.Fatalf("unknown op %q", op)
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
}

func lookup(t testing.TB, s Store, key string) (Entry, bool) {
	t.Helper()
	e, ok, err := s.Lookup(ctx, key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return e, ok
}

func storeLen(t testing.TB, s Store) int {
	t.Helper()
	n, err := s.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// entryKeys lists the table's entry hashes in Redis, by their store key.
func entryKeys(t testing.TB, c redis.UniversalClient, r *Redis) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(ctx, 0, r.entryPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, strings.TrimPrefix(iter.Val(), r.entryPrefix))
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func TestRedis_LookupStickDelete(t *testing.T) {
	srv := startRedis(t)
	r := newRedisStore(t, srv.client(), Config{}, RedisOptions{})
	if _, ok := lookup(t, r, "a"); ok {
		t.Fatal("a found in an empty table")
	}
	if err := r.Stick(ctx, "a", "app-1"); err != nil {
		t.Fatal(err)
	}
	if e, ok := lookup(t, r, "a"); !ok || e.Server != "app-1" {
		t.Fatalf("Lookup(a) = %+v, %v; want app-1", e, ok)
	}
	if err := r.Stick(ctx, "a", "app-2"); err != nil {
		t.Fatal(err)
	}
	if e, _ := lookup(t, r, "a"); e.Server != "app-2" {
		t.Errorf("after a second Stick, server %q, want app-2", e.Server)
	}
	if err := r.Stick(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if e, ok := lookup(t, r, "a"); !ok || e.Server != "" {
		t.Errorf("after unsticking: %+v, %v; want present without a server", e, ok)
	}
	if err := r.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := lookup(t, r, "a"); ok {
		t.Error("a found after Delete")
	}
	if err := r.Delete(ctx, "never"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if n := storeLen(t, r); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

// Sticking from one replica is seen by another at once without the
// near-cache; counters from both add up.
func TestRedis_ReplicasShareEntries(t *testing.T) {
	srv := startRedis(t)
	a := newRedisStore(t, srv.client(), Config{}, noNear)
	b := newRedisStore(t, srv.client(), Config{}, noNear)
	if err := a.Stick(ctx, "s", "app-1"); err != nil {
		t.Fatal(err)
	}
	if e, ok := lookup(t, b, "s"); !ok || e.Server != "app-1" {
		t.Fatalf("B sees %+v, %v; want app-1 stuck by A", e, ok)
	}
	if err := b.Stick(ctx, "s", "app-2"); err != nil {
		t.Fatal(err)
	}
	if e, _ := lookup(t, a, "s"); e.Server != "app-2" {
		t.Errorf("A sees %q, want app-2 stuck by B", e.Server)
	}
	_, relA, err := a.Track(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	e, relB, err := b.Track(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if e.ConnCur != 2 || e.ReqRate != 2 {
		t.Errorf("second Track from B: %+v, want ConnCur 2 and ReqRate 2", e)
	}
	relA()
	if e, _ := lookup(t, b, "s"); e.ConnCur != 1 {
		t.Errorf("after A's release B sees ConnCur %d, want 1", e.ConnCur)
	}
	relB()
	if _, err := a.AddGPC(ctx, "s", 5); err != nil {
		t.Fatal(err)
	}
	if g, err := b.AddGPC(ctx, "s", -2); err != nil || g != 3 {
		t.Errorf("AddGPC from B = %d, %v; want 3", g, err)
	}
	if err := a.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, ok := lookup(t, b, "s"); ok {
		t.Error("B still finds the entry A deleted")
	}
}

// Size is exact: the table never holds more, and what goes is the least
// recently used, as Memory does it (the same cases).
func TestRedis_EvictsLeastRecentlyUsed(t *testing.T) {
	srv := startRedis(t)
	client := srv.client()
	for i, tc := range []struct {
		name string
		ops  []string
		want []string
	}{
		{"insertion order", []string{"stick a", "stick b", "stick c", "stick d"}, []string{"b", "c", "d"}},
		{"lookup is a use", []string{"stick a", "stick b", "stick c", "lookup a", "stick d"}, []string{"a", "c", "d"}},
		{"track and gpc are uses", []string{"stick a", "stick b", "stick c", "track a", "gpc b", "stick d"}, []string{"a", "b", "d"}},
		{"stick again is a use", []string{"stick a", "stick b", "stick c", "stick a", "stick d", "stick e"}, []string{"a", "d", "e"}},
		{"lookup of a missing key is not", []string{"stick a", "stick b", "stick c", "lookup f", "stick d"}, []string{"b", "c", "d"}},
		{"delete makes room", []string{"stick a", "stick b", "stick c", "delete b", "stick d"}, []string{"a", "c", "d"}},
		{"a run of new keys", []string{"stick a", "stick b", "stick c", "stick d", "stick e", "stick f"}, []string{"d", "e", "f"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			r := newRedisStore(t, client, Config{Name: fmt.Sprint("lru", i), Size: 3}, withClock(noNear, clk))
			storeDo(t, r, clk, tc.ops...)
			if n := storeLen(t, r); n != len(tc.want) {
				t.Errorf("Len = %d, want %d", n, len(tc.want))
			}
			if got := entryKeys(t, client, r); !slices.Equal(got, tc.want) {
				t.Errorf("entries in Redis %q, want %q", got, tc.want)
			}
		})
	}

	// Two replicas filling one table past Size: exactly Size entries,
	// the most recent ones.
	clk := newClock()
	a := newRedisStore(t, client, Config{Name: "lru-big", Size: 100}, withClock(noNear, clk))
	b := newRedisStore(t, client, Config{Name: "lru-big", Size: 100}, withClock(noNear, clk))
	var want []string
	for i := range 150 {
		s := []*Redis{a, b}[i%2]
		k := fmt.Sprintf("k%03d", i)
		storeDo(t, s, clk, "stick "+k)
		if i >= 50 {
			want = append(want, k)
		}
		if n := storeLen(t, a); n > 100 {
			t.Fatalf("Len = %d after %d keys: over Size", n, i+1)
		}
	}
	if n := storeLen(t, b); n != 100 {
		t.Errorf("Len = %d, want 100", n)
	}
	if got := entryKeys(t, client, a); !slices.Equal(got, want) {
		t.Errorf("%d entries in Redis, want the last 100 keys k050..k149: %q", len(got), got)
	}
}

// An entry with a request in flight is passed over by eviction; when
// every entry has one, a new key fails with ErrFull, as in Memory.
func TestRedis_InFlightEntryPassedOver(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	r := newRedisStore(t, srv.client(), Config{Size: 2}, withClock(noNear, clk))
	_, release, err := r.Track(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	storeDo(t, r, clk, "stick b", "lookup b", "stick c") // a is the LRU but in flight: b goes
	if _, ok := lookup(t, r, "b"); ok {
		t.Error("b was not evicted")
	}
	if e, ok := lookup(t, r, "a"); !ok || e.ConnCur != 1 {
		t.Errorf("a = %+v, %v; want kept, ConnCur 1", e, ok)
	}
	_, release2, err := r.Track(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stick(ctx, "d", "s1"); !errors.Is(err, ErrFull) {
		t.Errorf("Stick into a table full of in-flight entries: %v, want ErrFull", err)
	}
	if _, rel, err := r.Track(ctx, "d"); !errors.Is(err, ErrFull) || rel == nil {
		t.Errorf("Track into a full table: %v; want ErrFull and a release", err)
	}
	if n := storeLen(t, r); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}
	release()
	release2()
	storeDo(t, r, clk, "lookup c", "stick d") // a is the LRU, released now
	if _, ok := lookup(t, r, "a"); ok {
		t.Error("a was not evicted once released")
	}
}

// Every use pushes expiry back by Expire; an entry unused for Expire is
// gone. PEXPIRE runs on Redis's clock, so these use real time: Expire is
// 1s, and a late wake-up can only age the entry that should be gone, while
// the one that should stay has 400ms to spare.
func TestRedis_ExpiryRefreshedOnUse(t *testing.T) {
	srv := startRedis(t)
	client := srv.client()
	for _, use := range []string{"lookup a", "stick a", "track a", "gpc a"} {
		t.Run(strings.Fields(use)[0], func(t *testing.T) {
			t.Parallel()
			r := newRedisStore(t, client, Config{Name: "exp-" + use[:2], Expire: time.Second}, noNear)
			storeDo(t, r, nil, "stick a", "stick b")
			time.Sleep(600 * time.Millisecond)
			storeDo(t, r, nil, use)
			time.Sleep(600 * time.Millisecond) // a used 600ms ago, b 1.2s ago
			if _, ok := lookup(t, r, "b"); ok {
				t.Error("b present after Expire without use")
			}
			if _, ok := lookup(t, r, "a"); !ok {
				t.Fatal("a expired before Expire since its last use")
			}
			time.Sleep(1100 * time.Millisecond)
			if _, ok := lookup(t, r, "a"); ok {
				t.Error("a present after Expire without use")
			}
			if n := storeLen(t, r); n != 0 {
				t.Errorf("Len = %d, want 0", n)
			}
		})
	}
	t.Run("release", func(t *testing.T) {
		t.Parallel()
		r := newRedisStore(t, client, Config{Name: "exp-rel", Expire: time.Second}, noNear)
		_, release, err := r.Track(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond)
		release()
		time.Sleep(600 * time.Millisecond)
		if _, ok := lookup(t, r, "a"); !ok {
			t.Error("a expired 600ms after its release, 1.2s after Track")
		}
	})
}

// ReqRate is freq_ctr's, over the same steps as Memory's test. Periods are
// counted from the Unix epoch, which the fake clock's start is aligned to.
func TestRedis_RateOverTheWindow(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	r := newRedisStore(t, srv.client(), Config{Expire: time.Hour, RatePeriod: 10 * time.Second}, withClock(noNear, clk))
	start := clk.now()
	for _, tc := range []struct {
		at     time.Duration
		tracks int
		want   int64
	}{
		{1 * time.Second, 5, 5},
		{9 * time.Second, 0, 5},
		{12 * time.Second, 0, 4},
		{12 * time.Second, 2, 6},
		{15 * time.Second, 0, 4},
		{19 * time.Second, 1, 3},
		{25 * time.Second, 0, 1},
		{29 * time.Second, 0, 0},
		{31 * time.Second, 0, 0},
		{31 * time.Second, 1, 1},
		{100 * time.Second, 4, 4},
	} {
		clk.add(start.Add(tc.at).Sub(clk.now()))
		var e Entry
		ok := true
		if tc.tracks == 0 {
			e, ok = lookup(t, r, "a")
		}
		for range tc.tracks {
			var release func()
			var err error
			if e, release, err = r.Track(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			release()
		}
		if !ok || e.ReqRate != tc.want {
			t.Errorf("at %v after %d requests: ReqRate %d (found %v), want %d", tc.at, tc.tracks, e.ReqRate, ok, tc.want)
		}
	}
}

func TestRedis_TrackCountsConnections(t *testing.T) {
	srv := startRedis(t)
	r := newRedisStore(t, srv.client(), Config{}, noNear)
	conn := func(key string) int64 {
		t.Helper()
		e, _ := lookup(t, r, key)
		return e.ConnCur
	}
	e1, rel1, err := r.Track(ctx, "a")
	if err != nil || e1.ConnCur != 1 {
		t.Fatalf("first Track: %+v, %v", e1, err)
	}
	e2, rel2, err := r.Track(ctx, "a")
	if err != nil || e2.ConnCur != 2 {
		t.Fatalf("second Track: %+v, %v", e2, err)
	}
	rel1()
	rel1() // a second call does nothing
	if n := conn("a"); n != 1 {
		t.Errorf("ConnCur = %d after one release (called twice), want 1", n)
	}
	rel2()
	if n := conn("a"); n != 0 {
		t.Errorf("ConnCur = %d after both releases, want 0", n)
	}

	// A release due for a deleted entry leaves the key's new entry alone.
	_, stale, err := r.Track(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	_, fresh, err := r.Track(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	stale()
	if n := conn("b"); n != 1 {
		t.Errorf("ConnCur = %d after the deleted entry's release, want 1 (the new entry's)", n)
	}
	fresh()
	if n := conn("b"); n != 0 {
		t.Errorf("ConnCur = %d, want 0", n)
	}
}

func TestRedis_GPC(t *testing.T) {
	srv := startRedis(t)
	r := newRedisStore(t, srv.client(), Config{}, noNear)
	for _, tc := range []struct {
		n, want int64
	}{{1, 1}, {1, 2}, {10, 12}, {-5, 7}} {
		if v, err := r.AddGPC(ctx, "a", tc.n); err != nil || v != tc.want {
			t.Errorf("AddGPC(%d) = %d, %v; want %d", tc.n, v, err, tc.want)
		}
	}
	if e, ok := lookup(t, r, "a"); !ok || e.GPC != 7 || e.Server != "" {
		t.Errorf("Lookup = %+v, %v; want GPC 7, no server", e, ok)
	}
	if err := r.Stick(ctx, "a", "app-1"); err != nil {
		t.Fatal(err)
	}
	if e, _ := lookup(t, r, "a"); e.GPC != 7 {
		t.Errorf("Stick changed GPC to %d", e.GPC)
	}
}

// Random operations on Memory and on Redis, on one fake clock, give the
// same answers: the Redis store keeps Memory's semantics (LRU, counters,
// rates) exactly, for a table small enough to be one exact LRU list.
func TestRedis_MatchesMemory(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	cfg := Config{Name: "model", Size: 8, Expire: 48 * time.Hour, RatePeriod: 10 * time.Second}
	m := newTable(t, cfg, clk)
	r := newRedisStore(t, srv.client(), cfg, withClock(noNear, clk))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 1500 {
		clk.add(time.Duration(1+rng.IntN(3000)) * time.Millisecond)
		key := fmt.Sprintf("k%d", rng.IntN(12))
		var got, want string
		switch op := rng.IntN(10); {
		case op < 3:
			e1, ok1, err1 := m.Lookup(ctx, key)
			e2, ok2, err2 := r.Lookup(ctx, key)
			want, got = fmt.Sprint("lookup ", e1, ok1, err1), fmt.Sprint("lookup ", e2, ok2, err2)
		case op < 5:
			server := servers[rng.IntN(3)]
			if rng.IntN(5) == 0 {
				server = ""
			}
			if rng.IntN(2) == 0 {
				old := servers[rng.IntN(3)]
				v1, err1 := m.Swap(ctx, key, old, server)
				v2, err2 := r.Swap(ctx, key, old, server)
				want, got = fmt.Sprint("swap ", v1, err1), fmt.Sprint("swap ", v2, err2)
				break
			}
			want = fmt.Sprint("stick ", m.Stick(ctx, key, server))
			got = fmt.Sprint("stick ", r.Stick(ctx, key, server))
		case op < 8:
			e1, rel1, err1 := m.Track(ctx, key)
			e2, rel2, err2 := r.Track(ctx, key)
			rel1()
			rel2()
			want, got = fmt.Sprint("track ", e1, err1), fmt.Sprint("track ", e2, err2)
		case op < 9:
			n := int64(rng.IntN(5) - 2)
			v1, err1 := m.AddGPC(ctx, key, n)
			v2, err2 := r.AddGPC(ctx, key, n)
			want, got = fmt.Sprint("gpc ", v1, err1), fmt.Sprint("gpc ", v2, err2)
		default:
			want = fmt.Sprint("delete ", m.Delete(ctx, key))
			got = fmt.Sprint("delete ", r.Delete(ctx, key))
		}
		if got != want {
			t.Fatalf("op %d on %s: Redis %s, Memory %s", i, key, got, want)
		}
		if i%50 == 0 {
			if n1, n2 := storeLen(t, m), storeLen(t, r); n1 != n2 {
				t.Fatalf("op %d: Len Redis %d, Memory %d", i, n2, n1)
			}
		}
	}
}

// Tracks from two replicas at once count exactly: each Track's script
// sees a distinct count, and the rate ends at the total.
func TestRedis_ConcurrentTrackCountsExactly(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	clk.add(time.Second) // all within one period
	a := newRedisStore(t, srv.client(), Config{}, withClock(RedisOptions{}, clk))
	b := newRedisStore(t, srv.client(), Config{}, withClock(RedisOptions{}, clk))
	const perReplica, workers = 500, 8
	seen := make([]atomic.Int32, 2*perReplica+1)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for _, s := range []*Redis{a, b} {
		for w := range workers {
			wg.Go(func() {
				for i := w; i < perReplica; i += workers {
					e, release, err := s.Track(ctx, "client")
					release()
					if err != nil || e.ReqRate < 1 || e.ReqRate > 2*perReplica {
						failures.Add(1)
						continue
					}
					seen[e.ReqRate].Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d Tracks failed or counted out of range", n)
	}
	for i := 1; i <= 2*perReplica; i++ {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("%d Tracks saw the count %d; want each count 1..%d seen once", n, i, 2*perReplica)
		}
	}
	c := newRedisStore(t, srv.client(), Config{}, withClock(noNear, clk))
	if e, _ := lookup(t, c, "client"); e.ReqRate != 2*perReplica || e.ConnCur != 0 {
		t.Errorf("after 2×%d tracks: %+v; want ReqRate %d, ConnCur 0", perReplica, e, 2*perReplica)
	}
}

// A fleet-wide limit of N requests per period admits N across three
// replicas, not 3N, as each admission decision reads Redis's count.
func TestRedis_FleetRateLimitAdmitsN(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	clk.add(time.Second)
	const limit, perReplica = 300, 200
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range 3 {
		s := newRedisStore(t, srv.client(), Config{Type: TypeIP}, withClock(RedisOptions{}, clk))
		key, err := (&Config{Type: TypeIP}).Key("192.0.2.7")
		if err != nil {
			t.Fatal(err)
		}
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < perReplica; i += 4 {
					e, release, err := s.Track(ctx, key)
					if err == nil && e.ReqRate <= limit {
						admitted.Add(1)
					}
					release()
				}
			})
		}
	}
	wg.Wait()
	if n := admitted.Load(); n != limit {
		t.Errorf("admitted %d of %d requests across 3 replicas, want the limit %d", n, 3*perReplica, limit)
	}
}

// The near-cache's rule: a replica may answer by a stale entry for at most
// NearCacheTTL after another replica changed it, and answers by its own
// changes at once.
func TestRedis_NearCacheStaleAtMostTTL(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	ttl := time.Second
	o := withClock(RedisOptions{NearCacheTTL: ttl}, clk)
	a := newRedisStore(t, srv.client(), Config{}, o)
	b := newRedisStore(t, srv.client(), Config{}, o)
	server := func(s Store, key string) string {
		t.Helper()
		e, ok := lookup(t, s, key)
		if !ok {
			return "(none)"
		}
		return e.Server
	}
	if err := a.Stick(ctx, "k", "app-1"); err != nil {
		t.Fatal(err)
	}
	if got := server(a, "k"); got != "app-1" {
		t.Fatalf("A's own Stick: A sees %q", got)
	}
	_ = server(a, "missing") // a cached "not found"

	clk.add(100 * time.Millisecond)
	// Changed in Redis without the mirror's message (one lost while the
	// subscription reconnected): only the TTL bounds A's answers. (A
	// change A is told of drops its answer at once: see
	// TestRedis_MirrorTellsEveryReplica.)
	raw := srv.client()
	if err := raw.HSet(ctx, a.entryPrefix+"k", "s", "app-2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.HSet(ctx, a.entryPrefix+"missing", "s", "app-3").Err(); err != nil {
		t.Fatal(err)
	}
	// Within the TTL of A's answers, A may still answer by them, and
	// with a near-cache it does (this side shows the cache is used).
	clk.add(ttl - 100*time.Millisecond - time.Millisecond)
	if got := server(a, "k"); got != "app-1" {
		t.Errorf("A within NearCacheTTL sees %q; the near-cache should still answer app-1", got)
	}
	if got := server(a, "missing"); got != "(none)" {
		t.Errorf("A within NearCacheTTL sees %q for a key it found missing; want the cached (none)", got)
	}
	// At NearCacheTTL after A's answer, A asks Redis again.
	clk.add(time.Millisecond)
	if got := server(a, "k"); got != "app-2" {
		t.Errorf("A NearCacheTTL after B's change still sees %q, want app-2", got)
	}
	if got := server(a, "missing"); got != "app-3" {
		t.Errorf("A NearCacheTTL after B's change sees %q, want app-3", got)
	}

	// A's own writes are answered at once, whatever was cached.
	if err := a.Stick(ctx, "k", "app-4"); err != nil {
		t.Fatal(err)
	}
	if got := server(a, "k"); got != "app-4" {
		t.Errorf("A after its own Stick sees %q, want app-4", got)
	}
	if err := a.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if got := server(a, "k"); got != "(none)" {
		t.Errorf("A after its own Delete sees %q", got)
	}
	// B's cached answer predates A's Delete by less than the TTL.
	if got := server(b, "k"); got != "app-2" && got != "(none)" {
		t.Errorf("B sees %q, want its cached app-2 or (none)", got)
	}
	clk.add(ttl)
	if got := server(b, "k"); got != "(none)" {
		t.Errorf("B NearCacheTTL after A's Delete sees %q", got)
	}
}

// A near-cache hit allocates nothing.
func TestRedis_NearCacheHitAllocatesNothing(t *testing.T) {
	srv := startRedis(t)
	r := newRedisStore(t, srv.client(), Config{}, RedisOptions{NearCacheTTL: time.Hour})
	if err := r.Stick(ctx, "hot", "app-1"); err != nil {
		t.Fatal(err)
	}
	lookup(t, r, "hot")
	if n := testing.AllocsPerRun(1000, func() { r.Lookup(ctx, "hot") }); n != 0 {
		t.Errorf("a near-cache hit allocates %v times", n)
	}
}

// Keys answered from the near-cache stay alive in Redis: the near-cache
// lives at most Expire/10, and each miss refreshes the entry in Redis.
func TestRedis_NearCacheKeepsEntriesAlive(t *testing.T) {
	srv := startRedis(t)
	cfg := Config{Expire: 600 * time.Millisecond}
	a := newRedisStore(t, srv.client(), cfg, RedisOptions{NearCacheTTL: time.Hour}) // capped to 60ms
	b := newRedisStore(t, srv.client(), cfg, noNear)
	if a.opt.NearCacheTTL != 60*time.Millisecond {
		t.Errorf("NearCacheTTL = %v, want it capped at Expire/10", a.opt.NearCacheTTL)
	}
	if err := a.Stick(ctx, "hot", "app-1"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, ok := lookup(t, a, "hot"); !ok {
			t.Fatal("hot expired while in use through the near-cache")
		}
	}
	if _, ok := lookup(t, b, "hot"); !ok {
		t.Error("hot expired in Redis while A used it from its near-cache")
	}
}

// stateLog records OnStateChange calls.
type stateLog struct {
	mu     sync.Mutex
	events []string
}

func (l *stateLog) record(up bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if up {
		l.events = append(l.events, "up")
	} else {
		l.events = append(l.events, "down: "+fmt.Sprint(err != nil))
	}
}

func (l *stateLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// bounded runs f and fails the test if it returns an error or takes more
// than ten Timeouts, a sanity bound rather than a performance claim.
func bounded(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	start := time.Now()
	err := f()
	if d := time.Since(start); d > 10*timeout {
		t.Errorf("%s took %v with Redis in trouble, over 10 × Timeout", what, d)
	}
	if err != nil {
		t.Errorf("%s: %v, want no error with Redis in trouble", what, err)
	}
}

// exercise runs every method once, each bounded and error-free.
func exercise(t *testing.T, r *Redis, timeout time.Duration, key string) {
	t.Helper()
	bounded(t, timeout, "Lookup", func() error { _, _, err := r.Lookup(ctx, key); return err })
	bounded(t, timeout, "Stick", func() error { return r.Stick(ctx, key, "app-9") })
	bounded(t, timeout, "Track", func() error {
		_, release, err := r.Track(ctx, key)
		release()
		return err
	})
	bounded(t, timeout, "AddGPC", func() error { _, err := r.AddGPC(ctx, key, 1); return err })
	bounded(t, timeout, "Len", func() error { _, err := r.Len(ctx); return err })
	bounded(t, timeout, "Delete", func() error { return r.Delete(ctx, key) })
}

// Redis killed and started again (empty): the replica serves throughout
// without errors, from its local table, reports down once and up once,
// and writes back what it learnt meanwhile.
func TestRedis_RedisDownAndBack(t *testing.T) {
	srv := startRedis(t)
	const timeout = 50 * time.Millisecond
	var log stateLog
	r := newRedisStore(t, srv.client(), Config{}, RedisOptions{
		Timeout: timeout, FailuresToOpen: 3, RetryAfter: 100 * time.Millisecond, OnStateChange: log.record,
	})
	if err := r.Stick(ctx, "before", "app-1"); err != nil {
		t.Fatal(err)
	}
	_, inFlight, err := r.Track(ctx, "before")
	if err != nil {
		t.Fatal(err)
	}

	srv.stop()
	for i := range 3 {
		exercise(t, r, timeout, fmt.Sprint("x", i))
	}
	waitFor(t, "the breaker to open", func() bool { return len(log.get()) == 1 })
	bounded(t, timeout, "release", func() error { inFlight(); return nil })
	// Known before the outage, through the local mirror.
	if e, ok := lookup(t, r, "before"); !ok || e.Server != "app-1" {
		t.Errorf("during the outage Lookup(before) = %+v, %v; want app-1 from the local table", e, ok)
	}
	for i := range 20 {
		k := fmt.Sprint("during", i)
		bounded(t, timeout, "Stick", func() error { return r.Stick(ctx, k, "app-2") })
		if e, ok := lookup(t, r, k); !ok || e.Server != "app-2" {
			t.Fatalf("during the outage Lookup(%s) = %+v, %v; want app-2", k, e, ok)
		}
	}
	time.Sleep(250 * time.Millisecond) // a few failed probes
	if got := log.get(); !slices.Equal(got, []string{"down: true"}) {
		t.Errorf("OnStateChange calls during the outage: %q, want one down with its error", got)
	}

	srv.restart()
	waitFor(t, "the breaker to close", func() bool { return len(log.get()) >= 2 })
	time.Sleep(250 * time.Millisecond)
	if got := log.get(); !slices.Equal(got, []string{"down: true", "up"}) {
		t.Errorf("OnStateChange calls: %q, want down then up, once each", got)
	}
	// Read back through a fresh replica: Redis has the outage's entries.
	fresh := newRedisStore(t, srv.client(), Config{}, noNear)
	for i := range 20 {
		k := fmt.Sprint("during", i)
		if e, ok := lookup(t, fresh, k); !ok || e.Server != "app-2" {
			t.Errorf("after the outage Redis has %s = %+v, %v; want app-2", k, e, ok)
		}
	}
	if r.npending.Load() != 0 {
		t.Errorf("%d keys still pending", r.npending.Load())
	}
	// And the replica uses Redis again.
	if err := fresh.Stick(ctx, "after", "app-3"); err != nil {
		t.Fatal(err)
	}
	if e, _ := lookup(t, r, "after"); e.Server != "app-3" {
		t.Errorf("after recovery the replica sees %q, want app-3 from Redis", e.Server)
	}
}

// Redis that stops answering (CLIENT PAUSE) is the slow case: each call
// waits at most Timeout until the breaker opens, then not at all; a delete
// and a stick made meanwhile reach Redis once it answers again.
func TestRedis_RedisSlow(t *testing.T) {
	srv := startRedis(t)
	const timeout = 50 * time.Millisecond
	var log stateLog
	r := newRedisStore(t, srv.client(), Config{}, RedisOptions{
		Timeout: timeout, FailuresToOpen: 3, RetryAfter: 100 * time.Millisecond, OnStateChange: log.record,
	})
	if err := r.Stick(ctx, "gone", "app-1"); err != nil {
		t.Fatal(err)
	}
	admin := srv.client()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "700", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	exercise(t, r, timeout, "slow")
	waitFor(t, "the breaker to open", func() bool { return len(log.get()) >= 1 })
	bounded(t, timeout, "Delete", func() error { return r.Delete(ctx, "gone") })
	bounded(t, timeout, "Stick", func() error { return r.Stick(ctx, "new", "app-2") })
	// Open: no call waits on Redis.
	start := time.Now()
	for range 100 {
		lookup(t, r, "new")
	}
	if d := time.Since(start); d > 10*timeout {
		t.Errorf("100 Lookups with the breaker open took %v; they should not wait on Redis", d)
	}
	waitFor(t, "the breaker to close", func() bool { return len(log.get()) >= 2 })
	if got := log.get(); !slices.Equal(got, []string{"down: true", "up"}) {
		t.Errorf("OnStateChange calls: %q, want down then up, once each", got)
	}
	fresh := newRedisStore(t, srv.client(), Config{}, noNear)
	if _, ok := lookup(t, fresh, "gone"); ok {
		t.Error("the delete made during the pause did not reach Redis")
	}
	if e, ok := lookup(t, fresh, "new"); !ok || e.Server != "app-2" {
		t.Errorf("the stick made during the pause: %+v, %v; want app-2 in Redis", e, ok)
	}
}

// failHook makes the next n commands fail as if the network had, on a
// real client and server.
type failHook struct{ n atomic.Int32 }

var errInjected = errors.New("injected network failure")

func (h *failHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.n.Add(-1) >= 0 {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (h *failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A single failed call, below FailuresToOpen, is answered locally without
// an error or a state change; a stick it made reaches Redis afterwards.
func TestRedis_SingleFailureFallsBackForThatCall(t *testing.T) {
	srv := startRedis(t)
	client := srv.client()
	hook := &failHook{}
	client.AddHook(hook)
	var log stateLog
	r := newRedisStore(t, client, Config{}, RedisOptions{RetryAfter: 50 * time.Millisecond, OnStateChange: log.record})
	hook.n.Store(1)
	if err := r.Stick(ctx, "k", "app-1"); err != nil {
		t.Fatalf("Stick with one failed call: %v", err)
	}
	if e, ok := lookup(t, r, "k"); !ok || e.Server != "app-1" {
		t.Errorf("Lookup after the failed Stick: %+v, %v; want app-1", e, ok)
	}
	fresh := newRedisStore(t, srv.client(), Config{}, noNear)
	waitFor(t, "the stick to be written back", func() bool {
		e, ok := lookup(t, fresh, "k")
		return ok && e.Server == "app-1"
	})
	hook.n.Store(1)
	if _, ok := lookup(t, r, "absent"); ok {
		t.Error("a failed Lookup found a key nobody stuck")
	}
	if got := log.get(); len(got) != 0 {
		t.Errorf("OnStateChange calls %q for single failures", got)
	}
}

// Writing back keeps a choice made in Redis after the local change, and
// overwrites one made before it.
func TestRedis_WriteBackKeepsNewerChoice(t *testing.T) {
	srv := startRedis(t)
	clkA, clkB := newClock(), newClock()
	a := newRedisStore(t, srv.client(), Config{}, withClock(noNear, clkA))
	b := newRedisStore(t, srv.client(), Config{}, withClock(noNear, clkB))
	for _, k := range []string{"newer", "older", "untouched"} {
		if err := a.local.Stick(ctx, k, "app-a"); err != nil {
			t.Fatal(err)
		}
	}
	clkB.add(-time.Second)
	if err := b.Stick(ctx, "older", "app-b"); err != nil { // used before A's change
		t.Fatal(err)
	}
	clkB.add(2 * time.Second)
	if err := b.Stick(ctx, "newer", "app-b"); err != nil { // used after it
		t.Fatal(err)
	}
	a.mu.Lock()
	for _, k := range []string{"newer", "older", "untouched"} {
		a.pending[k] = pendingOp{at: clkA.now().UnixMilli()}
	}
	a.npending.Store(3)
	a.mu.Unlock()
	if err := a.writeBack(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"newer": "app-b", "older": "app-a", "untouched": "app-a"} {
		if e, _ := lookup(t, b, k); e.Server != want {
			t.Errorf("%s after write-back: %q, want %q", k, e.Server, want)
		}
	}
}

func TestRedis_RefusesBadKeysAndConfig(t *testing.T) {
	srv := startRedis(t)
	client := srv.client()
	r := newRedisStore(t, client, Config{Type: TypeIP}, RedisOptions{})
	for _, key := range []string{"", "short", strings.Repeat("x", 17)} {
		if err := r.Stick(ctx, key, "s"); err == nil {
			t.Errorf("Stick(%q) accepted a malformed key", key)
		}
		if _, _, err := r.Lookup(ctx, key); err == nil {
			t.Errorf("Lookup(%q) accepted a malformed key", key)
		}
	}
	for _, c := range []Config{{Name: "a{b}"}, {Name: "x", Size: -1}, {}} {
		if _, err := NewRedis(client, c, RedisOptions{}); err == nil {
			t.Errorf("NewRedis(%+v) accepted a bad config", c)
		}
	}
	if _, err := NewRedis(nil, Config{Name: "x"}, RedisOptions{}); err == nil {
		t.Error("NewRedis accepted a nil client")
	}
}

func TestRedis_Close(t *testing.T) {
	srv := startRedis(t)
	r := newRedisStore(t, srv.client(), Config{}, RedisOptions{})
	if err := r.Stick(ctx, "a", "s"); err != nil {
		t.Fatal(err)
	}
	_, release, err := r.Track(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	release() // after Close: does nothing, and does not panic
	if _, _, err := r.Lookup(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close: %v", err)
	}
	if err := r.Stick(ctx, "a", "s"); !errors.Is(err, ErrClosed) {
		t.Errorf("Stick after Close: %v", err)
	}
	if _, _, err := r.Track(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Track after Close: %v", err)
	}
	if _, err := r.AddGPC(ctx, "a", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("AddGPC after Close: %v", err)
	}
	if err := r.Delete(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete after Close: %v", err)
	}
	if _, err := r.Len(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Len after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Hit counts a request in the rate and holds no connection, in Memory and
// in Redis alike; in Redis the count is the fleet's.
func TestHit_CountsWithoutConnections(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	cfg := Config{Name: "hits", RatePeriod: 10 * time.Second}
	stores := map[string]Store{
		"memory": newTable(t, cfg, clk),
		"redis":  newRedisStore(t, srv.client(), cfg, withClock(noNear, clk)),
	}
	for name, s := range stores {
		var e Entry
		var err error
		for range 5 {
			if e, err = s.Hit(ctx, "k"); err != nil {
				t.Fatal(err)
			}
		}
		if e.ReqRate != 5 || e.ConnCur != 0 {
			t.Errorf("%s: after 5 hits %+v, want ReqRate 5 and ConnCur 0", name, e)
		}
	}
	other := newRedisStore(t, srv.client(), cfg, withClock(noNear, clk))
	if e, err := other.Hit(ctx, "k"); err != nil || e.ReqRate != 6 {
		t.Errorf("another replica's hit: %+v, %v; want ReqRate 6", e, err)
	}
}

// Entries lists the live entries of both stores, paged, with their
// servers and counts, and reading them does not keep them alive.
func TestEntries_ListsLiveEntriesPaged(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	cfg := Config{Name: "list", Expire: time.Minute, RatePeriod: 10 * time.Second}
	stores := map[string]Store{
		"memory": newTable(t, cfg, clk),
		"redis":  newRedisStore(t, srv.client(), cfg, withClock(noNear, clk)),
	}
	for name, s := range stores {
		for _, k := range []string{"k1", "k2", "k3"} {
			if err := s.Stick(ctx, k, "srv-"+k); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Hit(ctx, "k2"); err != nil {
			t.Fatal(err)
		}
		got := map[string]Entry{}
		for off := 0; ; off += 2 {
			page, err := s.Entries(ctx, off, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				got[e.Key] = e.Entry
			}
			if len(page) < 2 {
				break
			}
		}
		if len(got) != 3 || got["k1"].Server != "srv-k1" || got["k2"].ReqRate != 1 || got["k3"].Server != "srv-k3" {
			t.Errorf("%s: entries %+v, want k1..k3 with their servers and k2's hit", name, got)
		}
		clk.add(61 * time.Second)
		if page, err := s.Entries(ctx, 0, 10); err != nil || len(page) != 0 {
			t.Errorf("%s: after the expiry, entries %+v (%v), want none", name, page, err)
		}
	}
}
