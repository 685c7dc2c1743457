package balancer

import (
	"context"
	"testing"
)

// What a response teaches replaces only what the request was routed by:
// a key routed to no server (its lookup missed, perhaps because a shared
// table timed out) keeps the server the table holds, and a key
// redispatched from its server moves.
func TestLearn_SwapsFromWhatTheRequestWasRoutedBy(t *testing.T) {
	p := cookieStickPool(t)
	ctx := context.Background()
	a, b := p.Server("a"), p.Server("b")
	if err := p.StickStore().Stick(ctx, "held", "a"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key       string
		was, s    *Server
		want      *Server
		situation string
	}{
		{"held", nil, b, a, "a miss that was not an absence"},
		{"new", nil, b, b, "a new session"},
		{"held", a, b, b, "redispatched from a"},
		{"held", a, a, b, "answered by the server it was routed to, which the table no longer holds"},
	} {
		if err := p.Learn(ctx, tc.key, tc.was, tc.s, nil); err != nil {
			t.Fatal(err)
		}
		if got := p.Stuck(ctx, tc.key); got != tc.want {
			t.Errorf("%s: %s is stuck to %s, want %s", tc.situation, tc.key, name(got), name(tc.want))
		}
	}
}

func name(s *Server) string {
	if s == nil {
		return "none"
	}
	return s.Name
}
