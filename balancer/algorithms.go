package balancer

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// newPolicy returns the policy a backend's balance setting names.
func newPolicy(name string, n int) Policy {
	switch name {
	case "leastconn":
		return &byLoad{cost: func(*Server) float64 { return 1 }}
	case "least_response_time":
		// A server not yet measured counts as fast, so it gets measured.
		return &byLoad{cost: func(s *Server) float64 { return float64(s.Latency() + time.Millisecond) }}
	case "least_bandwidth":
		return &byLoad{cost: func(s *Server) float64 { return s.Bandwidth() + 1024 }}
	case "source":
		return sourceHash{}
	case "random":
		return randomTwo{}
	}
	return NewRoundRobin(n)
}

// Algorithms lists the names Balance accepts.
var Algorithms = []string{"roundrobin", "leastconn", "least_response_time", "least_bandwidth", "source", "random"}

// byLoad picks the server with the lowest load per unit of weight, the load
// being (requests in flight + 1) × a cost per request: 1 for leastconn, the
// moving average of response times for least_response_time (as NGINX's
// least_time weighs connections by time), recent bytes per second for
// least_bandwidth. Ties go round robin, so equal servers share the traffic.
type byLoad struct {
	cost func(*Server) float64
	next atomic.Uint64
}

// Pick implements Policy.
func (b *byLoad) Pick(cands []*Server, _ Request) *Server {
	start := int(b.next.Add(1) % uint64(len(cands)))
	var best *Server
	bestLoad := math.Inf(1)
	for i := range cands {
		s := cands[(start+i)%len(cands)]
		// Per weight: a weight-2 server takes twice the load of a weight-1 one.
		if l := float64(s.Inflight()+1) * b.cost(s) / float64(s.effectiveWeight()); l < bestLoad {
			best, bestLoad = s, l
		}
	}
	return best
}

// sourceHash is weighted rendezvous hashing of the client IP: every replica
// picks the same server for a client without sharing state (the score
// depends only on the IP, the server's address and its weight), and when a
// server joins or leaves only the clients whose best score changes move,
// about 1/N of them.
type sourceHash struct{}

// Pick implements Policy.
func (sourceHash) Pick(cands []*Server, r Request) *Server {
	var best *Server
	bestScore := math.Inf(-1)
	for _, s := range cands {
		h := fnv.New64a()
		h.Write([]byte(r.ClientIP))
		h.Write([]byte{0})
		h.Write([]byte(s.Address))
		// A uniform number in (0, 1) from the hash, mixed (FNV's bits are
		// not uniform on their own), then -w/ln(u): the largest wins, and a
		// server wins in proportion to its weight. The configured weight,
		// not the slow start's: a client's server must not move as it ramps.
		u := (float64(mix64(h.Sum64())>>11) + 0.5) / (1 << 53)
		if score := -float64(s.Weight()) / math.Log(u); score > bestScore {
			best, bestScore = s, score
		}
	}
	return best
}

// mix64 is SplitMix64's finalizer.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// randomTwo is the power of two choices: two servers drawn at random by
// weight, and the one with fewer requests in flight per weight wins.
type randomTwo struct{}

// Pick implements Policy.
func (randomTwo) Pick(cands []*Server, _ Request) *Server {
	a := weightedDraw(cands)
	if len(cands) == 1 {
		return a
	}
	b := weightedDraw(cands)
	for b == a {
		b = weightedDraw(cands)
	}
	if float64(b.Inflight()+1)/float64(b.effectiveWeight()) < float64(a.Inflight()+1)/float64(a.effectiveWeight()) {
		return b
	}
	return a
}

func weightedDraw(cands []*Server) *Server {
	var w [16]int
	weights := w[:0]
	total := 0
	for _, s := range cands {
		weights = append(weights, s.effectiveWeight())
		total += weights[len(weights)-1]
	}
	n := rand.IntN(total)
	for i, s := range cands {
		if n -= weights[i]; n < 0 {
			return s
		}
	}
	return cands[len(cands)-1]
}
