package balancer

import "sync"

// RoundRobin is smooth weighted round robin (nginx's algorithm): over any
// window of sum(weights) picks each server gets its weight's share, and picks
// of a heavy server are spread out rather than bunched.
type RoundRobin struct {
	mu      sync.Mutex
	current []int // by server index
}

// NewRoundRobin returns a round robin policy for n servers.
func NewRoundRobin(n int) *RoundRobin { return &RoundRobin{current: make([]int, n)} }

// Pick implements Policy.
func (rr *RoundRobin) Pick(cands []*Server, _ Request) *Server {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	var best *Server
	total := 0
	for _, s := range cands {
		w := s.effectiveWeight()
		rr.current[s.index] += w
		total += w
		if best == nil || rr.current[s.index] > rr.current[best.index] {
			best = s
		}
	}
	rr.current[best.index] -= total
	return best
}

var _ Policy = (*RoundRobin)(nil)
