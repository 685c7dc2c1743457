package balancer

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Failures in a row rest a server for the cool-down, with an event; a
// success between failures starts the count again; after the cool-down it
// gets a trial, and one more failure rests it again.
func TestPassive_RestsAServerThenTriesIt(t *testing.T) {
	w := 1
	p, err := New(Config{Name: "app", PassiveCheck: &PassiveConfig{Failures: 3, HTTP5xx: 2, CoolDown: 150 * time.Millisecond}, Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1:80", Weight: &w}, {Name: "b", Address: "10.0.0.2:80", Weight: &w},
	}})
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	p.now = clock.now
	var mu sync.Mutex
	var events []HealthEvent
	p.OnEvent(func(e HealthEvent) { mu.Lock(); events = append(events, e); mu.Unlock() })
	a := p.Server("a")
	p.Observe(a, ConnectFailed, "refused")
	p.Observe(a, ConnectFailed, "refused")
	p.Observe(a, Answered, "")
	p.Observe(a, TimedOut, "timeout")
	p.Observe(a, ConnectFailed, "refused")
	if !a.Usable() {
		t.Fatal("out after 2 failures in a row (a success reset the count)")
	}
	p.Observe(a, ConnectFailed, "connection refused")
	if a.Usable() || !a.Down() {
		t.Fatal("still in after 3 failures in a row")
	}
	if got := sequence(p, 4); got != "bbbb" {
		t.Fatalf("picks while a rests: %s", got)
	}
	mu.Lock()
	if len(events) != 1 || events[0].Up || events[0].Backend != "app" || events[0].Server != "a" || !strings.Contains(events[0].Reason, "connection refused") {
		t.Fatalf("events %+v", events)
	}
	mu.Unlock()
	clock.advance(149 * time.Millisecond)
	if a.Usable() {
		t.Fatal("back before the cool-down ended")
	}
	clock.advance(2 * time.Millisecond)
	if !a.Usable() {
		t.Fatal("no trial after the cool-down")
	}
	p.Observe(a, TimedOut, "timeout")
	if a.Usable() {
		t.Fatal("a failed trial did not rest it again")
	}
	clock.advance(151 * time.Millisecond)
	p.Observe(a, Answered, "")
	p.Observe(a, ServerError, "500")
	if !a.Usable() {
		t.Fatal("out after one 5xx, threshold 2")
	}
	p.Observe(a, ServerError, "503 Service Unavailable")
	if a.Usable() {
		t.Fatal("in after 2 5xx in a row")
	}
	mu.Lock()
	defer mu.Unlock()
	if last := events[len(events)-1]; !strings.Contains(last.Reason, "5xx") {
		t.Fatalf("last event %+v", last)
	}
}

// With active checks, a rested server comes back only when they pass,
// Rise times, after the cool-down.
func TestPassive_ActiveChecksBringItBack(t *testing.T) {
	w := 1
	p, err := New(Config{Name: "app", PassiveCheck: &PassiveConfig{Failures: 1, CoolDown: 50 * time.Millisecond},
		HealthCheck: &HealthConfig{Type: "tcp"},
		Servers:     []ServerConfig{{Name: "a", Address: "10.0.0.1:80", Weight: &w}}})
	if err != nil {
		t.Fatal(err)
	}
	a := p.Server("a")
	p.Observe(a, ConnectFailed, "refused")
	time.Sleep(60 * time.Millisecond)
	if a.Usable() {
		t.Fatal("back after the cool-down without a good active check")
	}
}
