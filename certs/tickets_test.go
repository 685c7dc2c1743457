package certs

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock replaces the clock that ticket epochs are counted by.
type fakeClock struct{ ns atomic.Int64 }

func useFakeClock(t *testing.T, start time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(start.UnixNano())
	old := ticketClock
	ticketClock = c.now
	t.Cleanup(func() { ticketClock = old })
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// ticketCache is a client's session cache whose ticket the test can pick.
type ticketCache struct {
	mu   sync.Mutex
	last *tls.ClientSessionState
	pin  *tls.ClientSessionState // offered instead of last when set
}

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pin != nil {
		return c.pin, true
	}
	return c.last, c.last != nil
}

func (c *ticketCache) Put(_ string, s *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != nil {
		c.last = s
	}
}

func (c *ticketCache) latest() *tls.ClientSessionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *ticketCache) offer(s *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pin = s
}

// replica serves config on a loopback port: each connection gets a
// handshake and one line, so the client also reads the TLS 1.3 tickets
// sent after the handshake.
func replica(t *testing.T, config *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte("ok\n"))
			}()
		}
	}()
	return ln.Addr().String()
}

// connect makes one TLS connection to addr and tells whether it resumed.
func connect(t *testing.T, addr string, client *tls.Config) bool {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, client)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ok\n" {
		t.Fatalf("reading from %s: %q, %v", addr, line, err)
	}
	return c.ConnectionState().DidResume
}

// sharedPair writes one certificate both replicas serve, and returns it
// with a pool that trusts it.
func sharedPair(t *testing.T) (CertFile, *x509.CertPool) {
	t.Helper()
	cf := writePair(t, t.TempDir(), "shop.test")
	pem, err := os.ReadFile(cf.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return cf, roots
}

func clientFor(roots *x509.CertPool, version uint16, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{RootCAs: roots, ServerName: "shop.test", MinVersion: version, MaxVersion: version, ClientSessionCache: cache}
}

var versionNames = map[uint16]string{tls.VersionTLS12: "TLS1.2", tls.VersionTLS13: "TLS1.3"}

// A session made on one replica resumes on another that shares its Redis,
// over TLS 1.2 and 1.3; replicas that share nothing, or frontends of
// different names, do not resume each other's sessions.
func TestSessionTickets_SharedAcrossReplicas(t *testing.T) {
	r := startRedis(t)
	cf, roots := sharedPair(t)
	newReplica := func(o Options) string {
		t.Helper()
		ts, err := New(Config{Certificates: []CertFile{cf}}, o)
		if err != nil {
			t.Fatal(err)
		}
		return replica(t, ts.Config)
	}
	shared := Options{Redis: r.client(t), RedisPrefix: "t:", Name: "web", OnTicketKeys: func(err error) { t.Errorf("OnTicketKeys(%v)", err) }}
	a, b := newReplica(shared), newReplica(shared)
	otherFrontend := newReplica(Options{Redis: r.client(t), RedisPrefix: "t:", Name: "api"})
	lone1, lone2 := newReplica(Options{}), newReplica(Options{})

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(versionNames[v], func(t *testing.T) {
			cache := &ticketCache{}
			client := clientFor(roots, v, cache)
			if connect(t, a, client) {
				t.Fatal("the first connection resumed")
			}
			if !connect(t, b, client) {
				t.Error("replica B did not resume replica A's session")
			}
			if !connect(t, a, client) {
				t.Error("replica A did not resume replica B's session")
			}
			if connect(t, otherFrontend, client) {
				t.Error("another frontend resumed the session")
			}

			// Control: without Redis, each replica has keys of its own.
			cache = &ticketCache{}
			client = clientFor(roots, v, cache)
			connect(t, lone1, client)
			if !connect(t, lone1, client) {
				t.Fatal("a replica did not resume its own session")
			}
			if connect(t, lone2, client) {
				t.Error("replicas that share nothing resumed each other's session")
			}
		})
	}
}

// Keys rotate per epoch: a ticket from an earlier epoch still resumes,
// on either replica, for Keep epochs, and no longer after; tickets made
// after a rotation are shared again.
func TestSessionTickets_RotationKeepsOldKeys(t *testing.T) {
	r := startRedis(t)
	clock := useFakeClock(t, time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC))
	cf, roots := sharedPair(t)
	conf := Config{Certificates: []CertFile{cf}, SessionTickets: &SessionTickets{Rotate: time.Hour, Keep: 2}}
	var addrs []string
	for range 2 {
		ts, err := New(conf, Options{Redis: r.client(t), RedisPrefix: "t:", Name: "web"})
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, replica(t, ts.Config))
	}
	a, b := addrs[0], addrs[1]
	cache := &ticketCache{}
	client := clientFor(roots, tls.VersionTLS13, cache)
	connect(t, a, client)
	old := cache.latest()

	clock.advance(time.Hour) // the next epoch: a new key encrypts
	cache.offer(old)
	if !connect(t, b, client) {
		t.Fatal("after one rotation, replica B did not resume a ticket of the epoch before")
	}
	cache.offer(nil)
	connect(t, b, client)
	cache.offer(cache.latest())
	if !connect(t, a, client) {
		t.Error("after one rotation, replica A did not resume replica B's new ticket")
	}

	clock.advance(2 * time.Hour) // 3 epochs on: the old key is past Keep
	cache.offer(old)
	for _, addr := range []string{a, b} {
		if connect(t, addr, client) {
			t.Errorf("a ticket %d epochs old (keep 2) resumed on %s", 3, addr)
		}
	}
	// The first handshakes of the new epoch fetched its key in the
	// background; the replicas agree on it once they have.
	cache.offer(nil)
	agreed := false
	for deadline := time.Now().Add(5 * time.Second); !agreed && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		connect(t, a, client)
		cache.offer(cache.latest())
		agreed = connect(t, b, client)
		cache.offer(nil)
	}
	if !agreed {
		t.Error("after the rotation, replica B never resumed replica A's tickets")
	}
}

// With Redis down a replica starts with keys of its own, reports it and resumes its own sessions; once Redis is back,
// its keys become the shared ones, so even the tickets it made during
// the outage resume on other replicas.
func TestSessionTickets_RedisDownKeepsOwnKeys(t *testing.T) {
	clock := useFakeClock(t, time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC))
	cf, roots := sharedPair(t)
	addr := loopback(freeLoopbackPort(t))
	var mu sync.Mutex
	var reports []error
	report := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, err)
	}
	ts, err := New(Config{Certificates: []CertFile{cf}}, Options{Redis: redisClient(t, addr), RedisPrefix: "t:", Name: "web", OnTicketKeys: report})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(reports) != 1 || reports[0] == nil || !strings.Contains(reports[0].Error(), "Redis") {
		t.Fatalf("reports with Redis down: %v", reports)
	}
	mu.Unlock()
	a := replica(t, ts.Config)
	cache := &ticketCache{}
	client := clientFor(roots, tls.VersionTLS13, cache)
	connect(t, a, client)
	outage := cache.latest()
	if !connect(t, a, client) {
		t.Fatal("with Redis down, the replica did not resume its own session")
	}

	startRedisAt(t, addr)
	clock.advance(31 * time.Second) // past the retry delay
	recovered := false
	for deadline := time.Now().Add(5 * time.Second); !recovered && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		connect(t, a, client) // handshakes start the refresh
		mu.Lock()
		recovered = reports[len(reports)-1] == nil
		mu.Unlock()
	}
	mu.Lock()
	if !recovered || len(reports) != 2 {
		t.Fatalf("reports = %v, want the outage and the recovery once each", reports)
	}
	mu.Unlock()
	tb, err := New(Config{Certificates: []CertFile{cf}}, Options{Redis: redisClient(t, addr), RedisPrefix: "t:", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	b := replica(t, tb.Config)
	cache.offer(outage)
	if !connect(t, b, client) {
		t.Error("a ticket made during the outage did not resume on another replica once Redis was back")
	}
}

// Session-ticket settings are validated as "key: message".
func TestSessionTickets_Validate(t *testing.T) {
	cf, _ := sharedPair(t)
	for _, tc := range []struct {
		st   SessionTickets
		want string
	}{
		{SessionTickets{Rotate: time.Second}, "session_tickets.rotate: 1s is not between 1m and 24h"},
		{SessionTickets{Rotate: 48 * time.Hour}, "session_tickets.rotate: 48h0m0s is not between 1m and 24h"},
		{SessionTickets{Rotate: 90*time.Second + time.Millisecond}, "session_tickets.rotate: 1m30.001s is not a whole number of seconds"},
		{SessionTickets{Keep: -1}, "session_tickets.keep: -1 is not between 1 and 1000"},
		{SessionTickets{Keep: 1001}, "session_tickets.keep: 1001 is not between 1 and 1000"},
	} {
		st := tc.st
		_, err := New(Config{Certificates: []CertFile{cf}, SessionTickets: &st}, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.st, err, tc.want)
		}
	}
	if _, err := New(Config{Certificates: []CertFile{cf}, SessionTickets: &SessionTickets{}}, Options{}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
