package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// handshake serves one TLS handshake with server and returns the client's result.
func handshake(t *testing.T, server *tls.Config, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = tls.Server(c, server).Handshake()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func writePair(t *testing.T, dir, name string) CertFile {
	t.Helper()
	cert, err := SelfSigned([]string{name}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cf := CertFile{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	os.WriteFile(cf.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(cf.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	return cf
}

func TestNew_PicksCertificateBySNI(t *testing.T) {
	dir := t.TempDir()
	ts, err := New(Config{Certificates: []CertFile{writePair(t, dir, "a.example"), writePair(t, dir, "b.example")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tc := ts.Config
	for _, name := range []string{"a.example", "b.example"} {
		st, err := handshake(t, tc, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.PeerCertificates[0].DNSNames[0]; got != name {
			t.Errorf("SNI %s got certificate for %s", name, got)
		}
	}
}

// TestPolicy_Default: TLS 1.0 and 1.1 are refused (HAProxy's no-tlsv10
// no-tlsv11), 1.2 and 1.3 accepted, and a TLS 1.2 client that offers only
// CBC or RSA key exchange suites is refused.
func TestPolicy_Default(t *testing.T) {
	ts, err := New(Config{SelfSigned: []string{"localhost"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tc := ts.Config
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, err := handshake(t, tc, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("a %s client completed a handshake", tls.VersionName(v))
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		st, err := handshake(t, tc, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
		if err != nil || st.Version != v {
			t.Errorf("%s: version %x, err %v", tls.VersionName(v), st.Version, err)
		}
	}
	weak := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}
	if _, err := handshake(t, tc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: weak}); err == nil {
		t.Error("a TLS 1.2 client offering only CBC and RSA key exchange suites completed a handshake")
	}
}

// TestPolicy_Observe: in observe mode the old handshakes complete, and
// Below names what the policy would refuse.
func TestPolicy_Observe(t *testing.T) {
	ts, err := New(Config{SelfSigned: []string{"localhost"}, Observe: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tc := ts.Config
	for _, tt := range []struct {
		name   string
		client *tls.Config
		below  string
	}{
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, "version"},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, "version"},
		{"TLS 1.2 CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, "cipher"},
		{"TLS 1.2 GCM", &tls.Config{MaxVersion: tls.VersionTLS12}, ""},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, ""},
	} {
		tt.client.InsecureSkipVerify = true
		st, err := handshake(t, tc, tt.client)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := ts.Policy.Below(&st); got != tt.below {
			t.Errorf("%s (%s, %s): below %q, want %q", tt.name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), got, tt.below)
		}
	}
}

func TestPolicy_Settings(t *testing.T) {
	ts, err := New(Config{SelfSigned: []string{"localhost"}, MaxVersion: "1.2", Curves: []string{"X25519"},
		CipherSuites: []string{"ECDHE-ECDSA-CHACHA20-POLY1305"}, ALPN: []string{"http/1.1"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tc := ts.Config
	st, err := handshake(t, tc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("negotiated %s, %s, %q", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol)
	}
	if _, err := handshake(t, tc, &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.CurveP256}}); err == nil {
		t.Error("a client with only P-256 completed a handshake with an X25519-only policy")
	}
}

func TestConfig_Validate(t *testing.T) {
	c := Config{Certificates: []CertFile{{CertFile: "a.pem"}}, MinVersion: "1.0", MaxVersion: "1.1",
		CipherSuites: []string{"TLS_RSA_WITH_RC4_128_SHA", "TLS_AES_128_GCM_SHA256", "FANCY"},
		Curves:       []string{"P-192"}, ALPN: []string{"h3"}}
	err := c.Validate()
	for _, want := range []string{"certificates[0].key_file: is required", `min_version: "1.0" is not one of`,
		`max_version: "1.1" is not one of`, "cipher_suites[0]: TLS_RSA_WITH_RC4_128_SHA is insecure",
		"cipher_suites[1]: TLS_AES_128_GCM_SHA256 is a TLS 1.3 suite", `cipher_suites[2]: "FANCY" is not`,
		`curves[0]: "P-192" is not one of`, `alpn[0]: "h3" is not`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v lack %q", err, want)
		}
	}
}

// A certificate file that changes is served from the next handshake a
// second later, without a restart; a broken one leaves the old certificate
// in service and is reported.
func TestNew_ReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	cf := writePair(t, dir, "a.example")
	var mu sync.Mutex
	var reloads []error
	ts, err := New(Config{Certificates: []CertFile{cf}}, Options{OnReload: func(file string, err error) {
		mu.Lock()
		reloads = append(reloads, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	tc := ts.Config
	serial := func() string {
		st, err := handshake(t, tc, &tls.Config{ServerName: "a.example", InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].SerialNumber.String()
	}
	before := serial()

	writePair(t, dir, "a.example") // a new key and serial in the same files
	time.Sleep(checkEvery + 100*time.Millisecond)
	after := serial()
	if after == before {
		t.Fatal("the changed certificate was not served")
	}

	os.WriteFile(cf.CertFile, []byte("not a certificate"), 0o600)
	time.Sleep(checkEvery + 100*time.Millisecond)
	if got := serial(); got != after {
		t.Fatalf("a broken file replaced the certificate in service: %s, want %s", got, after)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reloads) < 2 || reloads[0] != nil || reloads[len(reloads)-1] == nil || !strings.Contains(reloads[len(reloads)-1].Error(), "still served") {
		t.Fatalf("reloads reported: %v", reloads)
	}
}

func TestACMEConfig_Validate(t *testing.T) {
	c := Config{ACME: &ACMEConfig{Directory: "http://ca.example/dir", Challenges: []string{"dns-01", "http-02"}, EAB: &EAB{KeyID: "k"}}}
	c.SetDefaults()
	err := c.Validate()
	for _, want := range []string{`acme.directory: "http://ca.example/dir" is not`, "acme.domains: at least one name",
		`acme.challenges[1]: "http-02" is not`, "acme.challenges: dns-01 is used alone", "acme.eab: key_id and mac_key_file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v lack %q", err, want)
		}
	}
	wild := Config{ACME: &ACMEConfig{Domains: []string{"*.example.com"}, DNS01: &DNS01Config{Provider: "route66"}}, SelfSigned: []string{"x"}}
	wild.ACME.Challenges = []string{"http-01"}
	err = wild.Validate()
	for _, want := range []string{"acme.domains[0]: the wildcard *.example.com needs the dns-01 challenge", "acme.dns01: is set, but challenges lacks dns-01", `acme.dns01.provider: "route66" is not`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v lack %q", err, want)
		}
	}
	ok := Config{ACME: &ACMEConfig{Email: "ops@example.com", Domains: []string{"shop.example.com"}}}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil || ok.ACME.Directory != "letsencrypt" || ok.ACME.Storage != DefaultACMEStorage || len(ok.ACME.Challenges) != 2 {
		t.Errorf("defaults %+v, err %v", ok.ACME, err)
	}
}
