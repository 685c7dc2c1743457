package balancer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/balancer/sticktable"
)

func pool(t testing.TB, weights ...int) *Pool {
	t.Helper()
	return poolWith(t, "roundrobin", weights...)
}

// poolWith builds a pool of servers a, b, c... (10.0.0.1:80, ...) with the
// given weights under an algorithm.
func poolWith(t testing.TB, algorithm string, weights ...int) *Pool {
	t.Helper()
	c := Config{Name: "b", Balance: algorithm}
	for i, w := range weights {
		w := w
		c.Servers = append(c.Servers, ServerConfig{Name: string(rune('a' + i)), Address: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: &w})
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sequence(p *Pool, n int, tried ...*Server) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		s := p.Pick(Request{Tried: tried})
		if s == nil {
			b.WriteByte('-')
			continue
		}
		b.WriteString(s.Name)
	}
	return b.String()
}

func TestRoundRobin(t *testing.T) {
	cases := []struct {
		name    string
		weights []int
		n       int
		want    string
	}{
		{"equal weights alternate", []int{1, 1}, 6, "ababab"},
		{"smooth 5:1:1 (nginx's example)", []int{5, 1, 1}, 7, "aabacaa"},
		{"weight 0 takes nothing", []int{1, 0, 1}, 4, "acac"},
		{"all weight 0 gives none", []int{0, 0}, 2, "--"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sequence(pool(t, tc.weights...), tc.n); got != tc.want {
				t.Fatalf("picks = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPool_PickSkipsTriedServers(t *testing.T) {
	p := pool(t, 1, 1, 1)
	a, b := p.Servers()[0], p.Servers()[1]
	if got := sequence(p, 3, a, b); got != "ccc" {
		t.Fatalf("picks with a and b tried = %q, want ccc", got)
	}
	if s := p.Pick(Request{Tried: p.Servers()}); s != nil {
		t.Fatalf("pick with every server tried = %s, want none", s.Name)
	}
}

func TestConfig_Validate(t *testing.T) {
	bad := 300
	c := Config{Name: "app", Balance: "fastest", Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1"},
		{Name: "a", Address: "10.0.0.2:80", Weight: &bad, MaxConn: -1, State: "down"},
	}, Stick: &StickConfig{On: "cookie", Table: sticktable.Config{Size: -5, Expire: -1}},
		PassiveCheck: &PassiveConfig{Failures: -1}}
	c.SetDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`balance: unknown algorithm "fastest"`,
		`servers[0].address: "10.0.0.1" is not host:port`,
		`servers[1].name: duplicate server name "a"`,
		`servers[1].weight: 300 is outside 0..256`,
		`servers[1].maxconn: -1 is negative`,
		`servers[1].state: "down" is not ready, drain or maint`,
		`stick.cookie: "" is not a cookie name`,
		`stick.table.size: must be at least 1`,
		`stick.table.expire: must be positive`,
		`passive_check: failures, http_5xx and cool_down must not be negative`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors %q lack %q", err, want)
		}
	}
}

// BenchmarkPick is one pick among 4 servers per algorithm.
func BenchmarkPick(b *testing.B) {
	for _, a := range Algorithms {
		b.Run(a, func(b *testing.B) {
			p := poolWith(b, a, 1, 2, 3, 4)
			r := Request{ClientIP: "198.51.100.7"}
			b.ReportAllocs()
			for b.Loop() {
				p.Pick(r)
			}
		})
	}
}
