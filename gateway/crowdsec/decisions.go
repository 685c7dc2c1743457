package crowdsec

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Decision is the remediation the LAPI asks for an address.
type Decision struct {
	// Type is "ban", "captcha", or another remediation the gateway may not know.
	Type string
	// Origin says who decided: "crowdsec", "cscli", "CAPI", "lists", ...
	Origin string
	// Scenario says why, e.g. "crowdsecurity/http-probing".
	Scenario string
	// Until is when the decision lapses, whether or not the LAPI says so.
	Until time.Time
}

// apiDecision is a decision as the LAPI's stream sends it.
type apiDecision struct {
	ID       int64  `json:"id"`
	Origin   string `json:"origin"`
	Type     string `json:"type"`
	Scope    string `json:"scope"`
	Value    string `json:"value"`
	Duration string `json:"duration"`
	Scenario string `json:"scenario"`
}

// kind is what many decisions share; it is interned so that a long list
// (the community blocklist alone has tens of thousands of entries) holds each
// string once rather than once per decision.
type kind struct {
	typ, origin, scenario string
	rank                  int8
}

// maxKinds bounds the interning table: scenario names are few, but a LAPI
// that made up a new one per decision must not grow it forever.
const maxKinds = 4096

// rank orders remediations so that the strongest of several wins.
func rank(typ string) int8 {
	switch {
	case strings.EqualFold(typ, "ban"):
		return 3
	case strings.EqualFold(typ, "captcha"):
		return 2
	}
	return 1
}

// entry is one decision about an exact address or a range.
type entry struct {
	id    int64
	until int64 // Unix ns, compared with the clock on every lookup
	kind  *kind
}

// stronger tells whether e beats o: the stronger remediation, then the
// longer-lasting one, so that the answer does not flip between equals.
func (e entry) stronger(o entry) bool {
	if e.kind.rank != o.kind.rank {
		return e.kind.rank > o.kind.rank
	}
	return e.until > o.until
}

// decision is what the gateway is told about e.
func (e entry) decision() Decision {
	return Decision{Type: e.kind.typ, Origin: e.kind.origin, Scenario: e.kind.scenario, Until: time.Unix(0, e.until)}
}

// strongest is the strongest of es still in force at now: a lapsed ban must
// not hide a captcha that outlives it.
func strongest(es []entry, now int64) (best entry, ok bool) {
	for _, e := range es {
		if e.until > now && (!ok || e.stronger(best)) {
			best, ok = e, true
		}
	}
	return best, ok
}

// without is es less the decision id.
func without(es []entry, id int64) []entry {
	return slices.DeleteFunc(es, func(e entry) bool { return e.id == id })
}

// where is what a decision id is about, for deleting it by id.
type where struct {
	addr netip.Addr   // valid for an exact address
	pfx  netip.Prefix // valid for a range
}

// store is the copy of the LAPI's decisions. Readers use ips, r4 and r6 under
// the Bouncer's read lock; only the pulling goroutine changes a store, under
// the write lock once readers can see it.
type store struct {
	ips   map[netip.Addr][]entry
	r4    *ranges // IPv4 ranges, rebuilt from nets when they change
	r6    *ranges // IPv6 ranges, likewise
	nets  map[netip.Prefix][]entry
	byID  map[int64]where
	kinds map[kind]*kind
}

// newStore is an empty copy.
func newStore() *store {
	return &store{
		ips:   map[netip.Addr][]entry{},
		nets:  map[netip.Prefix][]entry{},
		byID:  map[int64]where{},
		kinds: map[kind]*kind{},
	}
}

// lookup is the strongest decision about a (unmapped, zoneless) in force at now.
func (s *store) lookup(a netip.Addr, now int64) (entry, bool) {
	best, ok := strongest(s.ips[a], now)
	r := s.r6
	if a.Is4() {
		r = s.r4
	}
	if e, found := r.lookup(keyOf(a), now); found && (!ok || e.stronger(best)) {
		best, ok = e, true
	}
	return best, ok
}

// apply brings the stream's lists into s, received at now. It answers how
// many decisions it could not use and why the first one failed; decisions of
// scopes other than Ip and Range are not counted: ignoring them is normal.
func (s *store) apply(added, deleted []apiDecision, now time.Time) (skipped int, first error) {
	changed := false
	for _, d := range added {
		isNet, err := s.add(d, now)
		changed = changed || isNet
		if err != nil {
			skipped++
			if first == nil {
				first = err
			}
		}
	}
	// Deleted after added: an id in both lists must end up gone.
	for _, d := range deleted {
		changed = s.remove(d.ID) || changed
	}
	if changed {
		s.rebuild()
	}
	return skipped, first
}

// add keeps decision d, replacing an older one of the same id; it reports
// whether the ranges changed.
func (s *store) add(d apiDecision, now time.Time) (isNet bool, err error) {
	if !strings.EqualFold(d.Scope, "ip") && !strings.EqualFold(d.Scope, "range") {
		return false, nil
	}
	addr, pfx, err := parseTarget(d.Scope, d.Value)
	if err != nil {
		return false, fmt.Errorf("decision %d: %w", d.ID, err)
	}
	dur, err := time.ParseDuration(d.Duration)
	if err != nil {
		return false, fmt.Errorf("decision %d: duration %q: %w", d.ID, d.Duration, err)
	}
	isNet = s.remove(d.ID)
	until := now.Add(dur)
	if !until.After(now) {
		return isNet, nil // already lapsed: nothing to keep
	}
	e := entry{id: d.ID, until: until.UnixNano(), kind: s.intern(d)}
	if pfx.IsValid() {
		s.nets[pfx] = append(s.nets[pfx], e)
		s.byID[d.ID] = where{pfx: pfx}
		return true, nil
	}
	s.ips[addr] = append(s.ips[addr], e)
	s.byID[d.ID] = where{addr: addr}
	return isNet, nil
}

// remove forgets decision id; it reports whether the ranges changed.
func (s *store) remove(id int64) (isNet bool) {
	w, ok := s.byID[id]
	if !ok {
		return false
	}
	delete(s.byID, id)
	if w.pfx.IsValid() {
		if es := without(s.nets[w.pfx], id); len(es) > 0 {
			s.nets[w.pfx] = es
		} else {
			delete(s.nets, w.pfx)
		}
		return true
	}
	if es := without(s.ips[w.addr], id); len(es) > 0 {
		s.ips[w.addr] = es
	} else {
		delete(s.ips, w.addr)
	}
	return false
}

// prune forgets the decisions lapsed at now, which the LAPI should have
// listed as deleted but may not have (a lost answer, a LAPI gone for good).
func (s *store) prune(now time.Time) {
	n := now.UnixNano()
	var lapsed []int64
	for _, es := range s.ips {
		lapsed = appendLapsed(lapsed, es, n)
	}
	for _, es := range s.nets {
		lapsed = appendLapsed(lapsed, es, n)
	}
	changed := false
	for _, id := range lapsed {
		changed = s.remove(id) || changed
	}
	if changed {
		s.rebuild()
	}
}

// appendLapsed adds to ids those of es that lapsed at now.
func appendLapsed(ids []int64, es []entry, now int64) []int64 {
	for _, e := range es {
		if e.until <= now {
			ids = append(ids, e.id)
		}
	}
	return ids
}

// intern is the shared kind of d.
func (s *store) intern(d apiDecision) *kind {
	k := kind{typ: d.Type, origin: d.Origin, scenario: d.Scenario, rank: rank(d.Type)}
	if p, ok := s.kinds[k]; ok {
		return p
	}
	if len(s.kinds) >= maxKinds {
		clear(s.kinds) // the entries keep their pointers; only sharing is lost
	}
	p := &k
	s.kinds[k] = p
	return p
}

// rebuild remakes the interval lists from the ranges.
func (s *store) rebuild() {
	var v4, v6 []span
	for p, es := range s.nets {
		sp := spanOf(p, es)
		if p.Addr().Is4() {
			v4 = append(v4, sp)
		} else {
			v6 = append(v6, sp)
		}
	}
	s.r4, s.r6 = flatten(v4), flatten(v6)
}

// parseTarget reads a decision's value: an exact address (zone dropped,
// IPv4-mapped unmapped, as lookups are) or a masked range. CrowdSec writes
// single addresses as Ip and CIDRs as Range, but a /32 range or a CIDR under
// Ip mean the same to a bouncer, so both are accepted either way.
func parseTarget(scope, value string) (netip.Addr, netip.Prefix, error) {
	if a, err := netip.ParseAddr(value); err == nil {
		return a.Unmap().WithZone(""), netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(value)
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("%s %q is neither an address nor a CIDR range", scope, value)
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.IsSingleIP() {
		return p.Addr(), netip.Prefix{}, nil
	}
	return netip.Addr{}, p, nil
}

// u128 is an address as a number, IPv4 in the low 32 bits, so that intervals
// compare with two integer comparisons.
type u128 struct{ hi, lo uint64 }

// less tells whether a < b.
func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// next is a+1 (wrapping, which callers avoid).
func (a u128) next() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

// prev is a-1 (wrapping, which callers avoid).
func (a u128) prev() u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

// maxU128 is the last IPv6 address, after which there is no next.
var maxU128 = u128{^uint64(0), ^uint64(0)}

// keyOf is a as a number.
func keyOf(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// hostMask is a number with the low n bits set.
func hostMask(n int) u128 {
	switch {
	case n >= 128:
		return maxU128
	case n >= 64:
		return u128{1<<(n-64) - 1, ^uint64(0)}
	}
	return u128{0, 1<<n - 1}
}

// span is one range as an interval, with its decisions.
type span struct {
	start, end u128
	es         []entry
}

// spanOf is masked range p as an interval.
func spanOf(p netip.Prefix, es []entry) span {
	start := keyOf(p.Addr())
	m := hostMask(p.Addr().BitLen() - p.Bits())
	return span{start: start, end: u128{start.hi | m.hi, start.lo | m.lo}, es: es}
}

// ranges is the ranges of one family cut into disjoint, sorted intervals,
// each with every decision that covers it, so that a lookup is one binary
// search however the ranges nest.
type ranges struct {
	start []u128 // kept apart from end and es so that the search stays in cache
	end   []u128
	es    [][]entry
}

// lookup is the strongest decision covering k in force at now.
func (r *ranges) lookup(k u128, now int64) (entry, bool) {
	if r == nil {
		return entry{}, false
	}
	lo, hi := 0, len(r.start)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.less(r.start[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 || r.end[lo-1].less(k) {
		return entry{}, false
	}
	return strongest(r.es[lo-1], now)
}

// flatten cuts spans into disjoint intervals. CIDR ranges either nest or do
// not meet, so sorted by start (the wider first at equal starts) they open
// and close like brackets, and a stack of the open ones is what covers each
// piece between two brackets.
func flatten(spans []span) *ranges {
	slices.SortFunc(spans, func(a, b span) int {
		if c := cmpU128(a.start, b.start); c != 0 {
			return c
		}
		return cmpU128(b.end, a.end)
	})
	f := flattener{r: &ranges{}}
	for _, sp := range spans {
		f.closeBefore(sp.start)
		if len(f.open) > 0 && f.cur.less(sp.start) {
			f.emit(sp.start.prev())
		}
		f.cur = sp.start
		f.push(sp)
	}
	f.closeAll()
	return f.r
}

// cmpU128 orders numbers for sorting.
func cmpU128(a, b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// flattener is the state of flatten's sweep.
type flattener struct {
	r     *ranges
	open  []span  // the ranges covering cur, widest first
	cover []entry // the decisions of open, concatenated
	marks []int   // len(cover) before each open range was pushed
	cur   u128    // the first address not yet emitted
}

// push opens sp.
func (f *flattener) push(sp span) {
	f.open = append(f.open, sp)
	f.marks = append(f.marks, len(f.cover))
	f.cover = append(f.cover, sp.es...)
}

// pop closes the innermost open range.
func (f *flattener) pop() {
	n := len(f.open) - 1
	f.cover = f.cover[:f.marks[n]]
	f.open, f.marks = f.open[:n], f.marks[:n]
}

// emit adds the interval [cur, end] with the open ranges' decisions.
func (f *flattener) emit(end u128) {
	if end.less(f.cur) || len(f.cover) == 0 {
		return
	}
	f.r.start = append(f.r.start, f.cur)
	f.r.end = append(f.r.end, end)
	f.r.es = append(f.r.es, slices.Clone(f.cover))
}

// closeBefore closes the open ranges that end before start.
func (f *flattener) closeBefore(start u128) {
	for len(f.open) > 0 {
		top := f.open[len(f.open)-1]
		if !top.end.less(start) {
			return
		}
		f.emit(top.end)
		f.cur = top.end.next() // top.end < start: no wrap
		f.pop()
	}
}

// closeAll closes every open range at the end of the sweep.
func (f *flattener) closeAll() {
	for len(f.open) > 0 {
		top := f.open[len(f.open)-1]
		f.emit(top.end)
		if top.end == maxU128 {
			return // the ranges still open end there too: nothing is left
		}
		f.cur = top.end.next()
		f.pop()
	}
}
