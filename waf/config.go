package waf

import (
	"errors"
	"fmt"
)

// Mode says what a policy does with a request that its rules flag.
type Mode string

// The policy modes.
const (
	ModeBlock  Mode = "block"  // flagged requests are refused
	ModeDetect Mode = "detect" // flagged requests are logged and passed
	ModeOff    Mode = "off"    // no inspection at all
)

// Body limit actions: what happens to a request body over the limit.
const (
	LimitReject         = "reject"          // 413, the body never reaches a backend
	LimitProcessPartial = "process_partial" // the first limit bytes are inspected, the rest passes uninspected (logged)
)

// Config is one WAF policy.
type Config struct {
	Name string `yaml:"name"`
	Mode Mode   `yaml:"mode"`
	// ParanoiaLevel is CRS's blocking paranoia level, 1 to 4.
	ParanoiaLevel int `yaml:"paranoia_level"`
	// InboundAnomalyThreshold and OutboundAnomalyThreshold are CRS's
	// anomaly score thresholds (CRS defaults: 5 and 4).
	InboundAnomalyThreshold  int `yaml:"inbound_anomaly_threshold"`
	OutboundAnomalyThreshold int `yaml:"outbound_anomaly_threshold"`
	// RequestBodyLimit is the largest request body, in bytes, that is
	// accepted and inspected whole.
	RequestBodyLimit int64 `yaml:"request_body_limit"`
	// RequestBodyNoFilesLimit bounds, in bytes, what CRS inspects as
	// arguments: a body that is not multipart, or the text fields of a
	// multipart one (file contents count only toward RequestBodyLimit).
	// Inspection costs CPU in proportion to it (~0.5 s for 1 MiB of form
	// data), so it is the inspection budget; past it, 413. ModSecurity's
	// SecRequestBodyNoFilesLimit, with its default.
	RequestBodyNoFilesLimit int64 `yaml:"request_body_no_files_limit"`
	// RequestBodyLimitAction is LimitReject (default) or LimitProcessPartial.
	RequestBodyLimitAction string `yaml:"request_body_limit_action"`
	// Directives are extra SecLang lines loaded after CRS (exclusions, custom rules).
	Directives string `yaml:"directives"`
	// RulesDir is a folder of the operator's rule files (CRS setup
	// overrides, exclusions before and after CRS, CRS plugins, custom
	// rules; see rulesdir.go for the layout), watched and reloaded live.
	RulesDir string `yaml:"rules_dir"`
	// CRSDir, when set, takes OWASP CRS from a folder on disk (a
	// coreruleset release: crs-setup.conf.example and rules/) instead of
	// the embedded CRS v4, for a version or a patch of the operator's own.
	CRSDir string `yaml:"crs_dir"`
	// InspectResponse runs the response headers through CRS's response
	// rules (default true); false skips them for this policy.
	InspectResponse *bool `yaml:"inspect_response"`
	// InspectResponseBody runs the first ResponseBodyLimit bytes of a text
	// response through CRS's response body rules (default true; needs
	// InspectResponse). False keeps responses streaming untouched.
	InspectResponseBody *bool `yaml:"inspect_response_body"`
	// ResponseBodyLimit is how much of a response body, in bytes, is held
	// and inspected (decoded, for a gzip, deflate, br or zstd body); the rest streams
	// on uninspected. An inspected response holds a few times this (the
	// bytes as sent, the decoded text, the WAF's copy), pooled.
	ResponseBodyLimit int64 `yaml:"response_body_limit"`
	// ResponseBodyTypes are the media types whose bodies are inspected:
	// "type/subtype", "type/*" or a structured syntax suffix "+json".
	// text/event-stream is never held, whatever this says.
	ResponseBodyTypes []string `yaml:"response_body_types"`
	// SemanticChecks confirms the matches of CRS's word-based rules with a
	// semantic check before they score (semantic.go; default true); false
	// scores every CRS match as stock CRS does.
	SemanticChecks *bool `yaml:"semantic_checks"`
	// RulesOff turns detections off: CRS or sekisho rule ids, id ranges,
	// or sekisho detection names ("sqli", "xss.header", "semantic.shell");
	// see rulesoff.go.
	RulesOff []string `yaml:"rules_off"`
}

// Defaults for a policy; they match CRS's own defaults and nginx's 1 MiB body limit.
const (
	DefaultParanoiaLevel            = 1
	DefaultInboundAnomalyThreshold  = 5
	DefaultOutboundAnomalyThreshold = 4
	DefaultRequestBodyLimit         = 1 << 20
	DefaultRequestBodyNoFilesLimit  = 128 << 10
	DefaultResponseBodyLimit        = 64 << 10
	// MaxResponseBodyLimit bounds what one response may make the gateway hold.
	MaxResponseBodyLimit = 16 << 20
	// MaxRequestBodyLimit bounds what one request may make the gateway hold in memory.
	MaxRequestBodyLimit = 1 << 30
)

// SetDefaults fills the fields a user may leave out.
func (c *Config) SetDefaults() {
	if c.InspectResponse == nil {
		yes := true
		c.InspectResponse = &yes
	}
	if c.InspectResponseBody == nil {
		yes := true
		c.InspectResponseBody = &yes
	}
	if c.SemanticChecks == nil {
		yes := true
		c.SemanticChecks = &yes
	}
	if c.ResponseBodyLimit == 0 {
		c.ResponseBodyLimit = DefaultResponseBodyLimit
	}
	if c.ResponseBodyTypes == nil {
		c.ResponseBodyTypes = DefaultResponseBodyTypes()
	}
	if c.Mode == "" {
		c.Mode = ModeBlock
	}
	if c.ParanoiaLevel == 0 {
		c.ParanoiaLevel = DefaultParanoiaLevel
	}
	if c.InboundAnomalyThreshold == 0 {
		c.InboundAnomalyThreshold = DefaultInboundAnomalyThreshold
	}
	if c.OutboundAnomalyThreshold == 0 {
		c.OutboundAnomalyThreshold = DefaultOutboundAnomalyThreshold
	}
	if c.RequestBodyLimit == 0 {
		c.RequestBodyLimit = DefaultRequestBodyLimit
	}
	if c.RequestBodyNoFilesLimit == 0 {
		c.RequestBodyNoFilesLimit = min(DefaultRequestBodyNoFilesLimit, c.RequestBodyLimit)
	}
	if c.RequestBodyLimitAction == "" {
		c.RequestBodyLimitAction = LimitReject
	}
}

// Validate reports every problem in the policy, each as "key: message".
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: is required"))
	}
	switch c.Mode {
	case ModeBlock, ModeDetect, ModeOff:
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not one of block, detect, off", c.Mode))
	}
	if c.ParanoiaLevel < 1 || c.ParanoiaLevel > 4 {
		errs = append(errs, fmt.Errorf("paranoia_level: %d is outside 1..4", c.ParanoiaLevel))
	}
	if c.InboundAnomalyThreshold < 1 {
		errs = append(errs, fmt.Errorf("inbound_anomaly_threshold: %d must be at least 1", c.InboundAnomalyThreshold))
	}
	if c.OutboundAnomalyThreshold < 1 {
		errs = append(errs, fmt.Errorf("outbound_anomaly_threshold: %d must be at least 1", c.OutboundAnomalyThreshold))
	}
	if c.RequestBodyLimit < 1 || c.RequestBodyLimit > MaxRequestBodyLimit {
		errs = append(errs, fmt.Errorf("request_body_limit: %d is outside 1..%d bytes", c.RequestBodyLimit, MaxRequestBodyLimit))
	}
	if c.RequestBodyNoFilesLimit < 1 || c.RequestBodyNoFilesLimit > c.RequestBodyLimit {
		errs = append(errs, fmt.Errorf("request_body_no_files_limit: %d is outside 1..request_body_limit (%d)", c.RequestBodyNoFilesLimit, c.RequestBodyLimit))
	}
	switch c.RequestBodyLimitAction {
	case LimitReject, LimitProcessPartial:
	default:
		errs = append(errs, fmt.Errorf("request_body_limit_action: %q is not one of %s, %s", c.RequestBodyLimitAction, LimitReject, LimitProcessPartial))
	}
	if c.ResponseBodyLimit < 1 || c.ResponseBodyLimit > MaxResponseBodyLimit {
		errs = append(errs, fmt.Errorf("response_body_limit: %d is outside 1..%d bytes", c.ResponseBodyLimit, MaxResponseBodyLimit))
	}
	for i, t := range c.ResponseBodyTypes {
		if !validMediaPattern(t) {
			errs = append(errs, fmt.Errorf("response_body_types[%d]: %q is not type/subtype, type/* or +suffix", i, t))
		}
	}
	for i, s := range c.RulesOff {
		if _, err := parseRuleOff(s); err != nil {
			errs = append(errs, fmt.Errorf("rules_off[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
