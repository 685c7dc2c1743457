package sticktable

import (
	"context"
	"crypto/rand"
	"errors"

	"github.com/redis/go-redis/v9"
)

// A table's epoch tells a replica that Redis lost the table: restarted
// without persistence, flushed, or failed over to a replica that had not
// got it. The first replica to sync with Redis stores a random epoch in
// Prefix+"st:{name}:epoch" (SET NX), and each replica keeps the one it
// synced with. Lookup and Swap pass it to their scripts, which answer
// "lost" (-2) when Redis holds another or none: an empty Redis would
// otherwise answer every session absent, and the balancer would pick them
// a server anew. A replica told so serves from its local table, which
// mirrors what it saw, and its repair goroutine syncs again: it gets or
// makes the new epoch, republishes every entry of the local table with a
// Swap from none (so that what another replica republished first wins,
// and the local table adopts it), then takes the new epoch and asks Redis
// again (a replica's first sync republishes nothing). Every replica
// republishes what it holds, so the table comes back as the union of what
// the fleet saw. The check is one GET per Lookup and
// Swap; Track, Hit, AddGPC and Stick do not check, as counters lost with
// the table only start again.

// errLost is a write-back stopped by a table Redis no longer holds.
var errLost = errors.New("sticktable: redis lost the table; republishing")

// replyLost is a script's reply when the epoch is not the replica's.
const replyLost = -2

func isLost(v any) bool {
	n, ok := v.(int64)
	return ok && n == replyLost
}

// epochID is an epoch, with its script argument boxed once.
type epochID struct {
	id  string
	arg any
}

// epochArg is the replica's epoch for the scripts, "" before the first sync.
func (r *Redis) epochArg() any {
	if p := r.epoch.Load(); p != nil {
		return p.arg
	}
	return ""
}

// epochLost reports a script's reply that Redis lost the table, and then
// has the table republished; it also has a replica that never synced
// sync, on its first reply.
func (r *Redis) epochLost(v any) bool {
	if isLost(v) {
		r.requestResync(true)
		return true
	}
	if r.epoch.Load() == nil && !r.resync.Load() {
		r.requestResync(false)
	}
	return false
}

// requestResync has the repair goroutine sync the epoch; lost serves calls
// from the local table until it has.
func (r *Redis) requestResync(lost bool) {
	if lost {
		r.lost.Store(true)
	}
	if r.resync.Swap(true) {
		return
	}
	r.mu.Lock()
	r.startRepair()
	r.startMirror() // with the first sync: NewRedis does not dial
	r.mu.Unlock()
}

// epochScript gets the table's epoch, storing ARGV[1] if it has none.
var epochScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`)

// republish syncs with the table's epoch in Redis. When it is not the
// one this replica synced with before, every entry of the local table that names a server
// is swapped into Redis from none, in pipelined batches bounded by 10 ×
// Timeout each, and the local table adopts what Redis then holds; only
// then does the replica take the epoch and, if Redis had lost the table,
// route by Redis again.
func (r *Redis) republish() error {
	ctx, cancel := context.WithTimeout(r.base, 10*r.opt.Timeout)
	ep, err := epochScript.Run(ctx, r.client, []string{r.epochKey}, rand.Text()).Text()
	// A replica's first sync republishes nothing: its local table holds
	// what Redis answered, and what it learnt on its own is pending.
	prev := r.epoch.Load()
	changed := prev != nil && prev.id != ep
	if err == nil && changed {
		err = loadScripts(ctx, r.client, swapScript)
	}
	cancel()
	if err != nil {
		return err
	}
	if changed {
		entries, err := r.local.Entries(r.base, 0, r.size)
		if err != nil {
			return err
		}
		for len(entries) > 0 {
			n := min(len(entries), writeBackBatch)
			if err := r.republishBatch(entries[:n], ep); err != nil {
				return err
			}
			entries = entries[n:]
		}
	}
	r.epoch.Store(&epochID{id: ep, arg: ep})
	r.resync.Store(false)
	if r.lost.Swap(false) && r.near != nil {
		r.near.clear() // answers cached from the table before it was lost
	}
	return nil
}

// republishBatch swaps one batch of local entries into Redis from none.
func (r *Redis) republishBatch(batch []KeyEntry, ep string) error {
	ctx, cancel := context.WithTimeout(r.base, 10*r.opt.Timeout)
	defer cancel()
	pipe := r.client.Pipeline()
	now := r.now().UnixMilli()
	cmds := make([]*redis.Cmd, len(batch))
	for i, e := range batch {
		if e.Server != "" {
			cmds[i] = swapScript.EvalSha(ctx, pipe, r.keysE(e.Key), e.Key, now, r.argExpire, r.argSize, r.argPrefix, "", e.Server, ep)
		}
	}
	_, _ = pipe.Exec(ctx)
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		if err := cmd.Err(); err != nil {
			if refused(err) {
				continue
			}
			return err
		}
		if isLost(cmd.Val()) {
			return errLost // lost again meanwhile: start over
		}
		if e, ok := r.entry(cmd.Val(), now); ok && e.Server != batch[i].Server {
			_ = r.local.Stick(ctx, batch[i].Key, e.Server)
		}
	}
	return nil
}
