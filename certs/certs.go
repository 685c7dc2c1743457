// Package certs makes the tls.Config a frontend serves with: certificates
// from PEM files (picked by SNI) or a self-signed one made at start, under a
// TLS policy whose defaults refuse TLS 1.0 and 1.1. It knows nothing of the
// gateway.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Config is a frontend's TLS setup.
type Config struct {
	// Certificates are PEM certificate chains with their keys; the one whose
	// names match the client's SNI is served, the first one otherwise.
	Certificates []CertFile `yaml:"certificates"`
	// SelfSigned names (DNS names or IPs) get a self-signed certificate made
	// at start: for trying sekisho out, never for production.
	SelfSigned []string `yaml:"self_signed"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// CertFile is a certificate chain and its private key, both PEM files.
type CertFile struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

var versions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// SetDefaults fills the fields a user may leave out.
func (c *Config) SetDefaults() {
	if c.MinVersion == "" {
		c.MinVersion = "1.2"
	}
}

// Validate reports every problem, each as "key: message".
func (c *Config) Validate() error {
	var errs []error
	if len(c.Certificates) == 0 && len(c.SelfSigned) == 0 {
		errs = append(errs, errors.New("certificates: a TLS listener needs certificates or self_signed names"))
	}
	for i, cf := range c.Certificates {
		if cf.CertFile == "" {
			errs = append(errs, fmt.Errorf("certificates[%d].cert_file: is required", i))
		}
		if cf.KeyFile == "" {
			errs = append(errs, fmt.Errorf("certificates[%d].key_file: is required", i))
		}
	}
	if _, ok := versions[c.MinVersion]; !ok {
		errs = append(errs, fmt.Errorf("min_version: %q is not one of 1.2, 1.3 (TLS 1.0 and 1.1 are refused)", c.MinVersion))
	}
	return errors.Join(errs...)
}

// cipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with AEAD
// ciphers only (TLS 1.3 suites are not configurable in Go, and all are safe).
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// New loads the certificates and returns the server TLS configuration, with
// ALPN offering HTTP/2 and HTTP/1.1.
func New(c Config) (*tls.Config, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:   versions[c.MinVersion],
		CipherSuites: cipherSuites,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	for i, cf := range c.Certificates {
		cert, err := tls.LoadX509KeyPair(cf.CertFile, cf.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificates[%d]: loading %s: %w", i, cf.CertFile, err)
		}
		tc.Certificates = append(tc.Certificates, cert)
	}
	if len(c.SelfSigned) > 0 {
		cert, err := SelfSigned(c.SelfSigned, time.Now())
		if err != nil {
			return nil, fmt.Errorf("self_signed: %w", err)
		}
		tc.Certificates = append(tc.Certificates, cert)
	}
	return tc, nil
}

// SelfSigned makes an ECDSA P-256 certificate for names, valid from now for a year.
func SelfSigned(names []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"sekisho self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
