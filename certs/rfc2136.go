package certs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// RFC2136Config sets DNS-01 TXT records with RFC 2136 dynamic updates,
// signed with a TSIG key (BIND, PowerDNS, Knot, ...).
type RFC2136Config struct {
	// Server is the primary name server's host:port.
	Server string `yaml:"server"`
	// KeyName and KeyAlgorithm name the TSIG key (default hmac-sha256);
	// KeySecretFile holds its base64 secret.
	KeyName       string `yaml:"key_name"`
	KeyAlgorithm  string `yaml:"key_algorithm"`
	KeySecretFile string `yaml:"key_secret_file"`
}

var tsigAlgorithms = map[string]string{
	"hmac-sha256": dns.HmacSHA256, "hmac-sha384": dns.HmacSHA384, "hmac-sha512": dns.HmacSHA512, "hmac-sha1": dns.HmacSHA1,
}

func (c *RFC2136Config) validate() []error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, fmt.Errorf("acme.dns01.rfc2136.server: is required"))
	}
	if c.KeyName == "" || c.KeySecretFile == "" {
		errs = append(errs, fmt.Errorf("acme.dns01.rfc2136: key_name and key_secret_file are required"))
	}
	if _, ok := tsigAlgorithms[strings.ToLower(c.KeyAlgorithm)]; c.KeyAlgorithm != "" && !ok {
		errs = append(errs, fmt.Errorf("acme.dns01.rfc2136.key_algorithm: %q is not one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1", c.KeyAlgorithm))
	}
	return errs
}

// rfc2136 is a libdns provider over dynamic updates.
type rfc2136 struct {
	server, keyName, alg, secret string
}

func newRFC2136(c RFC2136Config) (*rfc2136, error) {
	secret, err := os.ReadFile(c.KeySecretFile)
	if err != nil {
		return nil, fmt.Errorf("acme.dns01.rfc2136.key_secret_file: %w", err)
	}
	alg := tsigAlgorithms["hmac-sha256"]
	if c.KeyAlgorithm != "" {
		alg = tsigAlgorithms[strings.ToLower(c.KeyAlgorithm)]
	}
	return &rfc2136{server: c.Server, keyName: dns.Fqdn(c.KeyName), alg: alg, secret: strings.TrimSpace(string(secret))}, nil
}

// AppendRecords implements libdns.RecordAppender.
func (p *rfc2136) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return recs, p.update(ctx, zone, recs, false)
}

// DeleteRecords implements libdns.RecordDeleter.
func (p *rfc2136) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return recs, p.update(ctx, zone, recs, true)
}

func (p *rfc2136) update(ctx context.Context, zone string, recs []libdns.Record, remove bool) error {
	zone = dns.Fqdn(zone)
	var rrs []dns.RR
	for _, r := range recs {
		rr, name, err := challengeTXT(zone, r)
		if err != nil {
			return fmt.Errorf("rfc2136: %w", err)
		}
		ttl := uint32(max(rr.TTL/time.Second, 1))
		rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: splitTXT(rr.Data)})
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	if remove {
		m.Remove(rrs)
	} else {
		m.Insert(rrs)
	}
	m.SetTsig(p.keyName, p.alg, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{p.keyName: p.secret}}
	resp, _, err := c.ExchangeContext(ctx, m, p.server)
	if err != nil {
		return fmt.Errorf("rfc2136 update of %s at %s: %w", zone, p.server, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("rfc2136 update of %s at %s: %s", zone, p.server, dns.RcodeToString[resp.Rcode])
	}
	return nil
}

// challengeTXT checks that a record certmagic asks for is a TXT record
// and returns it with its fully qualified name in zone.
func challengeTXT(zone string, r libdns.Record) (libdns.RR, string, error) {
	rr := r.RR()
	if rr.Type != "TXT" {
		return rr, "", fmt.Errorf("only TXT records are set, not %s", rr.Type)
	}
	name := dns.Fqdn(zone)
	if rr.Name != "@" && rr.Name != "" {
		name = rr.Name + "." + name
	}
	return rr, name, nil
}

// splitTXT cuts a TXT value into the 255-byte strings DNS carries.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out, s = append(out, s[:255]), s[255:]
	}
	return append(out, s)
}
