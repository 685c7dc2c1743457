package balancer

import (
	"testing"
	"time"
)

// LastChange moves with a change of administrative state or health (an
// active check's verdict, a passive check's ejection), not with the same
// state set again; a reload keeps it for a server whose state stays.
func TestLastChange(t *testing.T) {
	before := time.Now()
	p, err := New(Config{Name: "app", PassiveCheck: &PassiveConfig{Failures: 1, CoolDown: time.Minute}, Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1:80"}, {Name: "b", Address: "10.0.0.2:80"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Server("a"), p.Server("b")
	if at := a.LastChange(); at.Before(before) || time.Since(at) > time.Minute {
		t.Fatalf("a new server's last change %v, want when its pool was built", at)
	}
	clock := newFakeClock()
	p.now = clock.now
	step := func(what string, do func(), s *Server, changes bool) {
		t.Helper()
		was := s.LastChange()
		clock.advance(time.Second)
		do()
		if want := map[bool]time.Time{true: clock.now(), false: was}[changes]; !s.LastChange().Equal(want) {
			t.Errorf("%s: last change %v, want %v", what, s.LastChange(), want)
		}
	}
	step("drain", func() { a.SetState(Drain) }, a, true)
	step("drain again", func() { a.SetState(Drain) }, a, false)
	step("down", func() { a.SetDown(true) }, a, true)
	step("down again", func() { a.SetDown(true) }, a, false)
	step("up", func() { a.SetDown(false) }, a, true)
	step("a passive check's ejection", func() { p.Observe(b, ConnectFailed, "refused") }, b, true)
	step("a request answered", func() { p.Observe(a, Answered, "") }, a, false)

	next, err := New(Config{Name: "app", Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1:80"}, {Name: "b", Address: "10.0.0.2:80", State: "maint"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	next.Adopt(p)
	if !next.Server("a").LastChange().Equal(a.LastChange()) {
		t.Errorf("a reload moved a's last change to %v (was %v)", next.Server("a").LastChange(), a.LastChange())
	}
	if next.Server("b").LastChange().Equal(b.LastChange()) {
		t.Error("b's state changed with the reload (maint), yet its last change stayed")
	}
}
