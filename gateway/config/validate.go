package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/challenge"
	"github.com/sekisho/sekisho/gateway/clientip"
	"github.com/sekisho/sekisho/gateway/forward"
)

// Validate reports every problem in a config whose defaults are set, each
// error's text starting with the key path ("frontends[0].bind[1].address: ...").
func (c *Config) Validate() error {
	var errs []error
	add := func(prefix string, err error) {
		if err == nil {
			return
		}
		for _, e := range flatten(err) {
			errs = append(errs, fmt.Errorf("%s.%s", prefix, e.Error()))
		}
	}
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	policies := map[string]bool{}
	for i := range c.WAF.Policies {
		p := &c.WAF.Policies[i]
		key := fmt.Sprintf("waf.policies[%d]", i)
		if policies[p.Name] {
			fail("%s.name: duplicate policy name %q", key, p.Name)
		}
		policies[p.Name] = true
		add(key, p.Validate())
	}
	backends := map[string]bool{}
	for i := range c.Backends {
		b := &c.Backends[i]
		key := fmt.Sprintf("backends[%d]", i)
		if backends[b.Name] {
			fail("%s.name: duplicate backend name %q", key, b.Name)
		}
		backends[b.Name] = true
		add(key, b.Config.Validate())
		if b.ConnectTimeout < 0 {
			fail("%s.connect_timeout: must not be negative", key)
		}
		if b.ResponseHeaderTimeout < 0 {
			fail("%s.response_header_timeout: must not be negative", key)
		}
		if b.MaxIdleConnsPerServer < 0 {
			fail("%s.max_idle_conns_per_server: must not be negative", key)
		}
		if b.Retries != nil && *b.Retries < 0 {
			fail("%s.retries: must not be negative", key)
		}
		add(key+".send_client_ip", errors.Join(b.SendClientIP.Validate()...))
		if b.Source != "" && b.Source != "client" {
			fail("%s.source: %q is not client (or absent: the gateway's own address)", key, b.Source)
		}
		for j, w := range b.RetryOn {
			if _, err := forward.ParseRetryOn([]string{w}); err != nil {
				fail("%s.retry_on[%d]: %v", key, j, err)
			}
		}
	}
	if r := c.Redis; r != nil {
		if len(r.Addresses) == 0 {
			fail("redis.addresses: at least one host:port is required")
		}
		for i, a := range r.Addresses {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				fail("redis.addresses[%d]: %q is not host:port", i, a)
			}
		}
		switch {
		case r.Cluster && r.MasterName != "":
			fail("redis.cluster: a Cluster has no master_name (that is Sentinel)")
		case r.Cluster && r.DB != 0:
			fail("redis.db: a Cluster has only database 0")
		case !r.Cluster && r.MasterName == "" && len(r.Addresses) > 1:
			fail("redis.addresses: several addresses need cluster: true or a Sentinel master_name")
		}
		if r.Timeout < 0 {
			fail("redis.timeout: must not be negative")
		}
		for key, f := range map[string]string{"password_file": r.PasswordFile, "sentinel_password_file": r.SentinelPasswordFile} {
			if f != "" {
				if _, err := os.Stat(f); err != nil {
					fail("redis.%s: %v", key, err)
				}
			}
		}
		if t := r.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
			fail("redis.tls: cert_file and key_file go together")
		}
	}
	if c.Alerts != nil {
		add("alerts", c.Alerts.Validate())
	}
	if c.AuditLog != nil {
		add("audit_log", c.AuditLog.Validate())
	}
	switch c.Log.Format {
	case "json", "httplog":
	default:
		fail("log.format: %q is not json or httplog", c.Log.Format)
	}
	if c.Log.LogFormat != "" {
		if _, err := accesslog.ParseFormat(c.Log.LogFormat); err != nil {
			fail("log.%v", err)
		}
	}
	if c.DrainGrace < 0 {
		fail("drain_grace: must not be negative")
	}
	if len(c.Frontends) == 0 {
		fail("frontends: at least one frontend is required")
	}
	frontends := map[string]bool{}
	addrs := map[string]string{}
	for i := range c.Frontends {
		f := &c.Frontends[i]
		key := fmt.Sprintf("frontends[%d]", i)
		if f.Name == "" {
			fail("%s.name: is required", key)
		} else if frontends[f.Name] {
			fail("%s.name: duplicate frontend name %q", key, f.Name)
		}
		frontends[f.Name] = true
		if len(f.Bind) == 0 {
			fail("%s.bind: at least one address is required", key)
		}
		if cp := f.Capture; cp != nil {
			all := append(append([]accesslog.Capture(nil), cp.RequestHeaders...), cp.ResponseHeaders...)
			if cp.Cookie != nil {
				all = append(all, *cp.Cookie)
			}
			for _, c := range all {
				if c.Name == "" || strings.ContainsAny(c.Name, " :;=\t") || c.Len < 1 || c.Len > 4096 {
					fail("%s.capture: %q with len %d: a name and a len of 1 to 4096", key, c.Name, c.Len)
				}
			}
		}
		if f.MonitorURI != "" && !strings.HasPrefix(f.MonitorURI, "/") {
			fail("%s.monitor_uri: %q must start with /", key, f.MonitorURI)
		}
		if ci := f.ClientIP; ci != nil {
			if len(ci.TrustedProxies) == 0 {
				fail("%s.client_ip.trusted_proxies: at least one CIDR is required", key)
			}
			for j, t := range ci.TrustedProxies {
				if _, err := clientip.ParsePrefix(t); err != nil {
					fail("%s.client_ip.trusted_proxies[%d]: %v", key, j, err)
				}
			}
			if strings.ContainsAny(ci.Header, " :\t") {
				fail("%s.client_ip.header: %q is not a header name", key, ci.Header)
			}
		}
		for j, b := range f.Bind {
			pp := b.ProxyProtocol
			if pp == nil {
				continue
			}
			pkey := fmt.Sprintf("%s.bind[%d].proxy_protocol", key, j)
			if len(pp.Trusted) == 0 {
				fail("%s.trusted: list the load balancers that send the header (a header from anyone else is refused)", pkey)
			}
			for k, t := range pp.Trusted {
				if _, err := clientip.ParsePrefix(t); err != nil {
					fail("%s.trusted[%d]: %v", pkey, k, err)
				}
			}
			if pp.Mode != "require" && pp.Mode != "optional" {
				fail("%s.mode: %q is not require or optional", pkey, pp.Mode)
			}
		}
		anyTLS := false
		for j, b := range f.Bind {
			bkey := fmt.Sprintf("%s.bind[%d].address", key, j)
			if _, port, err := net.SplitHostPort(b.Address); err != nil {
				fail("%s: %q is not host:port", bkey, b.Address)
			} else if other, dup := addrs[b.Address]; dup && port != "0" {
				fail("%s: %s is already bound by %s", bkey, b.Address, other)
			}
			addrs[b.Address] = bkey
			anyTLS = anyTLS || b.TLS
		}
		switch {
		case anyTLS && f.TLS == nil:
			fail("%s.tls: a bind has tls: true, so certificates are required here", key)
		case f.TLS != nil:
			add(key+".tls", f.TLS.Validate())
		}
		anyPlain := false
		for _, b := range f.Bind {
			anyPlain = anyPlain || !b.TLS
		}
		if f.TLS != nil && f.TLS.ACME != nil && slices.Contains(f.TLS.ACME.Challenges, "http-01") && !anyPlain {
			fail("%s.tls.acme.challenges: http-01 is answered on this frontend's plain-HTTP binds, and it has none", key)
		}
		if f.HTTP3 && !anyTLS {
			fail("%s.http3: needs a bind with tls: true (HTTP/3 is always TLS)", key)
		}
		if f.RedirectHTTPS && !anyTLS {
			fail("%s.redirect_https: needs a bind with tls: true to redirect to", key)
		}
		if h := f.HSTS; h != nil {
			switch {
			case !anyTLS:
				fail("%s.hsts: needs a bind with tls: true (browsers ignore the header over plain HTTP)", key)
			case h.MaxAge < time.Second:
				fail("%s.hsts.max_age: must be at least 1s", key)
			case h.Preload && (h.MaxAge < DefaultHSTSMaxAge || !h.IncludeSubdomains):
				fail("%s.hsts.preload: needs include_subdomains: true and a max_age of at least 8760h (one year)", key)
			}
		}
		switch f.Mode {
		case "http":
			if len(f.Routes) == 0 && f.DefaultBackend == "" {
				fail("%s.routes: give routes or a default_backend", key)
			}
			if f.Backend != "" || f.SendProxy != "" {
				fail("%s.backend: backend and send_proxy are for mode: tcp (an http frontend has routes and default_backend)", key)
			}
		case "tcp":
			if f.Backend == "" {
				fail("%s.backend: a tcp frontend needs its backend", key)
			} else if !backends[f.Backend] {
				fail("%s.backend: unknown backend %q", key, f.Backend)
			}
			if len(f.Routes) > 0 || f.DefaultBackend != "" || f.DefaultWAFPolicy != "" || f.RedirectHTTPS || f.HSTS != nil ||
				f.HTTP3 || f.MonitorURI != "" || f.ClientIP != nil || f.DefaultRateLimit != nil {
				fail("%s.mode: a tcp frontend has no routes, default_backend, WAF policy, redirect_https, hsts, http3, monitor_uri, client_ip or rate limit: those are HTTP's", key)
			}
			if f.SendProxy != "" && f.SendProxy != "v1" && f.SendProxy != "v2" {
				fail("%s.send_proxy: %q is not v1 or v2", key, f.SendProxy)
			}
			if f.IdleTimeout < 0 {
				fail("%s.idle_timeout: must not be negative", key)
			}
		default:
			fail("%s.mode: %q is not http or tcp", key, f.Mode)
		}
		for j, r := range f.Routes {
			rkey := fmt.Sprintf("%s.routes[%d]", key, j)
			if !strings.HasPrefix(r.PathPrefix, "/") {
				fail("%s.path_prefix: %q must start with /", rkey, r.PathPrefix)
			}
			if strings.Contains(r.Host, ":") || strings.Count(r.Host, "*") > 1 || strings.Contains(r.Host, "*") && !strings.HasPrefix(r.Host, "*.") {
				fail("%s.host: %q must be a host name without port, optionally starting with *.", rkey, r.Host)
			}
			if r.Backend == "" {
				fail("%s.backend: is required", rkey)
			} else if !backends[r.Backend] {
				fail("%s.backend: unknown backend %q", rkey, r.Backend)
			}
			if !policies[r.WAFPolicy] {
				fail("%s.waf_policy: unknown WAF policy %q", rkey, r.WAFPolicy)
			}
			if r.RateLimit != nil {
				add(rkey+".rate_limit", r.RateLimit.validate())
			}
			if r.Challenge != nil {
				add(rkey+".challenge", r.Challenge.validate())
			}
		}
		if f.DefaultRateLimit != nil {
			add(key+".default_rate_limit", f.DefaultRateLimit.validate())
		}
		if f.DefaultChallenge != nil {
			add(key+".default_challenge", f.DefaultChallenge.validate())
		}
		if f.Ban != nil {
			add(key+".ban", f.Ban.validate())
		}
		if f.DefaultBackend != "" && !backends[f.DefaultBackend] {
			fail("%s.default_backend: unknown backend %q", key, f.DefaultBackend)
		}
		if f.DefaultBackend != "" && !policies[f.DefaultWAFPolicy] {
			fail("%s.default_waf_policy: unknown WAF policy %q", key, f.DefaultWAFPolicy)
		}
		l := f.Limits
		for _, d := range []struct {
			name string
			v    int64
		}{
			{"read_header_timeout", int64(l.ReadHeaderTimeout)}, {"read_timeout", int64(l.ReadTimeout)},
			{"write_timeout", int64(l.WriteTimeout)}, {"idle_timeout", int64(l.IdleTimeout)},
			{"max_header_bytes", int64(l.MaxHeaderBytes)}, {"quic_retry_threshold", int64(l.QUICRetryThreshold)},
		} {
			if d.v < 0 {
				fail("%s.limits.%s: must not be negative", key, d.name)
			}
		}
		if l.MaxHeaderBytes > 0 && l.MaxHeaderBytes <= HeaderReadSlack {
			fail("%s.limits.max_header_bytes: must be more than %d", key, HeaderReadSlack)
		}
	}
	if a := c.Admin; a != nil {
		host, _, err := net.SplitHostPort(a.Address)
		ip := net.ParseIP(host)
		switch {
		case err != nil:
			fail("admin.address: %q is not host:port", a.Address)
		case a.TokenFile == "" && os.Getenv(AdminTokenEnv) == "" && (ip == nil || !ip.IsLoopback()) && host != "localhost":
			fail("admin.address: %s is not loopback, so a token is required (token_file, or %s)", a.Address, AdminTokenEnv)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		fail("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.ShutdownTimeout < 0 {
		fail("shutdown_timeout: must not be negative")
	}
	if c.Challenge != nil {
		add("challenge", c.Challenge.validate())
	}
	lists := map[string]bool{}
	for i, l := range c.IPLists {
		key := fmt.Sprintf("ip_lists[%d]", i)
		if lists[l.Name] {
			fail("%s.name: duplicate list name %q", key, l.Name)
		}
		lists[l.Name] = true
		add(key, l.validate())
	}
	for i, f := range c.Frontends {
		if f.Access != nil {
			add(fmt.Sprintf("frontends[%d].access", i), f.Access.validate(lists, c.GeoIP, c.CrowdSec != nil))
		}
		for j, r := range f.Routes {
			if r.Access != nil {
				add(fmt.Sprintf("frontends[%d].routes[%d].access", i, j), r.Access.validate(lists, c.GeoIP, c.CrowdSec != nil))
			}
		}
	}
	if _, _, err := c.ServerID(); err != nil {
		errs = append(errs, err)
	}
	if tr := c.Tracing; tr != nil {
		if tr.OTLPEndpoint != "" {
			if u, err := url.Parse(tr.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				fail("tracing.otlp_endpoint: %q is not an http or https URL", redactURL(tr.OTLPEndpoint))
			}
		}
		if r := tr.SampleRatio; r != nil && (*r < 0 || *r > 1) {
			fail("tracing.sample_ratio: %g is not between 0 and 1", *r)
		}
		if tr.ExportInterval < 0 {
			fail("tracing.export_interval: must not be negative")
		}
	}
	if cs := c.CrowdSec; cs != nil {
		if u, err := url.Parse(cs.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail("crowdsec.url: %q is not an http or https URL", redactURL(cs.URL))
		}
		if cs.Interval < 0 {
			fail("crowdsec.interval: must not be negative")
		}
	}
	if g := c.GeoIP; g != nil && g.CountryDB == "" && g.ASNDB == "" {
		fail("geoip.country_db: give country_db, asn_db or both")
	}
	return errors.Join(errs...)
}

func (l *IPList) validate() error {
	var errs []error
	if l.Name == "" {
		errs = append(errs, errors.New("name: is required"))
	}
	sources := 0
	for _, set := range []bool{l.File != "", l.URL != "", len(l.CIDRs) > 0} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		errs = append(errs, errors.New("file: give exactly one of file, url and cidrs"))
	}
	if l.URL != "" {
		if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("url: %q is not an http or https URL", redactURL(l.URL)))
		}
	}
	for i, c := range l.CIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			if _, err := netip.ParseAddr(c); err != nil {
				errs = append(errs, fmt.Errorf("cidrs[%d]: %q is not an address or CIDR prefix", i, c))
			}
		}
	}
	if l.Interval < 0 || l.MaxBytes < 0 {
		errs = append(errs, errors.New("interval and max_bytes must not be negative"))
	}
	return errors.Join(errs...)
}

// redactURL keeps a URL's credentials and query (a token, often) out of errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

func (a *Access) validate(lists map[string]bool, geo *GeoIP, crowdsec bool) error {
	var errs []error
	for _, k := range []struct {
		key   string
		names []string
	}{{"allow", a.Allow}, {"deny", a.Deny}, {"challenge", a.Challenge}} {
		key := k.key
		for i, n := range k.names {
			if !lists[n] {
				errs = append(errs, fmt.Errorf("%s[%d]: unknown list %q (ip_lists)", key, i, n))
			}
		}
	}
	for _, k := range []struct {
		key string
		cs  []string
	}{{"allow_countries", a.AllowCountries}, {"deny_countries", a.DenyCountries}, {"challenge_countries", a.ChallengeCountries}} {
		key, cs := k.key, k.cs
		if len(cs) > 0 && (geo == nil || geo.CountryDB == "") {
			errs = append(errs, fmt.Errorf("%s: needs geoip.country_db", key))
		}
		for i, c := range cs {
			if len(c) != 2 || strings.ToUpper(c) != c {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is not a two-letter ISO country code in capitals", key, i, c))
			}
		}
	}
	if len(a.AllowASNs)+len(a.DenyASNs)+len(a.ChallengeASNs) > 0 && (geo == nil || geo.ASNDB == "") {
		errs = append(errs, errors.New("deny_asns: AS rules need geoip.asn_db"))
	}
	if a.CrowdSec && !crowdsec {
		errs = append(errs, errors.New("crowdsec: needs the top-level crowdsec: (its url and key)"))
	}
	return errors.Join(errs...)
}

// flatten lists the leaves of a tree of joined errors.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func (rc *RouteChallenge) validate() error {
	err := challenge.Rule{Mode: challenge.Mode(rc.Mode), Difficulty: rc.Difficulty}.Validate()
	if rc.WhenWAFScore < 0 {
		err = errors.Join(err, errors.New("when_waf_score: must not be negative"))
	}
	return err
}

func (b *Ban) validate() error {
	var errs []error
	if b.WAFBlocks < 0 || b.Errors4xx < 0 || b.RateLimited < 0 {
		errs = append(errs, errors.New("waf_blocks, errors_4xx and rate_limited must not be negative"))
	}
	if b.WAFBlocks == 0 && b.Errors4xx == 0 && b.RateLimited == 0 {
		errs = append(errs, errors.New("waf_blocks: give at least one of waf_blocks, errors_4xx, rate_limited"))
	}
	if b.Within < time.Second || b.Duration < time.Second {
		errs = append(errs, errors.New("within and duration: at least 1s"))
	}
	if b.Key != "src" && b.Key != "src+ja4" {
		errs = append(errs, fmt.Errorf("key: %q is not src or src+ja4", b.Key))
	}
	if b.Action != "deny" && b.Action != "challenge" {
		errs = append(errs, fmt.Errorf("action: %q is not deny or challenge", b.Action))
	}
	if b.Size < 0 {
		errs = append(errs, errors.New("size: must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Challenge) validate() error {
	var errs []error
	if c.TTL < time.Minute {
		errs = append(errs, errors.New("ttl: at least 1m"))
	}
	if c.IPv4Prefix < 8 || c.IPv4Prefix > 32 {
		errs = append(errs, fmt.Errorf("ipv4_prefix: %d is not 8 to 32", c.IPv4Prefix))
	}
	if c.IPv6Prefix < 16 || c.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("ipv6_prefix: %d is not 16 to 128", c.IPv6Prefix))
	}
	if !validCookieName(c.Cookie) {
		errs = append(errs, fmt.Errorf("cookie: %q is not a cookie name", c.Cookie))
	}
	return errors.Join(errs...)
}

// validCookieName: RFC 6265's token characters.
func validCookieName(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return s != ""
}

func (l *RateLimit) validate() error {
	var errs []error
	kind, name, _ := strings.Cut(l.Key, ":")
	switch {
	case l.Key == "src", l.Key == "ja4", l.Key == "src+ja4":
	case (kind == "header" || kind == "cookie") && name != "":
	default:
		errs = append(errs, fmt.Errorf("key: %q is not src, ja4, src+ja4, header:NAME or cookie:NAME", l.Key))
	}
	if l.Requests < 1 {
		errs = append(errs, errors.New("requests: must be at least 1"))
	}
	if l.Period < time.Millisecond {
		errs = append(errs, errors.New("period: must be at least 1ms"))
	}
	if l.Action != "deny" && l.Action != "tarpit" && l.Action != "challenge" {
		errs = append(errs, fmt.Errorf("action: %q is not deny, tarpit or challenge", l.Action))
	}
	if l.Tarpit < 0 || l.Size < 0 {
		errs = append(errs, errors.New("tarpit and size must not be negative"))
	}
	return errors.Join(errs...)
}
