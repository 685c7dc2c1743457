package reputation

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// PrefixSet is an immutable set of IPv4 and IPv6 prefixes. It is safe for
// concurrent use, and a nil *PrefixSet is an empty set.
//
// Each family is flattened into sorted, non-overlapping ranges of addresses,
// each labelled with the length of the most specific prefix that covers it
// (or with "not covered"). A lookup is then one binary search whatever the
// prefixes' overlaps, and the matching prefix is the address masked to that
// length, so no prefix needs to be stored. Adjacent ranges with the same
// label merge, which keeps runs of sibling prefixes down to one entry.
type PrefixSet struct {
	v4  table[uint32]
	v6  table[u128]
	len int
}

// table holds one family's ranges: range i starts at start[i] and runs to
// the next start; bits[i] is its label.
type table[K any] struct {
	start []K
	bits  []uint8
}

// uncovered labels a range that no prefix covers.
const uncovered = math.MaxUint8

// u128 is an IPv6 address as a number, so ranges can be compared and stepped.
type u128 struct{ hi, lo uint64 }

// span is one prefix as the range of addresses it covers.
type span[K any] struct {
	first, last K
	bits        uint8
}

// NewPrefixSet builds the set of prefixes. Host bits are masked off;
// invalid prefixes are ignored. A prefix inside ::ffff:0:0/96 is taken as
// the IPv4 prefix it maps, since addresses are unmapped before lookup;
// other IPv6 prefixes, even ::/0, never match an IPv4 address.
func NewPrefixSet(prefixes []netip.Prefix) *PrefixSet {
	var v4 []span[uint32]
	var v6 []span[u128]
	for _, p := range prefixes {
		p = unmapPrefix(p)
		switch {
		case !p.IsValid():
		case p.Addr().Is4():
			v4 = append(v4, span4(p))
		default:
			v6 = append(v6, span6(p))
		}
	}
	s := &PrefixSet{}
	s.v4, v4 = buildTable(v4, cmp.Compare[uint32], next4)
	s.v6, v6 = buildTable(v6, cmpU128, next6)
	s.len = len(v4) + len(v6)
	return s
}

// unmapPrefix turns a prefix of IPv4-mapped addresses into the IPv4 prefix.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.IsValid() && p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func span4(p netip.Prefix) span[uint32] {
	a := p.Masked().Addr().As4()
	first := binary.BigEndian.Uint32(a[:])
	return span[uint32]{first, first | math.MaxUint32>>p.Bits(), uint8(p.Bits())}
}

func span6(p netip.Prefix) span[u128] {
	first := toU128(p.Masked().Addr())
	last, bits := first, p.Bits()
	if bits <= 64 {
		last.hi |= math.MaxUint64 >> bits
		last.lo = math.MaxUint64
	} else {
		last.lo |= math.MaxUint64 >> (bits - 64)
	}
	return span[u128]{first, last, uint8(bits)}
}

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func cmpU128(a, b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next4 and next6 give the address after a, and false when a is the last.
func next4(a uint32) (uint32, bool) { return a + 1, a != math.MaxUint32 }

func next6(a u128) (u128, bool) {
	if a.lo != math.MaxUint64 {
		return u128{a.hi, a.lo + 1}, true
	}
	return u128{a.hi + 1, 0}, a.hi != math.MaxUint64
}

// buildTable sorts the spans (outer before inner at the same start), drops
// duplicates, and sweeps them with a stack of the prefixes that enclose the
// current address: entering a prefix starts a range labelled with it, and
// leaving one resumes the label of the prefix below it on the stack. Prefixes
// never partly overlap, so the stack is at most one deep per prefix length.
// It returns the table and the distinct spans.
func buildTable[K any](spans []span[K], cmpK func(a, b K) int, next func(K) (K, bool)) (table[K], []span[K]) {
	slices.SortFunc(spans, func(a, b span[K]) int {
		return cmp.Or(cmpK(a.first, b.first), cmp.Compare(a.bits, b.bits))
	})
	spans = slices.CompactFunc(spans, func(a, b span[K]) bool {
		return a.bits == b.bits && cmpK(a.first, b.first) == 0
	})
	var t table[K]
	var stack []span[K]
	for _, s := range spans {
		for len(stack) > 0 && cmpK(stack[len(stack)-1].last, s.first) < 0 {
			stack = t.leave(stack, next, cmpK)
		}
		stack = append(stack, s)
		t.emit(s.first, s.bits, cmpK)
	}
	for len(stack) > 0 {
		if _, ok := next(stack[len(stack)-1].last); !ok {
			break // it and all that enclose it run to the end of the family
		}
		stack = t.leave(stack, next, cmpK)
	}
	t.start, t.bits = slices.Clone(t.start), slices.Clone(t.bits)
	return t, spans
}

// leave pops the innermost prefix; what follows it has the label of the
// prefix it was nested in, if any.
func (t *table[K]) leave(stack []span[K], next func(K) (K, bool), cmpK func(a, b K) int) []span[K] {
	top := stack[len(stack)-1]
	stack = stack[:len(stack)-1]
	label := uint8(uncovered)
	if len(stack) > 0 {
		label = stack[len(stack)-1].bits
	}
	after, _ := next(top.last)
	t.emit(after, label, cmpK)
	return stack
}

// emit starts a range at start labelled bits. A range that starts where the
// previous one did replaces it (a prefix and its first child, or several
// prefixes ending together); one with the previous range's label extends it.
func (t *table[K]) emit(start K, bits uint8, cmpK func(a, b K) int) {
	n := len(t.start)
	if n > 0 && cmpK(t.start[n-1], start) == 0 {
		t.start, t.bits = t.start[:n-1], t.bits[:n-1]
		n--
	}
	prev := uint8(uncovered)
	if n > 0 {
		prev = t.bits[n-1]
	}
	if prev != bits {
		t.start, t.bits = append(t.start, start), append(t.bits, bits)
	}
}

// Len is the number of distinct prefixes in the set.
func (s *PrefixSet) Len() int {
	if s == nil {
		return 0
	}
	return s.len
}

// Contains reports whether addr is in one of the set's prefixes.
func (s *PrefixSet) Contains(addr netip.Addr) bool {
	_, ok := s.bits(addr)
	return ok
}

// Lookup returns the most specific of the set's prefixes that holds addr.
func (s *PrefixSet) Lookup(addr netip.Addr) (netip.Prefix, bool) {
	addr = addr.Unmap().WithZone("")
	bits, ok := s.bits(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	p, _ := addr.Prefix(int(bits))
	return p, true
}

// bits returns the length of the most specific prefix holding addr.
func (s *PrefixSet) bits(addr netip.Addr) (uint8, bool) {
	if s == nil || !addr.IsValid() {
		return 0, false
	}
	addr = addr.Unmap()
	bits := uint8(uncovered)
	if addr.Is4() {
		a := addr.As4()
		if i := search4(s.v4.start, binary.BigEndian.Uint32(a[:])); i >= 0 {
			bits = s.v4.bits[i]
		}
	} else if i := search6(s.v6.start, toU128(addr)); i >= 0 {
		bits = s.v6.bits[i]
	}
	return bits, bits != uncovered
}

// search4 returns the index of the last range starting at or before a, or -1.
func search4(start []uint32, a uint32) int {
	lo, hi := 0, len(start) // the answer is lo-1: start[:lo] <= a < start[hi:]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if start[m] <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// search6 is search4 for IPv6.
func search6(start []u128, a u128) int {
	lo, hi := 0, len(start)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s := start[m]; s.hi < a.hi || s.hi == a.hi && s.lo <= a.lo {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// size is the memory the set's tables hold, in bytes.
func (s *PrefixSet) size() int {
	return cap(s.v4.start)*4 + cap(s.v4.bits) + cap(s.v6.start)*16 + cap(s.v6.bits)
}
