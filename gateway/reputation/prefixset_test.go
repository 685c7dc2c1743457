package reputation

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func prefixes(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func TestPrefixSet(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		addr string
		want string // the most specific prefix, "" for no match
	}{
		{"empty", nil, "10.0.0.1", ""},
		{"inside", []string{"10.0.0.0/8"}, "10.200.3.4", "10.0.0.0/8"},
		{"first", []string{"10.0.0.0/8"}, "10.0.0.0", "10.0.0.0/8"},
		{"last", []string{"10.0.0.0/8"}, "10.255.255.255", "10.0.0.0/8"},
		{"before", []string{"10.0.0.0/8"}, "9.255.255.255", ""},
		{"after", []string{"10.0.0.0/8"}, "11.0.0.0", ""},
		{"host bits masked", []string{"10.1.2.3/8"}, "10.9.9.9", "10.0.0.0/8"},
		{"nested inner", []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"}, "10.1.2.9", "10.1.2.0/24"},
		{"nested middle", []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"}, "10.1.3.9", "10.1.0.0/16"},
		{"nested outer after inner", []string{"10.1.0.0/16", "10.0.0.0/8"}, "10.2.0.0", "10.0.0.0/8"},
		{"same start inner", []string{"10.0.0.0/8", "10.0.0.0/16"}, "10.0.0.1", "10.0.0.0/16"},
		{"same start outer", []string{"10.0.0.0/16", "10.0.0.0/8"}, "10.1.0.1", "10.0.0.0/8"},
		{"same end", []string{"10.0.0.0/8", "10.255.255.0/24"}, "10.255.255.255", "10.255.255.0/24"},
		{"same end then gap", []string{"10.0.0.0/8", "10.255.255.0/24"}, "11.0.0.0", ""},
		{"duplicate", []string{"10.0.0.0/8", "10.0.0.0/8"}, "10.0.0.1", "10.0.0.0/8"},
		{"siblings", []string{"10.0.0.0/24", "10.0.1.0/24"}, "10.0.1.7", "10.0.1.0/24"},
		{"siblings gap", []string{"10.0.0.0/24", "10.0.2.0/24"}, "10.0.1.7", ""},
		{"slash 0", []string{"0.0.0.0/0", "10.0.0.0/8"}, "192.0.2.1", "0.0.0.0/0"},
		{"slash 0 inner", []string{"0.0.0.0/0", "10.0.0.0/8"}, "10.0.0.1", "10.0.0.0/8"},
		{"slash 0 last", []string{"0.0.0.0/0", "255.255.255.255/32"}, "255.255.255.254", "0.0.0.0/0"},
		{"top of space", []string{"255.255.255.255/32"}, "255.255.255.255", "255.255.255.255/32"},
		{"slash 32", []string{"192.0.2.1/32"}, "192.0.2.1", "192.0.2.1/32"},
		{"slash 32 neighbour", []string{"192.0.2.1/32"}, "192.0.2.2", ""},
		{"bottom of space", []string{"0.0.0.0/32"}, "0.0.0.0", "0.0.0.0/32"},
		{"v6", []string{"2001:db8::/32"}, "2001:db8:1::1", "2001:db8::/32"},
		{"v6 nested", []string{"2001:db8::/32", "2001:db8:0:1::/64"}, "2001:db8:0:1::5", "2001:db8:0:1::/64"},
		{"v6 crossing 64 bits", []string{"2001:db8::/63"}, "2001:db8:0:1:ffff:ffff:ffff:ffff", "2001:db8::/63"},
		{"v6 after 64 bit carry", []string{"2001:db8::/64"}, "2001:db8:0:1::", ""},
		{"slash 128", []string{"2001:db8::1/128"}, "2001:db8::1", "2001:db8::1/128"},
		{"slash 128 neighbour", []string{"2001:db8::1/128"}, "2001:db8::2", ""},
		{"v6 slash 0", []string{"::/0"}, "2001:db8::1", "::/0"},
		{"v6 top", []string{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"},
		{"v6 zone ignored", []string{"fe80::/10"}, "fe80::1%eth0", "fe80::/10"},
		{"v6 /0 is not v4", []string{"::/0"}, "192.0.2.1", ""},
		{"v4 /0 is not v6", []string{"0.0.0.0/0"}, "2001:db8::1", ""},
		{"mapped address", []string{"192.0.2.0/24"}, "::ffff:192.0.2.9", "192.0.2.0/24"},
		{"mapped prefix", []string{"::ffff:192.0.2.0/120"}, "192.0.2.9", "192.0.2.0/24"},
		{"mapped prefix mapped address", []string{"::ffff:0:0/96"}, "::ffff:198.51.100.1", "0.0.0.0/0"},
		{"mapped address outside", []string{"192.0.2.0/24"}, "::ffff:198.51.100.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewPrefixSet(prefixes(t, tt.set...))
			addr := netip.MustParseAddr(tt.addr)
			got, ok := s.Lookup(addr)
			if tt.want == "" {
				if ok || s.Contains(addr) {
					t.Fatalf("Lookup(%s) = %s, want no match", addr, got)
				}
				return
			}
			if !ok || got != netip.MustParsePrefix(tt.want) || !s.Contains(addr) {
				t.Fatalf("Lookup(%s) = %s, %v; want %s", addr, got, ok, tt.want)
			}
		})
	}
}

func TestPrefixSetEdges(t *testing.T) {
	var nilSet *PrefixSet
	if nilSet.Contains(netip.MustParseAddr("10.0.0.1")) || nilSet.Len() != 0 {
		t.Fatal("a nil set holds nothing")
	}
	s := NewPrefixSet([]netip.Prefix{{}, netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")})
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (invalid dropped, duplicate merged)", s.Len())
	}
	if s.Contains(netip.Addr{}) {
		t.Fatal("the zero Addr matched")
	}
}

// randomPrefixes draws prefixes from a small corner of each family so that
// they nest, share starts and ends, and abut.
func randomPrefixes(r *rand.Rand, n int) []netip.Prefix {
	var out []netip.Prefix
	for range n {
		switch r.IntN(10) {
		case 0:
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), r.IntN(17)).Masked())
		case 1, 2, 3, 4:
			a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))})
			out = append(out, netip.PrefixFrom(a, 20+r.IntN(13)).Masked())
		case 5:
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{255, 255, 255, byte(r.IntN(256))}), 24+r.IntN(9)).Masked())
		default:
			var b [16]byte
			b[0], b[1], b[7], b[8], b[15] = 0x20, 0x01, byte(r.IntN(2)), byte(r.IntN(2)), byte(r.IntN(256))
			if r.IntN(8) == 0 {
				b = [16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: byte(r.IntN(256))}
			}
			out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), r.IntN(129)).Masked())
		}
	}
	return out
}

// naive is the obvious longest-prefix match, to check PrefixSet against.
func naive(set []netip.Prefix, addr netip.Addr) (netip.Prefix, bool) {
	best, found := netip.Prefix{}, false
	for _, p := range set {
		if p.Contains(addr) && (!found || p.Bits() > best.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}

// probes are the addresses around each prefix's edges, where a range
// table goes wrong first.
func probes(set []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, p := range set {
		first := p.Masked().Addr()
		last := lastAddr(p)
		out = append(out, first, first.Prev(), last, last.Next(), first.Next())
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestPrefixSetAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		set := randomPrefixes(r, 1+r.IntN(60))
		s := NewPrefixSet(set)
		for _, addr := range probes(set) {
			if !addr.IsValid() {
				continue
			}
			want, wantOK := naive(set, addr)
			got, ok := s.Lookup(addr)
			if ok != wantOK || got != want || s.Contains(addr) != wantOK {
				t.Fatalf("round %d, set %v: Lookup(%s) = %s, %v; want %s, %v", round, set, addr, got, ok, want, wantOK)
			}
		}
	}
}

// millionPrefixes is half IPv4 (/8 to /32) and half IPv6 (/16 to /128),
// at random, so some nest and most do not.
func millionPrefixes() []netip.Prefix {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]netip.Prefix, 0, 1_000_000)
	for i := range 1_000_000 {
		if i%2 == 0 {
			a := netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
			out = append(out, netip.PrefixFrom(a, 8+r.IntN(25)))
			continue
		}
		var b [16]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		b[0] = 0x20 | b[0]&0x1f // in 2000::/3, where real lists live
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), 16+r.IntN(113)))
	}
	return out
}

func BenchmarkPrefixSet_Contains(b *testing.B) {
	set := millionPrefixes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	s := NewPrefixSet(set)
	build := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	r := rand.New(rand.NewPCG(5, 6))
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		p := set[r.IntN(len(set))] // half land in a prefix, half are random
		if i%2 == 0 {
			addrs[i] = p.Addr()
		} else if p.Addr().Is4() {
			addrs[i] = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		} else {
			addrs[i] = netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(r.Uint32())})
		}
	}
	b.ResetTimer()
	hits := 0
	for i := range b.N {
		if s.Contains(addrs[i&4095]) {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no address matched")
	}
	// After the loop: ResetTimer clears metrics reported before it.
	b.ReportMetric(float64(build.Milliseconds()), "build-ms")
	b.ReportMetric(float64(s.size())/(1<<20), "table-MiB")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
	b.ReportMetric(float64(len(s.v4.start)+len(s.v6.start)), "ranges")
	runtime.KeepAlive(set)
}

// FuzzPrefixSet checks the set against the naive match, on prefixes packed
// three bytes each into a small corner of each family so that they overlap.
func FuzzPrefixSet(f *testing.F) {
	f.Add([]byte{0x10, 0, 0, 0x30, 0, 1, 0x2c, 1, 0})
	f.Add([]byte{0x41, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var set []netip.Prefix
		data = data[:min(len(data), 3*64)] // the naive check is quadratic
		for ; len(data) >= 3; data = data[3:] {
			bits := int(data[0] >> 1)
			if data[0]&1 == 0 {
				a := netip.AddrFrom4([4]byte{10, 0, data[1] & 3, data[2]})
				set = append(set, netip.PrefixFrom(a, bits%33).Masked())
			} else {
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: data[1] & 1, 15: data[2]})
				set = append(set, netip.PrefixFrom(a, bits+1).Masked()) // /1 to /128
			}
		}
		s := NewPrefixSet(set)
		for _, addr := range probes(set) {
			if !addr.IsValid() {
				continue
			}
			want, wantOK := naive(set, addr)
			got, ok := s.Lookup(addr)
			if ok != wantOK || got != want || s.Contains(addr) != wantOK {
				t.Fatalf("set %v: Lookup(%s) = %s, %v; want %s, %v", set, addr, got, ok, want, wantOK)
			}
			if addr.Is4() && s.Contains(netip.AddrFrom16(addr.As16())) != wantOK {
				t.Fatalf("set %v: the mapped form of %s disagrees", set, addr)
			}
		}
	})
}
