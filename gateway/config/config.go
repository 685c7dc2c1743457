// Package config is the gateway's configuration file: it composes the leaf
// packages' own Config types (waf, balancer, certs) with the gateway's
// listeners, routes, limits and logging, decodes YAML strictly (unknown keys
// are errors), fills safe defaults and reports every problem as
// FILE:LINE: key.path: message.
package config

import (
	"fmt"
	"os"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/audit"
	"github.com/sekisho/sekisho/gateway/forward"
	"github.com/sekisho/sekisho/gateway/quiclb"
	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/alert"
)

// Config is the whole configuration file.
type Config struct {
	Frontends []Frontend `yaml:"frontends"`
	Backends  []Backend  `yaml:"backends"`
	WAF       WAF        `yaml:"waf"`
	Log       Log        `yaml:"log"`
	// Admin is the operators' listener (metrics); off when not set.
	Admin *Admin `yaml:"admin"`
	// AuditLog, when set, writes blocked (or flagged) transactions as JSON lines.
	AuditLog *audit.Config `yaml:"audit_log"`
	// Alerts, when set, sends security and operations events to webhooks.
	Alerts *alert.Config `yaml:"alerts"`
	// Redis, when set, holds the stick tables and rate-limit counts that
	// the replicas share; without it each replica keeps its own.
	Redis *Redis `yaml:"redis"`
	// Challenge sets how clearances are signed and kept (routes' challenge).
	Challenge *Challenge `yaml:"challenge"`
	// IPLists are the address lists that frontends' and routes' access
	// rules name.
	IPLists []IPList `yaml:"ip_lists"`
	// GeoIP gives access rules and the access log each client's country
	// and autonomous system.
	GeoIP *GeoIP `yaml:"geoip"`
	// CrowdSec makes sekisho a bouncer of a CrowdSec Local API, whose
	// decisions access rules with crowdsec: true apply.
	CrowdSec *CrowdSec `yaml:"crowdsec"`
	// Tracing takes part in W3C trace context and, with an OTLP endpoint,
	// exports a span per request (Tracing).
	Tracing *Tracing `yaml:"tracing"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGINT/SIGTERM before their connections are closed.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// DrainGrace is how long /readyz answers 503 on SIGINT/SIGTERM while
	// the gateway still serves, before it closes its listeners: long enough
	// for a load balancer's health checks to take it out (interval ×
	// unhealthy threshold), so no client meets a closed port. Default 0.
	DrainGrace time.Duration `yaml:"drain_grace"`
	// QUICServerID is this replica's server ID behind a load balancer that
	// routes QUIC by connection ID (AWS's NLB QUIC and TCP_QUIC listeners,
	// QUIC-LB): "0x" and 16 lowercase hexadecimal digits, as the target
	// was registered. Empty, the SEKISHO_QUIC_SERVER_ID environment
	// variable gives it; without either, connection IDs are random. Read
	// at start: a reload keeps the ID the QUIC sockets were opened with.
	QUICServerID string `yaml:"quic_server_id"`
}

// Frontend is a set of listeners that share routes and limits.
type Frontend struct {
	Name string `yaml:"name"`
	Bind []Bind `yaml:"bind"`
	// Mode is http (the default) or tcp: a layer-4 frontend for services
	// that do not speak HTTP, every connection joined to a server of
	// Backend (no routes, no WAF).
	Mode string `yaml:"mode"`
	// Backend is a tcp frontend's backend.
	Backend string `yaml:"backend"`
	// SendProxy is a tcp frontend's PROXY header to the server: "", v1 or v2.
	SendProxy string `yaml:"send_proxy"`
	// IdleTimeout closes a tcp frontend's connection once nothing moved
	// either way for this long (default 10m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// TLS holds the certificates for the binds with tls: true.
	TLS *certs.Config `yaml:"tls"`
	// Routes are tried in order; the first whose host and path prefix match wins.
	Routes []Route `yaml:"routes"`
	// DefaultBackend takes requests that no route matches (HAProxy's default_backend).
	DefaultBackend string `yaml:"default_backend"`
	// DefaultWAFPolicy inspects requests sent to DefaultBackend.
	DefaultWAFPolicy string `yaml:"default_waf_policy"`
	// DefaultRateLimit limits requests sent to DefaultBackend.
	DefaultRateLimit *RateLimit `yaml:"default_rate_limit"`
	// DefaultChallenge is the default route's challenge (Route.Challenge).
	DefaultChallenge *RouteChallenge `yaml:"default_challenge"`
	// Ban, when set, bans the frontend's clients that misbehave (Ban).
	Ban *Ban `yaml:"ban"`
	// Access is who may come in, by address list, country and AS (Access);
	// a route's own access replaces it for that route.
	Access *Access `yaml:"access"`
	// JA4Header, when set, names a request header that carries the client's
	// TLS fingerprint (JA4) to the servers; a client's own header of that
	// name is removed.
	JA4Header string `yaml:"ja4_header"`
	// JA4H turns on the HTTP client fingerprint (FoxIO's JA4H): logged as
	// ja4h, TX:sekisho_ja4h to WAF rules. Off by default: FoxIO licenses
	// JA4H (unlike JA4) under its FoxIO License 1.1, and Go's server does
	// not keep the order the headers came in, so JA4H's second part here is
	// over the names sorted, comparable only with sekisho's own.
	JA4H   bool   `yaml:"ja4h"`
	Limits Limits `yaml:"limits"`
	// RedirectHTTPS answers requests on the plain-HTTP binds with a 308 to
	// the same URL over HTTPS, on the port of the first TLS bind; ACME
	// HTTP-01 challenges (/.well-known/acme-challenge/) are not redirected.
	RedirectHTTPS bool `yaml:"redirect_https"`
	// HSTS, when set, puts Strict-Transport-Security on every response
	// over TLS (replacing a backend's).
	HSTS *HSTS `yaml:"hsts"`
	// MonitorURI, when set, is a path the frontend answers itself with the
	// gateway's readiness (200 or 503), before routing and the WAF, as
	// HAProxy's monitor-uri: for load balancers that check the traffic port.
	MonitorURI string `yaml:"monitor_uri"`
	// Capture names the request and response headers and the cookie that
	// access log lines carry, as HAProxy's capture lines (len truncates).
	Capture *accesslog.Captures `yaml:"capture"`
	// ClientIP, when set, trusts proxies in front to report the client.
	ClientIP *ClientIP `yaml:"client_ip"`
	// HTTP3 also serves HTTP/3 over QUIC on the UDP port of each TLS bind,
	// and TCP responses over TLS advertise it (Alt-Svc).
	HTTP3 bool `yaml:"http3"`
}

// HSTS is a Strict-Transport-Security policy (RFC 6797).
type HSTS struct {
	// MaxAge is how long browsers keep to HTTPS; default one year.
	MaxAge            time.Duration `yaml:"max_age"`
	IncludeSubdomains bool          `yaml:"include_subdomains"`
	// Preload asks browsers' preload lists to include the domain: it
	// requires include_subdomains and a max_age of at least one year.
	Preload bool `yaml:"preload"`
}

// DefaultHSTSMaxAge is one year, as hstspreload.org asks.
const DefaultHSTSMaxAge = 365 * 24 * time.Hour

// Header is the Strict-Transport-Security header value.
func (h HSTS) Header() string {
	v := fmt.Sprintf("max-age=%d", int64(h.MaxAge/time.Second))
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// Bind is one listening address.
type Bind struct {
	Address string `yaml:"address"`
	TLS     bool   `yaml:"tls"`
	// ProxyProtocol, when set, reads a PROXY protocol header (v1 or v2)
	// from the peers it trusts, such as an AWS NLB.
	ProxyProtocol *ProxyProtocol `yaml:"proxy_protocol"`
}

// ProxyProtocol is a bind's PROXY protocol policy.
type ProxyProtocol struct {
	// Trusted lists the peers (CIDRs or addresses) that may send a header;
	// a header from any other peer closes the connection.
	Trusted []string `yaml:"trusted"`
	// Mode is require (the default: a trusted peer's connection without a
	// header is closed) or optional.
	Mode string `yaml:"mode"`
	// HeaderTimeout bounds the wait for the header (default 5s).
	HeaderTimeout time.Duration `yaml:"header_timeout"`
}

// ClientIP says whom a frontend believes about the client's address.
type ClientIP struct {
	// TrustedProxies are the proxies (CIDRs or addresses) whose report of
	// the client is believed; from any other peer, none is.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Header is where they report it: x-forwarded-for (the default),
	// forwarded (RFC 7239), or a header holding one address, such as
	// CF-Connecting-IP or X-Real-IP.
	Header string `yaml:"header"`
}

// Route sends requests for a host and path prefix to a backend through a WAF policy.
type Route struct {
	// Host matches the request's host, case-insensitively, without port;
	// "*.example.com" matches any subdomain; empty matches every host.
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	Backend    string `yaml:"backend"`
	WAFPolicy  string `yaml:"waf_policy"`
	// RateLimit, when set, caps the route's requests per client key.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Challenge, when set, lets through only clients with a clearance:
	// the others get the challenge (see Challenge).
	Challenge *RouteChallenge `yaml:"challenge"`
	// Access replaces the frontend's access rules for this route.
	Access *Access `yaml:"access"`
}

// IPList is a named list of addresses and CIDR prefixes, one per line
// (# comments): from a file (watched, reloaded when it changes), from a URL
// (fetched every Interval, conditionally), or inline. A list that cannot be
// read at start is a config error; later, the last good copy stays.
type IPList struct {
	Name string `yaml:"name"`
	File string `yaml:"file"`
	URL  string `yaml:"url"`
	// Interval is how often a file is checked (default 2s) or a URL
	// fetched again (default 1h).
	Interval time.Duration `yaml:"interval"`
	// MaxBytes bounds a URL's list (default 64 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// CacheFile keeps a URL's last good copy, for a start without network.
	CacheFile string   `yaml:"cache_file"`
	CIDRs     []string `yaml:"cidrs"`
}

// CrowdSec is a CrowdSec Local API that sekisho pulls decisions from (its
// stream mode): ban becomes deny, captcha becomes the challenge. Each
// replica keeps its own copy, refreshed every Interval; while the LAPI
// is out of reach the last decisions stay, and nothing else is refused.
type CrowdSec struct {
	URL string `yaml:"url"` // e.g. http://127.0.0.1:8080
	// APIKeyFile holds the bouncer's key (cscli bouncers add NAME); without
	// it, the environment's SEKISHO_CROWDSEC_API_KEY.
	APIKeyFile string        `yaml:"api_key_file"`
	Interval   time.Duration `yaml:"interval"` // default 10s
}

// Tracing is the gateway's part in distributed traces. With it, a request
// that carries a W3C traceparent gets a span of the gateway's own (its
// child), and the servers get a traceparent naming that span; one without
// gets a new trace when Start is set. Without tracing:, trace headers pass
// through untouched.
type Tracing struct {
	// Start begins a trace for a request that carries none.
	Start bool `yaml:"start"`
	// OTLPEndpoint is an OTLP/HTTP traces URL (http://collector:4318/v1/traces);
	// without it, spans are made for the context but not exported.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of new traces exported (default 1); a
	// request's own sampled flag decides for traces it brings.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName names the gateway in the traces (default sekisho).
	ServiceName string `yaml:"service_name"`
	// ExportInterval is the longest a finished span waits to be sent
	// (default 5s).
	ExportInterval time.Duration `yaml:"export_interval"`
}

// CrowdSecAPIKeyEnv names the environment variable read when api_key_file is not set.
const CrowdSecAPIKeyEnv = "SEKISHO_CROWDSEC_API_KEY"

// GeoIP is MaxMind-format databases (GeoLite2 / GeoIP2 Country and ASN).
type GeoIP struct {
	CountryDB string `yaml:"country_db"`
	ASNDB     string `yaml:"asn_db"`
}

// Access is an access step's rules by the client's address (the one the
// gateway decided: trusted X-Forwarded-For or PROXY). Allow comes first
// and skips the rest of the access step (bans, rate limit, challenge; the
// WAF still inspects); then deny (403) and challenge (the route's
// challenge, or pow).
type Access struct {
	Allow              []string `yaml:"allow"` // list names
	Deny               []string `yaml:"deny"`
	Challenge          []string `yaml:"challenge"`
	AllowCountries     []string `yaml:"allow_countries"` // ISO 3166-1 alpha-2
	DenyCountries      []string `yaml:"deny_countries"`
	ChallengeCountries []string `yaml:"challenge_countries"`
	AllowASNs          []uint   `yaml:"allow_asns"`
	DenyASNs           []uint   `yaml:"deny_asns"`
	ChallengeASNs      []uint   `yaml:"challenge_asns"`
	// CrowdSec applies the CrowdSec LAPI's decisions (crowdsec:), after
	// the deny rules and before the challenge ones.
	CrowdSec bool `yaml:"crowdsec"`
}

// RouteChallenge is what a route asks of a client without clearance.
type RouteChallenge struct {
	// Mode is pow (a proof of work in a script), js (a script must run),
	// cookie (a cookie must be kept across a redirect) or 429 (no page:
	// for API clients, which get 429 unless they hold a clearance).
	Mode string `yaml:"mode"`
	// Difficulty is pow's work, in leading zero bits of a SHA-256 (default
	// 16: about 65,000 hashes, under a second in a browser; at most 24).
	Difficulty int `yaml:"difficulty"`
	// WhenWAFScore, when set, challenges only the requests the WAF lets
	// through with an inbound anomaly score of at least this (below the
	// policy's blocking threshold: suspicious, not blocked), instead of
	// every request without a clearance.
	WhenWAFScore int `yaml:"when_waf_score"`
}

// Ban bans a client (its address) that collects WAFBlocks WAF blocks, or
// Errors4xx 4xx responses, or trips a rate limit RateLimited times within
// Within, for Duration. Counts and bans are kept in Redis when one is
// configured, so a ban made on one replica holds on every one; without
// Redis, or while it is down, each replica keeps its own.
type Ban struct {
	WAFBlocks   int `yaml:"waf_blocks"`   // 0: not counted
	Errors4xx   int `yaml:"errors_4xx"`   // 0: not counted
	RateLimited int `yaml:"rate_limited"` // 0: not counted
	// Within is the period the counts are over (default 1m).
	Within time.Duration `yaml:"within"`
	// Duration is how long a ban lasts (default 10m).
	Duration time.Duration `yaml:"duration"`
	// Action is deny (403, the default) or challenge (a pow challenge, or
	// the route's own, which the client must pass even with a clearance
	// of a lighter one).
	Action string `yaml:"action"`
	// Size bounds the clients counted and banned at once (default 100000).
	Size int `yaml:"size"`
	// Key is what is banned: src (the client's address, the default) or
	// src+ja4 (the address with its TLS fingerprint: one client behind a
	// shared address, a NAT, rather than all of them).
	Key string `yaml:"key"`
}

// SetDefaults fills what is not set.
func (b *Ban) SetDefaults() {
	setDuration(&b.Within, time.Minute)
	setDuration(&b.Duration, 10*time.Minute)
	if b.Action == "" {
		b.Action = "deny"
	}
	if b.Key == "" {
		b.Key = "src"
	}
	if b.Size == 0 {
		b.Size = DefaultRateLimitSize
	}
}

// Challenge is how clearances are made, for every route with a challenge.
type Challenge struct {
	// KeyFile holds the key clearances are signed with (32 bytes or more),
	// the same on every replica. Without it the key is made once for the
	// fleet in Redis (redis:), or per process without Redis.
	KeyFile string `yaml:"key_file"`
	// Cookie names the clearance cookie (default sekisho_clearance).
	Cookie string `yaml:"cookie"`
	// TTL is how long a clearance lasts (default 1h).
	TTL time.Duration `yaml:"ttl"`
	// IPv4Prefix and IPv6Prefix are the client networks a clearance is
	// bound to (default /24 and /64): a clearance used from another
	// network is refused.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// BindJA4 binds clearances to the client's TLS fingerprint too: a
	// clearance copied into another TLS client is refused.
	BindJA4 bool `yaml:"bind_ja4"`
}

// SetDefaults fills what is not set.
func (c *Challenge) SetDefaults() {
	if c.Cookie == "" {
		c.Cookie = DefaultChallengeCookie
	}
	setDuration(&c.TTL, DefaultChallengeTTL)
	if c.IPv4Prefix == 0 {
		c.IPv4Prefix = 24
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = 64
	}
}

// Defaults of clearances.
const (
	DefaultChallengeCookie = "sekisho_clearance"
	DefaultChallengeTTL    = time.Hour
)

// RateLimit caps requests per key over a period, counted in a stick table
// (in Redis when one is configured, so the cap holds for the whole fleet),
// before the WAF spends anything on them. Every request counts, refused
// ones too, as HAProxy's http_req_rate does: a client that keeps knocking
// stays refused.
type RateLimit struct {
	// Name names the counting table: the same on every replica. Default
	// "FRONTEND/routes[N]" or "FRONTEND/default".
	Name string `yaml:"name"`
	// Key is what is counted: src (the client IP, the default), ja4 (the
	// client's TLS fingerprint), src+ja4, header:NAME or cookie:NAME. A
	// request without the header, cookie or fingerprint is not limited.
	Key      string        `yaml:"key"`
	Requests int           `yaml:"requests"`
	Period   time.Duration `yaml:"period"` // default 10s
	// Action is deny (429 with Retry-After, the default), tarpit (the
	// request is held for Tarpit, then 429), as HAProxy's, or challenge (a
	// client over the limit must hold a clearance: the route's challenge,
	// or pow).
	Action string        `yaml:"action"`
	Tarpit time.Duration `yaml:"tarpit"` // default 5s
	// Size bounds the keys counted at once (default 100000); the least
	// recently seen go first.
	Size int `yaml:"size"`
}

// Defaults of a rate limit.
const (
	DefaultRateLimitPeriod = 10 * time.Second
	DefaultTarpit          = 5 * time.Second
	DefaultRateLimitSize   = 100_000
)

func (l *RateLimit) setDefaults(name string) {
	if l.Name == "" {
		l.Name = name
	}
	if l.Key == "" {
		l.Key = "src"
	}
	setDuration(&l.Period, DefaultRateLimitPeriod)
	if l.Action == "" {
		l.Action = "deny"
	}
	setDuration(&l.Tarpit, DefaultTarpit)
	if l.Size == 0 {
		l.Size = DefaultRateLimitSize
	}
}

// Limits bound what a client may make a frontend hold or wait for.
type Limits struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	// QUICRetryThreshold is how many QUIC handshakes may be in progress
	// before new clients must first prove their address with a Retry (an
	// extra round trip that spoofed sources cannot answer), as HAProxy's
	// tune.quic.retry-threshold.
	QUICRetryThreshold int `yaml:"quic_retry_threshold"`
}

// Backend is a balancer pool plus how the gateway talks to its servers.
type Backend struct {
	balancer.Config `yaml:",inline"`
	// ConnectTimeout bounds a TCP connect to one server; a server that does not
	// answer in time is skipped like one that refuses.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseHeaderTimeout bounds the wait for a server's response headers.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// MaxIdleConnsPerServer is the keep-alive pool size per server.
	MaxIdleConnsPerServer int `yaml:"max_idle_conns_per_server"`
	// Retries is how many other servers a request may try after the first
	// (HAProxy's retries, default 3): always on a failed connect, and for
	// what RetryOn names.
	Retries *int `yaml:"retries"`
	// RetryOn lists HAProxy retry-on keywords that also retry idempotent
	// requests whose body can be sent again: empty-response,
	// response-timeout, 404, 408, 425, 500-504. Default: conn-failure only.
	RetryOn []string `yaml:"retry_on"`
	// SendClientIP says how servers learn the client's address: headers
	// (xff, the default), a PROXY header (proxy_v1, proxy_v2) or nothing.
	SendClientIP forward.ClientOut `yaml:"send_client_ip"`
	// Source "client" connects to the servers from the client's own
	// address (HAProxy's usesrc clientip): Linux, CAP_NET_ADMIN, and policy
	// routing on the gateway (deploy/transparent-source.md).
	Source string `yaml:"source"`
}

// WAF holds the WAF policies that routes refer to by name.
type WAF struct {
	Policies []waf.Config `yaml:"policies"`
}

// Admin is a listener apart from the public ones, for operators.
type Admin struct {
	// Address is host:port; keep it on loopback unless a token is set.
	Address string `yaml:"address"`
	// TokenFile holds the bearer token every request must carry; without
	// it, the SEKISHO_ADMIN_TOKEN environment variable; without either,
	// only a loopback address is allowed, and it asks for no token.
	TokenFile string `yaml:"token_file"`
}

// Redis is the server the replicas share state through: standalone,
// Sentinel (master_name) or Cluster (cluster: true), as AWS ElastiCache runs it.
type Redis struct {
	// Addresses are host:port: the server; the Sentinels with
	// MasterName; seed nodes with Cluster.
	Addresses  []string `yaml:"addresses"`
	MasterName string   `yaml:"master_name"`
	Cluster    bool     `yaml:"cluster"`
	// Username is an ACL user; PasswordFile holds the password (else the
	// SEKISHO_REDIS_PASSWORD environment variable). Neither is ever logged.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// SentinelPasswordFile holds the Sentinels' own password, if they have one.
	SentinelPasswordFile string `yaml:"sentinel_password_file"`
	DB                   int    `yaml:"db"`
	// TLS, when set, speaks TLS (1.2 or later) to Redis.
	TLS *RedisTLS `yaml:"tls"`
	// Prefix starts every key, so several deployments can share a server.
	Prefix string `yaml:"prefix"`
	// Timeout bounds each Redis call on the request path: the most Redis
	// can add to a request before the replica answers from its own table.
	Timeout time.Duration `yaml:"timeout"`
	// NearCacheTTL is how long a replica may answer a stick-table lookup
	// from its local copy (0: default 1s; negative: never).
	NearCacheTTL time.Duration `yaml:"near_cache_ttl"`
}

// RedisTLS is how the gateway checks the Redis server's certificate.
type RedisTLS struct {
	CAFile     string `yaml:"ca_file"` // default: the system's roots
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile, when set, are the gateway's client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RedisPasswordEnv names the environment variable read when password_file is not set.
const RedisPasswordEnv = "SEKISHO_REDIS_PASSWORD"

// Redis defaults.
const (
	DefaultRedisPrefix       = "sekisho:"
	DefaultRedisTimeout      = 50 * time.Millisecond
	DefaultRedisNearCacheTTL = time.Second
)

// AdminTokenEnv names the environment variable read when token_file is not set.
const AdminTokenEnv = "SEKISHO_ADMIN_TOKEN"

// QUICServerIDEnv names the environment variable read when quic_server_id
// is not set: one image, or one config, serves every replica.
const QUICServerIDEnv = "SEKISHO_QUIC_SERVER_ID"

// ServerID is the replica's QUIC server ID, from quic_server_id or else
// QUICServerIDEnv; ok is false without either. Validate reports a bad one.
func (c *Config) ServerID() (id quiclb.ServerID, ok bool, err error) {
	s, key := c.QUICServerID, "quic_server_id"
	if s == "" {
		s, key = os.Getenv(QUICServerIDEnv), "quic_server_id (from "+QUICServerIDEnv+")"
	}
	if s == "" {
		return id, false, nil
	}
	if id, err = quiclb.ParseServerID(s); err != nil {
		return id, false, fmt.Errorf("%s: %w", key, err)
	}
	return id, true, nil
}

// Log sets where logs go.
type Log struct {
	// Level is the lowest level of the gateway's own log: debug, info, warn, error.
	Level string `yaml:"level"`
	// Access is where access log lines go: stdout, stderr, off, or a file path.
	Access string `yaml:"access"`
	// Format is json (the default: stable field names, docs/operations.md) or
	// httplog (HAProxy's `option httplog` line).
	Format string `yaml:"format"`
	// LogFormat, when set, is a line of HAProxy's log variables
	// (%ci %cp %tr %ft %b %s %TR %Tw %Tc %Tr %Ta %ST %B %CC %CS %tsc %ac
	// %fc %bc %sc %rc %sq %bq %hr %hs %{+Q}r %sslv %sslc %ID %Tt %Tq ...).
	LogFormat string `yaml:"log_format"`
}

// DefaultPolicy is the WAF policy that exists even when none is configured:
// CRS at paranoia level 1, blocking.
const DefaultPolicy = "default"

// HeaderReadSlack is what net/http's server reads past its MaxHeaderBytes
// (its bufio slop): the gateway gives it max_header_bytes less this, so
// that the limit is exact, and so max_header_bytes must exceed it.
const HeaderReadSlack = 4096

// Defaults, in one place. They follow what HAProxy, nginx and Caddy ship
// with, on the safe side.
const (
	DefaultReadHeaderTimeout     = 10 * time.Second // HAProxy timeout http-request
	DefaultReadTimeout           = 60 * time.Second // the whole request, body included (nginx client_body_timeout)
	DefaultIdleTimeout           = 60 * time.Second // keep-alive (nginx 75s, HAProxy keep-alive follows http-request)
	DefaultMaxHeaderBytes        = 64 << 10         // request line + headers; nginx allows 4x8 KiB, Go 1 MiB
	DefaultQUICRetryThreshold    = 100              // HAProxy's tune.quic.retry-threshold
	DefaultConnectTimeout        = 5 * time.Second  // HAProxy timeout connect
	DefaultResponseHeaderTimeout = 60 * time.Second // HAProxy timeout server
	DefaultMaxIdleConnsPerServer = 128
	DefaultRetries               = 3
	DefaultShutdownTimeout       = 30 * time.Second
	DefaultProxyHeaderTimeout    = 5 * time.Second
	DefaultTCPIdleTimeout        = 10 * time.Minute
)

// SetDefaults fills every field a user may leave out.
func (c *Config) SetDefaults() {
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Access == "" {
		c.Log.Access = "stdout"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Alerts != nil {
		c.Alerts.SetDefaults()
	}
	if c.AuditLog != nil {
		c.AuditLog.SetDefaults()
	}
	if r := c.Redis; r != nil {
		if r.Prefix == "" {
			r.Prefix = DefaultRedisPrefix
		}
		setDuration(&r.Timeout, DefaultRedisTimeout)
		setDuration(&r.NearCacheTTL, DefaultRedisNearCacheTTL)
	}
	for i := range c.Frontends {
		f := &c.Frontends[i]
		l := &f.Limits
		setDuration(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
		setDuration(&l.ReadTimeout, DefaultReadTimeout)
		setDuration(&l.IdleTimeout, DefaultIdleTimeout)
		if l.MaxHeaderBytes == 0 {
			l.MaxHeaderBytes = DefaultMaxHeaderBytes
		}
		if l.QUICRetryThreshold == 0 {
			l.QUICRetryThreshold = DefaultQUICRetryThreshold
		}
		if f.TLS != nil {
			f.TLS.SetDefaults()
		}
		if f.HSTS != nil {
			setDuration(&f.HSTS.MaxAge, DefaultHSTSMaxAge)
		}
		if f.Mode == "" {
			f.Mode = "http"
		}
		if f.Mode == "tcp" {
			setDuration(&f.IdleTimeout, DefaultTCPIdleTimeout)
		}
		for j := range f.Bind {
			if pp := f.Bind[j].ProxyProtocol; pp != nil {
				if pp.Mode == "" {
					pp.Mode = "require"
				}
				setDuration(&pp.HeaderTimeout, DefaultProxyHeaderTimeout)
			}
		}
		for j := range f.Routes {
			r := &f.Routes[j]
			if r.PathPrefix == "" {
				r.PathPrefix = "/"
			}
			if r.WAFPolicy == "" {
				r.WAFPolicy = DefaultPolicy
			}
			if r.RateLimit != nil {
				r.RateLimit.setDefaults(fmt.Sprintf("%s/routes[%d]", f.Name, j))
			}
		}
		if f.DefaultRateLimit != nil {
			f.DefaultRateLimit.setDefaults(f.Name + "/default")
		}
		if f.Ban != nil {
			f.Ban.SetDefaults()
		}
		if f.DefaultBackend != "" && f.DefaultWAFPolicy == "" && f.Mode == "http" {
			f.DefaultWAFPolicy = DefaultPolicy
		}
	}
	if c.Challenge != nil {
		c.Challenge.SetDefaults()
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		b.Config.SetDefaults()
		setDuration(&b.ConnectTimeout, DefaultConnectTimeout)
		setDuration(&b.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
		if b.MaxIdleConnsPerServer == 0 {
			b.MaxIdleConnsPerServer = DefaultMaxIdleConnsPerServer
		}
		if b.Retries == nil {
			n := DefaultRetries
			b.Retries = &n
		}
	}
	hasDefault := false
	for i := range c.WAF.Policies {
		c.WAF.Policies[i].SetDefaults()
		hasDefault = hasDefault || c.WAF.Policies[i].Name == DefaultPolicy
	}
	if !hasDefault {
		p := waf.Config{Name: DefaultPolicy}
		p.SetDefaults()
		c.WAF.Policies = append(c.WAF.Policies, p)
	}
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}
