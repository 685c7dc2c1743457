package sticktable

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every replica's local table learns the servers another replica stores
// and the keys it deletes, so that it routes them while Redis cannot
// answer; a replica's near-cache drops an answer it is told is stale.
func TestRedis_MirrorTellsEveryReplica(t *testing.T) {
	srv := startRedis(t)
	clk := newClock()
	a := newRedisStore(t, srv.client(), Config{}, withClock(RedisOptions{NearCacheTTL: time.Second}, clk))
	client := srv.client()
	hook := &failHook{}
	client.AddHook(hook)
	b := newRedisStore(t, client, Config{}, withClock(RedisOptions{NearCacheTTL: time.Second, RetryAfter: 50 * time.Millisecond}, clk))
	if err := a.Stick(ctx, "seen", "app-1"); err != nil {
		t.Fatal(err)
	}
	if e, _ := lookup(t, b, "seen"); e.Server != "app-1" { // b syncs, subscribes and caches
		t.Fatalf("b finds seen on %q", e.Server)
	}
	waitFor(t, "b's subscription", func() bool {
		n, _ := srv.client().PubSubNumSub(ctx, b.channel).Result()
		return n[b.channel] >= 1
	})
	for i := range 3 {
		if _, err := a.Swap(ctx, "k"+strconv.Itoa(i), "", "app-2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Stick(ctx, "seen", "app-3"); err != nil { // b's cached answer is now stale
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's local table to learn a's changes", func() bool {
		e0, _ := lookup(t, b.local, "k0")
		e1, _ := lookup(t, b.local, "k1")
		e, _ := lookup(t, b.local, "seen")
		_, ok2 := lookup(t, b.local, "k2")
		return e0.Server == "app-2" && e1.Server == "app-2" && e.Server == "app-3" && !ok2
	})
	// Well within the near-cache's TTL (the clock has not moved), b
	// answers by the change it was told of.
	if e, _ := lookup(t, b, "seen"); e.Server != "app-3" {
		t.Errorf("b answers seen on %q from its near-cache after being told app-3", e.Server)
	}
	// Redis failing: b routes a's sessions from its local table.
	hook.n.Store(1000)
	for _, k := range []string{"k0", "k1"} {
		if e, ok := lookup(t, b, k); !ok || e.Server != "app-2" {
			t.Errorf("with Redis failing, b finds %s: %+v, %v; want app-2, which a stored", k, e, ok)
		}
	}
	if _, ok := lookup(t, b, "k2"); ok {
		t.Error("with Redis failing, b finds k2, which a deleted")
	}
	hook.n.Store(0)
}

// A replica whose breaker is open, with Redis well (the replica stalled),
// still stores the sessions it learns in Redis, where the replica that
// gets the client's next request looks.
func TestRedis_SwapWithBreakerOpen(t *testing.T) {
	srv := startRedis(t)
	a := newRedisStore(t, srv.client(), Config{}, noNear)
	client := srv.client()
	hook := &failHook{}
	client.AddHook(hook)
	var log stateLog
	b := newRedisStore(t, client, Config{}, RedisOptions{NearCacheTTL: -1, FailuresToOpen: 3, RetryAfter: time.Hour, OnStateChange: log.record})
	hook.n.Store(3)
	for range 3 {
		lookup(t, b, "x")
	}
	if !b.down.Load() {
		t.Fatal("three failures did not open the breaker")
	}
	if got, err := b.Swap(ctx, "fresh", "", "app-2"); err != nil || got != "app-2" {
		t.Fatalf("Swap with the breaker open = %q, %v", got, err)
	}
	if e, ok := lookup(t, a, "fresh"); !ok || e.Server != "app-2" {
		t.Errorf("another replica finds the session learnt with the breaker open on %+v, %v; want app-2 at once", e, ok)
	}
}

// Redis restarted empty: every replica republishes the sessions its local
// table holds (its own, those it looked up, those it was told of), so
// each keeps its server through every replica; meanwhile they are
// answered from the local tables.
func TestRedis_RepublishWhenRedisComesBackEmpty(t *testing.T) {
	srv := startRedis(t)
	o := RedisOptions{NearCacheTTL: -1, Timeout: time.Second, RetryAfter: 50 * time.Millisecond}
	a := newRedisStore(t, srv.client(), Config{}, o)
	b := newRedisStore(t, srv.client(), Config{}, o)
	want := map[string]string{}
	for i := range 300 {
		k, s := "s"+strconv.Itoa(i), "app-"+strconv.Itoa(i%3)
		want[k] = s
		learner := a
		if i%2 == 1 {
			learner = b
		}
		if _, err := learner.Swap(ctx, k, "", s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Swap(ctx, "only-a", "", "app-a"); err != nil {
		t.Fatal(err)
	}
	want["only-a"] = "app-a"
	for k := range want {
		lookup(t, a, k)
		lookup(t, b, k)
	}
	waitFor(t, "both replicas to sync with the table's epoch", func() bool {
		return a.epoch.Load() != nil && b.epoch.Load() != nil
	})
	srv.restart()
	for k, s := range want {
		for name, r := range map[string]*Redis{"a": a, "b": b} {
			if e, ok := lookup(t, r, k); !ok || e.Server != s {
				t.Fatalf("replica %s after Redis came back empty: %s on %+v, %v; want %s", name, k, e, ok, s)
			}
		}
	}
	waitFor(t, "both replicas to republish", func() bool {
		return !a.lost.Load() && !b.lost.Load() && !a.resync.Load() && !b.resync.Load()
	})
	fresh := newRedisStore(t, srv.client(), Config{}, noNear)
	for k, s := range want {
		if e, ok := lookup(t, fresh, k); !ok || e.Server != s {
			t.Errorf("Redis after the republish: %s on %+v, %v; want %s", k, e, ok, s)
		}
	}
	// And a session made after it is shared as before.
	if _, err := b.Swap(ctx, "after", "", "app-9"); err != nil {
		t.Fatal(err)
	}
	if e, _ := lookup(t, a, "after"); e.Server != "app-9" {
		t.Errorf("a finds the session b made after the republish on %q", e.Server)
	}
}

func TestParseTold(t *testing.T) {
	for _, tc := range []struct {
		msg, key, server string
		del, ok          bool
	}{
		{"s5:app-1k", "k", "app-1", false, true},
		{"s0:k", "k", "", false, true},
		{"s2:ab:\x00x", ":\x00x", "ab", false, true}, // raw key bytes
		{"dkey", "key", "", true, true},
		{"d", "", "", false, false},
		{"s5:app-1", "", "", false, false}, // no key
		{"s9:app", "", "", false, false},
		{"s-1:ab", "", "", false, false},
		{"s+1:ab", "", "", false, false},
		{"s01:ab", "", "", false, false},
		{"sx:ab", "", "", false, false},
		{"s:ab", "", "", false, false},
		{"s1ab", "", "", false, false},
		{"s999999:a", "", "", false, false},
		{"xkey", "", "", false, false},
		{"", "", "", false, false},
	} {
		key, server, del, ok := parseTold(tc.msg)
		if key != tc.key || server != tc.server || del != tc.del || ok != tc.ok {
			t.Errorf("parseTold(%q) = %q, %q, %v, %v; want %q, %q, %v, %v", tc.msg, key, server, del, ok, tc.key, tc.server, tc.del, tc.ok)
		}
	}
}

// FuzzParseTold: a message read from Redis never panics, and what parses
// is what the scripts would have written.
func FuzzParseTold(f *testing.F) {
	for _, s := range []string{"s5:app-1k", "dkey", "s0:k", "s01:ab", "s2:ab:\x00x", "s99999:", "d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		key, server, del, ok := parseTold(msg)
		if !ok {
			return
		}
		if key == "" {
			t.Fatalf("parseTold(%q) gave an empty key", msg)
		}
		again := "d" + key
		if !del {
			again = "s" + strconv.Itoa(len(server)) + ":" + server + key
		}
		if again != msg {
			t.Fatalf("parseTold(%q) = %q, %q, %v: written again as %q", msg, key, server, del, again)
		}
	})
}

// With the breaker open, a key the local table knows is answered without
// waiting on Redis, and one it does not know (a change it was not told
// of) is asked of Redis, rather than answered absent.
func TestRedis_LookupWithBreakerOpen(t *testing.T) {
	srv := startRedis(t)
	a := newRedisStore(t, srv.client(), Config{}, noNear)
	client := srv.client()
	hook := &failHook{}
	client.AddHook(hook)
	b := newRedisStore(t, client, Config{}, RedisOptions{NearCacheTTL: -1, FailuresToOpen: 3, RetryAfter: time.Hour})
	if err := a.Stick(ctx, "known", "app-1"); err != nil {
		t.Fatal(err)
	}
	lookup(t, b, "known")
	hook.n.Store(3)
	for range 3 {
		lookup(t, b, "x")
	}
	if !b.down.Load() {
		t.Fatal("three failures did not open the breaker")
	}
	// Stored without the mirror's message, as if it had been lost.
	if err := srv.client().HSet(ctx, a.entryPrefix+"untold", "s", "app-2").Err(); err != nil {
		t.Fatal(err)
	}
	if e, ok := lookup(t, b, "untold"); !ok || e.Server != "app-2" {
		t.Errorf("with the breaker open, b finds a key its local table does not know on %+v, %v; want app-2 from Redis", e, ok)
	}
	hook.n.Store(1000) // Redis failing: b must not ask it for what it knows
	if e, ok := lookup(t, b, "known"); !ok || e.Server != "app-1" {
		t.Errorf("with the breaker open, b finds known on %+v, %v; want app-1 from its local table", e, ok)
	}
	if n := hook.n.Load(); n != 1000 {
		t.Errorf("b asked Redis %d times for a key its local table knows", 1000-n)
	}
	hook.n.Store(0)
}

// A Redis ACL user allowed the table's keys but no channel (Redis 7's
// default) still stores and swaps: only the mirror is lost.
func TestRedis_ACLUserWithoutChannel(t *testing.T) {
	srv := startRedis(t)
	admin := srv.client()
	if err := admin.Do(ctx, "ACL", "SETUSER", "st", "on", ">pw", "~sekisho:*", "+@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	limited := redis.NewClient(&redis.Options{Addr: srv.addr, Username: "st", Password: "pw", ContextTimeoutEnabled: true, MaxRetries: 1})
	t.Cleanup(func() { limited.Close() })
	r := newRedisStore(t, limited, Config{}, noNear)
	other := newRedisStore(t, srv.client(), Config{}, noNear)
	if err := r.Stick(ctx, "k", "app-1"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Swap(ctx, "k2", "", "app-2"); err != nil || got != "app-2" {
		t.Fatalf("Swap = %q, %v", got, err)
	}
	if err := r.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok := lookup(t, other, "k"); ok {
		t.Error("the delete did not reach Redis")
	}
	if e, _ := lookup(t, other, "k2"); e.Server != "app-2" {
		t.Errorf("Redis holds k2 on %q; want app-2, swapped by a user without the channel", e.Server)
	}
	if r.npending.Load() != 0 {
		t.Errorf("%d changes left pending: the scripts failed", r.npending.Load())
	}
}
