package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestIdleRelease_OnceAfterTrafficStops(t *testing.T) {
	var released atomic.Int32
	r := &idleRelease{quietAfter: 20 * time.Millisecond, release: func() { released.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx)

	time.Sleep(70 * time.Millisecond) // quiet from the start: nothing to give back
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times before any traffic", n)
	}
	busy := time.Now()
	for time.Since(busy) < 100*time.Millisecond { // steady traffic: never released
		r.touch()
		time.Sleep(2 * time.Millisecond)
	}
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times under traffic", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for released.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(80 * time.Millisecond) // more quiet: still once
	if n := released.Load(); n != 1 {
		t.Fatalf("released %d times after traffic stopped, want 1", n)
	}
}

// A new gateway has compiled its policies: its first quiet second gives the
// compiler's garbage back.
func TestNew_CountsCompilingAsActivity(t *testing.T) {
	g := benchGateway(t, "off")
	if n := g.idle.active.Load(); n != 1 {
		t.Fatalf("a new gateway has %d requests since the last release, want 1 (compiling)", n)
	}
}
