package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// busyMachine keeps n goroutines spinning until the test ends or the
// returned func is called, so that the replicas, Redis and the servers
// compete for the CPU as on a loaded host (a Redis call then sometimes
// outlasts its timeout for want of a core, not of Redis). n should leave
// the test's own client a core.
func busyMachine(t *testing.T, n int) func() {
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := 0; !stop.Load(); x++ {
			}
		}()
	}
	end := func() { stop.Store(true); wg.Wait() }
	t.Cleanup(end)
	return end
}

// stallRedis stops Redis (SIGSTOP) for burst every period, as a Redis
// host that is slow rather than gone (a fork for a snapshot, a noisy
// neighbour): calls in flight outlast the replicas' timeout, but the
// burst is shorter than what opens their breaker. It stops
// when the returned func is called, leaving Redis running, and says how
// many bursts there were.
func stallRedis(r *Redis, burst, period time.Duration) func() int {
	done := make(chan struct{})
	var wg sync.WaitGroup
	bursts := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			r.Pause()
			time.Sleep(burst)
			r.Resume()
			bursts++
		}
	}()
	return func() int { close(done); wg.Wait(); return bursts }
}

// restartEmpty kills Redis and starts it again on its port without its
// data, as a Redis without persistence comes back.
func (r *Redis) restartEmpty() {
	r.t.Helper()
	r.Kill()
	entries, _ := os.ReadDir(r.dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(r.dir, e.Name()))
	}
	r.Restart()
}

// Three replicas with the default redis.timeout (50 ms) on a loaded
// machine, Redis stopped for 70 ms every 200 ms (longer than the timeout,
// shorter than the breaker's 2 × timeout): 1,000 sessions made
// round-robin, each then sent 5 requests through the other replicas, and
// none reaches another server (a slow lookup must not move a session).
// Then Redis comes back empty: the replicas republish what they hold, and
// every session still reaches its server through every replica.
func TestShared_SessionsStayUnderLoad(t *testing.T) {
	redis := StartRedis(t)
	a, b := appServers(t)
	cfg := strings.Replace(replicaConfig, "  timeout: 50ms\n", "", 1)
	if cfg == replicaConfig {
		t.Fatal("the replicas' config sets no redis.timeout to leave out")
	}
	var gs []*Gateway
	for range 3 {
		gs = append(gs, StartGateway(t, cfg, ConfigData{"A": a.Addr, "B": b.Addr, "Redis": redis.Addr, "Limit": 1000}))
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	type session struct{ id, server string }
	sessions := make([]session, 1000)
	var mu sync.Mutex
	var errs, moved []string
	// each runs f for every session over 12 workers.
	each := func(f func(i int)) {
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(sessions); i += 12 {
					f(i)
				}
			}()
		}
		wg.Wait()
	}
	note := func(list *[]string, format string, args ...any) {
		mu.Lock()
		*list = append(*list, fmt.Sprintf(format, args...))
		mu.Unlock()
	}

	unload := busyMachine(t, 1)
	unstall := stallRedis(redis, 70*time.Millisecond, 200*time.Millisecond)
	start := time.Now()
	each(func(i int) {
		srv, id, err := hit(c, gs[i%3].URL("http", "web")+"/", "")
		if err != nil || id == "" {
			note(&errs, "session %d: %v (set %q)", i, err, id)
			return
		}
		sessions[i] = session{id, srv}
		wrong := 0
		for k := 1; k <= 5; k++ {
			via := (i + 1 + k%2) % 3 // the other two replicas in turn
			got, _, err := hit(c, gs[via].URL("http", "web")+"/", id)
			if err != nil {
				note(&errs, "session %d, request %d via replica %d: %v", i, k, via, err)
			} else if got != srv {
				wrong++
			}
		}
		if wrong > 0 {
			note(&moved, "session %d (%s on %s): %d of 5 requests reached another server", i, id, srv, wrong)
		}
	})
	bursts := unstall()
	unload()
	t.Logf("under load, Redis stopped for 70 ms %d times: 6000 requests in %s, %d of 1000 sessions reached another server", bursts, time.Since(start).Round(time.Millisecond), len(moved))
	for i, g := range gs {
		t.Logf("replica %d: redis unavailable %d times", i, strings.Count(g.Stderr(), `"message":"redis unavailable`))
	}
	if len(errs) > 0 {
		t.Fatalf("%d requests failed under load; first: %s", len(errs), errs[0])
	}
	if len(moved) > 0 {
		t.Errorf("%d of 1000 sessions reached another server under load; first: %s", len(moved), moved[0])
	}

	// Redis restarted without persistence: the replicas still hold the
	// sessions, and must give them back to Redis rather than pick anew.
	redis.restartEmpty()
	if out, err := redis.CLI("DBSIZE"); err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("Redis restarted holds %q keys (%v); want none", out, err)
	}
	moved = nil
	each(func(i int) {
		s := sessions[i]
		if s.id == "" {
			return
		}
		wrong := 0
		for k := range 3 {
			got, _, err := hit(c, gs[(i+k)%3].URL("http", "web")+"/", s.id)
			if err != nil {
				note(&errs, "after the restart, session %d via replica %d: %v", i, (i+k)%3, err)
			} else if got != s.server {
				wrong++
			}
		}
		if wrong > 0 {
			note(&moved, "session %d (%s on %s): %d of 3 requests reached another server", i, s.id, s.server, wrong)
		}
	})
	t.Logf("after Redis came back empty: %d of 1000 sessions reached another server", len(moved))
	if len(errs) > 0 {
		t.Fatalf("%d requests failed after Redis came back empty; first: %s", len(errs), errs[0])
	}
	if len(moved) > 0 {
		t.Errorf("%d of 1000 sessions reached another server after Redis came back empty; first: %s", len(moved), moved[0])
	}
	if out, _ := redis.CLI("DBSIZE"); strings.TrimSpace(out) == "0" {
		t.Error("Redis holds nothing after the sessions came back: the replicas did not republish")
	}
}
