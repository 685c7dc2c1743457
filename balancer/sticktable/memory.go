package sticktable

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is a Store in this process's memory.
type Memory struct {
	name   string
	expire int64 // Expire in nanoseconds
	period int64 // RatePeriod in nanoseconds
	stride int   // bytes a key takes in a shard's key array
	fixed  bool  // every key is exactly stride bytes (ip, integer)
	seed   maphash.Seed
	shift  uint // hash >> shift picks the shard (64 for a single shard)
	shards []shard
	names  names
	now    func() time.Time
	epoch  time.Time // times are kept as nanoseconds since epoch
}

var _ Store = (*Memory)(nil)

// Shards hold at least minShard entries each, so that tables up to twice
// that size keep one exact LRU list; maxShards is enough to keep lock
// contention low on the machines the gateway runs on.
const (
	minShard  = 1024
	maxShards = 64
	// purgeBudget bounds the expired entries one call removes, so that a
	// batch expiring together does not stall whoever comes next; the rest
	// go on later calls, and are absent to lookups meanwhile.
	purgeBudget = 16
	// maxNames bounds the distinct server names, which are interned for the
	// table's life: they are meant to be a backend's servers.
	maxNames = 1 << 16
)

// NewMemory returns an empty table for c, with defaults filled in. now is
// the clock, time.Now when nil; tests pass a fake one.
func NewMemory(c Config, now func() time.Time) (*Memory, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("sticktable %s: %w", c.Name, err)
	}
	if now == nil {
		now = time.Now
	}
	n := 1
	for n < maxShards && c.Size/(2*n) >= minShard {
		n *= 2
	}
	m := &Memory{
		name:   c.Name,
		expire: int64(c.Expire),
		period: int64(c.RatePeriod),
		stride: c.keyLen(),
		fixed:  c.Type != TypeString,
		seed:   maphash.MakeSeed(),
		shift:  uint(64 - bits.TrailingZeros(uint(n))),
		shards: make([]shard, n),
		now:    now,
		epoch:  now(),
	}
	m.names.v.Store(&nameTable{list: []string{""}, ids: map[string]uint32{}})
	for i := range m.shards {
		// The limits add up to Size exactly, so the table never holds more.
		limit := c.Size / n
		if i < c.Size%n {
			limit++
		}
		m.shards[i].init(limit, m.stride)
	}
	return m, nil
}

// Lookup implements Store.
func (m *Memory) Lookup(_ context.Context, key string) (Entry, bool, error) {
	s, i, t, err := m.open(key, false)
	if err != nil {
		return Entry{}, false, err
	}
	defer s.mu.Unlock()
	if i == 0 {
		return Entry{}, false, nil
	}
	return m.entry(&s.slots[i], t), true, nil
}

// Stick implements Store.
func (m *Memory) Stick(_ context.Context, key, server string) error {
	id, err := m.names.id(server)
	if err != nil {
		return err
	}
	s, i, _, err := m.open(key, true)
	if err != nil {
		return err
	}
	s.slots[i].server = id
	s.mu.Unlock()
	return nil
}

// Swap implements Store.
func (m *Memory) Swap(_ context.Context, key, old, server string) (string, error) {
	id, err := m.names.id(server)
	if err != nil {
		return "", err
	}
	s, i, _, err := m.open(key, true)
	if err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if cur := m.names.name(s.slots[i].server); cur != old && cur != "" {
		return cur, nil
	}
	s.slots[i].server = id
	return server, nil
}

// Track implements Store. It allocates twice, for the release func and the
// flag that makes it idempotent; a release must be per call, so it cannot
// be pooled or shared.
func (m *Memory) Track(_ context.Context, key string) (Entry, func(), error) {
	s, i, t, err := m.open(key, true)
	if err != nil {
		return Entry{}, noRelease, err
	}
	sl := &s.slots[i]
	sl.conn++
	m.count(sl, t)
	e := m.entry(sl, t)
	r := &release{m: m, s: s, i: i, gen: sl.gen}
	s.mu.Unlock()
	return e, r.do, nil
}

// Hit implements Store.
func (m *Memory) Hit(_ context.Context, key string) (Entry, error) {
	s, i, t, err := m.open(key, true)
	if err != nil {
		return Entry{}, err
	}
	sl := &s.slots[i]
	m.count(sl, t)
	e := m.entry(sl, t)
	s.mu.Unlock()
	return e, nil
}

func noRelease() {}

// release takes back one Track's connection. The slot's generation tells
// whether the entry is still the one tracked: Delete frees in-flight
// entries, and the slot may hold another key since.
type release struct {
	m    *Memory
	s    *shard
	i    uint32
	gen  uint16
	done atomic.Bool
}

func (r *release) do() {
	if r.done.Swap(true) {
		return
	}
	t := r.m.ticks()
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	sl := &s.slots[r.i]
	if sl.gen != r.gen || sl.conn <= 0 {
		return
	}
	sl.conn--
	// The request ended now: the entry lives Expire from here.
	s.touch(r.i, s.advance(t)+r.m.expire)
}

// AddGPC implements Store.
func (m *Memory) AddGPC(_ context.Context, key string, n int64) (int64, error) {
	s, i, _, err := m.open(key, true)
	if err != nil {
		return 0, err
	}
	s.slots[i].gpc += n
	v := s.slots[i].gpc
	s.mu.Unlock()
	return v, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	s, i, _, err := m.open(key, false)
	if err != nil {
		return err
	}
	if i != 0 {
		s.remove(m, i)
	}
	s.mu.Unlock()
	return nil
}

// Len implements Store; it purges every expired entry first, so the count
// is of live ones.
func (m *Memory) Len(context.Context) (int, error) {
	t := m.ticks()
	n := 0
	for k := range m.shards {
		s := &m.shards[k]
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return 0, ErrClosed
		}
		s.purge(m, s.advance(t), s.count+1)
		n += s.count
		s.mu.Unlock()
	}
	return n, nil
}

// Entries implements Store: shard by shard, each from its most recently
// used entry.
func (m *Memory) Entries(_ context.Context, offset, limit int) ([]KeyEntry, error) {
	t := m.ticks()
	var out []KeyEntry
	for k := range m.shards {
		s := &m.shards[k]
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		now := s.advance(t)
		for i := s.slots[0].next; i != 0 && len(out) < limit; i = s.slots[i].next {
			sl := &s.slots[i]
			if sl.expire < now {
				break // the rest of the list is older still
			}
			if offset > 0 {
				offset--
				continue
			}
			out = append(out, KeyEntry{Key: string(s.keys[int(i)*m.stride:][:sl.klen]), Entry: m.entry(sl, now)})
		}
		s.mu.Unlock()
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

// Close implements Store: it drops the entries at once rather than leaving
// them to the garbage collector's sight of the Memory.
func (m *Memory) Close() error {
	for k := range m.shards {
		s := &m.shards[k]
		s.mu.Lock()
		s.closed = true
		s.slots, s.keys, s.idx = nil, nil, nil
		s.mu.Unlock()
	}
	return nil
}

// open locks key's shard and finds key's live entry, creating it when
// create is set; i is 0 when the key has none. On a nil error the shard is
// left locked for the caller, who holds the lock for a few field updates.
func (m *Memory) open(key string, create bool) (s *shard, i uint32, t int64, err error) {
	if n := len(key); n == 0 || n > m.stride || m.fixed && n != m.stride {
		return nil, 0, 0, m.badKey(key)
	}
	h := maphash.String(m.seed, key)
	t = m.ticks()
	s = &m.shards[h>>m.shift]
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, 0, 0, ErrClosed
	}
	t = s.advance(t)
	s.purge(m, t, purgeBudget)
	if _, i = s.find(m, h, key); i != 0 {
		if sl := &s.slots[i]; sl.expire > t || sl.conn > 0 {
			s.touch(i, t+m.expire)
			return s, i, t, nil
		}
		s.remove(m, i)
	}
	if !create {
		return s, 0, t, nil
	}
	if i = s.alloc(m, t); i == 0 {
		s.mu.Unlock()
		return nil, 0, 0, ErrFull
	}
	s.insert(m, h, key, i)
	s.slots[i] = slot{
		expire:  t + m.expire,
		ratePer: uint32(t / m.period),
		gen:     s.slots[i].gen,
		klen:    uint16(len(key)),
	}
	s.linkFront(i)
	return s, i, t, nil
}

func (m *Memory) badKey(key string) error {
	want := fmt.Sprintf("1 to %d bytes", m.stride)
	if m.fixed {
		want = fmt.Sprintf("%d bytes", m.stride)
	}
	return fmt.Errorf("sticktable %s: a key of %d bytes, want %s (keys come from Config.Key)", m.name, len(key), want)
}

// ticks is the time in nanoseconds since the table was made, by the
// monotonic clock when the clock has one.
func (m *Memory) ticks() int64 {
	return int64(m.now().Sub(m.epoch))
}

func (m *Memory) entry(sl *slot, t int64) Entry {
	return Entry{
		Server:  m.names.name(sl.server),
		ConnCur: int64(sl.conn),
		ReqRate: m.rate(sl, t),
		GPC:     sl.gpc,
	}
}

// count adds one request to the slot's rate counter, HAProxy's freq_ctr:
// the requests of the current period and of the one before. Periods are
// RatePeriod long, counted from the table's creation; the period number
// is kept in 32 bits and compared by difference, so it may wrap.
func (m *Memory) count(sl *slot, t int64) {
	per := uint32(t / m.period)
	switch per - sl.ratePer {
	case 0:
	case 1:
		sl.ratePrev, sl.rateCur = sl.rateCur, 0
	default:
		sl.ratePrev, sl.rateCur = 0, 0
	}
	sl.ratePer = per
	if sl.rateCur < math.MaxUint32 {
		sl.rateCur++
	}
}

// rate is the requests over the last period as freq_ctr estimates them:
// the current period's count plus the previous period's scaled by the part
// of the current period still to run, prev × (period − elapsed) / period,
// rounded down. It assumes the previous period's requests were spread
// evenly, and needs two counters rather than one per request.
func (m *Memory) rate(sl *slot, t int64) int64 {
	var cur, prev uint32
	switch uint32(t/m.period) - sl.ratePer {
	case 0:
		cur, prev = sl.rateCur, sl.ratePrev
	case 1:
		prev = sl.rateCur
	}
	if prev == 0 {
		return int64(cur)
	}
	remain := uint64(m.period - t%m.period)
	hi, lo := bits.Mul64(uint64(prev), remain)
	q, _ := bits.Div64(hi, lo, uint64(m.period)) // q ≤ prev, so no overflow
	return int64(cur) + int64(q)
}

// names interns server names: an entry holds a 4-byte index, not a string
// header and a pointer. Readers take the current table without a lock;
// a new name copies it, which is rare (a backend has few servers).
type names struct {
	mu sync.Mutex
	v  atomic.Pointer[nameTable]
}

type nameTable struct {
	list []string // list[0] is "", no server
	ids  map[string]uint32
}

func (n *names) name(id uint32) string { return n.v.Load().list[id] }

func (n *names) id(name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	if id, ok := n.v.Load().ids[name]; ok {
		return id, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := n.v.Load()
	if id, ok := cur.ids[name]; ok {
		return id, nil
	}
	if len(cur.list) >= maxNames {
		return 0, fmt.Errorf("sticktable: more than %d server names", maxNames-1)
	}
	id := uint32(len(cur.list))
	next := &nameTable{list: append(cur.list[:id:id], name), ids: maps.Clone(cur.ids)}
	next.ids[name] = id
	n.v.Store(next)
	return id, nil
}
