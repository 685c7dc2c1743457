package console

import (
	"context"
	"strconv"
	"sync"
)

// Lister reads events: what the console's pages need.
type Lister interface {
	// List returns the newest events that pass f, at most limit, newest first.
	List(ctx context.Context, f Filter, limit int) ([]Event, error)
}

// Store keeps events: this replica's (Ring) or the fleet's (Stream).
type Store interface {
	Lister
	Add(Event)
}

// Ring is a bounded, in-memory store of the latest events.
type Ring struct {
	mu   sync.Mutex
	buf  []Event
	next int
	full bool
}

// NewRing keeps the last size events.
func NewRing(size int) *Ring { return &Ring{buf: make([]Event, size)} }

// Add implements Store.
func (r *Ring) Add(e Event) {
	r.mu.Lock()
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
	r.mu.Unlock()
}

// List implements Store.
func (r *Ring) List(_ context.Context, f Filter, limit int) ([]Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	var out []Event
	for i := 1; i <= n && len(out) < limit; i++ {
		e := r.buf[(r.next-i+len(r.buf))%len(r.buf)]
		if f.matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
