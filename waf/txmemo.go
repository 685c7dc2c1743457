package waf

import (
	"math/bits"
	"slices"
	"sync"
)

// txMemo remembers, for one transaction, what the operators learnt about
// each value: CRS runs many patterns over the same transformed value, and
// one scan answers for all of them. It lives only as long as the
// transaction: nothing is remembered from one request to the next.
type txMemo struct {
	dfa   *acDFA
	vidx  map[string]int32 // index in vals of each value
	vals  []valueMemo
	slab  []int32           // backing for the values' atom sets
	bits  []uint64          // scan's output, cleared after each use
	seen  []uint64          // scan's scratch
	views map[string]goView // values that are not UTF-8, as Go's regexp reads them

	unconfirmed []Unconfirmed // matches the semantic checks rejected
	gate        gateState     // the gate's unions (gate.go)
}

// valueMemo is what a transaction learnt about one value.
type valueMemo struct {
	scanned        bool    // atoms is known, over the memo's dfa
	atoms          atomSet // the atoms the value holds
	known, changed uint64  // transformations tried on the value; those that change it
	outs           []chainOut
}

// goView is readAsGo's answer.
type goView struct {
	s     string
	fixes []int
}

var (
	txMemos    sync.Map // Coraza transaction -> *txMemo
	txMemoPool = sync.Pool{New: func() any {
		return &txMemo{vidx: map[string]int32{}, views: map[string]goView{}}
	}}
)

// trackTx starts the memo of a transaction; untrackTx ends it.
func trackTx(tx any) { txMemos.Store(tx, txMemoPool.Get()) }

func untrackTx(tx any) {
	if v, ok := txMemos.LoadAndDelete(tx); ok {
		c := v.(*txMemo)
		c.forget()
		c.gate.removed = 0
		txMemoPool.Put(c)
	}
}

// forgetValues drops what a transaction's memo holds: the values of the
// request phases (up to several MiB for a large form) need not live on
// while the backend answers.
func forgetValues(tx any) {
	if c := memoOf(tx); c != nil {
		c.forget()
	}
}

func (c *txMemo) forget() {
	c.unconfirmed = c.unconfirmed[:0]
	c.gate.reset()
	clear(c.views)
	c.slab = c.slab[:0]
	clear(c.vidx)
	for i := range c.vals {
		clear(c.vals[i].outs)
		c.vals[i] = valueMemo{outs: c.vals[i].outs[:0]}
	}
	c.vals = c.vals[:0]
}

// valueState returns what the transaction learnt about value. The pointer
// is good until the next call.
func (c *txMemo) valueState(value string) *valueMemo {
	i, ok := c.vidx[value]
	if !ok {
		i = int32(len(c.vals))
		c.vidx[value] = i
		if len(c.vals) < cap(c.vals) {
			c.vals = c.vals[:i+1]
		} else {
			c.vals = append(c.vals, valueMemo{})
		}
	}
	return &c.vals[i]
}

func memoOf(tx any) *txMemo {
	if v, ok := txMemos.Load(tx); ok {
		return v.(*txMemo)
	}
	return nil // not a transaction of ours
}

// goViewOf is readAsGo(value), once per transaction.
func goViewOf(c *txMemo, value string) (string, []int) {
	if c == nil {
		return readAsGo(value)
	}
	v, ok := c.views[value]
	if !ok {
		v.s, v.fixes = readAsGo(value)
		c.views[value] = v
	}
	return v.s, v.fixes
}

// atomSet is the sorted ids of the atoms a value holds: most hold none.
type atomSet []int32

func (s atomSet) has(id int) bool {
	_, ok := slices.BinarySearch(s, int32(id))
	return ok
}

// atomsIn returns the set of atoms that value holds, over a DFA that
// knows at least need atoms.
func atomsIn(c *txMemo, value string, need int) atomSet {
	d := atomDFA(need)
	if c == nil {
		bits := make([]uint64, d.words())
		d.scan(value, bits, make([]uint64, d.seenWords()))
		return appendAtoms(nil, bits)
	}
	if c.dfa != d {
		for i := range c.vals {
			c.vals[i].scanned = false
		}
		c.slab = c.slab[:0]
		c.dfa, c.bits, c.seen = d, make([]uint64, d.words()), make([]uint64, d.seenWords())
	}
	v := c.valueState(value)
	if v.scanned {
		return v.atoms
	}
	d.scan(value, c.bits, c.seen)
	start := len(c.slab)
	c.slab = appendAtoms(c.slab, c.bits)
	clear(c.bits)
	// Full capacity: a later append to slab must not write into this set.
	v.atoms, v.scanned = atomSet(c.slab[start:len(c.slab):len(c.slab)]), true
	return v.atoms
}

// appendAtoms appends the ids of the bits set, in order.
func appendAtoms(ids []int32, set []uint64) []int32 {
	for w, word := range set {
		for word != 0 {
			ids = append(ids, int32(w*64+bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	return ids
}
