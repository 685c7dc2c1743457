package gateway

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// idleRelease returns memory to the operating system once traffic stops.
// CRS inspection allocates heavily (a 1 MiB form leaves tens of MiB of
// garbage), and Go's scavenger hands freed pages back only slowly: after a
// burst the process would stay at its peak for minutes. After quietAfter
// without requests, release runs once (releaseMemory in production: two
// collections, paid while nothing is being served).
type idleRelease struct {
	active     atomic.Int64 // requests since the last release
	quietAfter time.Duration
	release    func()
}

// touch records a request.
func (r *idleRelease) touch() { r.active.Add(1) }

// releaseMemory collects twice before returning free pages: objects in a
// sync.Pool (Coraza's transactions, with caches that reach tens of MiB
// after a large JSON body) survive one collection and go with the second.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// run checks every quietAfter until ctx is done: when requests came in the
// interval before the last but none in the last, it releases.
func (r *idleRelease) run(ctx context.Context) {
	t := time.NewTicker(r.quietAfter)
	defer t.Stop()
	var before int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.active.Load()
		if now == before && now != 0 {
			r.release()
			r.active.Store(0)
			now = 0
		}
		before = now
	}
}
