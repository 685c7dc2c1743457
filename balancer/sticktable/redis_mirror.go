package sticktable

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The mirror keeps every replica's local table up to date with the
// servers the fleet stores, as HAProxy's peers push their entries: the
// scripts that change a key's server (Stick, Swap, Delete and the
// write-back) publish the change on the table's channel,
// Prefix+"st:{name}:ch", and each replica applies what it hears to its
// local table. A call that fails, and every Lookup while the breaker is
// open or Redis has lost the table, is answered from that table: it then
// knows the sessions other replicas made, not only those this replica
// saw, and a slow Redis no longer sends them to a server picked blind.
// What the subscription misses (while it reconnects) is only missing from
// the fallback; Redis stays the truth. The cost: one message per change
// of a server (a new session, a redispatch), delivered to every replica,
// and a local table that fills up to Size with the fleet's sessions
// (98 bytes an entry; see Memory) rather than with this replica's. A
// Redis ACL user needs the channel (&Prefix+"st:*", as Redis 7 denies
// every channel by default); without it the changes still reach Redis,
// and only the mirror is lost.

// startMirror starts the subscription unless it runs; r.mu is held.
func (r *Redis) startMirror() { r.startOnce(&r.mirroring, r.mirror) }

// mirror applies what the table's channel tells until Close. go-redis
// reconnects and subscribes again by itself after a failure.
func (r *Redis) mirror() {
	defer r.wg.Done()
	ps := r.client.Subscribe(r.base, r.channel)
	defer ps.Close()
	msgs := ps.Channel(redis.WithChannelSize(4096))
	for {
		select {
		case <-r.base.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			r.apply(m.Payload)
		}
	}
}

// apply makes the local table hold what a message tells, and drops the
// near-cache's answer for the key, older than the change.
func (r *Redis) apply(msg string) {
	key, server, del, ok := parseTold(msg)
	if !ok || r.check(key) != nil {
		return
	}
	ctx := context.Background()
	if del {
		_ = r.local.Delete(ctx, key)
	} else {
		_ = r.local.Stick(ctx, key, server)
	}
	if r.near != nil {
		r.near.invalidate(key)
	}
}

// parseTold reads a message of the scripts' tell: "s" + the server's
// length in decimal + ":" + the server + the key, or "d" + the key for a
// delete. Keys may hold any byte (an ip table's are raw addresses), so
// the server's length, not a separator, ends it; the key is never empty.
func parseTold(msg string) (key, server string, del, ok bool) {
	if len(msg) < 2 {
		return "", "", false, false
	}
	switch msg[0] {
	case 'd':
		return msg[1:], "", true, true
	case 's':
		n, rest, found := strings.Cut(msg[1:], ":")
		if !found || n == "" || len(n) > 5 || n[0] < '0' || n[0] > '9' || n[0] == '0' && len(n) > 1 {
			return "", "", false, false
		}
		size, err := strconv.Atoi(n)
		if err != nil || size < 0 || size >= len(rest) {
			return "", "", false, false
		}
		return rest[size:], rest[:size], false, true
	}
	return "", "", false, false
}
