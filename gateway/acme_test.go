package gateway

import (
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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// loopbackDNS answers every A query with 127.0.0.1, as Pebble's challenge
// test server does, so the CA's validation of any name reaches the gateway.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	answer := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})
	return serveDNS(t, answer)
}

// serveDNS serves h on one loopback port over UDP and TCP: resolvers use either.
func serveDNS(t *testing.T, h dns.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return ln.Addr().String()
}

// pebble runs Let's Encrypt's test ACME server in this process. Its
// validation authority connects to the given ports on 127.0.0.1. It returns
// the directory URL, a file with the root of the directory's HTTPS
// certificate, and the CA whose root signs what it issues.
func pebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) (directory, httpsRoot string, authority *ca.CAImpl) {
	t.Helper()
	return pebbleWithResolver(t, httpPort, tlsPort, validity, loopbackDNS(t))
}

// pebbleWithResolver is pebble with the validation authority resolving
// names through the DNS server at resolver.
func pebbleWithResolver(t *testing.T, httpPort, tlsPort int, validity time.Duration, resolver string) (directory, httpsRoot string, authority *ca.CAImpl) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once, not after up to 15 s
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately bad nonces
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority = ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default", ValidityPeriod: uint64(validity / time.Second)}})
	validator := va.New(logger, httpPort, tlsPort, false, resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	httpsRoot = filepath.Join(t.TempDir(), "pebble-https-root.pem")
	if err := os.WriteFile(httpsRoot, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL + wfe.DirectoryPath, httpsRoot, authority
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The gateway gets a certificate from a real ACME server (Pebble) through
// HTTP-01 and through TLS-ALPN-01, answering the challenges on its own
// listeners, and then serves it: a client that trusts Pebble's root
// verifies it for the requested name.
func TestACME_ObtainsCertificates(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			backend, _ := app(t)
			httpPort, tlsPort := freePort(t), freePort(t)
			directory, httpsRoot, authority := pebble(t, httpPort, tlsPort, 0)
			yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d"}, {address: "127.0.0.1:%d", tls: true}]
    tls:
      acme:
        directory: %s
        ca_root_file: %s
        email: ops@shop.test
        domains: [shop.test]
        storage: %s
        challenges: [%s]
        http_port: %d
        tls_port: %d
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, httpPort, tlsPort, directory, httpsRoot, t.TempDir(), challenge, httpPort, tlsPort, strings.TrimPrefix(backend, "http://"))
			var logs syncBuffer
			runGateway(t, yaml, zerolog.New(&logs))

			roots := x509.NewCertPool()
			roots.AddCert(authority.GetRootCert(0).Cert)
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "shop.test"},
			}}
			url := fmt.Sprintf("https://127.0.0.1:%d/", tlsPort)
			var lastErr error
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				resp, err := client.Get(url)
				if lastErr = err; err != nil {
					continue
				}
				resp.Body.Close()
				chain := resp.TLS.PeerCertificates
				if resp.StatusCode != 200 || chain[0].DNSNames[0] != "shop.test" {
					t.Fatalf("status %d, certificate for %v", resp.StatusCode, chain[0].DNSNames)
				}
				if !strings.Contains(logs.String(), `"event":"cert_obtained"`) {
					t.Errorf("no cert_obtained event logged:\n%s", logs.String())
				}
				return
			}
			t.Fatalf("no verifiable certificate for shop.test within 60s: %v\nlog:\n%s", lastErr, logs.String())
		})
	}
}

// A short-lived certificate is renewed in the background: requests made
// all along succeed, and the certificate served changes without a restart.
func TestACME_RenewsWithoutFailedRequests(t *testing.T) {
	backend, _ := app(t)
	httpPort, tlsPort := freePort(t), freePort(t)
	directory, httpsRoot, authority := pebble(t, httpPort, tlsPort, 30*time.Second)
	yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d"}, {address: "127.0.0.1:%d", tls: true}]
    tls:
      acme: {directory: %s, ca_root_file: %s, domains: [shop.test], storage: %s, http_port: %d, tls_port: %d, renew_interval: 1s}
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, httpPort, tlsPort, directory, httpsRoot, t.TempDir(), httpPort, tlsPort, strings.TrimPrefix(backend, "http://"))
	var logs syncBuffer
	runGateway(t, yaml, zerolog.New(&logs))
	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	url := fmt.Sprintf("https://127.0.0.1:%d/", tlsPort)
	serial := func() (string, error) {
		// A new connection each time: the handshake shows the certificate in service.
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "shop.test"}}}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	var first string
	for deadline := time.Now().Add(30 * time.Second); first == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate within 30s:\n%s", logs.String())
		}
		first, _ = serial()
	}
	requests := 0
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the 30 s certificate was not renewed within 45 s (%d requests):\n%s", requests, logs.String())
		}
		s, err := serial()
		requests++
		if err != nil {
			t.Fatalf("request %d failed during renewal: %v", requests, err)
		}
		if s != first {
			t.Logf("renewed after %d requests, none failed", requests)
			return
		}
	}
}
