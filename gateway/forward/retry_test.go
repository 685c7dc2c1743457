package forward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/balancer"
)

// server answers as behave says and counts its requests.
func server(t *testing.T, behave string, hits *atomic.Int32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		switch behave {
		case "close":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case "503":
			w.WriteHeader(503)
			io.WriteString(w, "busy")
		case "slow":
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "late")
		default:
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// What is retried on the second server: a failed connect always; an
// idempotent request for what retry_on names; a POST never once sent.
func TestBackend_RetryOn(t *testing.T) {
	for _, tc := range []struct {
		name       string
		first      string
		method     string
		retryOn    []string
		wantStatus int
		wantBody   string
		wantHits   [2]int32
	}{
		{"empty response, GET", "close", "GET", []string{"empty-response"}, 200, "ok", [2]int32{1, 1}},
		{"empty response, POST", "close", "POST", []string{"empty-response"}, 502, "", [2]int32{1, 0}},
		{"empty response, not configured", "close", "GET", nil, 502, "", [2]int32{1, 0}},
		{"503, GET", "503", "GET", []string{"503"}, 200, "ok", [2]int32{1, 1}},
		{"503, PUT", "503", "PUT", []string{"503"}, 200, "ok", [2]int32{1, 1}},
		{"503, POST", "503", "POST", []string{"503"}, 503, "busy", [2]int32{1, 0}},
		{"503, not configured", "503", "GET", []string{"502"}, 503, "busy", [2]int32{1, 0}},
		{"response timeout, GET", "slow", "GET", []string{"response-timeout"}, 200, "ok", [2]int32{1, 1}},
		{"response timeout, not configured", "slow", "GET", []string{"empty-response"}, 504, "", [2]int32{1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits [2]atomic.Int32
			c := balancer.Config{Name: "app", Servers: []balancer.ServerConfig{
				{Address: server(t, tc.first, &hits[0])}, {Address: server(t, "ok", &hits[1])},
			}}
			pool, err := balancer.New(c)
			if err != nil {
				t.Fatal(err)
			}
			on, err := ParseRetryOn(tc.retryOn)
			if err != nil {
				t.Fatal(err)
			}
			b := New(pool, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: 100 * time.Millisecond, MaxIdleConnsPerServer: 4, Retries: 3, RetryOn: on})
			t.Cleanup(b.Close)
			r := httptest.NewRequest(tc.method, "http://shop.example.com/item", strings.NewReader("qty=1"))
			w := httptest.NewRecorder()
			b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), &Exchange{})))
			if w.Code != tc.wantStatus || tc.wantBody != "" && w.Body.String() != tc.wantBody {
				t.Errorf("status %d %q, want %d %q", w.Code, w.Body.String(), tc.wantStatus, tc.wantBody)
			}
			if got := [2]int32{hits[0].Load(), hits[1].Load()}; got != tc.wantHits {
				t.Errorf("server hits %v, want %v", got, tc.wantHits)
			}
		})
	}
}

// When every server answers with a status retry_on names, the client gets
// the last answer, not an error of the gateway's.
func TestBackend_RetryOnStatusKeepsTheLastAnswer(t *testing.T) {
	var hits atomic.Int32
	pool, _ := balancer.New(balancer.Config{Name: "app", Servers: []balancer.ServerConfig{
		{Address: server(t, "503", &hits)}, {Address: server(t, "503", &hits)},
	}})
	b := New(pool, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: time.Second, MaxIdleConnsPerServer: 4, Retries: 3, RetryOn: RetryOn{Status: map[int]bool{503: true}}})
	t.Cleanup(b.Close)
	x := &Exchange{}
	r := httptest.NewRequest("GET", "http://shop.example.com/", nil)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
	if w.Code != 503 || w.Body.String() != "busy" || hits.Load() != 2 || x.Attempts != 2 {
		t.Fatalf("status %d %q after %d hits, %d attempts; want the second server's 503 after 2", w.Code, w.Body.String(), hits.Load(), x.Attempts)
	}
}

// Retries are bounded: with retries 1, a request tries two servers at most.
func TestBackend_RetriesAreBounded(t *testing.T) {
	var hits atomic.Int32
	c := balancer.Config{Name: "app"}
	for range 3 {
		c.Servers = append(c.Servers, balancer.ServerConfig{Address: deadAddr(t)})
	}
	c.Servers = append(c.Servers, balancer.ServerConfig{Address: server(t, "ok", &hits)})
	pool, _ := balancer.New(c)
	b := New(pool, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: time.Second, MaxIdleConnsPerServer: 4, Retries: 1})
	t.Cleanup(b.Close)
	x := &Exchange{}
	r := httptest.NewRequest("GET", "http://shop.example.com/", nil)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
	if w.Code != http.StatusBadGateway || x.Attempts != 2 || hits.Load() != 0 {
		t.Fatalf("status %d after %d attempts (live server hit %d); want 502 after 2", w.Code, x.Attempts, hits.Load())
	}
}

// Passive checks see what forwarding meets: a server that refuses
// connections rests after the threshold, and requests stop trying it.
func TestBackend_PassiveCheckRestsARefusingServer(t *testing.T) {
	var hits atomic.Int32
	dead := deadAddr(t)
	pool, _ := balancer.New(balancer.Config{Name: "app",
		PassiveCheck: &balancer.PassiveConfig{Failures: 2, CoolDown: time.Minute},
		Servers:      []balancer.ServerConfig{{Address: dead}, {Address: server(t, "ok", &hits)}}})
	b := New(pool, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: time.Second, MaxIdleConnsPerServer: 4, Retries: 3})
	t.Cleanup(b.Close)
	attempts := 0
	for range 10 {
		x := &Exchange{}
		r := httptest.NewRequest("GET", "http://shop.example.com/", nil)
		w := httptest.NewRecorder()
		b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		attempts += x.Attempts
	}
	// Requests 1 and 2 (round robin) met the dead server; then it rests.
	if attempts != 12 || !pool.Servers()[0].Down() {
		t.Fatalf("%d attempts for 10 requests, dead server down: %v; want 12 and true", attempts, pool.Servers()[0].Down())
	}
}

// With every server at its maxconn, requests wait in the queue and are
// served in turn; past the queue timeout they get 503.
func TestBackend_MaxConnQueues(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	defer letGo() // before the cleanups, which wait for the held requests
	var inflight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		inflight.Add(-1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	pool, _ := balancer.New(balancer.Config{Name: "app", QueueTimeout: 2 * time.Second,
		Servers: []balancer.ServerConfig{{Address: strings.TrimPrefix(srv.URL, "http://"), MaxConn: 2}}})
	b := New(pool, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second, MaxIdleConnsPerServer: 4, Retries: 3})
	t.Cleanup(b.Close)
	addr := frontend(t, b)
	codes := make(chan int, 5)
	for range 5 {
		go func() {
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for deadline := time.Now().Add(2 * time.Second); (pool.QueueLen() != 3 || inflight.Load() != 2) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if pool.QueueLen() != 3 || inflight.Load() != 2 {
		t.Fatalf("queue %d, in flight at the server %d; want 3 and 2", pool.QueueLen(), inflight.Load())
	}
	letGo()
	for range 5 {
		if c := <-codes; c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if peak.Load() != 2 {
		t.Fatalf("the server saw %d at once, maxconn 2", peak.Load())
	}

	hold := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hold }))
	t.Cleanup(slow.Close)
	defer close(hold) // before the cleanups, which wait for the held request
	pool2, _ := balancer.New(balancer.Config{Name: "app", QueueTimeout: 100 * time.Millisecond,
		Servers: []balancer.ServerConfig{{Address: strings.TrimPrefix(slow.URL, "http://"), MaxConn: 1}}})
	b2 := New(pool2, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second, MaxIdleConnsPerServer: 4})
	t.Cleanup(b2.Close)
	addr2 := frontend(t, b2)
	go http.Get("http://" + addr2 + "/")
	for deadline := time.Now().Add(2 * time.Second); pool2.Servers()[0].Inflight() != 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	resp, err := http.Get("http://" + addr2 + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("queued past its timeout: status %d after %s, want 503 after 100ms", resp.StatusCode, time.Since(start))
	}
}
