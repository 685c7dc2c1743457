package balancer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A server goes down after exactly fall failures in a row and up after
// exactly rise successes in a row: fewer do nothing, a result of the other
// kind starts the count again. The checks answer from a script, and the
// log of check results and state changes, in the checker's order, must be
// the expected one.
func TestHealth_DownAfterExactlyFallUpAfterExactlyRise(t *testing.T) {
	script := strings.Fields("ok f f f ok f f f f ok ok f ok ok ok f f f ok")
	want := "ok f f f ok f f f f DOWN ok ok f ok ok ok UP f f f ok"
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := int(n.Add(1)) - 1; i < len(script) && script[i] == "f" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	hc := HealthConfig{Type: "http", HTTP: HTTPCheck{Path: "/"}, Rise: 3, Fall: 4,
		Interval: 2 * time.Millisecond, DownInterval: 2 * time.Millisecond, Timeout: time.Second}
	p, err := New(Config{Name: "app", Servers: []ServerConfig{{Name: "s1", Address: strings.TrimPrefix(srv.URL, "http://")}}, HealthCheck: &hc})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []string
	checks := 0
	done := make(chan struct{})
	p.OnCheck(func(_ *Server, r CheckResult) {
		mu.Lock()
		defer mu.Unlock()
		if checks++; checks > len(script) {
			return
		}
		log = append(log, map[bool]string{true: "ok", false: "f"}[r.Err == ""])
		if checks == len(script) {
			close(done)
		}
	})
	p.OnEvent(func(e HealthEvent) {
		mu.Lock()
		defer mu.Unlock()
		if checks <= len(script) {
			log = append(log, map[bool]string{true: "UP", false: "DOWN"}[e.Up])
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.RunHealthChecks(ctx)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the script's checks did not run within 10s")
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(log, " "); got != want {
		t.Fatalf("rise 3, fall 4:\n got %s\nwant %s", got, want)
	}
}
