package sticktable

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTable(t testing.TB, c Config, clk *fakeClock) *Memory {
	t.Helper()
	if c.Name == "" {
		c.Name = "test"
	}
	var now func() time.Time
	if clk != nil {
		now = clk.now
	}
	m, err := NewMemory(c, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func present(t *testing.T, m *Memory, key string) bool {
	t.Helper()
	_, ok, err := m.Lookup(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func length(t *testing.T, m *Memory) int {
	t.Helper()
	n, err := m.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A full table evicts its least recently used entry, any use counting as
// one, and never holds more than Size.
func TestMemory_EvictsLeastRecentlyUsed(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []string
		want []string // the keys left, of a..f
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
			m := newTable(t, Config{Size: 3}, newClock())
			storeDo(t, m, nil, tc.ops...)
			if n := length(t, m); n != len(tc.want) {
				t.Errorf("Len = %d, want %d", n, len(tc.want))
			}
			var got []string
			for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
				if present(t, m, k) {
					got = append(got, k)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("left %v, want %v", got, tc.want)
			}
		})
	}
}

// A sharded table divides Size among its shards, so it holds Size entries
// once every shard is full, and never more.
func TestMemory_ShardedTableNeverExceedsSize(t *testing.T) {
	const size = 5000
	m := newTable(t, Config{Size: size}, nil)
	if len(m.shards) < 2 {
		t.Fatalf("%d shards: the test needs a sharded table", len(m.shards))
	}
	for i := range 20 * size {
		if err := m.Stick(ctx, fmt.Sprintf("key-%d", i), "s1"); err != nil {
			t.Fatal(err)
		}
		if i%997 == 0 {
			if n := length(t, m); n > size {
				t.Fatalf("after %d keys Len = %d > %d", i+1, n, size)
			}
		}
	}
	if n := length(t, m); n != size {
		t.Errorf("Len = %d, want %d once every shard is full", n, size)
	}
}

// Every use pushes expiry back by Expire; an entry unused for Expire is
// gone, and Len counts it no more.
func TestMemory_ExpiryRefreshedOnUse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		use   string // op that refreshes "a"
		after []time.Duration
	}{
		{"lookup", "lookup a", nil},
		{"stick", "stick a", nil},
		{"track", "track a", nil},
		{"gpc", "gpc a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			m := newTable(t, Config{Size: 10, Expire: 10 * time.Second}, clk)
			storeDo(t, m, nil, "stick a", "stick b")
			clk.add(8 * time.Second)
			storeDo(t, m, nil, tc.use) // a now expires at 18s; b still at 10s
			clk.add(2 * time.Second)
			// At 10s b has had exactly Expire without use.
			if n := length(t, m); n != 1 {
				t.Errorf("Len = %d at 10s, want 1", n)
			}
			if present(t, m, "b") {
				t.Error("b is present after Expire without use")
			}
			clk.add(7*time.Second + 999*time.Millisecond)
			if !present(t, m, "a") { // and so to 27.999s
				t.Fatal("a expired before Expire since its last use")
			}
			clk.add(10 * time.Second)
			if present(t, m, "a") {
				t.Error("a is present after Expire without use")
			}
			if n := length(t, m); n != 0 {
				t.Errorf("Len = %d, want 0", n)
			}
		})
	}
}

// An entry with a request in flight neither expires nor is evicted; when
// every entry has one, a new key fails with ErrFull rather than overfill.
func TestMemory_InFlightEntryStays(t *testing.T) {
	clk := newClock()
	m := newTable(t, Config{Size: 2, Expire: 10 * time.Second}, clk)
	_, release, err := m.Track(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	e, ok, err := m.Lookup(ctx, "a")
	if err != nil || !ok || e.ConnCur != 1 {
		t.Fatalf("in-flight entry after expiry: %+v, %v, %v; want present with ConnCur 1", e, ok, err)
	}
	storeDo(t, m, nil, "stick b", "lookup b", "stick c") // a is the LRU but in flight: b goes
	if present(t, m, "b") || !present(t, m, "c") || !present(t, m, "a") {
		t.Errorf("b present %v, c %v, a %v; want b evicted for c", present(t, m, "b"), present(t, m, "c"), present(t, m, "a"))
	}

	_, release2, err := m.Track(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Stick(ctx, "d", "s1"); !errors.Is(err, ErrFull) {
		t.Errorf("Stick into a table full of in-flight entries: %v, want ErrFull", err)
	}
	_, rel, err := m.Track(ctx, "d")
	if !errors.Is(err, ErrFull) || rel == nil {
		t.Errorf("Track into a full table: %v, release nil %v; want ErrFull and a release", err, rel == nil)
	}
	rel()
	if n := length(t, m); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}

	// Released, a lives Expire from its release, then goes.
	release()
	release2()
	clk.add(9 * time.Second)
	if !present(t, m, "a") {
		t.Error("a expired before Expire since its release")
	}
	storeDo(t, m, nil, "stick d") // c is the LRU now
	if present(t, m, "c") || !present(t, m, "d") {
		t.Error("c was not evicted for d once released")
	}
}

// A release is a use: the entry lives Expire from the end of its last
// request, however long that took.
func TestMemory_ReleaseRefreshesExpiry(t *testing.T) {
	clk := newClock()
	m := newTable(t, Config{Size: 10, Expire: 10 * time.Second}, clk)
	_, release, err := m.Track(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(15 * time.Second)
	release()
	clk.add(9 * time.Second)
	if n := length(t, m); n != 1 {
		t.Errorf("Len = %d 9s after the release, want 1", n)
	}
	clk.add(time.Second)
	if n := length(t, m); n != 0 {
		t.Errorf("Len = %d 10s after the release, want 0", n)
	}
}

// An in-flight entry stays even when more expired entries are ahead of it
// than one call purges, so that the lookup meets it expired.
func TestMemory_InFlightEntryBehindExpiredOnes(t *testing.T) {
	clk := newClock()
	m := newTable(t, Config{Size: 100, Expire: 10 * time.Second}, clk)
	for i := range 2 * purgeBudget {
		storeDo(t, m, nil, fmt.Sprintf("stick k%d", i))
	}
	_, release, err := m.Track(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	clk.add(time.Minute)
	if e, ok, err := m.Lookup(ctx, "a"); err != nil || !ok || e.ConnCur != 1 {
		t.Errorf("Lookup(a) = %+v, %v, %v; want present with ConnCur 1", e, ok, err)
	}
	if n := length(t, m); n != 1 {
		t.Errorf("Len = %d, want only a", n)
	}
}

// ReqRate is freq_ctr's estimate: this period's requests plus the last
// period's scaled by what is left of this one, rounded down.
func TestMemory_RateOverTheWindow(t *testing.T) {
	clk := newClock()
	m := newTable(t, Config{Size: 10, Expire: time.Hour, RatePeriod: 10 * time.Second}, clk)
	start := clk.now() // periods count from the table's creation
	for _, tc := range []struct {
		at     time.Duration
		tracks int
		want   int64
	}{
		{1 * time.Second, 5, 5},
		{9 * time.Second, 0, 5},   // same period
		{12 * time.Second, 0, 4},  // 5 × 8/10
		{12 * time.Second, 2, 6},  // 2 + 4
		{15 * time.Second, 0, 4},  // 2 + 5 × 5/10 rounded down
		{19 * time.Second, 1, 3},  // 3 + 5 × 1/10 rounded down
		{25 * time.Second, 0, 1},  // 3 × 5/10 = 1.5
		{29 * time.Second, 0, 0},  // 3 × 1/10
		{31 * time.Second, 0, 0},  // two periods on
		{31 * time.Second, 1, 1},  // a fresh count
		{100 * time.Second, 4, 4}, // long after: the old counts are gone
	} {
		clk.add(start.Add(tc.at).Sub(clk.now()))
		var e Entry
		var ok bool
		var err error
		if tc.tracks == 0 {
			e, ok, err = m.Lookup(ctx, "a")
		} else {
			for range tc.tracks {
				var release func()
				e, release, err = m.Track(ctx, "a")
				release()
			}
			ok = true
		}
		if err != nil || !ok {
			t.Fatalf("at %v: %v, %v", tc.at, ok, err)
		}
		if e.ReqRate != tc.want {
			t.Errorf("at %v after %d requests: ReqRate %d, want %d", tc.at, tc.tracks, e.ReqRate, tc.want)
		}
	}
}

func TestMemory_TrackCountsConnections(t *testing.T) {
	m := newTable(t, Config{Size: 10}, newClock())
	conn := func(key string) int64 {
		t.Helper()
		e, _, err := m.Lookup(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return e.ConnCur
	}
	e1, r1, err := m.Track(ctx, "a")
	if err != nil || e1.ConnCur != 1 {
		t.Fatalf("first Track: %+v, %v; want ConnCur 1", e1, err)
	}
	e2, r2, _ := m.Track(ctx, "a")
	if e2.ConnCur != 2 {
		t.Fatalf("second Track: ConnCur %d, want 2", e2.ConnCur)
	}
	r1()
	r1()
	if c := conn("a"); c != 1 {
		t.Errorf("after releasing the first twice: ConnCur %d, want 1", c)
	}
	r2()
	r2()
	if c := conn("a"); c != 0 {
		t.Errorf("after releasing both: ConnCur %d, want 0", c)
	}

	// A release outlives a Delete without touching the key's next entry.
	_, stale, _ := m.Track(ctx, "b")
	storeDo(t, m, nil, "delete b")
	_, r3, _ := m.Track(ctx, "b")
	stale()
	if c := conn("b"); c != 1 {
		t.Errorf("a release from before Delete changed the new entry: ConnCur %d, want 1", c)
	}
	r3()
	if c := conn("b"); c != 0 {
		t.Errorf("ConnCur %d, want 0", c)
	}
}

func TestMemory_GPC(t *testing.T) {
	m := newTable(t, Config{Size: 10}, newClock())
	for _, tc := range []struct {
		key  string
		n    int64
		want int64
	}{
		{"a", 1, 1}, // creates
		{"a", 4, 5},
		{"b", 2, 2},
		{"a", -5, 0},
		{"a", 7, 7},
	} {
		if got, err := m.AddGPC(ctx, tc.key, tc.n); err != nil || got != tc.want {
			t.Errorf("AddGPC(%s, %d) = %d, %v; want %d", tc.key, tc.n, got, err, tc.want)
		}
	}
	storeDo(t, m, nil, "stick a", "track a")
	if e, _, _ := m.Lookup(ctx, "a"); e.GPC != 7 {
		t.Errorf("GPC after stick and track = %d, want 7", e.GPC)
	}
	if e, _, _ := m.Lookup(ctx, "b"); e.GPC != 2 {
		t.Errorf("GPC of b = %d, want 2", e.GPC)
	}
}

func TestMemory_StickSetsServer(t *testing.T) {
	m := newTable(t, Config{Size: 10}, newClock())
	for _, tc := range []struct{ key, server, want string }{
		{"a", "s1", "s1"},
		{"b", "s2", "s2"},
		{"a", "s2", "s2"}, // moves
		{"b", "", ""},     // unsticks
		{"c", "s10", "s10"},
	} {
		if err := m.Stick(ctx, tc.key, tc.server); err != nil {
			t.Fatal(err)
		}
		e, ok, err := m.Lookup(ctx, tc.key)
		if err != nil || !ok || e.Server != tc.want {
			t.Errorf("after Stick(%s, %q): %+v, %v, %v; want server %q", tc.key, tc.server, e, ok, err, tc.want)
		}
	}
	if e, _, _ := m.Track(ctx, "d"); e.Server != "" {
		t.Errorf("an entry made by Track has server %q", e.Server)
	}
	if _, ok, _ := m.Lookup(ctx, "z"); ok {
		t.Error("a key never stored was found")
	}
}

// A key that did not come through Config.Key for the table is refused, so
// that a raw address cannot silently miss its normalized entry.
func TestMemory_RefusesMalformedKeys(t *testing.T) {
	for _, tc := range []struct {
		c   Config
		key string
	}{
		{Config{Type: TypeIP}, "10.0.0.1"},
		{Config{Type: TypeIP}, strings.Repeat("x", 17)},
		{Config{Type: TypeInteger}, "1234567"},
		{Config{Type: TypeString, KeyLen: 4}, "abcde"},
		{Config{Type: TypeString}, ""},
	} {
		m := newTable(t, tc.c, nil)
		if _, _, err := m.Lookup(ctx, tc.key); err == nil {
			t.Errorf("%s table: Lookup(%q) succeeded", tc.c.Type, tc.key)
		}
		if err := m.Stick(ctx, tc.key, "s1"); err == nil {
			t.Errorf("%s table: Stick(%q) succeeded", tc.c.Type, tc.key)
		}
	}
	m := newTable(t, Config{Type: TypeIP}, nil)
	c := Config{Type: TypeIP}
	k, _ := c.Key("192.0.2.7")
	if err := m.Stick(ctx, k, "s1"); err != nil {
		t.Errorf("a normalized ip key was refused: %v", err)
	}
}

func TestMemory_Close(t *testing.T) {
	m := newTable(t, Config{Size: 10}, nil)
	_, release, _ := m.Track(ctx, "a")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	release() // must not panic
	_, _, err1 := m.Lookup(ctx, "a")
	err2 := m.Stick(ctx, "a", "s1")
	_, _, err3 := m.Track(ctx, "a")
	_, err4 := m.AddGPC(ctx, "a", 1)
	err5 := m.Delete(ctx, "a")
	_, err6 := m.Len(ctx)
	for i, err := range []error{err1, err2, err3, err4, err5, err6} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("call %d after Close: %v, want ErrClosed", i+1, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A random mix of operations on a one-shard table agrees with a plain
// model of an exact LRU with expiry: this exercises the index's probing,
// growth and backward-shift deletion, and the free list.
func TestMemory_MatchesModel(t *testing.T) {
	const size, keys, expire = 300, 1000, 50
	clk := newClock()
	m := newTable(t, Config{Size: size, Expire: expire * time.Second}, clk)
	if len(m.shards) != 1 {
		t.Fatalf("%d shards, want 1", len(m.shards))
	}
	type item struct {
		server  string
		gpc     int64
		used    int // sequence of the last use, for LRU order
		expires int // seconds
	}
	model := map[string]*item{}
	now, seq := 0, 0
	live := func(k string) *item {
		if it := model[k]; it != nil && it.expires > now {
			return it
		}
		delete(model, k)
		return nil
	}
	use := func(k string) *item {
		it := live(k)
		if it == nil {
			for k := range model {
				live(k)
			}
			if len(model) == size {
				var lru string
				for k, it := range model {
					if lru == "" || it.used < model[lru].used {
						lru = k
					}
				}
				delete(model, lru)
			}
			it = &item{}
			model[k] = it
		}
		seq++
		it.used, it.expires = seq, now+expire
		return it
	}
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 30000 {
		k := fmt.Sprintf("k%d", r.IntN(keys))
		switch op := r.IntN(10); {
		case op < 4:
			srv := fmt.Sprintf("s%d", r.IntN(5))
			if err := m.Stick(ctx, k, srv); err != nil {
				t.Fatal(err)
			}
			use(k).server = srv
		case op < 6:
			got, err := m.AddGPC(ctx, k, 1)
			it := use(k)
			it.gpc++
			if err != nil || got != it.gpc {
				t.Fatalf("step %d: AddGPC(%s) = %d, %v; want %d", step, k, got, err, it.gpc)
			}
		case op < 9:
			e, ok, err := m.Lookup(ctx, k)
			want := live(k)
			if err != nil || ok != (want != nil) {
				t.Fatalf("step %d: Lookup(%s) found %v, %v; want %v", step, k, ok, err, want != nil)
			}
			if want != nil {
				use(k)
				if e.Server != want.server || e.GPC != want.gpc {
					t.Fatalf("step %d: Lookup(%s) = %+v, want server %s gpc %d", step, k, e, want.server, want.gpc)
				}
			}
		default:
			if err := m.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		}
		if r.IntN(100) == 0 {
			d := r.IntN(20)
			now += d
			clk.add(time.Duration(d) * time.Second)
		}
		if step%500 == 0 {
			for k := range model {
				live(k)
			}
			if n := length(t, m); n != len(model) {
				t.Fatalf("step %d: Len = %d, model holds %d", step, n, len(model))
			}
		}
	}
}

// Many goroutines on shared keys: no race (under -race), no lost update,
// every connection released.
func TestMemory_Concurrent(t *testing.T) {
	const workers, rounds, keys = 8, 1500, 50
	big := newTable(t, Config{Size: 100000}, nil)
	small := newTable(t, Config{Size: 8}, nil) // evicts all along
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				k := fmt.Sprintf("key-%d", (w*7+i)%keys)
				for _, m := range []*Memory{big, small} {
					_, release, err := m.Track(ctx, k)
					if err == nil {
						_, err = m.AddGPC(ctx, k, 1)
					}
					if err == nil {
						err = m.Stick(ctx, k, fmt.Sprintf("s%d", w))
					}
					if err == nil {
						_, _, err = m.Lookup(ctx, k)
					}
					release()
					if err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var gpc int64
	for k := range keys {
		e, ok, err := big.Lookup(ctx, fmt.Sprintf("key-%d", k))
		if err != nil || !ok || e.ConnCur != 0 {
			t.Fatalf("key-%d: %+v, %v, %v; want present with no connection", k, e, ok, err)
		}
		gpc += e.GPC
	}
	if gpc != workers*rounds {
		t.Errorf("GPC adds up to %d, want %d", gpc, workers*rounds)
	}
	if n := length(t, small); n > 8 {
		t.Errorf("small table holds %d > 8", n)
	}
}
