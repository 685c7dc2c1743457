package balancer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func limitedPool(t *testing.T, maxconn int, queueSize int, queueTimeout time.Duration) *Pool {
	t.Helper()
	w := 1
	p, err := New(Config{Name: "b", QueueSize: queueSize, QueueTimeout: queueTimeout, Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1:80", Weight: &w, MaxConn: maxconn},
		{Name: "b", Address: "10.0.0.2:80", Weight: &w, MaxConn: maxconn},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// No server ever holds more than its maxconn; the requests beyond wait in
// order of arrival and each gets a server as one ends.
func TestTake_MaxConnAndQueueInOrder(t *testing.T) {
	p := limitedPool(t, 2, 10, 5*time.Second)
	var releases []func()
	for range 4 {
		s, release, err := p.Take(context.Background(), Request{})
		if err != nil {
			t.Fatal(err)
		}
		_ = s
		releases = append(releases, release)
	}
	for _, s := range p.Servers() {
		if s.Inflight() != 2 {
			t.Fatalf("%s has %d in flight, want 2", s.Name, s.Inflight())
		}
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, release, err := p.Take(context.Background(), Request{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			release()
		}()
		// Arrive one after the other.
		for deadline := time.Now().Add(time.Second); p.QueueLen() != i+1 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	if p.QueueLen() != 3 {
		t.Fatalf("queue holds %d, want 3", p.QueueLen())
	}
	releases[0]()
	wg.Wait()
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("served in order %v, want [0 1 2]", order)
	}
	for _, r := range releases[1:] {
		r()
	}
	for _, s := range p.Servers() {
		if s.Inflight() != 0 {
			t.Fatalf("%s has %d in flight after all ended", s.Name, s.Inflight())
		}
	}
}

// Past the queue's size or its timeout, Take refuses (the gateway answers 503).
func TestTake_QueueFullAndTimeout(t *testing.T) {
	p := limitedPool(t, 1, 1, 100*time.Millisecond)
	for range 2 {
		if _, _, err := p.Take(context.Background(), Request{}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() {
		_, _, err := p.Take(context.Background(), Request{})
		done <- err
	}()
	for deadline := time.Now().Add(time.Second); p.QueueLen() != 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if _, _, err := p.Take(context.Background(), Request{}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("with the queue full: %v, want ErrQueueFull", err)
	}
	start := time.Now()
	if err := <-done; !errors.Is(err, ErrQueueTimeout) {
		t.Errorf("queued past the timeout: %v, want ErrQueueTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the queue timeout of 100ms took %s", d)
	}
	if p.QueueLen() != 0 {
		t.Errorf("queue holds %d after the timeout", p.QueueLen())
	}
}

// Many requests at once never push a server past its maxconn.
func TestTake_MaxConnUnderConcurrency(t *testing.T) {
	p := limitedPool(t, 3, 1000, 5*time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := map[string]int64{}
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, release, err := p.Take(context.Background(), Request{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			peak[s.Name] = max(peak[s.Name], s.Inflight())
			mu.Unlock()
			time.Sleep(time.Millisecond)
			release()
		}()
	}
	wg.Wait()
	for name, n := range peak {
		if n > 3 {
			t.Errorf("%s reached %d in flight, maxconn 3", name, n)
		}
	}
	if len(peak) != 2 {
		t.Errorf("servers used: %v", peak)
	}
}

// A client whose session names a full server waits for that server
// rather than moving (HAProxy's server queue); one whose server is down moves.
func TestTake_StickyWaitsForItsServer(t *testing.T) {
	p := limitedPool(t, 1, 10, 200*time.Millisecond)
	a := p.Server("a")
	_, releaseA, _ := p.Take(context.Background(), Request{Sticky: a})
	got := make(chan *Server)
	go func() {
		s, release, err := p.Take(context.Background(), Request{Sticky: a})
		if err != nil {
			t.Error(err)
		}
		release()
		got <- s
	}()
	time.Sleep(20 * time.Millisecond)
	releaseA()
	if s := <-got; s != a {
		t.Fatalf("sticky request got %v, want a", s)
	}
	a.SetDown(true)
	s, release, err := p.Take(context.Background(), Request{Sticky: a})
	if err != nil || s.Name != "b" {
		t.Fatalf("sticky to a down server: %v %v, want b", s, err)
	}
	release()
	a.SetDown(false)
	a.SetState(Drain)
	if s, release, _ := p.Take(context.Background(), Request{Sticky: a}); s != a {
		t.Fatalf("a draining server keeps its sessions: got %v", s)
	} else {
		release()
	}
	if s := p.Pick(Request{}); s.Name != "b" {
		t.Fatalf("a draining server takes no new session: got %v", s)
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// After a server comes back, its weight ramps from 1 to its own over the
// slow start, so it gets a growing share.
func TestSlowStart_RampsTheWeight(t *testing.T) {
	w1, w100 := 1, 100
	p, err := New(Config{Name: "b", SlowStart: 10 * time.Second, Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1:80", Weight: &w100},
		{Name: "b", Address: "10.0.0.2:80", Weight: &w1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	p.now = clock.now
	a := p.Server("a")
	if a.effectiveWeight() != 100 {
		t.Fatalf("weight at start %d, want 100: slow start is for servers that come back", a.effectiveWeight())
	}
	share := func() float64 {
		n := 0
		for range 1000 {
			if p.Pick(Request{}) == a {
				n++
			}
		}
		return float64(n) / 1000
	}
	a.SetDown(true)
	a.SetDown(false)
	var elapsed time.Duration
	for _, step := range []struct {
		at         time.Duration
		weight     int
		shareBelow float64
	}{
		{0, 1, 0.55},
		{time.Second, 10, 0.93},
		{5 * time.Second, 50, 0.99},
		{10 * time.Second, 100, 1.01},
	} {
		clock.advance(step.at - elapsed)
		elapsed = step.at
		if got := a.effectiveWeight(); got != step.weight {
			t.Fatalf("%s after coming back: weight %d, want %d", step.at, got, step.weight)
		}
		if sh := share(); sh >= step.shareBelow {
			t.Fatalf("%s after coming back: a's share %.3f, want < %.2f", step.at, sh, step.shareBelow)
		}
	}
	a.SetState(Maint)
	a.SetState(Ready)
	if a.effectiveWeight() != 1 {
		t.Fatalf("back from maint: weight %d, want a new ramp from 1", a.effectiveWeight())
	}
}

func TestParseState(t *testing.T) {
	for _, name := range []string{"ready", "drain", "maint"} {
		st, err := ParseState(name)
		if err != nil || st.String() != name {
			t.Errorf("ParseState(%q) = %v, %v", name, st, err)
		}
	}
	if _, err := ParseState("down"); err == nil {
		t.Error("down accepted as an admin state")
	}
}
