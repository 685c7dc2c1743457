package waf

import (
	"sync"
	"sync/atomic"
)

// atomTable holds the atoms of every compiled pattern and the DFA that finds
// them. It is process-wide, like Coraza's operator registry: every policy
// compiles the same CRS, so they share it.
var atomTable struct {
	mu   sync.Mutex
	ids  map[string]int
	list []string
	dfa  atomic.Pointer[acDFA]
}

// internAtoms gives each atom of c its id and returns how many atoms the
// DFA must know for c (its largest id + 1).
func internAtoms(c *cond) int {
	atomTable.mu.Lock()
	defer atomTable.mu.Unlock()
	if atomTable.ids == nil {
		atomTable.ids = map[string]int{}
	}
	need := 0
	for _, a := range c.atoms(nil) {
		id, ok := atomTable.ids[a.atom]
		if !ok {
			id = len(atomTable.list)
			atomTable.ids[a.atom] = id
			atomTable.list = append(atomTable.list, a.atom)
		}
		a.id = id
		need = max(need, id+1)
	}
	return need
}

// atomDFA returns a DFA that knows at least need atoms, built over all the
// atoms interned so far when the current one is too old.
func atomDFA(need int) *acDFA {
	if d := atomTable.dfa.Load(); d != nil && d.n >= need {
		return d
	}
	atomTable.mu.Lock()
	defer atomTable.mu.Unlock()
	d := atomTable.dfa.Load()
	if d == nil || d.n < len(atomTable.list) {
		d = newACDFA(atomTable.list)
		atomTable.dfa.Store(d)
	}
	return d
}

// txAtoms remembers, for one transaction, which atoms each value holds:
// CRS runs many patterns over the same transformed value, and one scan
// answers for all of them. It lives only as long as the transaction.
type txAtoms struct {
	dfa   *acDFA
	found map[string][]uint64
	slab  []uint64 // backing for found's bit sets
	seen  []uint64
}

var (
	txAtomsOf   sync.Map // Coraza transaction -> *txAtoms
	txAtomsPool = sync.Pool{New: func() any { return &txAtoms{found: map[string][]uint64{}} }}
)

// trackAtoms starts the memo for a transaction; untrackAtoms ends it.
func trackAtoms(tx any) { txAtomsOf.Store(tx, txAtomsPool.Get()) }

func untrackAtoms(tx any) {
	if v, ok := txAtomsOf.LoadAndDelete(tx); ok {
		c := v.(*txAtoms)
		clear(c.found)
		c.slab = c.slab[:0]
		txAtomsPool.Put(c)
	}
}

// atomsIn returns the set of atoms that value holds, over a DFA that
// knows at least need atoms.
func atomsIn(tx any, value string, need int) []uint64 {
	d := atomDFA(need)
	v, ok := txAtomsOf.Load(tx)
	if !ok { // not a transaction of ours: no memo
		found := make([]uint64, d.words())
		d.scan(value, found, make([]uint64, d.seenWords()))
		return found
	}
	c := v.(*txAtoms)
	if c.dfa != d {
		clear(c.found)
		c.slab = c.slab[:0]
		c.dfa, c.seen = d, make([]uint64, d.seenWords())
	}
	if found, ok := c.found[value]; ok {
		return found
	}
	w := d.words()
	if cap(c.slab)-len(c.slab) < w {
		c.slab = make([]uint64, 0, max(64*w, 2*cap(c.slab)))
	}
	found := c.slab[len(c.slab) : len(c.slab)+w]
	c.slab = c.slab[:len(c.slab)+w]
	clear(found)
	d.scan(value, found, c.seen)
	c.found[value] = found
	return found
}
