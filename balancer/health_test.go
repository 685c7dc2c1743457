package balancer

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// healthPool is one server at addr, checked every 20 ms, rise 2, fall 3.
func healthPool(t *testing.T, addr string, hc HealthConfig) (*Pool, func() []HealthEvent) {
	t.Helper()
	hc.Interval, hc.Timeout, hc.Rise, hc.Fall = 20*time.Millisecond, 500*time.Millisecond, 2, 3
	p, err := New(Config{Name: "app", Servers: []ServerConfig{{Name: "s1", Address: addr}}, HealthCheck: &hc})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []HealthEvent
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.OnEvent(func(e HealthEvent) { mu.Lock(); events = append(events, e); mu.Unlock() })
	p.RunHealthChecks(ctx)
	return p, func() []HealthEvent { mu.Lock(); defer mu.Unlock(); return append([]HealthEvent(nil), events...) }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

func TestHealth_HTTPTakesServersOutAndBack(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.Host != "app.internal" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
		w.Write([]byte("status: ok"))
	}))
	defer srv.Close()
	p, events := healthPool(t, strings.TrimPrefix(srv.URL, "http://"),
		HealthConfig{Type: "http", HTTP: HTTPCheck{Path: "/health", Host: "app.internal", BodyContains: "ok"}})
	s := p.Servers()[0]
	time.Sleep(150 * time.Millisecond)
	if len(events()) != 0 || p.Pick(Request{}) == nil {
		t.Fatalf("a healthy server changed state: %v", events())
	}
	status.Store(503)
	start := time.Now()
	waitFor(t, "down after 3 failed checks", func() bool { return p.Pick(Request{}) == nil })
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("down after %v: sooner than fall × interval", d)
	}
	status.Store(200)
	waitFor(t, "up after 2 good checks", func() bool { return p.Pick(Request{}) == s })
	ev := events()
	if len(ev) != 2 || ev[0].Up || !strings.Contains(ev[0].Reason, "status 503") || !ev[1].Up || ev[0].Server != "s1" || ev[0].Backend != "app" {
		t.Fatalf("events %+v", ev)
	}
	if s.Latency() == 0 {
		t.Error("check times did not feed the server's latency")
	}
}

func TestHealth_TCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p, _ := healthPool(t, addr, HealthConfig{Type: "tcp"})
	ln.Close()
	waitFor(t, "down when the port is closed", func() bool { return p.Pick(Request{}) == nil })
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port %s was taken meanwhile: %v", addr, err)
	}
	defer ln2.Close()
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	waitFor(t, "up when it listens again", func() bool { return p.Pick(Request{}) != nil })
}

// An exec check runs the command itself (no shell) with host and port as
// its last arguments; exit 0 is up; a command past the timeout is killed.
func TestHealth_Exec(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "up")
	script := filepath.Join(dir, "check")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$2\" = 127.0.0.1 ] && [ \"$3\" = 8080 ] && [ -e \""+flag+"\" ] || { echo \"not up: $*\"; exit 1; }\n"), 0o700)
	os.WriteFile(flag, nil, 0o600)
	p, events := healthPool(t, "127.0.0.1:8080", HealthConfig{Type: "exec", Command: []string{script, "--check"}})
	time.Sleep(100 * time.Millisecond)
	os.Remove(flag)
	waitFor(t, "down when the command fails", func() bool { return p.Pick(Request{}) == nil })
	if ev := events(); len(ev) != 1 || !strings.Contains(ev[0].Reason, "not up: --check 127.0.0.1 8080") {
		t.Fatalf("events %+v", ev)
	}

	sleeper := filepath.Join(dir, "sleeper")
	os.WriteFile(sleeper, []byte("#!/bin/sh\nsleep 10 &\nsleep 10\n"), 0o700) // a child that holds the output pipe too
	slow, slowEvents := healthPool(t, "127.0.0.1:8080", HealthConfig{Type: "exec", Command: []string{sleeper}})
	start := time.Now()
	waitFor(t, "down when the command outlives the timeout", func() bool { return slow.Pick(Request{}) == nil })
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Errorf("down after %v, want 3 checks of 500 ms each", d)
	}
	if ev := slowEvents(); len(ev) != 1 || !strings.Contains(ev[0].Reason, "killed") {
		t.Errorf("events %+v", ev)
	}
}

func TestHealthConfig_Validate(t *testing.T) {
	h := HealthConfig{Type: "ping", HTTP: HTTPCheck{ExpectStatus: []string{"200-199", "abc"}}}
	h.SetDefaults()
	err := h.Validate()
	for _, want := range []string{`health_check.type: "ping" is not`, `expect_status[0]: "200-199" is not`, `expect_status[1]: "abc" is not`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v lack %q", err, want)
		}
	}
}

// A half-open check reports a listening server up while its application
// accepts no connection at all, and a closed port down; over IPv4 and IPv6.
func TestHealth_TCPHalfOpen(t *testing.T) {
	if err := CanHalfOpen(); err != nil {
		t.Fatalf("this test needs CAP_NET_RAW (run it as root): %v", err)
	}
	for _, network := range []string{"127.0.0.1", "::1"} {
		t.Run(network, func(t *testing.T) {
			ln, err := net.Listen("tcp", net.JoinHostPort(network, "0"))
			if err != nil {
				t.Fatalf("listening on %s: %v", network, err)
			}
			var accepted atomic.Int32
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					c.Close()
				}
			}()
			p, events := healthPool(t, ln.Addr().String(), HealthConfig{Type: "tcp_half_open"})
			time.Sleep(300 * time.Millisecond) // ~15 checks
			if len(events()) != 0 || p.Pick(Request{}) == nil {
				t.Fatalf("listening server reported down: %+v", events())
			}
			if n := accepted.Load(); n != 0 {
				t.Fatalf("the application accepted %d connections from half-open checks", n)
			}
			if p.Servers()[0].Latency() == 0 {
				t.Fatal("no check completed")
			}
			ln.Close()
			waitFor(t, "down when the port is closed", func() bool { return p.Pick(Request{}) == nil })
			if ev := events(); len(ev) != 1 || !strings.Contains(ev[0].Reason, "RST") {
				t.Errorf("events %+v", ev)
			}
		})
	}
}
