package gateway

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ocsp"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/e2e/freeport"
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

// pebbleOptions shape an in-process Pebble.
type pebbleOptions struct {
	httpPort, tlsPort int           // where its validation authority connects, on 127.0.0.1
	validity          time.Duration // of the certificates it issues; 0: Pebble's default
	resolver          string        // DNS server for validation; "": loopbackDNS
	eab               map[string]string
	ocsp              string // OCSP responder URL put in the certificates (RSA keys then, to sign its answers)
}

// pebble runs Let's Encrypt's test ACME server in this process. It returns
// the directory URL, a file with the root of the directory's HTTPS
// certificate, and the CA whose root signs what it issues.
func pebble(t *testing.T, o pebbleOptions) (directory, httpsRoot string, authority *ca.CAImpl) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once, not after up to 15 s
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately bad nonces
	if o.resolver == "" {
		o.resolver = loopbackDNS(t)
	}
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	for id, key := range o.eab {
		if err := store.AddExternalAccountKeyByID(id, key); err != nil {
			t.Fatal(err)
		}
	}
	keyAlg := "ecdsa"
	if o.ocsp != "" {
		keyAlg = "rsa" // Pebble hands out its intermediate's key as RSA only
	}
	authority = ca.New(logger, store, o.ocsp, keyAlg, 0, 1, map[string]ca.Profile{"default": {Description: "default", ValidityPeriod: uint64(o.validity / time.Second)}})
	validator := va.New(logger, o.httpPort, o.tlsPort, false, o.resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, len(o.eab) > 0, 1, 1)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	httpsRoot = filepath.Join(t.TempDir(), "pebble-https-root.pem")
	if err := os.WriteFile(httpsRoot, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL + wfe.DirectoryPath, httpsRoot, authority
}

// awaitCertificate asks the gateway's TLS port for name, trusting only
// roots, until the handshake verifies (up to 60 s), and returns the response.
func awaitCertificate(t *testing.T, tlsPort int, roots *x509.CertPool, name string, logs *syncBuffer) *http.Response {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}}
	var lastErr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", tlsPort))
		if lastErr = err; err == nil {
			resp.Body.Close()
			return resp
		}
	}
	t.Fatalf("no verifiable certificate for %s within 60s: %v\nlog:\n%s", name, lastErr, logs.String())
	return nil
}

// pebbleRoots trusts only what authority issues.
func pebbleRoots(authority *ca.CAImpl) *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	return roots
}

// freePort returns a loopback port for a listener the test configures by
// number.
func freePort(t testing.TB) int { return freeport.Port(t) }

// The gateway gets a certificate from a real ACME server (Pebble) through
// HTTP-01 and through TLS-ALPN-01, answering the challenges on its own
// listeners, and then serves it: a client that trusts Pebble's root
// verifies it for the requested name.
func TestACME_ObtainsCertificates(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			backend, _ := app(t)
			httpPort, tlsPort := freePort(t), freePort(t)
			directory, httpsRoot, authority := pebble(t, pebbleOptions{httpPort: httpPort, tlsPort: tlsPort})
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
			g, _, _, _ := runGateway(t, yaml, zerolog.New(&logs))

			resp := awaitCertificate(t, tlsPort, pebbleRoots(authority), "shop.test", &logs)
			if chain := resp.TLS.PeerCertificates; resp.StatusCode != 200 || chain[0].DNSNames[0] != "shop.test" {
				t.Fatalf("status %d, certificate for %v", resp.StatusCode, chain[0].DNSNames)
			}
			if !strings.Contains(logs.String(), `"event":"cert_obtained"`) {
				t.Errorf("no cert_obtained event logged:\n%s", logs.String())
			}
			// A name the frontend has no certificate for is refused and counted
			// (as were the handshakes before the certificate came).
			before := g.TLSReport("web").Failed["sni"]
			other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "other.test"}}}
			if _, err := other.Get(fmt.Sprintf("https://127.0.0.1:%d/", tlsPort)); err == nil {
				t.Error("a handshake for an unknown name succeeded")
			}
			eventually(t, "the unknown name counted", func() bool { return g.TLSReport("web").Failed["sni"] == before+1 })
		})
	}
}

// A short-lived certificate is renewed in the background: requests made
// all along succeed, and the certificate served changes without a restart.
func TestACME_RenewsWithoutFailedRequests(t *testing.T) {
	backend, _ := app(t)
	httpPort, tlsPort := freePort(t), freePort(t)
	directory, httpsRoot, authority := pebble(t, pebbleOptions{httpPort: httpPort, tlsPort: tlsPort, validity: 30 * time.Second})
	yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d"}, {address: "127.0.0.1:%d", tls: true}]
    tls:
      acme: {directory: %s, ca_root_file: %s, email: ops@shop.test, domains: [shop.test], storage: %s, http_port: %d, tls_port: %d, renew_interval: 1s}
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, httpPort, tlsPort, directory, httpsRoot, t.TempDir(), httpPort, tlsPort, strings.TrimPrefix(backend, "http://"))
	var logs syncBuffer
	runGateway(t, yaml, zerolog.New(&logs))
	roots := pebbleRoots(authority)
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
	for deadline := time.Now().Add(60 * time.Second); first == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate within 60s:\n%s", logs.String())
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

// A CA that requires an external account binding issues to the gateway
// configured with one, and a frontend mixes ACME with certificate files:
// each name gets its own certificate.
func TestACME_EABAndCertificateFiles(t *testing.T) {
	backend, _ := app(t)
	httpPort, tlsPort := freePort(t), freePort(t)
	mac := make([]byte, 32)
	rand.Read(mac)
	macKey := base64.RawURLEncoding.EncodeToString(mac)
	directory, httpsRoot, authority := pebble(t, pebbleOptions{httpPort: httpPort, tlsPort: tlsPort, eab: map[string]string{"kid-1": macKey}})
	dir := t.TempDir()
	macFile := filepath.Join(dir, "eab.key")
	os.WriteFile(macFile, []byte(macKey+"\n"), 0o600)
	fileCert, err := certs.SelfSigned([]string{"files.test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := x509.MarshalPKCS8PrivateKey(fileCert.PrivateKey)
	certFile, keyFile := filepath.Join(dir, "files.crt"), filepath.Join(dir, "files.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fileCert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d"}, {address: "127.0.0.1:%d", tls: true}]
    tls:
      certificates: [{cert_file: %s, key_file: %s}]
      acme:
        directory: %s
        ca_root_file: %s
        email: ops@shop.test
        domains: [shop.test]
        storage: %s
        challenges: [http-01]
        eab: {key_id: kid-1, mac_key_file: %s}
        http_port: %d
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, httpPort, tlsPort, certFile, keyFile, directory, httpsRoot, t.TempDir(), macFile, httpPort, strings.TrimPrefix(backend, "http://"))
	var logs syncBuffer
	runGateway(t, yaml, zerolog.New(&logs))
	roots := pebbleRoots(authority)
	roots.AddCert(fileCert.Leaf)
	get := func(name string) (*x509.Certificate, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}}
		resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/", tlsPort))
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0], nil
	}
	if c, err := get("files.test"); err != nil || !c.Equal(fileCert.Leaf) {
		t.Fatalf("files.test: %v, %v", err, c)
	}
	if c := awaitCertificate(t, tlsPort, roots, "shop.test", &logs).TLS.PeerCertificates[0]; c.DNSNames[0] != "shop.test" || c.Equal(fileCert.Leaf) {
		t.Fatalf("shop.test got %v", c.DNSNames)
	}
}

// OCSP stapling is on: the gateway fetches the OCSP response for its ACME
// certificate from the responder the certificate names and staples it.
func TestACME_StaplesOCSP(t *testing.T) {
	var authority *ca.CAImpl
	var queries atomic.Int32
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/"))
			if req, err = ocsp.ParseRequest(raw); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		queries.Add(1)
		issuer := authority.GetIntermediateCert(0).Cert
		now := time.Now()
		resp, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, authority.GetIntermediateKey(0))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))
	defer responder.Close()
	backend, _ := app(t)
	httpPort, tlsPort := freePort(t), freePort(t)
	var directory, httpsRoot string
	directory, httpsRoot, authority = pebble(t, pebbleOptions{httpPort: httpPort, tlsPort: tlsPort, ocsp: responder.URL})
	yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d"}, {address: "127.0.0.1:%d", tls: true}]
    tls:
      acme: {directory: %s, ca_root_file: %s, email: ops@shop.test, domains: [shop.test], storage: %s, http_port: %d, tls_port: %d}
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, httpPort, tlsPort, directory, httpsRoot, t.TempDir(), httpPort, tlsPort, strings.TrimPrefix(backend, "http://"))
	var logs syncBuffer
	runGateway(t, yaml, zerolog.New(&logs))
	resp := awaitCertificate(t, tlsPort, pebbleRoots(authority), "shop.test", &logs)
	staple := resp.TLS.OCSPResponse
	if len(staple) == 0 {
		t.Fatalf("no OCSP response stapled (%d responder queries)", queries.Load())
	}
	parsed, err := ocsp.ParseResponseForCert(staple, resp.TLS.PeerCertificates[0], authority.GetIntermediateCert(0).Cert)
	if err != nil || parsed.Status != ocsp.Good {
		t.Fatalf("stapled response: %v %+v", err, parsed)
	}
}
