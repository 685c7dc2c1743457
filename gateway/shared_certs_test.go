package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/e2e/debpkg"
	"github.com/sekisho/sekisho/gateway/config"
)

// sharedCertsRedis starts an empty, memory-only redis-server of the
// test's own on a free loopback port, installing Debian's package when it
// is missing, and returns its address; the server is killed when the test
// ends.
func sharedCertsRedis(t testing.TB) string {
	addr, _ := redisServer(t)
	return addr
}

// redisServer is sharedCertsRedis with the process, for a test that takes
// Redis down.
func redisServer(t testing.TB) (string, *exec.Cmd) {
	t.Helper()
	bin := debpkg.Need(t, "redis-server", "redis-server")
	port := freePort(t)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer PING within 10s", addr)
		}
	}
	return addr, cmd
}

// countingPebble runs Pebble as pebble does, validating on 127.0.0.1's
// httpPort and tlsPort, and counts the accounts and orders made at it.
func countingPebble(t *testing.T, httpPort, tlsPort int) (directory, httpsRoot string, roots *x509.CertPool, accounts, orders *atomic.Int32) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, loopbackDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)
	accounts, orders = new(atomic.Int32), new(atomic.Int32)
	h := front.Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			switch r.URL.Path {
			case "/sign-me-up":
				accounts.Add(1)
			case "/order-plz":
				orders.Add(1)
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	httpsRoot = filepath.Join(t.TempDir(), "pebble-https-root.pem")
	if err := os.WriteFile(httpsRoot, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL + wfe.DirectoryPath, httpsRoot, pebbleRoots(authority), accounts, orders
}

// replicaYAML is one replica's configuration: its own binds, the shared
// Redis, and tls (a flow mapping) for its frontend.
func replicaYAML(plainPort, tlsPort int, redisAddr, tlsBlock, backend string) string {
	return fmt.Sprintf(`
redis: {addresses: ["%s"], prefix: "t:"}
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d"}, {address: "127.0.0.1:%d", tls: true}]
    tls: %s
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, redisAddr, plainPort, tlsPort, tlsBlock, strings.TrimPrefix(backend, "http://"))
}

// startReplicas builds every replica and binds all their addresses
// before any runs: a replica's ACME order must not find another's port
// free and answer on it itself.
func startReplicas(t *testing.T, yamls []string, logs []*syncBuffer) {
	t.Helper()
	var gs []*Gateway
	for i, y := range yamls {
		c, err := config.Parse("test.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(c, Options{Log: zerolog.New(logs[i])})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Listen(); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	for _, g := range gs {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { g.Run(ctx); close(done) }()
		t.Cleanup(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("gateway did not stop")
			}
		})
	}
}

// leafAt handshakes with a replica's TLS port for name, trusting roots,
// until the handshake verifies (up to 20 s), and returns the leaf served.
func leafAt(t *testing.T, port int, roots *x509.CertPool, name string, logs *syncBuffer) []byte {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: roots, ServerName: name})
		if lastErr = err; err == nil {
			leaf := c.ConnectionState().PeerCertificates[0].Raw
			c.Close()
			return leaf
		}
	}
	t.Fatalf("no verifiable certificate for %s on port %d within 20s: %v\nlog:\n%s", name, port, lastErr, logs.String())
	return nil
}

// Two replicas sharing Redis start at once and both need shop.test: one
// account is made and one certificate ordered, and both serve that same
// certificate. The CA's TLS-ALPN-01 validation reaches replica B only,
// whichever replica ordered.
func TestSharedCerts_OneOrderForBothReplicas(t *testing.T) {
	redisAddr := sharedCertsRedis(t)
	backend, _ := app(t)
	plainA, tlsA, plainB, tlsB := freePort(t), freePort(t), freePort(t), freePort(t)
	directory, httpsRoot, roots, accounts, orders := countingPebble(t, freePort(t), tlsB)
	// Each replica has a storage folder of its own, as on machines of their own.
	acme := func() string {
		return fmt.Sprintf(`{acme: {directory: %s, ca_root_file: %s, email: ops@shop.test, domains: [shop.test], storage: %s, challenges: [tls-alpn-01], tls_port: %d}}`,
			directory, httpsRoot, t.TempDir(), tlsB)
	}
	logs := []*syncBuffer{{}, {}}
	startReplicas(t, []string{
		replicaYAML(plainA, tlsA, redisAddr, acme(), backend),
		replicaYAML(plainB, tlsB, redisAddr, acme(), backend),
	}, logs)

	leafA := leafAt(t, tlsA, roots, "shop.test", logs[0])
	leafB := leafAt(t, tlsB, roots, "shop.test", logs[1])
	if !bytes.Equal(leafA, leafB) {
		t.Error("the replicas serve different certificates")
	}
	if accounts.Load() != 1 || orders.Load() != 1 {
		t.Errorf("%d accounts and %d orders made at the CA, want 1 and 1\nA:\n%s\nB:\n%s", accounts.Load(), orders.Load(), logs[0], logs[1])
	}
	obtained := strings.Count(logs[0].String(), `"event":"cert_obtained"`) + strings.Count(logs[1].String(), `"event":"cert_obtained"`)
	if obtained != 1 {
		t.Errorf("%d cert_obtained events across the replicas, want 1", obtained)
	}
}

// Replica A starts the order while B is not yet running; the CA's HTTP-01
// request reaches B (as a load balancer may send it), which answers it
// with what A put in Redis, and then serves A's certificate without an
// order of its own.
//
// Both replicas share this process, and certmagic also keeps the
// challenges this process started in a process-wide table, so B could
// find the challenge there too: that B answers from Redis alone is shown
// across processes by certs' TestRedisACME_ChallengeAnsweredByAnotherProcess.
// Here the challenge is checked to be in Redis when the CA asks.
func TestSharedCerts_HTTPChallengeAnsweredByOtherReplica(t *testing.T) {
	redisAddr := sharedCertsRedis(t)
	backend, _ := app(t)
	plainA, tlsA, plainB, tlsB := freePort(t), freePort(t), freePort(t), freePort(t)

	// The CA's HTTP-01 port holds each connection until B is up, then
	// relays it to B's plain listener.
	caPort := freePort(t)
	gateLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", caPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gateLn.Close() })
	open := make(chan struct{})
	var relayed atomic.Int32
	var tokenInRedis atomic.Bool
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { rdb.Close() })
	go func() {
		for {
			c, err := gateLn.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				select {
				case <-open:
				case <-time.After(15 * time.Second):
					return
				}
				keys, _ := rdb.Keys(context.Background(), "t:acme:*challenge_tokens*").Result()
				if len(keys) > 0 {
					tokenInRedis.Store(true)
				}
				b, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", plainB), 2*time.Second)
				if err != nil {
					return
				}
				defer b.Close()
				relayed.Add(1)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				go func() {
					io.Copy(b, c)
					// B sees the end too: a connection that only checked
					// the port is open (certmagic does) would otherwise
					// stay open on B, delaying its shutdown.
					b.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, b)
			}()
		}
	}()

	directory, httpsRoot, roots, accounts, orders := countingPebble(t, caPort, freePort(t))
	acme := func() string {
		return fmt.Sprintf(`{acme: {directory: %s, ca_root_file: %s, email: ops@shop.test, domains: [shop.test], storage: %s, challenges: [http-01], http_port: %d}}`,
			directory, httpsRoot, t.TempDir(), caPort)
	}
	logA, logB := &syncBuffer{}, &syncBuffer{}
	startReplicas(t, []string{replicaYAML(plainA, tlsA, redisAddr, acme(), backend)}, []*syncBuffer{logA})
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(logA.String(), `"event":"cert_obtaining"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("replica A did not start ordering within 15s:\n%s", logA)
		}
	}
	startReplicas(t, []string{replicaYAML(plainB, tlsB, redisAddr, acme(), backend)}, []*syncBuffer{logB})
	close(open)

	leafA := leafAt(t, tlsA, roots, "shop.test", logA)
	leafB := leafAt(t, tlsB, roots, "shop.test", logB)
	if relayed.Load() == 0 {
		t.Fatal("the CA's HTTP-01 request never reached replica B")
	}
	if !tokenInRedis.Load() {
		t.Error("the pending challenge was not in Redis when the CA asked")
	}
	if !bytes.Equal(leafA, leafB) {
		t.Error("the replicas serve different certificates")
	}
	if accounts.Load() != 1 || orders.Load() != 1 || strings.Contains(logB.String(), `"event":"cert_obtaining"`) {
		t.Errorf("%d accounts and %d orders made, want 1 and 1, none by B\nB:\n%s", accounts.Load(), orders.Load(), logB)
	}
}

// A TLS session made with replica A resumes on replica B when they share
// Redis, over TLS 1.2 and 1.3; a replica without Redis does not resume it.
func TestSharedCerts_SessionResumesOnOtherReplica(t *testing.T) {
	redisAddr := sharedCertsRedis(t)
	backend, _ := app(t)
	cert, err := certs.SelfSigned([]string{"shop.test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	certFile, keyFile := filepath.Join(dir, "shop.crt"), filepath.Join(dir, "shop.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	files := fmt.Sprintf(`{certificates: [{cert_file: %s, key_file: %s}]}`, certFile, keyFile)
	tlsA, tlsB, tlsLone := freePort(t), freePort(t), freePort(t)
	lone := replicaYAML(freePort(t), tlsLone, redisAddr, files, backend)
	lone = lone[strings.Index(lone, "\nfrontends:"):] // no redis: block
	logs := []*syncBuffer{{}, {}, {}}
	startReplicas(t, []string{
		replicaYAML(freePort(t), tlsA, redisAddr, files, backend),
		replicaYAML(freePort(t), tlsB, redisAddr, files, backend),
		lone,
	}, logs)
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			tc := &tls.Config{RootCAs: roots, ServerName: "shop.test", MinVersion: v, MaxVersion: v, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			// A new connection each time; reading the answer reads the
			// TLS 1.3 tickets sent after the handshake.
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: tc}}
			resumed := func(port int) bool {
				t.Helper()
				resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				return resp.TLS.DidResume
			}
			if resumed(tlsA) {
				t.Fatal("the first connection resumed")
			}
			if !resumed(tlsB) {
				t.Error("replica B did not resume the session made with replica A")
			}
			if !resumed(tlsA) {
				t.Error("replica A did not resume the session made with replica B")
			}
			if resumed(tlsLone) {
				t.Error("a replica without Redis resumed the shared session")
			}
		})
	}
}
