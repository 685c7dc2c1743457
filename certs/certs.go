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
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
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
	// MaxVersion, when set, is the highest: "1.2" or "1.3".
	MaxVersion string `yaml:"max_version"`
	// CipherSuites are the TLS 1.2 suites accepted, by IANA or OpenSSL
	// name. Default: ECDHE with AEAD ciphers. (TLS 1.3's suites are fixed
	// by Go, and all are safe.)
	CipherSuites []string `yaml:"cipher_suites"`
	// Curves are the key exchange groups, by name (X25519MLKEM768, X25519,
	// P-256, P-384, P-521). Default: Go's, post-quantum hybrid first.
	Curves []string `yaml:"curves"`
	// ALPN lists the protocols offered over TLS, preferred first: "h2"
	// and "http/1.1" (the default is both).
	ALPN []string `yaml:"alpn"`
	// ACME, when set, has certificates for its domains issued and renewed
	// by an ACME CA; other names get the certificates above.
	ACME *ACMEConfig `yaml:"acme"`
	// SessionTickets sets how the session-ticket keys rotate. With
	// Options.Redis the replicas share them, by default a new one hourly
	// and 24 kept; without Redis and unset, Go's own keys serve (a new one
	// daily, each kept a week).
	SessionTickets *SessionTickets `yaml:"session_tickets"`
	// Observe accepts handshakes below the policy (TLS 1.0 and 1.1, and TLS
	// 1.2 suites outside CipherSuites) and reports each one, so an operator
	// can measure who enforcing the policy would cut off.
	Observe bool `yaml:"observe"`
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
	if len(c.CipherSuites) == 0 {
		for _, id := range defaultSuites {
			c.CipherSuites = append(c.CipherSuites, tls.CipherSuiteName(id))
		}
	}
	if len(c.ALPN) == 0 {
		c.ALPN = []string{"h2", "http/1.1"}
	}
	if c.ACME != nil {
		c.ACME.setDefaults()
	}
	if c.SessionTickets != nil {
		c.SessionTickets.setDefaults()
	}
}

// Validate reports every problem, each as "key: message".
func (c *Config) Validate() error {
	var errs []error
	if len(c.Certificates) == 0 && len(c.SelfSigned) == 0 && c.ACME == nil {
		errs = append(errs, errors.New("certificates: a TLS listener needs certificates, acme or self_signed names"))
	}
	if c.ACME != nil {
		errs = append(errs, c.ACME.validate()...)
	}
	if c.SessionTickets != nil {
		errs = append(errs, c.SessionTickets.validate()...)
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
		errs = append(errs, fmt.Errorf("min_version: %q is not one of 1.2, 1.3 (TLS 1.0 and 1.1 are refused; observe: true measures who uses them)", c.MinVersion))
	}
	if c.MaxVersion != "" {
		if v, ok := versions[c.MaxVersion]; !ok {
			errs = append(errs, fmt.Errorf("max_version: %q is not one of 1.2, 1.3", c.MaxVersion))
		} else if v < versions[c.MinVersion] {
			errs = append(errs, fmt.Errorf("max_version: %s is below min_version %s", c.MaxVersion, c.MinVersion))
		}
	}
	for i, name := range c.CipherSuites {
		if _, err := suiteID(name); err != nil {
			errs = append(errs, fmt.Errorf("cipher_suites[%d]: %w", i, err))
		}
	}
	for i, name := range c.Curves {
		if _, ok := curves[strings.ToUpper(name)]; !ok {
			errs = append(errs, fmt.Errorf("curves[%d]: %q is not one of X25519MLKEM768, X25519, P-256, P-384, P-521", i, name))
		}
	}
	for i, p := range c.ALPN {
		if p != "h2" && p != "http/1.1" {
			errs = append(errs, fmt.Errorf("alpn[%d]: %q is not h2 or http/1.1", i, p))
		}
	}
	return errors.Join(errs...)
}

// curves names the key exchange groups Go offers (upper case; OpenSSL's
// names for the NIST curves too).
var curves = map[string]tls.CurveID{
	"X25519MLKEM768": tls.X25519MLKEM768, "X25519": tls.X25519,
	"P-256": tls.CurveP256, "P256": tls.CurveP256, "PRIME256V1": tls.CurveP256, "SECP256R1": tls.CurveP256,
	"P-384": tls.CurveP384, "P384": tls.CurveP384, "SECP384R1": tls.CurveP384,
	"P-521": tls.CurveP521, "P521": tls.CurveP521, "SECP521R1": tls.CurveP521,
}

// openSSLSuites maps OpenSSL's names (as HAProxy and nginx configurations
// write them) to Go's TLS 1.2 suites.
var openSSLSuites = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA256":     tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA256":                 tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// suiteID reads a TLS 1.2 suite name; Go's insecure suites (RC4, 3DES)
// and TLS 1.3's are refused.
func suiteID(name string) (uint16, error) {
	if id, ok := openSSLSuites[strings.ToUpper(name)]; ok {
		return id, nil
	}
	for _, s := range tls.CipherSuites() {
		if s.Name == name {
			if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
				return 0, fmt.Errorf("%s is a TLS 1.3 suite: those are not configurable", name)
			}
			return s.ID, nil
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name {
			return 0, fmt.Errorf("%s is insecure and not offered", name)
		}
	}
	return 0, fmt.Errorf("%q is not a TLS 1.2 cipher suite Go knows (IANA or OpenSSL name)", name)
}

// defaultSuites are the TLS 1.2 suites offered by default: ECDHE key
// exchange with AEAD ciphers only.
var defaultSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Policy tells whether a completed handshake is below a frontend's TLS
// policy: only in observe mode can one complete.
type Policy struct {
	min    uint16
	suites []uint16 // the policy's TLS 1.2 suites
}

// Below returns why a handshake is below the policy, "version" or
// "cipher", or "" when it is not.
func (p *Policy) Below(st *tls.ConnectionState) string {
	switch {
	case st.Version < p.min:
		return "version"
	case st.Version == tls.VersionTLS12 && !slices.Contains(p.suites, st.CipherSuite):
		return "cipher"
	}
	return ""
}

// Options are what New needs besides the configuration.
type Options struct {
	// OnReload hears of every reload of a changed certificate file: err is
	// nil when the new certificate is served, else the old one stays.
	OnReload func(file string, err error)
	// OnACMEEvent hears certmagic's events (cert_obtained, cert_failed, ...).
	OnACMEEvent func(event string, data map[string]any)
	// Redis, when set, is where the replicas share ACME accounts,
	// certificates, pending challenges and the locks that let one replica
	// order a certificate (instead of under acme.storage), and the
	// session-ticket keys. nil: no sharing.
	Redis redis.UniversalClient
	// RedisPrefix starts every key written to Redis, e.g. "sekisho:".
	RedisPrefix string
	// Name is the frontend's: frontends share no session-ticket keys, so a
	// session resumes only on the frontend that made it.
	Name string
	// OnTicketKeys hears, once per change, that the shared session-ticket
	// keys could not be had from Redis (this replica then uses keys of its
	// own, so its new sessions resume only on it), and with nil that Redis
	// answers again. The error never holds key material.
	OnTicketKeys func(err error)
}

// TLS is a frontend's TLS setup.
type TLS struct {
	Config *tls.Config
	Policy *Policy
	ACME   *ACME // nil without acme
	store  *fileStore
}

// New loads the certificates and returns the frontend's TLS setup.
// Certificate files are checked for changes at most once a second, on
// handshakes, and reloaded without a restart.
func New(c Config, o Options) (*TLS, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{min: versions[c.MinVersion]}
	for _, name := range c.CipherSuites {
		id, _ := suiteID(name)
		p.suites = append(p.suites, id)
	}
	tc := &tls.Config{
		MinVersion:   p.min,
		MaxVersion:   versions[c.MaxVersion], // 0: the highest Go knows
		CipherSuites: p.suites,
		NextProtos:   c.ALPN,
	}
	for _, name := range c.Curves {
		tc.CurvePreferences = append(tc.CurvePreferences, curves[strings.ToUpper(name)])
	}
	if c.Observe {
		// Everything Go does not call insecure; Below reports what the
		// policy itself would refuse.
		tc.MinVersion = tls.VersionTLS10
		tc.CipherSuites = slices.Clone(p.suites)
		for _, s := range tls.CipherSuites() {
			if slices.Contains(s.SupportedVersions, tls.VersionTLS12) && !slices.Contains(tc.CipherSuites, s.ID) {
				tc.CipherSuites = append(tc.CipherSuites, s.ID)
			}
		}
	}
	store := &fileStore{onReload: o.OnReload}
	for i, cf := range c.Certificates {
		e := &fileCert{CertFile: cf}
		if err := e.load(); err != nil {
			return nil, fmt.Errorf("certificates[%d]: %w", i, err)
		}
		store.files = append(store.files, e)
	}
	if len(c.SelfSigned) > 0 {
		cert, err := SelfSigned(c.SelfSigned, time.Now())
		if err != nil {
			return nil, fmt.Errorf("self_signed: %w", err)
		}
		store.fixed = append(store.fixed, &cert)
	}
	t := &TLS{Config: tc, Policy: p, store: store}
	tc.GetCertificate = store.get
	st := c.SessionTickets
	if st == nil && o.Redis != nil {
		st = &SessionTickets{}
		st.setDefaults()
	}
	if st != nil {
		k := newTicketKeys(*st, o.Redis, o.RedisPrefix, o.Name, o.OnTicketKeys)
		k.start()
		tc.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			return k.config().EncryptTicket(cs, ss)
		}
		tc.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
			return k.config().DecryptTicket(identity, cs)
		}
	}
	if c.ACME != nil {
		var storage certmagic.Storage = &certmagic.FileStorage{Path: c.ACME.Storage}
		if o.Redis != nil {
			storage = NewRedisStorage(o.Redis, o.RedisPrefix)
		}
		m, err := newACME(*c.ACME, storage, o.OnACMEEvent)
		if err != nil {
			return nil, err
		}
		t.ACME = m
		if slices.Contains(c.ACME.Challenges, "tls-alpn-01") {
			tc.NextProtos = append(slices.Clip(tc.NextProtos), acmeTLS1)
		}
		tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if m.handles(hello) {
				return m.cfg.GetCertificate(hello)
			}
			return store.get(hello)
		}
	}
	return t, nil
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
