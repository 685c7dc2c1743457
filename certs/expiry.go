package certs

import (
	"crypto/tls"
	"crypto/x509"
	"time"
)

// Cert is a certificate a frontend serves, for expiry metrics and alerts.
type Cert struct {
	// Name is the certificate's first DNS name (else its subject's CN).
	Name string
	// Source is "file" (then File is its path), "acme" or "self_signed".
	Source, File string
	NotAfter     time.Time
}

// Certificates lists what t serves now: certificate files as last loaded,
// self-signed ones, and the ACME certificates in the cache for its names.
func (t *TLS) Certificates() []Cert {
	var out []Cert
	add := func(c *tls.Certificate, source, file string) {
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		if leaf == nil {
			return
		}
		name := leaf.Subject.CommonName
		if len(leaf.DNSNames) > 0 {
			name = leaf.DNSNames[0]
		}
		out = append(out, Cert{Name: name, Source: source, File: file, NotAfter: leaf.NotAfter})
	}
	for _, f := range t.store.files {
		add(f.cert.Load(), "file", f.CertFile.CertFile)
	}
	for _, c := range t.store.fixed {
		add(c, "self_signed", "")
	}
	if m := t.ACME; m != nil {
		seen := map[string]bool{}
		for _, d := range m.domains {
			for _, c := range m.cache.AllMatchingCertificates(d) {
				if !seen[c.Hash()] {
					seen[c.Hash()] = true
					add(&c.Certificate, "acme", "")
				}
			}
		}
	}
	return out
}
