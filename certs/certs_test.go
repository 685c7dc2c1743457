package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
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
	tc, err := New(Config{Certificates: []CertFile{writePair(t, dir, "a.example"), writePair(t, dir, "b.example")}})
	if err != nil {
		t.Fatal(err)
	}
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

func TestNew_RefusesTLS11ByDefault(t *testing.T) {
	tc, err := New(Config{SelfSigned: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, tc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 client completed a handshake")
	}
	st, err := handshake(t, tc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS12 {
		t.Fatalf("version = %x", st.Version)
	}
}

func TestConfig_Validate(t *testing.T) {
	c := Config{Certificates: []CertFile{{CertFile: "a.pem"}}, MinVersion: "1.0"}
	err := c.Validate()
	for _, want := range []string{"certificates[0].key_file: is required", `min_version: "1.0" is not one of`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v lack %q", err, want)
		}
	}
}
