package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/e2e/debpkg"
	"github.com/sekisho/sekisho/e2e/freeport"
)

const replicaConfig = `
frontends:
  - name: web
    bind: [{address: "{{if .Bind}}{{.Bind}}{{else}}127.0.0.1:0{{end}}"}]
    routes:
      - {path_prefix: /limited/, backend: app, waf_policy: "off", rate_limit: {requests: {{.Limit}}, period: 10s}}
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers:
      - {name: a, address: "{{.A}}"}
      - {name: b, address: "{{.B}}"}
    stick: {on: cookie, cookie: JSESSIONID, table: {size: 100000, expire: 30m}}
redis:
  addresses: ["{{.Redis}}"]
  timeout: 50ms
log:
  access: {{.AccessLog}}
`

// appServers starts two application servers that hand out a JSESSIONID
// to a request without one, as Tomcat does, and answer with their name.
func appServers(t *testing.T) (*Backend, *Backend) {
	var issued atomic.Int64
	start := func(name string) *Backend {
		b := StartBackend(t, name)
		b.Handle = func(w http.ResponseWriter, r *http.Request) {
			if _, err := r.Cookie("JSESSIONID"); err != nil {
				id := fmt.Sprintf("%s%024X", name, issued.Add(1))
				http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: id, Path: "/"})
			}
			fmt.Fprintf(w, "ok %s", name)
		}
		return b
	}
	return start("a"), start("b")
}

// replicas starts n gateways sharing one Redis.
func replicas(t *testing.T, n int, redis *Redis, a, b *Backend, limit int) []*Gateway {
	var gs []*Gateway
	for range n {
		gs = append(gs, StartGateway(t, replicaConfig, ConfigData{"A": a.Addr, "B": b.Addr, "Redis": redis.Addr, "Limit": limit}))
	}
	return gs
}

// hit sends one GET with an optional session cookie and returns the
// server's name and the session the response sets, if any.
func hit(c *http.Client, url, session string) (server, set string, err error) {
	req, _ := http.NewRequest("GET", url, nil)
	if session != "" {
		req.Header.Set("Cookie", "JSESSIONID="+session)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "JSESSIONID" {
			set = ck.Value
		}
	}
	return strings.TrimPrefix(string(body), "ok "), set, nil
}

// 1,000 sessions each learn their JSESSIONID through one replica, then
// send 5 more requests spread over the other replicas: none reaches
// another server.
func TestShared_SessionsStickAcrossReplicas(t *testing.T) {
	redis := StartRedis(t)
	a, b := appServers(t)
	gs := replicas(t, 3, redis, a, b, 1000)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	type session struct{ id, server string }
	sessions := make([]session, 1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(sessions); i += 8 {
				srv, id, err := hit(c, gs[i%3].URL("http", "web")+"/", "")
				if err != nil || id == "" {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("session %d: %v (set %q)", i, err, id))
					mu.Unlock()
					continue
				}
				sessions[i] = session{id, srv}
				for k := 1; k <= 5; k++ {
					got, _, err := hit(c, gs[(i+k)%3].URL("http", "web")+"/", id)
					if err != nil || got != srv {
						mu.Lock()
						errs = append(errs, fmt.Sprintf("session %d (%s on %s), request %d via replica %d: %q %v", i, id, srv, k, (i+k)%3, got, err))
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of 6000 requests went wrong; first: %s", len(errs), errs[0])
	}
	per := map[string]int{}
	for _, s := range sessions {
		per[s.server]++
	}
	if per["a"] < 300 || per["b"] < 300 {
		t.Fatalf("sessions per server %v: the balancing itself went wrong", per)
	}
}

// A limit of N requests per 10 s per client IP holds for the fleet: N
// admitted across three replicas, not 3N.
func TestShared_FleetWideRateLimit(t *testing.T) {
	redis := StartRedis(t)
	a, b := appServers(t)
	const limit = 60
	gs := replicas(t, 3, redis, a, b, limit)
	c := &http.Client{Timeout: 5 * time.Second}
	admitted, refused := 0, 0
	for i := range 3 * limit {
		resp, err := c.Get(gs[i%3].URL("http", "web") + "/limited/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			admitted++
		case 429:
			refused++
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if lo, hi := limit*95/100, limit*105/100; admitted < lo || admitted > hi {
		t.Fatalf("admitted %d of %d across 3 replicas, want %d (±5%%)", admitted, 3*limit, limit)
	}
}

// steadyLoad runs workers that each keep one session and send it through
// the replicas in turn, until stop is closed; it records failures, wrong
// servers and latencies.
type steadyLoad struct {
	mu        sync.Mutex
	failures  []string
	latencies []time.Duration
	requests  int
	sessions  int // workers whose session is made
}

func (l *steadyLoad) run(t *testing.T, gs []*Gateway, workers int, stop <-chan struct{}, pick func(worker, i int) int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			session, server := "", ""
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				g := gs[pick(w, i)]
				start := time.Now()
				got, set, err := hit(c, g.URL("http", "web")+"/", session)
				d := time.Since(start)
				l.mu.Lock()
				l.requests++
				l.latencies = append(l.latencies, d)
				switch {
				case err != nil:
					l.failures = append(l.failures, fmt.Sprintf("worker %d: %v", w, err))
				case session == "":
					session, server = set, got
					l.sessions++
				case got != server:
					l.failures = append(l.failures, fmt.Sprintf("worker %d: session on %s went to %s", w, server, got))
				}
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return &wg
}

// established counts the workers whose session is made.
func (l *steadyLoad) established() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessions
}

// mark is where the latencies recorded from now on start.
func (l *steadyLoad) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.latencies)
}

// p99 is the 99th percentile of the latencies recorded since mark from.
func (l *steadyLoad) p99(from int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := append([]time.Duration(nil), l.latencies[from:]...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) == 0 {
		return 0
	}
	return d[len(d)*99/100]
}

// Redis killed, or paused (a partition: connections open, no answers),
// under steady load: no request fails, p99 stays within the stated bound
// (Redis timeout 50 ms: at most ~2 timeouts per request before the
// breaker opens, then none), sessions stick; when Redis returns, the
// replicas reconnect by themselves and share again.
func TestShared_RedisOutageUnderLoad(t *testing.T) {
	for _, fault := range []string{"killed", "paused"} {
		t.Run(fault, func(t *testing.T) {
			redis := StartRedis(t)
			a, b := appServers(t)
			gs := replicas(t, 2, redis, a, b, 1000)
			// Each worker stays on one replica during the outage (the
			// sessions learnt meanwhile live in that replica's table).
			load := &steadyLoad{}
			stop := make(chan struct{})
			wg := load.run(t, gs, 6, stop, func(w, i int) int { return w % 2 })
			time.Sleep(500 * time.Millisecond)
			before := load.p99(0)
			outageStart := load.mark()
			switch fault {
			case "killed":
				redis.Kill()
			case "paused":
				redis.Pause()
			}
			time.Sleep(500 * time.Millisecond)
			// A session learnt during the outage sticks on its replica.
			c := &http.Client{Timeout: 5 * time.Second}
			duringSrv, duringID, err := hit(c, gs[0].URL("http", "web")+"/", "")
			if err != nil || duringID == "" {
				t.Fatalf("during the outage: %v", err)
			}
			for range 3 {
				if got, _, err := hit(c, gs[0].URL("http", "web")+"/", duringID); err != nil || got != duringSrv {
					t.Fatalf("during the outage, a session of %s went to %q (%v)", duringSrv, got, err)
				}
			}
			time.Sleep(time.Second)
			outage := load.p99(outageStart)
			switch fault {
			case "killed":
				redis.Restart()
			case "paused":
				redis.Resume()
			}
			// The breaker's probe (every second, after go-redis's own dial
			// back-off) finds Redis back: wait for both replicas to say so.
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if strings.Contains(gs[0].Stderr(), `"message":"redis available again`) && strings.Contains(gs[1].Stderr(), `"message":"redis available again`) {
					break
				}
				if time.Now().After(deadline) {
					break // reported below
				}
			}
			close(stop)
			wg.Wait()
			if len(load.failures) > 0 {
				t.Fatalf("%d of %d requests failed; first: %s", len(load.failures), load.requests, load.failures[0])
			}
			t.Logf("%s: %d requests, p99 %s before, %s with the outage", fault, load.requests, before, outage)
			if outage > before+250*time.Millisecond {
				t.Errorf("p99 with Redis %s: %s (before: %s); bound: +250 ms", fault, outage, before)
			}
			for _, g := range gs {
				if !strings.Contains(g.Stderr(), `"message":"redis unavailable`) || !strings.Contains(g.Stderr(), `"message":"redis available again`) {
					t.Fatalf("no warning or no recovery in the log:\n%s", g.Stderr())
				}
			}
			// What was learnt during the outage was written back, and
			// sharing resumes: sessions learnt through one replica are
			// honoured by the other.
			if got, _, err := hit(c, gs[1].URL("http", "web")+"/", duringID); err != nil || got != duringSrv {
				t.Fatalf("the session learnt during the outage (%s) went to %q (%v) via the other replica", duringSrv, got, err)
			}
			srv, id, err := hit(c, gs[0].URL("http", "web")+"/", "")
			if err != nil || id == "" {
				t.Fatal(err)
			}
			for range 3 {
				if got, _, err := hit(c, gs[1].URL("http", "web")+"/", id); err != nil || got != srv {
					t.Fatalf("after Redis came back, a session of %s went to %q (%v) via the other replica", srv, got, err)
				}
			}
		})
	}
}

// haproxyBinary finds HAProxy, installing Debian's package when missing.
func haproxyBinary(t *testing.T) string {
	t.Helper()
	return debpkg.Need(t, "haproxy", "haproxy")
}

// frontBalancer runs HAProxy in front of the replicas, as the ELB: round
// robin, a TCP health check every 100 ms (out after 2 failures, back
// after 2 successes), a refused connect retried on another replica.
func frontBalancer(t *testing.T, gs []*Gateway) string {
	t.Helper()
	bin := haproxyBinary(t)
	addr := freeport.Addr(t)
	var servers strings.Builder
	for i, g := range gs {
		fmt.Fprintf(&servers, "  server g%d %s check inter 100ms fall 2 rise 2\n", i, g.Addrs["web"])
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(cfg, []byte(`global
  maxconn 1000
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  option redispatch
  retries 3
frontend elb
  bind `+addr+`
  default_backend replicas
backend replicas
  balance roundrobin
`+servers.String()), 0o600)
	cmd := exec.Command(bin, "-db", "-f", cfg)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s:\n%s", addr, out.String())
		}
	}
}

// A replica dies under steady sticky load behind the front balancer (the
// source documents' WAF failover test): once the balancer has taken it
// out, no request fails and every session stays on its server through the
// other replicas; brought back on its address, it rejoins and honours the
// sessions the others learnt.
func TestShared_ReplicaDiesBehindTheFrontBalancer(t *testing.T) {
	redis := StartRedis(t)
	a, b := appServers(t)
	gs := replicas(t, 3, redis, a, b, 1000)
	elb := "http://" + frontBalancer(t, gs)
	front := []*Gateway{{Addrs: map[string]string{"web": strings.TrimPrefix(elb, "http://")}}}
	load := &steadyLoad{}
	stop := make(chan struct{})
	wg := load.run(t, front, 6, stop, func(w, i int) int { return 0 })
	time.Sleep(700 * time.Millisecond)
	deadAddr := gs[1].Addrs["web"]
	gs[1].Kill()
	time.Sleep(time.Second) // the balancer's checks: 2 × 100 ms, with room
	load.mu.Lock()
	beforeOut := len(load.failures)
	load.failures = nil
	load.mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	load.mu.Lock()
	out := append([]string(nil), load.failures...)
	load.mu.Unlock()
	if len(out) > 0 {
		t.Fatalf("with the replica out: %d failed or moved requests; first: %s", len(out), out[0])
	}
	t.Logf("requests that failed while the balancer noticed the death: %d", beforeOut)
	back := StartGateway(t, replicaConfig, ConfigData{"A": a.Addr, "B": b.Addr, "Redis": redis.Addr, "Limit": 1000, "Bind": deadAddr, "Listeners": 1})
	time.Sleep(time.Second) // rise 2 × 100 ms, with room
	close(stop)
	wg.Wait()
	if len(load.failures) > 0 {
		t.Fatalf("after the replica came back: %d failed or moved requests; first: %s", len(load.failures), load.failures[0])
	}
	c := &http.Client{Timeout: 5 * time.Second}
	srv, id, err := hit(c, gs[0].URL("http", "web")+"/", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := hit(c, back.URL("http", "web")+"/", id); err != nil || got != srv {
		t.Fatalf("the revived replica sent a session of %s to %q (%v)", srv, got, err)
	}
	if n := len(back.AccessLog()); n < 3 {
		t.Fatalf("the revived replica served %d requests: the balancer did not take it back", n)
	}
}

// Sentinel failover under steady sticky load: the master is killed,
// Sentinel promotes its replica, the gateways follow with no failed
// request, and sharing works through the new master.
func TestShared_SentinelFailover(t *testing.T) {
	master := StartRedis(t)
	replica := StartRedis(t, "--replicaof", strings.Replace(master.Addr, ":", " ", 1))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out, _ := replica.CLI("INFO", "replication"); strings.Contains(out, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica did not sync with the master within 10s")
		}
	}
	sentinel := StartSentinel(t, master)
	a, b := appServers(t)
	cfg := strings.Replace(replicaConfig, `  addresses: ["{{.Redis}}"]`, `  addresses: ["{{.Redis}}"]
  master_name: mymaster`, 1)
	var gs []*Gateway
	for range 2 {
		gs = append(gs, StartGateway(t, cfg, ConfigData{"A": a.Addr, "B": b.Addr, "Redis": sentinel.Addr, "Limit": 1000}))
	}
	load := &steadyLoad{}
	stop := make(chan struct{})
	wg := load.run(t, gs, 6, stop, func(w, i int) int { return (w + i) % 2 })
	time.Sleep(700 * time.Millisecond)
	// Redis replicates asynchronously: a failover loses what the replica
	// has not received. Every session is made, and the replica has it,
	// before the master dies (on a loaded machine 700 ms may not be enough
	// for either).
	for deadline := time.Now().Add(10 * time.Second); load.established() < 6; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 6 sessions made within 10s", load.established())
		}
	}
	if out, err := master.CLI("WAIT", "1", "5000"); err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("the replica did not acknowledge the master's writes: %q %v", out, err)
	}
	master.Kill()
	_, rport, _ := net.SplitHostPort(replica.Addr)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if out, _ := sentinel.CLI("SENTINEL", "get-master-addr-by-name", "mymaster"); strings.Contains(out, rport) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sentinel did not promote the replica within 20s")
		}
	}
	// The gateways' breaker probes find the new master: a replica that
	// logged Redis gone must log it back.
	back := func() bool {
		for _, g := range gs {
			if strings.Contains(g.Stderr(), `"message":"redis unavailable`) && !strings.Contains(g.Stderr(), `"message":"redis available again`) {
				return false
			}
		}
		return true
	}
	time.Sleep(time.Second)
	for deadline := time.Now().Add(15 * time.Second); !back() && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	close(stop)
	wg.Wait()
	if len(load.failures) > 0 {
		t.Fatalf("%d of %d requests failed or moved across the failover; first: %s", len(load.failures), load.requests, load.failures[0])
	}
	c := &http.Client{Timeout: 5 * time.Second}
	srv, id, err := hit(c, gs[0].URL("http", "web")+"/", "")
	if err != nil || id == "" {
		t.Fatal(err)
	}
	if got, _, err := hit(c, gs[1].URL("http", "web")+"/", id); err != nil || got != srv {
		t.Fatalf("after the failover, a session of %s went to %q (%v) via the other replica", srv, got, err)
	}
	if out, _ := replica.CLI("KEYS", "sekisho:st:*"); !strings.Contains(out, "sekisho:st:") {
		t.Fatalf("the new master holds no table: %q", out)
	}
}
