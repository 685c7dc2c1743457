package balancer

import (
	"fmt"
	"sync/atomic"
)

// Server is one backend server. Its counters are shared by every request that
// uses it, so a Server must not be copied.
type Server struct {
	Name    string
	Address string
	Weight  int

	inflight atomic.Int64
}

// Inflight reports the number of requests the server is handling now.
func (s *Server) Inflight() int64 { return s.inflight.Load() }

// Acquire counts a request as started on the server; call the returned func when it ends.
func (s *Server) Acquire() (release func()) {
	s.inflight.Add(1)
	return func() { s.inflight.Add(-1) }
}

// Policy chooses one server among candidates. The skip function reports the
// servers that must not be chosen (already tried for this request).
type Policy interface {
	Pick(servers []*Server, skip func(*Server) bool) *Server
}

// Pool is a backend: its servers and the policy that chooses among them.
type Pool struct {
	Name    string
	servers []*Server
	policy  Policy
}

// New builds a pool from a validated config.
func New(c Config) (*Pool, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("backend %q: %w", c.Name, err)
	}
	p := &Pool{Name: c.Name}
	for _, sc := range c.Servers {
		p.servers = append(p.servers, &Server{Name: sc.Name, Address: sc.Address, Weight: *sc.Weight})
	}
	switch c.Balance {
	case "roundrobin":
		p.policy = NewRoundRobin(len(p.servers))
	}
	return p, nil
}

// Servers returns the pool's servers in configuration order.
func (p *Pool) Servers() []*Server { return p.servers }

// Pick chooses a server for a request, never one that tried reports as
// already used. It returns nil when no server is left.
func (p *Pool) Pick(tried []*Server) *Server {
	return p.policy.Pick(p.servers, func(s *Server) bool {
		if s.Weight == 0 {
			return true
		}
		for _, t := range tried {
			if t == s {
				return true
			}
		}
		return false
	})
}
