package waf

import "sync"

// txMemo remembers, for one transaction, what the operators learnt about
// each value: CRS runs many patterns over the same transformed value, and
// one scan answers for all of them. It lives only as long as the
// transaction: nothing is remembered from one request to the next.
type txMemo struct {
	dfa   *acDFA
	found map[string][]uint64 // the atoms each value holds
	slab  []uint64            // backing for found's bit sets
	seen  []uint64
	views map[string]goView // values that are not UTF-8, as Go's regexp reads them
}

// goView is readAsGo's answer.
type goView struct {
	s     string
	fixes []int
}

var (
	txMemos    sync.Map // Coraza transaction -> *txMemo
	txMemoPool = sync.Pool{New: func() any {
		return &txMemo{found: map[string][]uint64{}, views: map[string]goView{}}
	}}
)

// trackTx starts the memo of a transaction; untrackTx ends it.
func trackTx(tx any) { txMemos.Store(tx, txMemoPool.Get()) }

func untrackTx(tx any) {
	if v, ok := txMemos.LoadAndDelete(tx); ok {
		c := v.(*txMemo)
		clear(c.found)
		clear(c.views)
		c.slab = c.slab[:0]
		txMemoPool.Put(c)
	}
}

func memoOf(tx any) *txMemo {
	if v, ok := txMemos.Load(tx); ok {
		return v.(*txMemo)
	}
	return nil // not a transaction of ours
}

// goViewOf is readAsGo(value), once per transaction.
func goViewOf(tx any, value string) (string, []int) {
	c := memoOf(tx)
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

// atomsIn returns the set of atoms that value holds, over a DFA that
// knows at least need atoms.
func atomsIn(tx any, value string, need int) []uint64 {
	d := atomDFA(need)
	c := memoOf(tx)
	if c == nil {
		found := make([]uint64, d.words())
		d.scan(value, found, make([]uint64, d.seenWords()))
		return found
	}
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
