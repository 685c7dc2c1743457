package sticktable

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
)

// maxBytesPerEntry is the stated bound for a full table of 32-byte string
// keys (doc.go): measured at 98 bytes, with some 30% headroom.
const maxBytesPerEntry = 128

// sessionIDs returns n JSESSIONID-like keys: 32 upper-case hex digits.
func sessionIDs(n int) []string {
	r := rand.New(rand.NewPCG(7, 11))
	keys := make([]string, n)
	var b [32]byte
	for i := range keys {
		for j := 0; j < 32; j += 16 {
			v := r.Uint64()
			for k := range 16 {
				b[j+k] = "0123456789ABCDEF"[v>>(4*k)&15]
			}
		}
		keys[i] = string(b[:])
	}
	return keys
}

// ipv6Keys returns n table keys of random addresses in 2001:db8::/32.
func ipv6Keys(tb testing.TB, n int) []string {
	r := rand.New(rand.NewPCG(13, 17))
	c := Config{Type: TypeIP}
	keys := make([]string, n)
	for i := range keys {
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		for j := 4; j < 16; j += 4 {
			v := r.Uint32()
			b[j], b[j+1], b[j+2], b[j+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
		k, err := c.Key(netip.AddrFrom16(b).String())
		if err != nil {
			tb.Fatal(err)
		}
		keys[i] = k
	}
	return keys
}

var servers = []string{"app-1", "app-2", "app-3", "app-4", "app-5", "app-6", "app-7", "app-8"}

// fill makes a table of len(keys) entries, sticks every key to a server and
// returns the table and the heap it takes per entry held.
func fill(tb testing.TB, typ KeyType, keys []string) (*Memory, float64) {
	tb.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := NewMemory(Config{Name: "mem", Type: typ, Size: len(keys)}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i, k := range keys {
		if err := m.Stick(ctx, k, servers[i%len(servers)]); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	n, err := m.Len(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	// Keys land unevenly on the shards, so a few are evicted from the
	// fuller ones before the table is full.
	if n > len(keys) || n < len(keys)*97/100 {
		tb.Fatalf("Len = %d of %d keys", n, len(keys))
	}
	return m, float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// A million sessions fit in the stated bound per entry.
func TestMemory_MillionEntriesWithinBound(t *testing.T) {
	keys := sessionIDs(1_000_000)
	m, perEntry := fill(t, TypeString, keys)
	defer m.Close()
	n, _ := m.Len(ctx)
	t.Logf("%.1f bytes per entry, %d entries held of %d keys", perEntry, n, len(keys))
	if perEntry > maxBytesPerEntry {
		t.Errorf("%.1f bytes per entry, above the stated %d", perEntry, maxBytesPerEntry)
	}
}

// BenchmarkMemory1M reports the heap per entry of a million-entry table
// (B/entry), and times lookups in it, where most are cache misses.
func BenchmarkMemory1M(b *testing.B) {
	for _, tc := range []struct {
		name string
		typ  KeyType
		keys func() []string
	}{
		{"session-id", TypeString, func() []string { return sessionIDs(1_000_000) }},
		{"ipv6", TypeIP, func() []string { return ipv6Keys(b, 1_000_000) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			keys := tc.keys()
			m, perEntry := fill(b, tc.typ, keys)
			defer m.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Lookup(ctx, keys[i%len(keys)])
				i += 7919 // a prime stride, to defeat the cache
			}
			b.ReportMetric(perEntry, "B/entry")
		})
	}
}

// benchTable returns a table of the default size holding 65,536 session
// keys, and the keys.
func benchTable(b *testing.B) (*Memory, []string) {
	keys := sessionIDs(1 << 16)
	m, err := NewMemory(Config{Name: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	for i, k := range keys {
		m.Stick(ctx, k, servers[i%len(servers)])
	}
	return m, keys
}

func BenchmarkLookup(b *testing.B) {
	m, keys := benchTable(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, _ := m.Lookup(ctx, keys[i&(len(keys)-1)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	m, keys := benchTable(b)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(1) * 10007)
		for pb.Next() {
			m.Lookup(ctx, keys[i&(len(keys)-1)])
			i++
		}
	})
}

// BenchmarkStick updates entries that exist, as a session's later requests do.
func BenchmarkStick(b *testing.B) {
	m, keys := benchTable(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Stick(ctx, keys[i&(len(keys)-1)], servers[i&7])
		i++
	}
}

// BenchmarkStickNew inserts new keys into a full table, each evicting the
// least recently used.
func BenchmarkStickNew(b *testing.B) {
	keys := sessionIDs(1 << 17)
	m, err := NewMemory(Config{Name: "bench", Size: 1 << 15}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	i := 0
	for ; i < 1<<15; i++ { // full before timing
		m.Stick(ctx, keys[i], servers[i&7])
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Stick(ctx, keys[i&(len(keys)-1)], servers[i&7])
		i++
	}
}

// BenchmarkTrack is one request: Track and release.
func BenchmarkTrack(b *testing.B) {
	m, keys := benchTable(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, release, _ := m.Track(ctx, keys[i&(len(keys)-1)])
		release()
		i++
	}
}

func BenchmarkTrackParallel(b *testing.B) {
	m, keys := benchTable(b)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(1) * 10007)
		for pb.Next() {
			_, release, _ := m.Track(ctx, keys[i&(len(keys)-1)])
			release()
			i++
		}
	})
}
