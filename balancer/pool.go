package balancer

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one backend server. Its counters are shared by every request that
// uses it, so a Server must not be copied.
type Server struct {
	Name    string
	Address string
	Weight  int
	// Backup servers take requests only when no primary server is usable.
	Backup bool

	index    int    // in the pool, for per-server policy state
	cookie   string // persistence cookie value
	inflight atomic.Int64
	state    atomic.Int32 // State
	down     atomic.Bool  // set by health checks
	latency  atomic.Uint64
	bw       bandwidth
}

// State is a server's administrative state.
type State int32

// The administrative states, as HAProxy names them.
const (
	Ready State = iota // takes new requests
	Drain              // finishes what it has (sticky sessions too), takes no new requests
	Maint              // out entirely
)

// SetState sets the server's administrative state.
func (s *Server) SetState(st State) { s.state.Store(int32(st)) }

// SetDown records a health verdict: a down server takes no requests.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// usable tells whether the server may take a new request.
func (s *Server) usable() bool {
	return s.Weight > 0 && State(s.state.Load()) == Ready && !s.down.Load()
}

// Inflight reports the number of requests the server is handling now.
func (s *Server) Inflight() int64 { return s.inflight.Load() }

// Acquire counts a request as started on the server; call the returned func when it ends.
func (s *Server) Acquire() (release func()) {
	s.inflight.Add(1)
	return func() { s.inflight.Add(-1) }
}

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
}

// Policy chooses one server among candidates: usable servers not yet tried,
// all primaries or, when none is usable, all backups. candidates is never empty.
type Policy interface {
	Pick(candidates []*Server, r Request) *Server
}

// Pool is a backend: its servers and the policy that chooses among them.
type Pool struct {
	Name    string
	servers []*Server
	policy  Policy
	health  *HealthConfig // nil: no active checks
	cookie  *CookieConfig // nil: no cookie persistence
}

// New builds a pool from a validated config.
func New(c Config) (*Pool, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("backend %q: %w", c.Name, err)
	}
	p := &Pool{Name: c.Name, health: c.HealthCheck}
	for i, sc := range c.Servers {
		p.servers = append(p.servers, &Server{Name: sc.Name, Address: sc.Address, Weight: *sc.Weight, Backup: sc.Backup, index: i})
	}
	p.policy = newPolicy(c.Balance, len(p.servers))
	if c.Cookie != nil {
		p.cookie = c.Cookie
		configured := make([]string, len(c.Servers))
		for i, sc := range c.Servers {
			configured[i] = sc.Cookie
		}
		if err := p.cookieValues(c.Cookie, configured); err != nil {
			return nil, fmt.Errorf("backend %q: %w", c.Name, err)
		}
	}
	return p, nil
}

// Servers returns the pool's servers in configuration order.
func (p *Pool) Servers() []*Server { return p.servers }

// Pick chooses a server for a request, or nil when none is usable.
func (p *Pool) Pick(r Request) *Server {
	var buf [16]*Server
	cands := buf[:0]
	for _, backup := range []bool{false, true} {
		for _, s := range p.servers {
			if s.Backup == backup && s.usable() && !tried(r.Tried, s) {
				cands = append(cands, s)
			}
		}
		if len(cands) > 0 {
			return p.policy.Pick(cands, r)
		}
	}
	return nil
}

func tried(list []*Server, s *Server) bool {
	for _, t := range list {
		if t == s {
			return true
		}
	}
	return false
}
