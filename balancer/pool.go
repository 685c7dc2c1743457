package balancer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/balancer/sticktable"
)

// Server is one backend server. Its counters are shared by every request that
// uses it, so a Server must not be copied.
type Server struct {
	Name    string
	Address string
	// Backup servers take requests only when no primary server is usable.
	Backup bool
	// MaxConn bounds the requests in flight on the server (0: no bound);
	// more wait in the backend's queue.
	MaxConn int64

	pool      *Pool
	weight    atomic.Int32 // 0..MaxWeight; the admin API changes it
	cfgWeight int32        // the weight the config gave
	cfgState  State        // the administrative state the config gave
	index     int          // in the pool, for per-server policy state
	cookie    string       // persistence cookie value
	inflight  atomic.Int64
	state     atomic.Int32 // State
	down      atomic.Bool  // set by health checks and passive checks
	// rampFrom is when the server last came back (unix ns) while its slow
	// start lasts, else 0.
	rampFrom atomic.Int64
	// Passive checks: failures in a row, and the end of a cool-down.
	netFails     atomic.Int32 // connect failures and timeouts
	serverErrs   atomic.Int32 // 5xx responses
	ejectedUntil atomic.Int64 // unix ns; 0 when not ejected
	latency      atomic.Uint64
	bw           bandwidth
	lastCheck    atomic.Pointer[CheckResult]
	changed      atomic.Int64 // unix ns of the last change of state or health (lastchange.go)
}

// State is a server's administrative state.
type State int32

// The administrative states, as HAProxy names them.
const (
	Ready State = iota // takes new requests
	Drain              // finishes what it has (sticky sessions too), takes no new requests
	Maint              // out entirely
)

var stateNames = [...]string{Ready: "ready", Drain: "drain", Maint: "maint"}

// String is the state's name in config and in the admin API.
func (st State) String() string {
	if int(st) < len(stateNames) {
		return stateNames[st]
	}
	return "State(" + strconv.Itoa(int(st)) + ")"
}

// ParseState reads "ready", "drain" or "maint".
func ParseState(name string) (State, error) {
	for st, n := range stateNames {
		if n == name {
			return State(st), nil
		}
	}
	return 0, fmt.Errorf("%q is not ready, drain or maint", name)
}

// State is the server's administrative state.
func (s *Server) State() State { return State(s.state.Load()) }

// SetState sets the server's administrative state; back to ready, the
// server's weight ramps up over the pool's slow start.
func (s *Server) SetState(st State) {
	old := State(s.state.Swap(int32(st)))
	if old != st {
		s.markChanged()
	}
	if old != Ready && st == Ready {
		s.startRamp()
	}
}

// SetDown records a health verdict: a down server takes no requests; back
// up, its weight ramps up over the pool's slow start.
func (s *Server) SetDown(down bool) {
	was := s.down.Swap(down)
	if was != down {
		s.markChanged()
	}
	if was && !down {
		s.startRamp()
	}
}

// Down tells whether health checks (active or passive) hold the server out.
func (s *Server) Down() bool { return s.down.Load() || s.ejected() }

func (s *Server) startRamp() {
	if s.pool != nil && s.pool.slowStart > 0 {
		s.rampFrom.Store(s.pool.now().UnixNano())
	}
}

// ejected tells whether a passive check's cool-down holds the server out.
func (s *Server) ejected() bool {
	until := s.ejectedUntil.Load()
	return until != 0 && s.pool.now().UnixNano() < until
}

// Usable tells whether the server may take a new request: ready, healthy,
// not resting after passive checks, with a weight.
func (s *Server) Usable() bool {
	return s.weight.Load() > 0 && State(s.state.Load()) == Ready && !s.down.Load() && !s.ejected()
}

// keepsSessions tells whether the server may take a request that
// persistence sends it: a draining server keeps the sessions it has, and
// weight 0 only refuses new ones.
func (s *Server) keepsSessions() bool {
	return State(s.state.Load()) != Maint && !s.down.Load() && !s.ejected()
}

// Weight is the server's share of traffic (0 takes no new requests).
func (s *Server) Weight() int { return int(s.weight.Load()) }

// SetWeight changes the server's weight, 0 to MaxWeight: the admin API's
// way in. Policies see it from their next pick.
func (s *Server) SetWeight(w int) error {
	if w < 0 || w > MaxWeight {
		return fmt.Errorf("weight %d is outside 0..%d", w, MaxWeight)
	}
	s.weight.Store(int32(w))
	return nil
}

// effectiveWeight is the server's weight now: during a slow start it grows
// from 1 to Weight in proportion to the time since the server came back.
func (s *Server) effectiveWeight() int {
	w := int(s.weight.Load())
	from := s.rampFrom.Load()
	if from == 0 {
		return w
	}
	elapsed := s.pool.now().UnixNano() - from
	ramp := int64(s.pool.slowStart)
	if elapsed >= ramp {
		s.rampFrom.CompareAndSwap(from, 0)
		return w
	}
	return max(1, int((int64(w)*elapsed+ramp-1)/ramp))
}

// Inflight reports the number of requests the server is handling now.
func (s *Server) Inflight() int64 { return s.inflight.Load() }

// Acquire counts a request as started on the server, whatever its
// MaxConn; call the returned func when it ends. Take is the way that
// respects MaxConn and the queue.
func (s *Server) Acquire() (release func()) {
	s.inflight.Add(1)
	return s.release
}

// tryAcquire counts a request on the server if it is below its MaxConn.
func (s *Server) tryAcquire() bool {
	if s.MaxConn <= 0 {
		s.inflight.Add(1)
		return true
	}
	for {
		n := s.inflight.Load()
		if n >= s.MaxConn {
			return false
		}
		if s.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) release() {
	s.inflight.Add(-1)
	if s.pool != nil && s.pool.queue.waiting.Load() > 0 {
		s.pool.queue.wakeOne()
	}
}

// full tells whether the server is at its MaxConn.
func (s *Server) full() bool { return s.MaxConn > 0 && s.inflight.Load() >= s.MaxConn }

// latencyAlpha weighs the newest observation in the response time's
// moving average.
const latencyAlpha = 0.3

// ObserveLatency feeds a response (or health check) time into the server's
// moving average, which least_response_time reads.
func (s *Server) ObserveLatency(d time.Duration) {
	for {
		old := s.latency.Load()
		v := float64(d)
		if old != 0 {
			v = latencyAlpha*v + (1-latencyAlpha)*math.Float64frombits(old)
		}
		if s.latency.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

// Latency is the moving average of the observed response times (0: none yet).
func (s *Server) Latency() time.Duration {
	return time.Duration(math.Float64frombits(s.latency.Load()))
}

// ObserveBytes counts bytes exchanged with the server, which least_bandwidth reads.
func (s *Server) ObserveBytes(n int64) { s.bw.add(float64(n), time.Now()) }

// Bandwidth is the server's recent traffic in bytes per second.
func (s *Server) Bandwidth() float64 { return s.bw.rate(time.Now()) }

// bandwidth is an exponentially decaying byte rate.
type bandwidth struct {
	mu   sync.Mutex
	r    float64 // bytes per second at last
	last time.Time
}

// bandwidthWindow is the time constant of the byte rate's decay.
const bandwidthWindow = 10 * time.Second

func (b *bandwidth) decayed(now time.Time) float64 {
	if b.last.IsZero() {
		return 0
	}
	return b.r * math.Exp(-float64(now.Sub(b.last))/float64(bandwidthWindow))
}

func (b *bandwidth) add(n float64, now time.Time) {
	b.mu.Lock()
	b.r = b.decayed(now) + n/bandwidthWindow.Seconds()
	b.last = now
	b.mu.Unlock()
}

func (b *bandwidth) rate(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.decayed(now)
}

// Request is what a policy may know of the request it places.
type Request struct {
	// ClientIP is the client's address, for source hashing.
	ClientIP string
	// Tried are the servers already tried for this request: never again.
	Tried []*Server
	// Sticky is the server persistence names, if any: Take uses it while
	// it keeps sessions, whatever the policy would choose.
	Sticky *Server
}

// Policy chooses one server among candidates: usable servers not yet tried,
// all primaries or, when none is usable, all backups. candidates is never empty.
type Policy interface {
	Pick(candidates []*Server, r Request) *Server
}

// Pool is a backend: its servers and the policy that chooses among them.
type Pool struct {
	Name      string
	servers   []*Server
	byName    map[string]*Server
	policy    Policy
	health    *HealthConfig  // nil: no active checks
	passive   *PassiveConfig // nil: no passive checks
	cookie    *cookieCodec   // nil: no cookie persistence
	stick     *stick         // nil: no stick table
	slowStart time.Duration
	queue     queue
	notify    atomic.Pointer[func(HealthEvent)]
	onCheck   atomic.Pointer[func(*Server, CheckResult)]
	now       func() time.Time // the clock of slow starts and cool-downs; tests set their own
}

// New builds a pool from a validated config.
func New(c Config) (*Pool, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("backend %q: %w", c.Name, err)
	}
	p := &Pool{Name: c.Name, health: c.HealthCheck, passive: c.PassiveCheck, slowStart: c.SlowStart, byName: map[string]*Server{}, now: time.Now}
	p.queue.size, p.queue.timeout = c.QueueSize, c.QueueTimeout
	for i, sc := range c.Servers {
		s := &Server{Name: sc.Name, Address: sc.Address, Backup: sc.Backup, MaxConn: int64(sc.MaxConn), index: i, pool: p, cfgWeight: int32(*sc.Weight)}
		s.weight.Store(s.cfgWeight)
		st, _ := ParseState(sc.State) // validated
		s.state.Store(int32(st))
		s.cfgState = st
		s.markChanged()
		p.servers = append(p.servers, s)
		p.byName[s.Name] = s
	}
	p.policy = newPolicy(c.Balance, len(p.servers))
	if c.Cookie != nil {
		configured := make([]string, len(c.Servers))
		for i, sc := range c.Servers {
			configured[i] = sc.Cookie
		}
		codec, err := p.cookieValues(c.Cookie, configured)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", c.Name, err)
		}
		p.cookie = codec
	}
	if c.Stick != nil {
		store, err := sticktable.NewMemory(c.Stick.Table, nil)
		if err != nil {
			return nil, fmt.Errorf("backend %q: stick.table: %w", c.Name, err)
		}
		p.stick = &stick{cfg: *c.Stick, store: store}
	}
	return p, nil
}

// Servers returns the pool's servers in configuration order.
func (p *Pool) Servers() []*Server { return p.servers }

// Server returns the server called name, or nil: the admin API's way in.
func (p *Pool) Server(name string) *Server { return p.byName[name] }

// OnEvent sets the function that hears every change of a server's health,
// from active and passive checks alike.
func (p *Pool) OnEvent(notify func(HealthEvent)) { p.notify.Store(&notify) }

func (p *Pool) emit(e HealthEvent) {
	if s := p.byName[e.Server]; s != nil {
		s.markChanged()
	}
	if f := p.notify.Load(); f != nil && *f != nil {
		e.Backend = p.Name
		(*f)(e)
	}
}

// Pick chooses a server for a request, or nil when none is usable. It
// counts nothing: Take is what the request path uses.
func (p *Pool) Pick(r Request) *Server {
	s, _ := p.pick(r, false)
	return s
}

// pick runs the policy over the usable servers not yet tried (primaries,
// else backups); with room, only over those below their MaxConn. full
// reports that usable servers were left out for being full.
func (p *Pool) pick(r Request, room bool) (s *Server, full bool) {
	var buf [16]*Server
	cands := buf[:0]
	for _, backup := range []bool{false, true} {
		for _, s := range p.servers {
			if s.Backup != backup || !s.Usable() || tried(r.Tried, s) {
				continue
			}
			if room && s.full() {
				full = true
				continue
			}
			cands = append(cands, s)
		}
		if len(cands) > 0 {
			return p.policy.Pick(cands, r), full
		}
		if full {
			// Primaries are busy, not gone: backups are for when none is usable.
			return nil, true
		}
	}
	return nil, false
}

// Errors from Take, each answered with 503.
var (
	ErrNoServer     = errors.New("no server available")
	ErrQueueFull    = errors.New("every server is at its maxconn and the queue is full")
	ErrQueueTimeout = errors.New("every server stayed at its maxconn for the queue timeout")
)

// Take chooses a server for r and counts the request on it; call release
// when the request ends. Persistence (r.Sticky) comes first, then the
// policy. When the servers it could use are all at their MaxConn, the
// request waits in the backend's queue, in order of arrival, up to the
// queue timeout, as HAProxy's does.
func (p *Pool) Take(ctx context.Context, r Request) (s *Server, release func(), err error) {
	var timer *time.Timer
	woken := false
	for {
		// Arrivals queue behind those already waiting, so the wait is in order.
		if woken || p.queue.waiting.Load() == 0 {
			s, full := p.take(r)
			if s != nil {
				return s, s.release, nil
			}
			if !full {
				return nil, nil, ErrNoServer
			}
		}
		if timer == nil {
			timer = time.NewTimer(p.queue.timeout)
			defer timer.Stop()
		}
		w, ok := p.queue.join(woken)
		if !ok {
			return nil, nil, ErrQueueFull
		}
		// A release between take and join found no one to wake: look again.
		if s, full := p.take(r); s != nil || !full {
			p.queue.leave(w)
			if s == nil {
				return nil, nil, ErrNoServer
			}
			return s, s.release, nil
		}
		select {
		case <-w:
			woken = true
		case <-timer.C:
			p.queue.leave(w)
			return nil, nil, ErrQueueTimeout
		case <-ctx.Done():
			p.queue.leave(w)
			return nil, nil, ctx.Err()
		}
	}
}

// take tries once: the sticky server if it keeps sessions, else the policy's pick.
func (p *Pool) take(r Request) (*Server, bool) {
	if st := r.Sticky; st != nil && st.keepsSessions() && !tried(r.Tried, st) {
		if st.tryAcquire() {
			return st, false
		}
		return nil, true // wait for the session's server, as HAProxy's server queue does
	}
	for range 4 {
		s, full := p.pick(r, true)
		if s == nil {
			return nil, full
		}
		if s.tryAcquire() {
			return s, false
		}
		// Another request took the last slot between pick and acquire.
	}
	return nil, true
}

// queue holds the requests that wait for a server below its MaxConn.
type queue struct {
	size    int
	timeout time.Duration
	waiting atomic.Int32 // len(waiters), read on every release without the lock
	mu      sync.Mutex
	waiters []chan struct{}
}

// join adds a waiter, at the back (or the front for one woken that lost
// the race for the slot); false when the queue is full.
func (q *queue) join(front bool) (chan struct{}, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) >= q.size {
		return nil, false
	}
	w := make(chan struct{}, 1)
	if front {
		q.waiters = append([]chan struct{}{w}, q.waiters...)
	} else {
		q.waiters = append(q.waiters, w)
	}
	q.waiting.Store(int32(len(q.waiters)))
	return w, true
}

// leave removes a waiter that gave up; one already woken passes its turn on.
func (q *queue) leave(w chan struct{}) {
	q.mu.Lock()
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.waiting.Store(int32(len(q.waiters)))
			q.mu.Unlock()
			return
		}
	}
	q.mu.Unlock()
	select {
	case <-w:
		q.wakeOne()
	default:
	}
}

// wakeOne tells the first waiter that a slot may be free.
func (q *queue) wakeOne() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) == 0 {
		return
	}
	w := q.waiters[0]
	q.waiters = q.waiters[1:]
	q.waiting.Store(int32(len(q.waiters)))
	w <- struct{}{}
}

// Usable tells whether some server (a backup included) may take a new
// request: readiness asks it of every backend a route needs.
func (p *Pool) Usable() bool {
	for _, s := range p.servers {
		if s.Usable() {
			return true
		}
	}
	return false
}

// QueueLen is the number of requests waiting for a server.
func (p *Pool) QueueLen() int { return int(p.queue.waiting.Load()) }

func tried(list []*Server, s *Server) bool {
	for _, t := range list {
		if t == s {
			return true
		}
	}
	return false
}
