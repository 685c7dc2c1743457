package balancer

import (
	"testing"
	"time"
)

// After a reload, a server that stays keeps its health and the state an
// operator set; a moved or new server starts afresh, and a state the new
// config changes wins over the old run-time one.
func TestAdopt(t *testing.T) {
	pool := func(servers ...ServerConfig) *Pool {
		t.Helper()
		p, err := New(Config{Name: "app", Servers: servers})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := pool(
		ServerConfig{Name: "down", Address: "10.0.0.1:80"},
		ServerConfig{Name: "drained", Address: "10.0.0.2:80"},
		ServerConfig{Name: "moved", Address: "10.0.0.3:80"},
		ServerConfig{Name: "reconfigured", Address: "10.0.0.4:80"},
	)
	old.Server("down").SetDown(true)
	old.Server("down").ObserveLatency(40 * time.Millisecond)
	old.Server("drained").SetState(Drain)
	old.Server("moved").SetDown(true)
	old.Server("reconfigured").SetState(Maint)

	p := pool(
		ServerConfig{Name: "down", Address: "10.0.0.1:80"},
		ServerConfig{Name: "drained", Address: "10.0.0.2:80"},
		ServerConfig{Name: "moved", Address: "10.0.0.9:80"},
		ServerConfig{Name: "reconfigured", Address: "10.0.0.4:80", State: "drain"},
		ServerConfig{Name: "new", Address: "10.0.0.5:80"},
	)
	p.Adopt(old)
	for _, c := range []struct {
		server string
		down   bool
		state  State
	}{
		{"down", true, Ready},
		{"drained", false, Drain},
		{"moved", false, Ready},
		{"reconfigured", false, Drain},
		{"new", false, Ready},
	} {
		s := p.Server(c.server)
		if s.Down() != c.down || s.State() != c.state {
			t.Errorf("%s: down %v, state %s; want down %v, state %s", c.server, s.Down(), s.State(), c.down, c.state)
		}
	}
	if got := p.Server("down").Latency(); got != old.Server("down").Latency() || got == 0 {
		t.Errorf("latency %v not carried (old %v)", got, old.Server("down").Latency())
	}
}
