package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"
)

// replicaEnv, set, makes the test binary an ACME replica (runACMEReplica)
// instead of running the tests: a process of its own, whose memory the
// test's replica cannot see.
const replicaEnv = "SEKISHO_TEST_ACME_REPLICA"

func TestMain(m *testing.M) {
	if spec := os.Getenv(replicaEnv); spec != "" {
		os.Exit(runACMEReplica(spec))
	}
	os.Exit(m.Run())
}

// replicaSpec is what the replica process is told.
type replicaSpec struct {
	Redis, Prefix string
	ACME          ACMEConfig
}

// runACMEReplica obtains the spec's certificate through Redis-shared
// storage and exits: 0 once obtained, 1 when it failed.
func runACMEReplica(spec string) int {
	var s replicaSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Println(err)
		return 1
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Redis})
	defer rdb.Close()
	events := make(chan string, 64)
	ts, err := New(Config{ACME: &s.ACME}, Options{Redis: rdb, RedisPrefix: s.Prefix, OnACMEEvent: func(event string, data map[string]any) {
		fmt.Println("replica event:", event, data["error"])
		select {
		case events <- event:
		default:
		}
	}})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.ACME.Start(ctx); err != nil {
		fmt.Println(err)
		return 1
	}
	defer ts.ACME.Stop()
	for {
		select {
		case ev := <-events:
			switch ev {
			case "cert_obtained":
				return 0
			case "cert_failed":
				return 1
			}
		case <-ctx.Done():
			fmt.Println("no certificate within 30s")
			return 1
		}
	}
}

// pebbleCA runs Let's Encrypt's test CA in this process, validating on
// 127.0.0.1's httpPort and tlsPort. It returns the directory URL, a file
// with the root of its HTTPS certificate, the roots of what it issues,
// and counts of the accounts and orders made.
func pebbleCA(t *testing.T, httpPort, tlsPort int) (directory, httpsRoot string, roots *x509.CertPool, accounts, orders *atomic.Int32) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	// Every name resolves to loopback, so the CA's validation reaches the test.
	resolver := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})
	// On one port over UDP and TCP: resolvers use either.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: resolver}, {Listener: ln, Handler: resolver}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}

	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, ln.Addr().String(), store)
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
	roots = x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	return srv.URL + wfe.DirectoryPath, httpsRoot, roots, accounts, orders
}

// A replica answers the CA's HTTP-01 and TLS-ALPN-01 challenges for an
// order another replica, in another process, started: the challenge is
// known to it only through Redis. Afterwards it serves the certificate
// the other replica obtained, read from Redis, without an order of its own.
func TestRedisACME_ChallengeAnsweredByAnotherProcess(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			r := startRedis(t)
			httpPort, tlsPort := freeLoopbackPort(t), freeLoopbackPort(t)
			directory, httpsRoot, roots, accounts, orders := pebbleCA(t, httpPort, tlsPort)
			acme := ACMEConfig{Directory: directory, CARootFile: httpsRoot, Email: "ops@shop.test", Domains: []string{"shop.test"},
				Storage: t.TempDir(), Challenges: []string{challenge}, HTTPPort: httpPort, TLSPort: tlsPort}

			// Replica B holds the ports the CA validates on.
			var mu sync.Mutex
			var bEvents []string
			b, err := New(Config{ACME: &acme}, Options{Redis: r.client(t), RedisPrefix: "t:", OnACMEEvent: func(event string, _ map[string]any) {
				mu.Lock()
				defer mu.Unlock()
				bEvents = append(bEvents, event)
			}})
			if err != nil {
				t.Fatal(err)
			}
			var answered atomic.Int32
			plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if b.ACME.HandleHTTPChallenge(w, req) {
					answered.Add(1)
					return
				}
				http.NotFound(w, req)
			})}
			pl, err := net.Listen("tcp", loopback(httpPort))
			if err != nil {
				t.Fatal(err)
			}
			go plain.Serve(pl)
			t.Cleanup(func() { plain.Close() })
			tc := b.Config.Clone()
			getCert := tc.GetCertificate
			tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				c, err := getCert(hello)
				if err == nil && slices.Contains(hello.SupportedProtos, acmeTLS1) {
					answered.Add(1)
				}
				return c, err
			}
			tl, err := tls.Listen("tcp", loopback(tlsPort), tc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tl.Close() })
			go func() {
				for {
					c, err := tl.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						c.SetDeadline(time.Now().Add(5 * time.Second))
						c.(*tls.Conn).Handshake()
					}()
				}
			}()

			// Replica A orders, in a process of its own.
			spec, _ := json.Marshal(replicaSpec{Redis: r.addr, Prefix: "t:", ACME: acme})
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), replicaEnv+"="+string(spec))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("replica A did not obtain the certificate: %v\n%s", err, out)
			}
			if answered.Load() == 0 {
				t.Fatalf("replica B answered no challenge; replica A's output:\n%s", out)
			}

			// B takes A's certificate from Redis.
			if err := b.ACME.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer b.ACME.Stop()
			var leaf *x509.Certificate
			for deadline := time.Now().Add(10 * time.Second); leaf == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", loopback(tlsPort), &tls.Config{RootCAs: roots, ServerName: "shop.test"})
				if err == nil {
					leaf = c.ConnectionState().PeerCertificates[0]
					c.Close()
				}
			}
			if leaf == nil {
				t.Fatal("replica B served no verifiable certificate for shop.test within 10s")
			}
			mu.Lock()
			defer mu.Unlock()
			if accounts.Load() != 1 || orders.Load() != 1 || slices.Contains(bEvents, "cert_obtaining") {
				t.Errorf("%d accounts and %d orders made, replica B's events %v; want 1 and 1, B ordering nothing", accounts.Load(), orders.Load(), bEvents)
			}
		})
	}
}
