package crowdsec

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// dec is a decision as the LAPI would send it.
func dec(id int64, scope, value, typ, dur string) apiDecision {
	return apiDecision{ID: id, Origin: "cscli", Type: typ, Scope: scope, Value: value, Duration: dur, Scenario: fmt.Sprintf("test %d", id)}
}

// mustApply applies lists that must all be usable.
func mustApply(t testing.TB, s *store, added, deleted []apiDecision, now time.Time) {
	t.Helper()
	if n, err := s.apply(added, deleted, now); n != 0 {
		t.Fatalf("%d decisions skipped: %v", n, err)
	}
}

// lookupID is the id of the decision that answers for addr, or 0.
func lookupID(s *store, addr string, now time.Time) int64 {
	e, ok := s.lookup(netip.MustParseAddr(addr), now.UnixNano())
	if !ok {
		return 0
	}
	return e.id
}

func TestStrongestWins(t *testing.T) {
	now := time.Now()
	s := newStore()
	mustApply(t, s, []apiDecision{
		dec(1, "Ip", "192.0.2.1", "captcha", "2h"),
		dec(2, "Ip", "192.0.2.1", "ban", "1h"),
		dec(3, "Range", "10.0.0.0/8", "captcha", "1h"),
		dec(4, "Range", "10.1.0.0/16", "ban", "1h"),
		dec(5, "Ip", "10.1.2.3", "captcha", "3h"),
		dec(6, "Ip", "192.0.2.2", "throttle", "1h"),
		dec(7, "Range", "192.0.2.0/24", "captcha", "1h"),
	}, nil, now)
	for _, c := range []struct {
		addr string
		id   int64
	}{
		{"192.0.2.1", 2},   // ban over captcha on the same address
		{"10.1.2.3", 4},    // a range's ban over an address's captcha
		{"10.2.0.1", 3},    // the wider range alone
		{"192.0.2.2", 7},   // captcha over an unknown type
		{"192.0.2.200", 7}, // the range alone
		{"11.0.0.0", 0},
		{"9.255.255.255", 0},
	} {
		if got := lookupID(s, c.addr, now); got != c.id {
			t.Errorf("%s: decision %d, want %d", c.addr, got, c.id)
		}
	}
	// Once the bans lapse, what they hid answers.
	later := now.Add(90 * time.Minute)
	if got := lookupID(s, "192.0.2.1", later); got != 1 {
		t.Errorf("192.0.2.1 after the ban lapsed: decision %d, want the captcha 1", got)
	}
	if got := lookupID(s, "10.1.2.3", later); got != 5 {
		t.Errorf("10.1.2.3 after the ranges lapsed: decision %d, want the captcha 5", got)
	}
	if got := lookupID(s, "10.2.0.1", later); got != 0 {
		t.Errorf("10.2.0.1 after its range lapsed: decision %d, want none", got)
	}
}

func TestDeleteByID(t *testing.T) {
	now := time.Now()
	s := newStore()
	mustApply(t, s, []apiDecision{
		dec(1, "Ip", "192.0.2.1", "ban", "1h"),
		dec(2, "Ip", "192.0.2.1", "captcha", "1h"),
		dec(3, "Range", "10.0.0.0/8", "ban", "1h"),
		dec(4, "Range", "10.0.0.0/8", "captcha", "1h"),
	}, nil, now)
	mustApply(t, s, nil, []apiDecision{{ID: 1}, {ID: 3}, {ID: 99}}, now)
	if got := lookupID(s, "192.0.2.1", now); got != 2 {
		t.Errorf("192.0.2.1: decision %d, want the captcha 2 left", got)
	}
	if got := lookupID(s, "10.9.9.9", now); got != 4 {
		t.Errorf("10.9.9.9: decision %d, want the captcha 4 left", got)
	}
	mustApply(t, s, nil, []apiDecision{{ID: 2}, {ID: 4}}, now)
	if len(s.ips) != 0 || len(s.nets) != 0 || len(s.byID) != 0 || len(s.r4.start) != 0 {
		t.Errorf("all deleted, yet the store holds %d addresses, %d ranges, %d ids, %d intervals", len(s.ips), len(s.nets), len(s.byID), len(s.r4.start))
	}
	// A decision sent again under its id replaces the old one, even when
	// its value moved from an address to a range.
	mustApply(t, s, []apiDecision{dec(5, "Ip", "192.0.2.5", "ban", "1h")}, nil, now)
	mustApply(t, s, []apiDecision{dec(5, "Range", "192.0.2.0/30", "captcha", "1h")}, nil, now)
	if got := lookupID(s, "192.0.2.5", now); got != 0 {
		t.Errorf("192.0.2.5 after its decision moved: decision %d, want none", got)
	}
	if got := lookupID(s, "192.0.2.2", now); got != 5 {
		t.Errorf("192.0.2.2: decision %d, want 5", got)
	}
	// In both lists at once, a decision ends up deleted.
	mustApply(t, s, []apiDecision{dec(6, "Ip", "192.0.2.6", "ban", "1h")}, []apiDecision{{ID: 6}}, now)
	if got := lookupID(s, "192.0.2.6", now); got != 0 {
		t.Errorf("192.0.2.6 new and deleted in one answer: decision %d, want none", got)
	}
}

func TestPrune(t *testing.T) {
	now := time.Now()
	s := newStore()
	mustApply(t, s, []apiDecision{
		dec(1, "Ip", "192.0.2.1", "ban", "1m"),
		dec(2, "Ip", "192.0.2.1", "captcha", "1h"),
		dec(3, "Range", "10.0.0.0/8", "ban", "1m"),
		dec(4, "Ip", "2001:db8::1", "ban", "-1s"), // lapsed on arrival: not kept
	}, nil, now)
	if len(s.byID) != 3 {
		t.Fatalf("%d decisions kept, want 3", len(s.byID))
	}
	s.prune(now.Add(2 * time.Minute))
	if len(s.byID) != 1 || len(s.nets) != 0 || len(s.r4.start) != 0 || len(s.ips[netip.MustParseAddr("192.0.2.1")]) != 1 {
		t.Errorf("after pruning: %d ids, %d ranges, %d intervals; want only decision 2", len(s.byID), len(s.nets), len(s.r4.start))
	}
}

func TestParseTarget(t *testing.T) {
	for _, c := range []struct {
		scope, value string
		addr, pfx    string // the one expected valid
	}{
		{"Ip", "192.0.2.1", "192.0.2.1", ""},
		{"Ip", "::ffff:192.0.2.1", "192.0.2.1", ""},
		{"Ip", "fe80::1%eth0", "fe80::1", ""},
		{"Ip", "2001:db8::/32", "", "2001:db8::/32"},
		{"Range", "10.1.2.3/8", "", "10.0.0.0/8"},
		{"Range", "192.0.2.7/32", "192.0.2.7", ""},
		{"Range", "::ffff:10.0.0.0/104", "", "10.0.0.0/8"},
		{"range", "2001:db8::1/128", "2001:db8::1", ""},
	} {
		a, p, err := parseTarget(c.scope, c.value)
		if err != nil {
			t.Errorf("%s %s: %v", c.scope, c.value, err)
			continue
		}
		if (c.addr != "" && a != netip.MustParseAddr(c.addr)) || (c.addr == "" && a.IsValid()) ||
			(c.pfx != "" && p != netip.MustParsePrefix(c.pfx)) || (c.pfx == "" && p.IsValid()) {
			t.Errorf("%s %s: got %v %v, want %q %q", c.scope, c.value, a, p, c.addr, c.pfx)
		}
	}
	for _, v := range []string{"", "nope", "192.0.2.1/33", "192.0.2.256"} {
		if _, _, err := parseTarget("Ip", v); err == nil {
			t.Errorf("%q: no error", v)
		}
	}
}

func TestBadDecisionsSkipped(t *testing.T) {
	s := newStore()
	n, err := s.apply([]apiDecision{
		dec(1, "Ip", "192.0.2.1", "ban", "1h"),
		dec(2, "Ip", "not an address", "ban", "1h"),
		dec(3, "Ip", "192.0.2.3", "ban", "forever"),
		dec(4, "Country", "FR", "ban", "1h"), // another bouncer's business, not an error
		dec(5, "AS", "64496", "ban", "1h"),
	}, nil, time.Now())
	if n != 2 || err == nil {
		t.Errorf("skipped %d (%v), want 2", n, err)
	}
	if len(s.byID) != 1 {
		t.Errorf("%d decisions kept, want 1", len(s.byID))
	}
}

// randomPrefix is a prefix in a small space so that many of them nest, now
// and then a very wide one or one at the very end of the address space.
func randomPrefix(r *rand.Rand, v6 bool) netip.Prefix {
	if v6 {
		switch r.IntN(40) {
		case 0:
			return netip.MustParsePrefix("::/0")
		case 1:
			return netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120")
		}
		b := netip.MustParseAddr("2001:db8::").As16()
		b[14], b[15] = byte(r.IntN(256)), byte(r.IntN(256))
		return netip.PrefixFrom(netip.AddrFrom16(b), 112+r.IntN(17)).Masked()
	}
	switch r.IntN(40) {
	case 0:
		return netip.MustParsePrefix("0.0.0.0/0")
	case 1:
		return netip.MustParsePrefix("255.255.255.0/24")
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(256)), byte(r.IntN(256))}), 16+r.IntN(17)).Masked()
}

// TestRangesMatchScan checks the interval lists against a scan of every
// range, on nested ranges and the addresses at their edges.
func TestRangesMatchScan(t *testing.T) {
	now := time.Now()
	types := []string{"ban", "captcha", "throttle"}
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 1))
		s := newStore()
		var added []apiDecision
		var prefixes []netip.Prefix
		for i := range 60 {
			p := randomPrefix(r, seed%2 == 1)
			d := dec(int64(i+1), "Range", p.String(), types[r.IntN(3)], (time.Duration(i+1) * time.Minute).String())
			added = append(added, d)
			prefixes = append(prefixes, p)
		}
		mustApply(t, s, added, nil, now)
		// Delete a few, to check the lists are rebuilt right.
		var deleted []apiDecision
		for i := range added {
			if r.IntN(5) == 0 {
				deleted = append(deleted, apiDecision{ID: added[i].ID})
				prefixes[i] = netip.Prefix{}
			}
		}
		mustApply(t, s, nil, deleted, now)
		checkSorted(t, s.r4)
		checkSorted(t, s.r6)

		var probes []netip.Addr
		for _, p := range prefixes {
			if !p.IsValid() {
				continue
			}
			first, last := p.Addr(), lastAddr(p)
			probes = append(probes, first, last, first.Prev(), last.Next())
		}
		for range 200 {
			probes = append(probes, randomPrefix(r, seed%2 == 1).Addr())
		}
		for _, a := range probes {
			if !a.IsValid() {
				continue
			}
			want := scan(added, prefixes, a, now)
			if got := lookupID(s, a.String(), now); got != want {
				t.Fatalf("seed %d: %s: decision %d, a scan says %d", seed, a, got, want)
			}
		}
	}
}

// checkSorted checks that r's intervals are sorted and disjoint, as the
// binary search needs.
func checkSorted(t *testing.T, r *ranges) {
	t.Helper()
	for i := range r.start {
		if r.end[i].less(r.start[i]) || i > 0 && !r.end[i-1].less(r.start[i]) {
			t.Fatalf("interval %d of %d out of order: %v-%v after %v-%v", i, len(r.start), r.start[i], r.end[i], r.start[max(i-1, 0)], r.end[max(i-1, 0)])
		}
	}
}

func TestRangesAtTheEdges(t *testing.T) {
	now := time.Now()
	s := newStore()
	mustApply(t, s, []apiDecision{
		dec(1, "Range", "::/0", "captcha", "1h"),
		dec(2, "Range", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120", "ban", "1h"),
		dec(3, "Range", "::/120", "ban", "1h"),
		dec(4, "Range", "0.0.0.0/0", "captcha", "1h"),
		dec(5, "Range", "255.255.255.0/24", "ban", "1h"),
		dec(6, "Range", "0.0.0.0/24", "ban", "1h"),
	}, nil, now)
	checkSorted(t, s.r4)
	checkSorted(t, s.r6)
	for addr, want := range map[string]int64{
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": 2,
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff": 1,
		"::":              3,
		"::100":           1,
		"255.255.255.255": 5,
		"255.255.254.255": 4,
		"0.0.0.0":         6,
		"0.0.1.0":         4,
	} {
		if got := lookupID(s, addr, now); got != want {
			t.Errorf("%s: decision %d, want %d", addr, got, want)
		}
	}
}

// lastAddr is the last address of p: its host bits set.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return last
}

// scan is the id of the strongest decision whose range holds a, by brute force.
func scan(added []apiDecision, prefixes []netip.Prefix, a netip.Addr, now time.Time) int64 {
	var best entry
	ok := false
	for i, p := range prefixes {
		if !p.IsValid() || !p.Contains(a) {
			continue
		}
		d := added[i]
		dur, _ := time.ParseDuration(d.Duration)
		e := entry{id: d.ID, until: now.Add(dur).UnixNano(), kind: &kind{rank: rank(d.Type)}}
		if !ok || e.stronger(best) {
			best, ok = e, true
		}
	}
	return best.id
}

// benchBouncer is a Bouncer holding n addresses and m ranges, as if pulled.
func benchBouncer(b testing.TB, n, m int) (*Bouncer, []netip.Addr) {
	r := rand.New(rand.NewPCG(1, 2))
	var added []apiDecision
	var probes []netip.Addr
	for i := range n {
		a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(100)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		added = append(added, dec(int64(i+1), "Ip", a.String(), "ban", "4h"))
		probes = append(probes, a)
	}
	for i := range m {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(101 + r.IntN(100)), byte(r.IntN(256)), byte(r.IntN(256)), 0}), 16+r.IntN(9)).Masked()
		added = append(added, dec(int64(n+i+1), "Range", p.String(), "captcha", "4h"))
		probes = append(probes, p.Addr().Next())
	}
	for range n {
		probes = append(probes, netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}))
	}
	r.Shuffle(len(probes), func(i, j int) { probes[i], probes[j] = probes[j], probes[i] })
	s := newStore()
	if k, err := s.apply(added, nil, time.Now()); k != 0 {
		b.Fatal(err)
	}
	return &Bouncer{st: s}, probes
}

// BenchmarkDecision asks about addresses among 10,000 address decisions and
// 1,000 ranges: a third hit an address, a few a range, the rest nothing.
func BenchmarkDecision(b *testing.B) {
	bc, probes := benchBouncer(b, 10_000, 1_000)
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			bc.Decision(probes[i%len(probes)])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(probes))
			for pb.Next() {
				bc.Decision(probes[i%len(probes)])
				i++
			}
		})
	})
}
