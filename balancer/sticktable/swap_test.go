package sticktable

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Swap sets a key's server over the one expected or none, and otherwise
// keeps and returns the one held, in both stores alike.
func TestSwap_OverExpectedOrNone(t *testing.T) {
	srv := startRedis(t)
	stores := map[string]Store{
		"memory": newTable(t, Config{Size: 10}, nil),
		"redis":  newRedisStore(t, srv.client(), Config{}, noNear),
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			if _, _, err := s.Track(ctx, "tracked"); err != nil { // an entry with no server
				t.Fatal(err)
			}
			if err := s.Stick(ctx, "held", "s1"); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct{ key, old, server, want string }{
				{"absent", "", "s2", "s2"},    // learnt: nobody held it
				{"tracked", "", "s2", "s2"},   // an entry without a server
				{"held", "", "s2", "s1"},      // a miss that was not an absence
				{"held", "s3", "s2", "s1"},    // routed by a stale answer
				{"held", "s1", "s2", "s2"},    // redispatched from s1
				{"absent2", "s1", "s3", "s3"}, // expected s1, found none
			} {
				got, err := s.Swap(ctx, tc.key, tc.old, tc.server)
				if err != nil || got != tc.want {
					t.Errorf("Swap(%s, %q, %q) = %q, %v; want %q", tc.key, tc.old, tc.server, got, err, tc.want)
				}
				if e, ok := lookup(t, s, tc.key); !ok || e.Server != tc.want {
					t.Errorf("after Swap(%s, %q, %q) the table holds %+v, %v; want %q", tc.key, tc.old, tc.server, e, ok, tc.want)
				}
			}
		})
	}
}

// A replica whose lookup failed does not know the session another
// replica stored; what it learns from the response must not replace it,
// whether its swap reaches Redis at once or only when written back, and
// the replica then routes by Redis's server.
func TestRedis_FailedLookupDoesNotMoveSession(t *testing.T) {
	srv := startRedis(t)
	a := newRedisStore(t, srv.client(), Config{}, noNear)
	client := srv.client()
	hook := &failHook{}
	client.AddHook(hook)
	b := newRedisStore(t, client, Config{}, RedisOptions{NearCacheTTL: -1, Timeout: 2 * time.Second, RetryAfter: 50 * time.Millisecond})
	for _, k := range []string{"s-direct", "s-written-back"} {
		if err := a.Stick(ctx, k, "app-1"); err != nil {
			t.Fatal(err)
		}
	}

	// The lookup fails, the swap reaches Redis.
	hook.n.Store(1)
	if _, ok := lookup(t, b, "s-direct"); ok {
		t.Fatal("the failed lookup found the key: the test's failure did not happen")
	}
	if got, err := b.Swap(ctx, "s-direct", "", "app-2"); err != nil || got != "app-1" {
		t.Errorf("Swap after a failed lookup = %q, %v; want app-1, Redis's", got, err)
	}

	// Both fail: the swap is written back later, under the same condition.
	hook.n.Store(2)
	if _, ok := lookup(t, b, "s-written-back"); ok {
		t.Fatal("the failed lookup found the key: the test's failure did not happen")
	}
	if got, err := b.Swap(ctx, "s-written-back", "", "app-2"); err != nil || got != "app-2" {
		t.Errorf("Swap with Redis failing = %q, %v; want app-2 in the local table", got, err)
	}
	waitFor(t, "the write-back", func() bool { return b.npending.Load() == 0 })

	for _, k := range []string{"s-direct", "s-written-back"} {
		if e, _ := lookup(t, a, k); e.Server != "app-1" {
			t.Errorf("Redis holds %s on %q; want app-1, where its session is", k, e.Server)
		}
		if e, _ := lookup(t, b.local, k); e.Server != "app-1" {
			t.Errorf("the replica's local table holds %s on %q; want app-1, Redis's", k, e.Server)
		}
		if e, _ := lookup(t, b, k); e.Server != "app-1" {
			t.Errorf("the replica routes %s to %q; want app-1", k, e.Server)
		}
	}
}

// A write-back after an outage keeps the entries Redis holds for other
// servers than this replica expected, rather than replacing them, however
// long they were idle; it writes the others.
func TestRedis_WriteBackSwapsOnlyOverExpected(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	a := newRedisStore(t, srv.client(), Config{}, withClock(noNear, clk))
	b := newRedisStore(t, srv.client(), Config{}, withClock(noNear, clk))
	for k, v := range map[string]string{"idle": "app-b", "expected": "app-1"} {
		if err := b.Stick(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(time.Minute) // both idle in Redis since
	for k, op := range map[string]pendingOp{
		"idle":     {old: ""},      // learnt after a failed lookup
		"expected": {old: "app-1"}, // redispatched from app-1
		"new":      {old: ""},      // a session Redis never had
	} {
		if _, err := a.local.Swap(ctx, k, op.old, "app-a"); err != nil {
			t.Fatal(err)
		}
		op.at, op.swap = clk.now().UnixMilli(), true
		a.mu.Lock()
		a.pending[k] = op
		a.npending.Store(int32(len(a.pending)))
		a.mu.Unlock()
	}
	if err := a.writeBack(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"idle": "app-b", "expected": "app-a", "new": "app-a"} {
		if e, _ := lookup(t, b, k); e.Server != want {
			t.Errorf("Redis holds %s on %q after the write-back; want %q", k, e.Server, want)
		}
		if e, _ := lookup(t, a.local, k); e.Server != want {
			t.Errorf("the replica's local table holds %s on %q after the write-back; want %q", k, e.Server, want)
		}
	}
}

// A Redis that stalls for a little longer than Timeout (a starved host, a
// slow fork): the lookup of a key this replica does not know is asked
// again rather than answered blind, a learnt session reaches Redis, and
// the calls that all failed together do not open the breaker.
func TestRedis_StallShorterThanBreaker(t *testing.T) {
	srv := startRedis(t)
	const timeout = 200 * time.Millisecond
	var log stateLog
	a := newRedisStore(t, srv.client(), Config{}, noNear)
	b := newRedisStore(t, srv.client(), Config{}, RedisOptions{NearCacheTTL: -1, Timeout: timeout, OnStateChange: log.record})
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	for _, k := range keys {
		if err := a.Stick(ctx, k, "app-1"); err != nil {
			t.Fatal(err)
		}
	}
	admin := srv.client()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "280", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]string, len(keys)+1)
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, _, err := b.Lookup(ctx, k)
			got[i] = e.Server
			if err != nil {
				got[i] = err.Error()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		got[len(keys)], _ = b.Swap(ctx, "new", "", "app-2")
	}()
	wg.Wait()
	want := []string{"app-1", "app-1", "app-1", "app-1", "app-1", "app-1", "app-2"}
	if !slices.Equal(got, want) {
		t.Errorf("lookups and a swap across the stall: %q; want %q", got, want)
	}
	if e, ok := lookup(t, a, "new"); !ok || e.Server != "app-2" {
		t.Errorf("another replica finds the session learnt across the stall on %+v, %v; want app-2 at once", e, ok)
	}
	if b.npending.Load() != 0 {
		t.Errorf("%d keys left for the write-back", b.npending.Load())
	}
	if ev := log.get(); len(ev) != 0 {
		t.Errorf("a stall shorter than the breaker changed its state: %q", ev)
	}
}
