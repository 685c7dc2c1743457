package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/e2e/debpkg"
)

// namedPath finds BIND's named, installing Debian's bind9 when it is missing.
func namedPath(t *testing.T) string {
	t.Helper()
	return debpkg.Need(t, "named", "bind9")
}

// bind9 runs a real BIND 9 on a loopback port, authoritative for zone with
// every name at 127.0.0.1, accepting RFC 2136 updates signed with the TSIG
// key "sekisho". It returns the server's address and the secret's file.
func bind9(t *testing.T, zone string) (addr, secretFile string) {
	t.Helper()
	named := namedPath(t)
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	secret := base64.StdEncoding.EncodeToString(key)
	secretFile = filepath.Join(dir, "tsig.secret")
	port := freePort(t)
	files := map[string]string{
		"tsig.secret": secret + "\n",
		"zone.db": fmt.Sprintf(`$TTL 60
@ IN SOA ns.%[1]s. admin.%[1]s. 1 60 60 600 60
@ IN NS ns.%[1]s.
ns IN A 127.0.0.1
@ IN A 127.0.0.1
* IN A 127.0.0.1
`, zone),
		"named.conf": fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
};
controls { };
key "sekisho" { algorithm hmac-sha256; secret "%[3]s"; };
zone "%[4]s" { type master; file "%[1]s/zone.db"; allow-update { key "sekisho"; }; };
`, dir, port, secret, zone),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(named, "-g", "-c", filepath.Join(dir, "named.conf"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(q, addr); err == nil && len(r.Answer) > 0 {
			return addr, secretFile
		}
		if time.Now().After(deadline) {
			t.Fatalf("named did not answer within 20s:\n%s", out.String())
		}
	}
}

// A wildcard certificate through DNS-01: the gateway writes the challenge's
// TXT record into a real BIND 9 with RFC 2136 updates signed by TSIG, and
// Pebble, resolving through that BIND, issues the certificate.
func TestACME_DNS01WildcardThroughRFC2136(t *testing.T) {
	dnsAddr, secretFile := bind9(t, "shop.test")
	backend, _ := app(t)
	tlsPort := freePort(t)
	directory, httpsRoot, authority := pebble(t, pebbleOptions{tlsPort: tlsPort, resolver: dnsAddr})
	yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d", tls: true}]
    tls:
      acme:
        directory: %s
        ca_root_file: %s
        email: ops@shop.test
        domains: ["*.shop.test"]
        storage: %s
        dns01:
          provider: rfc2136
          rfc2136: {server: "%s", key_name: sekisho, key_secret_file: %s}
          resolvers: ["%s"]          # finds the zone (SOA) there
          propagation_timeout: -1s   # the primary applies updates at once
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, tlsPort, directory, httpsRoot, t.TempDir(), dnsAddr, secretFile, dnsAddr, strings.TrimPrefix(backend, "http://"))
	var logs syncBuffer
	runGateway(t, yaml, zerolog.New(&logs))
	resp := awaitCertificate(t, tlsPort, pebbleRoots(authority), "www.shop.test", &logs)
	if got := resp.TLS.PeerCertificates[0].DNSNames; resp.StatusCode != 200 || len(got) != 1 || got[0] != "*.shop.test" {
		t.Fatalf("status %d, certificate for %v", resp.StatusCode, got)
	}
}
