package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"
)

// ACMEConfig has certificates issued and renewed by an ACME CA (certmagic).
type ACMEConfig struct {
	// Directory is the CA's directory URL, or "letsencrypt" (default) or
	// "letsencrypt-staging".
	Directory string `yaml:"directory"`
	// Email is the account's contact, required: without one, certmagic
	// falls back to an address found in another configuration of the
	// process or in storage, which may not be this frontend's.
	Email string `yaml:"email"`
	// Domains are the names to obtain certificates for.
	Domains []string `yaml:"domains"`
	// Storage is the folder for accounts, keys and certificates, unless
	// the replicas share them through Redis.
	Storage string `yaml:"storage"`
	// Challenges are the ones offered: "http-01" (answered on the frontend's
	// plain-HTTP binds, which must listen on port 80 as the CA sees them)
	// and "tls-alpn-01" (on its TLS binds, port 443). Default both.
	Challenges []string `yaml:"challenges"`
	// CARootFile, when set, is a PEM file of the roots that the CA's own
	// HTTPS certificate chains to (private ACME servers).
	CARootFile string `yaml:"ca_root_file"`
	// EAB is the external account binding some CAs require.
	EAB *EAB `yaml:"eab"`
	// HTTPPort and TLSPort are where the CA connects for the challenges
	// when that is not 80 and 443 (behind a port-mapping load balancer,
	// or in tests): the plain-HTTP and TLS binds on these ports answer.
	HTTPPort int `yaml:"http_port"`
	TLSPort  int `yaml:"tls_port"`
	// DNS01 sets up the dns-01 challenge, which wildcard names need; when
	// set, it is the only challenge offered.
	DNS01 *DNS01Config `yaml:"dns01"`
	// RenewInterval is how often certificates are checked for renewal
	// (Caddy's renew_interval); default 10m. A certificate is renewed in
	// the last third of its lifetime, or when the CA's renewal info says.
	RenewInterval time.Duration `yaml:"renew_interval"`
}

// DNS01Config is how the dns-01 challenge's TXT records are set.
type DNS01Config struct {
	// Provider is "rfc2136" (dynamic updates with TSIG) or "route53".
	Provider string         `yaml:"provider"`
	RFC2136  *RFC2136Config `yaml:"rfc2136"`
	Route53  *Route53Config `yaml:"route53"`
	// Resolvers (host:port) are asked whether the record is visible before
	// the CA is; default the system's.
	Resolvers []string `yaml:"resolvers"`
	// PropagationTimeout bounds that wait; default 2m; a negative value
	// skips the check (for a primary that serves its updates at once).
	PropagationTimeout time.Duration `yaml:"propagation_timeout"`
}

// EAB is an ACME external account binding; the MAC key is read from a file.
type EAB struct {
	KeyID      string `yaml:"key_id"`
	MACKeyFile string `yaml:"mac_key_file"`
}

// DefaultACMEStorage is where certificates go when Storage is not set.
const DefaultACMEStorage = "/var/lib/sekisho/acme"

var directories = map[string]string{
	"letsencrypt":         certmagic.LetsEncryptProductionCA,
	"letsencrypt-staging": certmagic.LetsEncryptStagingCA,
}

func (a *ACMEConfig) setDefaults() {
	if a.Directory == "" {
		a.Directory = "letsencrypt"
	}
	if a.Storage == "" {
		a.Storage = DefaultACMEStorage
	}
	if len(a.Challenges) == 0 {
		a.Challenges = []string{"http-01", "tls-alpn-01"}
		if a.DNS01 != nil {
			a.Challenges = []string{"dns-01"}
		}
	}
	if a.RenewInterval == 0 {
		a.RenewInterval = certmagic.DefaultRenewCheckInterval
	}
}

func (a *ACMEConfig) validate() []error {
	var errs []error
	if _, ok := directories[a.Directory]; !ok {
		if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("acme.directory: %q is not letsencrypt, letsencrypt-staging or an https:// URL", a.Directory))
		}
	}
	if len(a.Domains) == 0 {
		errs = append(errs, errors.New("acme.domains: at least one name is required"))
	}
	if !strings.Contains(a.Email, "@") {
		errs = append(errs, fmt.Errorf("acme.email: %q is not an email address (the account's contact is required)", a.Email))
	}
	for i, d := range a.Domains {
		if d == "" || strings.ContainsAny(d, " /:") {
			errs = append(errs, fmt.Errorf("acme.domains[%d]: %q is not a host name", i, d))
		}
	}
	dns01 := slices.Contains(a.Challenges, "dns-01")
	for i, c := range a.Challenges {
		if c != "http-01" && c != "tls-alpn-01" && c != "dns-01" {
			errs = append(errs, fmt.Errorf("acme.challenges[%d]: %q is not http-01, tls-alpn-01 or dns-01", i, c))
		}
	}
	switch {
	case dns01 && len(a.Challenges) > 1:
		errs = append(errs, errors.New("acme.challenges: dns-01 is used alone"))
	case dns01 && a.DNS01 == nil:
		errs = append(errs, errors.New("acme.dns01: dns-01 needs a provider"))
	case !dns01 && a.DNS01 != nil:
		errs = append(errs, errors.New("acme.dns01: is set, but challenges lacks dns-01"))
	}
	for i, d := range a.Domains {
		if strings.HasPrefix(d, "*.") && !dns01 {
			errs = append(errs, fmt.Errorf("acme.domains[%d]: the wildcard %s needs the dns-01 challenge", i, d))
		}
	}
	if d := a.DNS01; d != nil {
		switch {
		case d.Provider == "route53":
			if d.RFC2136 != nil {
				errs = append(errs, errors.New("acme.dns01.rfc2136: is set, but the provider is route53"))
			}
		case d.Provider != "rfc2136":
			errs = append(errs, fmt.Errorf("acme.dns01.provider: %q is not rfc2136 or route53", d.Provider))
		case d.RFC2136 == nil:
			errs = append(errs, errors.New("acme.dns01.rfc2136: is required for provider rfc2136"))
		default:
			errs = append(errs, d.RFC2136.validate()...)
		}
	}
	if a.RenewInterval < 0 {
		errs = append(errs, errors.New("acme.renew_interval: must not be negative"))
	}
	if a.EAB != nil && (a.EAB.KeyID == "" || a.EAB.MACKeyFile == "") {
		errs = append(errs, errors.New("acme.eab: key_id and mac_key_file are both required"))
	}
	return errs
}

// ACME obtains and renews a frontend's ACME certificates in the background
// and answers the CA's challenges.
type ACME struct {
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	domains []string
}

func newACME(a ACMEConfig, storage certmagic.Storage, onEvent func(event string, data map[string]any)) (*ACME, error) {
	tmpl := certmagic.ACMEIssuer{
		CA:                      a.Directory,
		Email:                   a.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    !slices.Contains(a.Challenges, "http-01"),
		DisableTLSALPNChallenge: !slices.Contains(a.Challenges, "tls-alpn-01"),
		// The gateway's own listeners hold these ports, so certmagic finds
		// them taken and leaves the answering to them (Handle* below).
		AltHTTPPort:    a.HTTPPort,
		AltTLSALPNPort: a.TLSPort,
		Logger:         zap.NewNop(),
	}
	if u, ok := directories[a.Directory]; ok {
		tmpl.CA = u
	}
	if d := a.DNS01; d != nil {
		var p certmagic.DNSProvider
		var err error
		if d.Provider == "route53" {
			rc := Route53Config{}
			if d.Route53 != nil {
				rc = *d.Route53
			}
			p, err = newRoute53(context.Background(), rc)
		} else {
			p, err = newRFC2136(*d.RFC2136)
		}
		if err != nil {
			return nil, err
		}
		propagation := d.PropagationTimeout
		if propagation < 0 {
			propagation = -1 // certmagic's "no check"
		}
		tmpl.DNS01Solver = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider:        p,
			Resolvers:          d.Resolvers,
			PropagationTimeout: propagation,
			Logger:             zap.NewNop(),
		}}
	}
	if a.CARootFile != "" {
		pem, err := os.ReadFile(a.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("acme.ca_root_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme.ca_root_file: %s holds no PEM certificate", a.CARootFile)
		}
		tmpl.TrustedRoots = pool
	}
	if a.EAB != nil {
		key, err := os.ReadFile(a.EAB.MACKeyFile)
		if err != nil {
			return nil, fmt.Errorf("acme.eab.mac_key_file: %w", err)
		}
		tmpl.ExternalAccount = &acme.EAB{KeyID: a.EAB.KeyID, MACKey: strings.TrimSpace(string(key))}
	}
	m := &ACME{domains: a.Domains}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: a.RenewInterval,
		Logger:             zap.NewNop(),
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage: storage,
		Logger:  zap.NewNop(),
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			if onEvent != nil {
				onEvent(event, data)
			}
			return nil
		},
	})
	m.issuer = certmagic.NewACMEIssuer(m.cfg, tmpl)
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// Start obtains the certificates that storage lacks and keeps them renewed
// until Stop; it returns at once. The frontend's listeners must be up:
// the CA's challenges reach them.
func (m *ACME) Start(ctx context.Context) error { return m.cfg.ManageAsync(ctx, m.domains) }

// Stop ends renewal.
func (m *ACME) Stop() { m.cache.Stop() }

// HandleHTTPChallenge answers an HTTP-01 challenge request and reports
// whether r was one.
func (m *ACME) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return m.issuer.HandleHTTPChallenge(w, r)
}

// handles tells whether a handshake is for this ACME manager: one of its
// names (or a name its wildcards cover), or a TLS-ALPN-01 challenge.
func (m *ACME) handles(hello *tls.ClientHelloInfo) bool {
	if slices.Contains(hello.SupportedProtos, acmeTLS1) {
		return true
	}
	name := strings.ToLower(hello.ServerName)
	for _, d := range m.domains {
		d = strings.ToLower(d)
		if d == name || strings.HasPrefix(d, "*.") && strings.HasSuffix(name, d[1:]) && !strings.Contains(name[:len(name)-len(d)+1], ".") {
			return true
		}
	}
	return false
}

// acmeTLS1 is the ALPN protocol of TLS-ALPN-01 challenges (RFC 8737).
const acmeTLS1 = "acme-tls/1"
