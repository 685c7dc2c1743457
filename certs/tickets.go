package certs

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// SessionTickets is how the keys that encrypt TLS session tickets rotate.
// With Redis (Options.Redis) the replicas share them, so a client resumes
// its session on whichever replica it reaches.
type SessionTickets struct {
	// Rotate is how often a new key starts encrypting tickets; default 1h.
	Rotate time.Duration `yaml:"rotate"`
	// Keep is how many earlier keys still decrypt tickets, so a ticket
	// resumes for at least Keep×Rotate after it was issued; default 24.
	Keep int `yaml:"keep"`
}

// Session-ticket defaults.
const (
	DefaultTicketRotate = time.Hour
	DefaultTicketKeep   = 24
)

func (s *SessionTickets) setDefaults() {
	if s.Rotate == 0 {
		s.Rotate = DefaultTicketRotate
	}
	if s.Keep == 0 {
		s.Keep = DefaultTicketKeep
	}
}

func (s *SessionTickets) validate() []error {
	var errs []error
	switch {
	case s.Rotate < time.Minute || s.Rotate > 24*time.Hour:
		errs = append(errs, fmt.Errorf("session_tickets.rotate: %s is not between 1m and 24h", s.Rotate))
	case s.Rotate%time.Second != 0:
		// Whole seconds name the key family in Redis.
		errs = append(errs, fmt.Errorf("session_tickets.rotate: %s is not a whole number of seconds", s.Rotate))
	}
	if s.Keep < 1 || s.Keep > 1000 {
		errs = append(errs, fmt.Errorf("session_tickets.keep: %d is not between 1 and 1000", s.Keep))
	}
	return errs
}

// ticketKeys are a frontend's session-ticket keys. Time is cut into
// epochs of Rotate; each epoch has one key, made by whichever replica
// first finds it missing in Redis (SET NX) and read by all the others.
// The current epoch's key encrypts; the next one's (fetched ahead, so
// replicas whose clocks or refreshes differ a little still agree) and the
// Keep before it decrypt.
//
// Keys are refreshed from Redis lazily, by handshakes, never on their
// path: a handshake that finds the keys due for a refresh starts one in
// the background. At an epoch's start, a replica moves to the key it
// fetched ahead without waiting for Redis. When Redis cannot be reached
// the replica makes keys of its own, which only it can decrypt, and offers
// them as the shared ones once Redis answers again.
type ticketKeys struct {
	rdb     redis.UniversalClient // nil: this replica's own keys only
	base    string                // <prefix>tls:{tickets:<name>}:<rotate in s>:
	rotate  time.Duration
	keep    int64
	timeout time.Duration    // of one refresh from Redis
	now     func() time.Time // the clock; tests move it
	report  func(error)      // nil error: Redis answers again

	// holder only holds the keys: handshakes call its EncryptTicket and
	// DecryptTicket through the served config's WrapSession and
	// UnwrapSession, which survive tls.Config.Clone (net/http and
	// quic-go serve clones, which would keep the keys they were cloned
	// with).
	holder *tls.Config

	mu       sync.Mutex
	keys     map[int64][][32]byte // by epoch: the shared key first, then own keys it replaced
	epoch    int64                // whose keys holder has
	nextSync time.Time
	syncing  bool
	failing  bool
}

// ticketSyncTimeout bounds one exchange with Redis.
const ticketSyncTimeout = time.Second

// ticketClock is the clock that epochs are counted by; tests move it.
var ticketClock = time.Now

func newTicketKeys(st SessionTickets, rdb redis.UniversalClient, prefix, name string, report func(error)) *ticketKeys {
	name = strings.NewReplacer("{", "_", "}", "_").Replace(name) // keeps the hash tag whole
	return &ticketKeys{
		rdb:     rdb,
		base:    prefix + "tls:{tickets:" + name + "}:" + strconv.FormatInt(int64(st.Rotate/time.Second), 10) + ":",
		rotate:  st.Rotate,
		keep:    int64(st.Keep),
		timeout: ticketSyncTimeout,
		now:     ticketClock,
		report:  report,
		holder:  &tls.Config{},
		keys:    map[int64][][32]byte{},
		epoch:   -1,
	}
}

// start installs the first keys: the shared ones when Redis answers
// within its timeout.
func (k *ticketKeys) start() {
	if k.rdb != nil {
		k.sync()
	}
	k.config()
}

func (k *ticketKeys) epochAt(t time.Time) int64 { return t.UnixNano() / int64(k.rotate) }

// config returns the config whose ticket keys are current, starting a
// refresh from Redis in the background when one is due.
func (k *ticketKeys) config() *tls.Config {
	now := k.now()
	k.mu.Lock()
	if e := k.epochAt(now); e != k.epoch {
		k.installLocked(e)
	}
	if k.rdb != nil && !k.syncing && !now.Before(k.nextSync) {
		k.syncing = true
		go k.sync()
	}
	k.mu.Unlock()
	return k.holder
}

// installLocked gives holder epoch e's keys, making an own key for e
// when there is none yet.
func (k *ticketKeys) installLocked(e int64) {
	if len(k.keys[e]) == 0 {
		k.keys[e] = [][32]byte{newTicketKey()}
	}
	for ep := range k.keys {
		if ep < e-k.keep || ep > e+1 {
			delete(k.keys, ep)
		}
	}
	list := slices.Clone(k.keys[e])
	list = append(list, k.keys[e+1]...)
	for ep := e - 1; ep >= e-k.keep; ep-- {
		list = append(list, k.keys[ep]...)
	}
	k.holder.SetSessionTicketKeys(list)
	k.epoch = e
}

func newTicketKey() [32]byte {
	var b [32]byte
	rand.Read(b[:])
	return b
}

// sync refreshes the keys from Redis, reports how that went, and sets
// when the next refresh is due.
func (k *ticketKeys) sync() {
	// now is the fetch's: should the clock pass an epoch's start during
	// it, the next refresh is due at once.
	now, err := k.fetch()
	// Often enough to pick up the next epoch's key ahead of it, and to
	// converge again should Redis lose the keys.
	every := min(k.rotate/4, 5*time.Minute)
	k.mu.Lock()
	k.syncing = false
	wasFailing := k.failing
	k.failing = err != nil
	if err != nil {
		k.nextSync = now.Add(min(every, 30*time.Second))
	} else {
		k.nextSync = now.Add(every)
		if next := time.Unix(0, (k.epochAt(now)+1)*int64(k.rotate)); next.Before(k.nextSync) {
			k.nextSync = next
		}
		k.installLocked(k.epochAt(k.now()))
	}
	k.mu.Unlock()
	// Once per change, so an outage is not reported at every retry.
	if k.report != nil && (err != nil) != wasFailing {
		k.report(err)
	}
}

// fetch reads the keys of the epochs that decrypt from Redis, and adds the
// current and next epochs' when Redis lacks them. It returns the time the
// epochs were counted from.
func (k *ticketKeys) fetch() (now time.Time, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	now = k.now()
	e := k.epochAt(now)
	var names []string
	for ep := e + 1; ep >= e-k.keep; ep-- {
		names = append(names, k.base+strconv.FormatInt(ep, 10))
	}
	vals, err := k.rdb.MGet(ctx, names...).Result()
	if err != nil {
		return now, fmt.Errorf("session ticket keys: reading from Redis: %w", err)
	}
	got := map[int64][32]byte{}
	for i, v := range vals {
		if s, ok := v.(string); ok && len(s) == 32 {
			got[e+1-int64(i)] = [32]byte([]byte(s))
		}
	}
	for _, ep := range []int64{e, e + 1} {
		if _, ok := got[ep]; ok {
			continue
		}
		// The key this replica already uses for ep, if any, becomes the
		// shared one: its tickets then stay valid everywhere.
		k.mu.Lock()
		cand := newTicketKey()
		if have := k.keys[ep]; len(have) > 0 {
			cand = have[0]
		}
		k.mu.Unlock()
		// Until the last epoch that still decrypts with it is over.
		expire := time.Unix(0, (ep+k.keep+1)*int64(k.rotate)).Sub(now) + time.Minute
		name := k.base + strconv.FormatInt(ep, 10)
		set, err := k.rdb.SetNX(ctx, name, cand[:], expire).Result()
		if err != nil {
			return now, fmt.Errorf("session ticket keys: writing to Redis: %w", err)
		}
		if !set {
			// Another replica was first.
			s, err := k.rdb.Get(ctx, name).Result()
			if err != nil || len(s) != 32 {
				return now, errors.Join(errors.New("session ticket keys: reading the key another replica made"), err)
			}
			cand = [32]byte([]byte(s))
		}
		got[ep] = cand
	}
	k.mu.Lock()
	for ep, key := range got {
		list := k.keys[ep]
		if len(list) == 0 || list[0] != key {
			// Own keys stay, to decrypt the tickets they issued.
			k.keys[ep] = append([][32]byte{key}, slices.DeleteFunc(list, func(x [32]byte) bool { return x == key })...)
		}
	}
	k.mu.Unlock()
	return now, nil
}
