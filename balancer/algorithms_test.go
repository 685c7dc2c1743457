package balancer

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// share counts the picks per server name over n requests from varying
// clients, each held in flight until 16 later ones have started, as under
// steady concurrent load.
func share(p *Pool, n int) map[string]int {
	got := map[string]int{}
	var held []func()
	for i := range n {
		if s := p.Pick(Request{ClientIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}); s != nil {
			got[s.Name]++
			held = append(held, s.Acquire())
		}
		if len(held) > 16 {
			held[0]()
			held = held[1:]
		}
	}
	for _, release := range held {
		release()
	}
	return got
}

// Every algorithm respects the weights, within 5 points of the expected
// share over 10,000 picks when the servers are equally loaded, never picks
// a weight-0 server, and leaves backups alone while a primary is usable.
func TestAlgorithms_RespectWeights(t *testing.T) {
	for _, a := range Algorithms {
		t.Run(a, func(t *testing.T) {
			p := poolWith(t, a, 1, 3, 0, 1)
			p.Servers()[3].Backup = true
			got := share(p, 10000)
			if got["c"] != 0 || got["d"] != 0 {
				t.Fatalf("weight 0 or backup picked: %v", got)
			}
			want := map[string]float64{"a": 0.25, "b": 0.75}
			for name, w := range want {
				if f := float64(got[name]) / 10000; math.Abs(f-w) > 0.05 {
					t.Errorf("%s got %.3f of the picks, want %.2f±0.05 (%v)", name, f, w, got)
				}
			}
		})
	}
}

func TestPool_BackupsTakeOverWhenNoPrimaryIsUsable(t *testing.T) {
	p := poolWith(t, "roundrobin", 1, 1, 1)
	a, b, c := p.Servers()[0], p.Servers()[1], p.Servers()[2]
	c.Backup = true
	a.SetDown(true)
	b.SetState(Drain)
	if got := sequence(p, 3); got != "ccc" {
		t.Fatalf("picks = %q, want the backup", got)
	}
	b.SetState(Ready)
	if got := sequence(p, 3); got != "bbb" {
		t.Fatalf("picks = %q after b is ready again", got)
	}
	b.SetState(Maint)
	c.SetState(Maint)
	if s := p.Pick(Request{}); s != nil {
		t.Fatalf("picked %s with every server down, draining or in maintenance", s.Name)
	}
}

// leastconn and least_response_time steer away from a busy or slow server;
// least_bandwidth from a heavily used one.
func TestAlgorithms_SteerByLoad(t *testing.T) {
	p := poolWith(t, "leastconn", 1, 1)
	for range 30 {
		p.Servers()[0].Acquire()
	}
	if got := share(p, 100); got["b"] != 100 {
		t.Errorf("leastconn with 30 requests in flight on a: %v", got)
	}

	p = poolWith(t, "least_response_time", 1, 1)
	p.Servers()[0].ObserveLatency(200 * time.Millisecond)
	p.Servers()[1].ObserveLatency(5 * time.Millisecond)
	if got := share(p, 1000); got["b"] < 900 {
		t.Errorf("least_response_time with a at 200 ms, b at 5 ms: %v", got)
	}

	p = poolWith(t, "least_bandwidth", 1, 1)
	p.Servers()[0].ObserveBytes(50 << 20)
	if got := share(p, 100); got["b"] != 100 {
		t.Errorf("least_bandwidth after 50 MiB through a: %v", got)
	}

	p = poolWith(t, "random", 1, 1)
	for range 50 {
		p.Servers()[0].Acquire()
	}
	if got := share(p, 1000); got["b"] != 1000 {
		// Two choices among two servers: both are always compared.
		t.Errorf("random (two choices) with 50 requests in flight on a: %v", got)
	}
}

// source gives a client the same server every time and in every replica (a
// second pool built from the same config), and a server that joins takes
// about 1/N of the clients, from all the others alike.
func TestSource_StableAndMovesFewClients(t *testing.T) {
	const clients = 20000
	ip := func(i int) string { return fmt.Sprintf("172.%d.%d.%d", 16+i>>16&15, i>>8&255, i&255) }
	p1, p2 := poolWith(t, "source", 1, 1, 1, 1), poolWith(t, "source", 1, 1, 1, 1)
	before := make([]string, clients)
	for i := range clients {
		before[i] = p1.Pick(Request{ClientIP: ip(i)}).Name
		if again := p1.Pick(Request{ClientIP: ip(i)}).Name; again != before[i] {
			t.Fatalf("client %s moved from %s to %s", ip(i), before[i], again)
		}
		if other := p2.Pick(Request{ClientIP: ip(i)}).Name; other != before[i] {
			t.Fatalf("client %s: %s on one replica, %s on another", ip(i), before[i], other)
		}
	}
	grown := poolWith(t, "source", 1, 1, 1, 1, 1)
	moved := 0
	for i := range clients {
		s := grown.Pick(Request{ClientIP: ip(i)}).Name
		if s != before[i] {
			moved++
			if s != "e" {
				t.Fatalf("client %s moved from %s to %s, not to the new server", ip(i), before[i], s)
			}
		}
	}
	if f := float64(moved) / clients; f > 1.0/5+0.02 {
		t.Errorf("%.3f of the clients moved when a fifth server joined, want <= 0.22", f)
	}
}
