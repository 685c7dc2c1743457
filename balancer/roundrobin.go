package balancer

import "sync"

// RoundRobin is smooth weighted round robin (nginx's algorithm): over any
// window of sum(weights) picks each server gets its weight's share, and picks
// of a heavy server are spread out rather than bunched.
type RoundRobin struct {
	mu      sync.Mutex
	current []int
}

// NewRoundRobin returns a round robin policy for n servers.
func NewRoundRobin(n int) *RoundRobin { return &RoundRobin{current: make([]int, n)} }

// Pick implements Policy.
func (rr *RoundRobin) Pick(servers []*Server, skip func(*Server) bool) *Server {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	best, total := -1, 0
	for i, s := range servers {
		if skip(s) {
			continue
		}
		rr.current[i] += s.Weight
		total += s.Weight
		if best < 0 || rr.current[i] > rr.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	rr.current[best] -= total
	return servers[best]
}

var _ Policy = (*RoundRobin)(nil)
