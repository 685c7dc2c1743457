package alert

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Config is the `alerts` section: the webhooks and how events are grouped
// before they reach them.
type Config struct {
	// Endpoints are the webhooks; each gets every alert its filter lets through.
	Endpoints []Endpoint `yaml:"endpoints"`
	// Window is how long the repeats of an event are counted before they go
	// out as one alert (the first of them goes out at once).
	Window time.Duration `yaml:"window"`
	// QueueSize bounds, per endpoint, the alerts waiting to be sent; past
	// it they are dropped and counted, so a dead receiver costs bounded memory.
	QueueSize int `yaml:"queue_size"`
	// MaxKeys bounds the distinct aggregation keys held at once, so that an
	// attack from many addresses cannot grow memory without bound; events
	// of a new key past it are dropped and counted.
	MaxKeys int `yaml:"max_keys"`
	// CertExpiring is how close to its expiry a served certificate raises
	// cert.expiring (checked at start and hourly, once a day per certificate).
	CertExpiring time.Duration `yaml:"cert_expiring"`
}

// Endpoint is one webhook receiver.
type Endpoint struct {
	// Name identifies the endpoint in logs and metrics and derives the
	// environment variable of its secret: letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// URL is where alerts are POSTed (http or https). It is never logged
	// whole, since webhook URLs (Slack's) are credentials themselves.
	URL string `yaml:"url"`
	// Format is the payload: FormatJSON (default), FormatSlack or FormatTemplate.
	Format string `yaml:"format"`
	// Template is a Go text/template executed over the Alert, for FormatTemplate.
	Template string `yaml:"template"`
	// SecretFile holds the HMAC-SHA256 key that signs each request; without
	// it the key is read from the variable SecretEnv(Name), and with
	// neither requests go unsigned.
	SecretFile string `yaml:"secret_file"`
	// Events lists the event types sent: exact ("waf.block"), a category
	// ("waf.*") or "*"; empty means all.
	Events []string `yaml:"events"`
	// MinSeverity drops events below it: info (default), warning or critical.
	MinSeverity string `yaml:"min_severity"`
	// Timeout bounds each attempt, from connect to the end of the response.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetries is how many times a failed delivery is retried (network
	// errors, 429, 5xx) before the alert is dropped; nil means the default.
	MaxRetries *int `yaml:"max_retries"`
	// Backoff is the ceiling of the first retry's random wait; it doubles
	// with each retry up to MaxBackoff.
	Backoff time.Duration `yaml:"backoff"`
	// MaxBackoff caps the wait between attempts, Retry-After included: a
	// receiver asking to wait longer has the alert dropped rather than
	// stalling every alert behind it.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Headers are added to every request (an Authorization, a Content-Type
	// for a template); X-Sekisho-* are reserved.
	Headers map[string]string `yaml:"headers"`
}

// The payload formats.
const (
	FormatJSON     = "json"     // the Alert as JSON
	FormatSlack    = "slack"    // a Slack incoming-webhook message
	FormatTemplate = "template" // Endpoint.Template's output
)

// Defaults, chosen so that a burst costs a receiver two calls a window and
// a dead receiver costs the gateway at most QueueSize alerts of memory.
const (
	DefaultWindow     = 30 * time.Second
	DefaultQueueSize  = 1000
	DefaultMaxKeys    = 10000
	DefaultTimeout    = 5 * time.Second
	DefaultMaxRetries = 4
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = time.Minute
	// DefaultCertExpiring warns two weeks ahead: ACME renews a 90-day
	// certificate 30 days ahead, so by then renewal has failed for weeks.
	DefaultCertExpiring = 14 * 24 * time.Hour
	// MaxEndpoints is how many endpoints one config may have (a bit each in a mask).
	MaxEndpoints = 64
)

// SecretEnv names the environment variable read for an endpoint's secret
// when secret_file is not set: SEKISHO_ALERT_SECRET_ and the name in upper
// case with '-' as '_' ("ops-slack" → SEKISHO_ALERT_SECRET_OPS_SLACK).
func SecretEnv(name string) string {
	return "SEKISHO_ALERT_SECRET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// SetDefaults fills the fields a user may leave out.
func (c *Config) SetDefaults() {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.CertExpiring == 0 {
		c.CertExpiring = DefaultCertExpiring
	}
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		if e.Format == "" {
			e.Format = FormatJSON
		}
		if e.MinSeverity == "" {
			e.MinSeverity = SeverityInfo.String()
		}
		if e.Timeout == 0 {
			e.Timeout = DefaultTimeout
		}
		if e.MaxRetries == nil {
			n := DefaultMaxRetries
			e.MaxRetries = &n
		}
		if e.Backoff == 0 {
			e.Backoff = DefaultBackoff
		}
		if e.MaxBackoff == 0 {
			e.MaxBackoff = max(DefaultMaxBackoff, e.Backoff)
		}
	}
}

// Validate reports every problem in a config whose defaults are set, each
// as "key: message" ("endpoints[0].url: ...").
func (c *Config) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Window <= 0 {
		fail("window: must be positive")
	}
	if c.QueueSize < 1 {
		fail("queue_size: must be at least 1")
	}
	if c.MaxKeys < 1 {
		fail("max_keys: must be at least 1")
	}
	if len(c.Endpoints) > MaxEndpoints {
		fail("endpoints: %d is more than %d", len(c.Endpoints), MaxEndpoints)
	}
	names := map[string]bool{}
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		key := fmt.Sprintf("endpoints[%d]", i)
		switch {
		case e.Name == "":
			fail("%s.name: is required", key)
		case !validName(e.Name):
			fail("%s.name: %q may hold only letters, digits, '-' and '_'", key, e.Name)
		case names[e.Name]:
			fail("%s.name: duplicate endpoint name %q", key, e.Name)
		}
		names[e.Name] = true
		// The URL is never echoed: it may be the credential.
		if u, err := url.Parse(e.URL); e.URL == "" {
			fail("%s.url: is required", key)
		} else if err != nil {
			fail("%s.url: does not parse", key)
		} else if u.Scheme != "http" && u.Scheme != "https" {
			fail("%s.url: the scheme must be http or https", key)
		} else if u.Host == "" {
			fail("%s.url: has no host", key)
		}
		switch e.Format {
		case FormatJSON, FormatSlack:
			if e.Template != "" {
				fail("%s.template: is used only with format: template", key)
			}
		case FormatTemplate:
			if e.Template == "" {
				fail("%s.template: is required with format: template", key)
			} else if _, err := parseTemplate(e.Name, e.Template); err != nil {
				fail("%s.template: %v", key, err)
			}
		default:
			fail("%s.format: %q is not one of json, slack, template", key, e.Format)
		}
		if e.SecretFile != "" {
			if _, err := os.Stat(e.SecretFile); err != nil {
				fail("%s.secret_file: %v", key, err)
			}
		}
		for j, ev := range e.Events {
			if !validFilter(ev) {
				fail("%s.events[%d]: %q is not an event type (%s), a category (%s) or *", key, j, ev,
					strings.Join(EventTypes(), ", "), strings.Join(categories(), ", "))
			}
		}
		if _, err := ParseSeverity(e.MinSeverity); err != nil {
			fail("%s.min_severity: %v", key, err)
		}
		if e.Timeout <= 0 {
			fail("%s.timeout: must be positive", key)
		}
		if e.MaxRetries == nil || *e.MaxRetries < 0 || *e.MaxRetries > 20 {
			fail("%s.max_retries: must be within 0..20", key)
		}
		if e.Backoff <= 0 {
			fail("%s.backoff: must be positive", key)
		}
		if e.MaxBackoff < e.Backoff {
			fail("%s.max_backoff: %s is below backoff %s", key, e.MaxBackoff, e.Backoff)
		}
		for _, h := range slices.Sorted(maps.Keys(e.Headers)) {
			switch {
			case !validHeaderName(h):
				fail("%s.headers: %q is not a header name", key, h)
			case strings.HasPrefix(strings.ToLower(h), "x-sekisho-"):
				fail("%s.headers: %s is reserved", key, h)
			case strings.ContainsAny(e.Headers[h], "\r\n\x00"):
				fail("%s.headers: the value of %s holds a line break", key, h)
			}
		}
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// validHeaderName checks RFC 9110's token.
func validHeaderName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return s != ""
}

func validFilter(f string) bool {
	if f == "*" {
		return true
	}
	if cat, ok := strings.CutSuffix(f, ".*"); ok {
		return slices.Contains(categories(), cat)
	}
	return knownType(f)
}
