package sticktable

import (
	"hash/maphash"
	"sync"
)

// shard is a part of a table under one lock: an LRU list of slots linked by
// index, the keys in one byte array, and an open-addressing index from
// key hash to slot. None of the three holds a pointer, so the garbage
// collector does not scan them, and an entry costs a slot (48 bytes), its
// key (stride bytes) and a share of the index (8 bytes a bucket, at most
// three quarters full).
type shard struct {
	mu     sync.Mutex
	closed bool
	// slots[0] is the sentinel of the LRU list: its next is the most
	// recently used entry, its prev the least.
	slots []slot
	keys  []byte // slot i's key is keys[i*stride:][:klen]
	// idx is linear probing with backward-shift deletion, so no
	// tombstones: a bucket is 0 when empty, else the low 32 bits of the
	// key's hash (which also place it) << 32 | the slot.
	idx   []uint64
	free  uint32 // first free slot, chained by next; 0 for none
	count int    // entries, expired or not
	limit int    // most entries the shard may hold
	// clock is the latest time the shard has seen. Calls read the clock
	// before the lock, so they may arrive out of order; taking the later
	// time keeps expiry non-decreasing from the LRU tail to the head.
	clock int64
	_     [64]byte // keeps the next shard's lock off this one's cache line
}

// slot is one entry. Counters are 32 bits where that is ample.
type slot struct {
	expire     int64 // nanoseconds since the table's epoch
	gpc        int64
	prev, next uint32 // LRU list; next also chains free slots
	server     uint32 // index into the table's names; 0 for none
	conn       int32
	rateCur    uint32 // requests in period ratePer
	ratePrev   uint32 // requests in the period before
	ratePer    uint32 // period number, wrapping
	gen        uint16 // bumped when the slot is freed
	klen       uint16
}

func (s *shard) init(limit, stride int) {
	s.limit = limit
	n := min(limit+1, 8)
	s.slots = make([]slot, 1, n)
	s.keys = make([]byte, stride, n*stride)
	s.idx = make([]uint64, 8)
}

// advance returns the later of t and the shard's clock, and keeps it.
func (s *shard) advance(t int64) int64 {
	if t < s.clock {
		return s.clock
	}
	s.clock = t
	return t
}

// find returns key's bucket and slot, or the empty bucket that ends its
// probe and slot 0.
func (s *shard) find(m *Memory, h uint64, key string) (pos, i uint32) {
	mask := uint32(len(s.idx) - 1)
	tag := uint32(h)
	for pos = tag & mask; ; pos = (pos + 1) & mask {
		b := s.idx[pos]
		if b == 0 {
			return pos, 0
		}
		if i = uint32(b); uint32(b>>32) == tag {
			o := int(i) * m.stride
			if string(s.keys[o:o+int(s.slots[i].klen)]) == key {
				return pos, i
			}
		}
	}
}

// insert indexes slot i under key and copies the key in; the key must be
// absent.
func (s *shard) insert(m *Memory, h uint64, key string, i uint32) {
	if (s.count+1)*4 > len(s.idx)*3 {
		s.growIndex()
	}
	pos, _ := s.find(m, h, key)
	s.idx[pos] = h<<32 | uint64(i)
	copy(s.keys[int(i)*m.stride:], key)
	s.count++
}

func (s *shard) growIndex() {
	old := s.idx
	s.idx = make([]uint64, 2*len(old))
	mask := uint32(len(s.idx) - 1)
	for _, b := range old {
		if b == 0 {
			continue
		}
		p := uint32(b>>32) & mask
		for s.idx[p] != 0 {
			p = (p + 1) & mask
		}
		s.idx[p] = b
	}
}

// remove frees slot i, which must hold an entry.
func (s *shard) remove(m *Memory, i uint32) {
	o := int(i) * m.stride
	h := maphash.Bytes(m.seed, s.keys[o:o+int(s.slots[i].klen)])
	mask := uint32(len(s.idx) - 1)
	p := uint32(h) & mask
	for uint32(s.idx[p]) != i {
		p = (p + 1) & mask
	}
	// Backward shift: pull each later bucket of the run back into the hole
	// when the hole lies on its probe path, i.e. its home is no nearer.
	for j := p; ; {
		j = (j + 1) & mask
		b := s.idx[j]
		if b == 0 {
			break
		}
		if home := uint32(b>>32) & mask; (j-home)&mask >= (j-p)&mask {
			s.idx[p] = b
			p = j
		}
	}
	s.idx[p] = 0
	s.unlink(i)
	s.slots[i] = slot{gen: s.slots[i].gen + 1, next: s.free}
	s.free = i
	s.count--
}

// alloc returns a free slot, growing the arrays up to the limit and then
// evicting the least recently used entry that has no request in flight;
// 0 when every entry has one.
func (s *shard) alloc(m *Memory, t int64) uint32 {
	if i := s.free; i != 0 {
		s.free = s.slots[i].next
		return i
	}
	if n := len(s.slots); n <= s.limit {
		if n == cap(s.slots) {
			// Doubling, but never past the limit: a full table has no slack.
			c := min(2*n, s.limit+1)
			slots := make([]slot, n, c)
			copy(slots, s.slots)
			keys := make([]byte, len(s.keys), c*m.stride)
			copy(keys, s.keys)
			s.slots, s.keys = slots, keys
		}
		s.slots = s.slots[:n+1]
		s.keys = s.keys[:(n+1)*m.stride]
		return uint32(n)
	}
	for range s.count {
		i := s.slots[0].prev
		if s.slots[i].conn == 0 {
			s.remove(m, i)
			return s.alloc(m, t)
		}
		// In use: it stays, as if just used, and the next oldest goes.
		s.touch(i, t+m.expire)
	}
	return 0
}

// purge removes up to budget expired entries from the LRU tail. Expiry is
// refreshed by the same duration on every use, so the tail is the first to
// expire and the first live entry ends the purge. An expired entry with a
// request in flight is kept as if just used.
func (s *shard) purge(m *Memory, t int64, budget int) {
	for ; budget > 0; budget-- {
		i := s.slots[0].prev
		if i == 0 || s.slots[i].expire > t {
			return
		}
		if s.slots[i].conn > 0 {
			s.touch(i, t+m.expire)
			continue
		}
		s.remove(m, i)
	}
}

// touch sets slot i's expiry and makes it the most recently used.
func (s *shard) touch(i uint32, expire int64) {
	s.slots[i].expire = expire
	if s.slots[0].next != i {
		s.unlink(i)
		s.linkFront(i)
	}
}

func (s *shard) unlink(i uint32) {
	p, n := s.slots[i].prev, s.slots[i].next
	s.slots[p].next = n
	s.slots[n].prev = p
}

func (s *shard) linkFront(i uint32) {
	n := s.slots[0].next
	s.slots[i].prev, s.slots[i].next = 0, n
	s.slots[n].prev = i
	s.slots[0].next = i
}
