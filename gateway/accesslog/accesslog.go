// Package accesslog writes one JSON line per request with zerolog. The field
// names are constants here and are part of sekisho's interface: log
// pipelines parse them.
package accesslog

import (
	"crypto/tls"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/waf"
)

// Field names of an access log line.
const (
	FieldRequestID      = "request_id"
	FieldClientIP       = "client_ip"
	FieldClientPort     = "client_port"
	FieldPeerIP         = "peer_ip"
	FieldVPCEndpoint    = "vpce_id"
	FieldFrontend       = "frontend"
	FieldBackend        = "backend"
	FieldServer         = "server"
	FieldMethod         = "method"
	FieldHost           = "host"
	FieldPath           = "path"
	FieldQuery          = "query"
	FieldProtocol       = "protocol"
	FieldStatus         = "status"
	FieldBytesIn        = "bytes_in"
	FieldBytesOut       = "bytes_out"
	FieldTimeRead       = "time_read_ms"
	FieldTimeWAF        = "time_waf_ms"
	FieldTimeConnect    = "time_connect_ms"
	FieldTimeResponse   = "time_response_ms"
	FieldTimeTotal      = "time_total_ms"
	FieldTLSVersion     = "tls_version"
	FieldTLSCipher      = "tls_cipher"
	FieldWAFPolicy      = "waf_policy"
	FieldWAFAction      = "waf_action"
	FieldWAFRules       = "waf_rules"
	FieldWAFScore       = "waf_score"
	FieldWAFTruncated   = "waf_body_truncated"
	FieldWAFMatches     = "waf_matches"
	FieldWAFUnconfirmed = "waf_unconfirmed"
	FieldUserAgent      = "user_agent"
	// The access step's decision (pass, challenge, cleared, refused) and
	// what made it; absent when no access rule applied.
	FieldAccessDecision = "access_decision"
	FieldAccessReason   = "access_reason"
	// The client's country (ISO 3166-1 alpha-2) and AS number (geoip:).
	FieldCountry = "country"
	FieldASN     = "asn"
	// The client's TLS fingerprint (FoxIO's JA4) over TLS and QUIC.
	FieldJA4         = "ja4"
	FieldJA4H        = "ja4h"     // the HTTP client fingerprint, when the frontend computes it
	FieldTraceID     = "trace_id" // the W3C trace the request is part of (tracing:)
	FieldRetries     = "retries"
	FieldError       = "error"
	FieldTermination = "termination"
	FieldTermState   = "termination_state"
	// Captures (a frontend's capture:): headers by name, the cookie's values.
	FieldCapturedRequest   = "captured_request_headers"
	FieldCapturedResponse  = "captured_response_headers"
	FieldCapturedCookie    = "captured_cookie"
	FieldCapturedSetCookie = "captured_set_cookie"
)

// Entry is what one access log line says.
type Entry struct {
	Time          time.Time
	RequestID     string
	ClientIP      string
	ClientPort    int
	PeerIP        string // the proxy in front, when the client is not the socket peer
	VPCEndpointID string // from an AWS PROXY v2 header

	Frontend, Backend, Server    string
	Method, Host, Path, Query    string
	URI                          string // the request target as sent, for %r
	Protocol                     string
	Status                       int
	BytesIn, BytesOut            int64 // body bytes
	HeaderBytes                  int64 // the response's headers, counted as HAProxy's %B does
	BadRequest                   bool  // refused by the HTTP parser: HAProxy's <BADREQ>
	ConnectFailed                bool  // the server chosen last could not be connected to
	Read, WAF, Connect, Response time.Duration
	Total                        time.Duration
	TLS                          *tls.ConnectionState
	WAFPolicy, WAFAction         string
	WAFRules                     []int
	WAFScore                     int
	WAFTruncated                 bool
	WAFMatches                   []waf.Match       // on a block or a detection: what matched and how to exclude it
	WAFUnconfirmed               []waf.Unconfirmed // CRS matches a semantic check rejected: they did not score
	UserAgent                    string
	AccessDecision, AccessReason string // the access step's (challenge, lists, bans)
	Country                      string // "" without geoip or when unknown
	ASN                          uint
	JA4                          string // "" over plain HTTP
	JA4H                         string // "" unless the frontend computes it
	TraceID                      string // "" without tracing
	Retries                      int
	Error                        string
	Termination                  string // a TCP connection's end (tcpproxy's causes)

	// For HAProxy's text format (and the JSON's captures).
	Queue                                           time.Duration // waiting for a server below its maxconn
	TermState                                       string        // HAProxy's %tsc, 4 characters (docs/operations.md)
	ActiveConns, FrontendConns, BackendConns        int64         // requests in flight: gateway, frontend, backend
	ServerConns                                     int64         // and on the server
	BackendQueue                                    int
	CapturedRequestHeaders, CapturedResponseHeaders []string // in capture order; nil without captures
	CapturedRequestCookie, CapturedResponseCookie   string
	CaptureNames                                    *Captures // the names, for the JSON fields
}

// Captures names what a frontend captures, as HAProxy's capture lines.
type Captures struct {
	RequestHeaders  []Capture `yaml:"request_headers"`
	ResponseHeaders []Capture `yaml:"response_headers"`
	// Cookie is captured from the request's Cookie (%CC) and the
	// response's Set-Cookie (%CS).
	Cookie *Capture `yaml:"cookie"`
}

// Capture is one captured header or cookie, truncated at Len bytes.
type Capture struct {
	Name string `yaml:"name"`
	Len  int    `yaml:"len"`
}

// Logger writes entries.
type Logger struct {
	z    zerolog.Logger
	text *textLogger // nil: JSON
	// headerBytes is set when lines show %B, the only reader of
	// Entry.HeaderBytes: counting headers is work for that format alone.
	headerBytes bool
}

// CountsHeaderBytes tells whether lines need Entry.HeaderBytes.
func (l *Logger) CountsHeaderBytes() bool { return l.headerBytes }

// New writes entries to w as JSON lines; a nil w disables the access log.
func New(w io.Writer) *Logger {
	if w == nil {
		return &Logger{z: zerolog.Nop()}
	}
	return &Logger{z: zerolog.New(w)}
}

// NewText writes entries to w as lines of f (HTTPLog, or a log_format).
func NewText(w io.Writer, f *Format) *Logger {
	if w == nil {
		return New(nil)
	}
	return &Logger{z: zerolog.Nop(), text: &textLogger{w: w, f: f}, headerBytes: f.uses("B")}
}

// timeFormat is RFC 3339 with milliseconds, always three digits.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Write logs e as one line.
func (l *Logger) Write(e *Entry) {
	if l.text != nil {
		l.text.write(e)
		return
	}
	ev := l.z.Log()
	if ev == nil {
		return
	}
	// Milliseconds at least, so that pipelines can order and join lines.
	var tbuf [len(timeFormat) + 8]byte
	ev.Bytes(zerolog.TimestampFieldName, e.Time.AppendFormat(tbuf[:0], timeFormat)).
		Str(FieldRequestID, e.RequestID).
		Str(FieldClientIP, e.ClientIP).
		Int(FieldClientPort, e.ClientPort).
		Str(FieldPeerIP, e.PeerIP).
		Str(FieldFrontend, e.Frontend).
		Str(FieldBackend, e.Backend).
		Str(FieldServer, e.Server).
		Str(FieldMethod, e.Method).
		Str(FieldHost, e.Host).
		Str(FieldPath, e.Path).
		Str(FieldQuery, e.Query).
		Str(FieldProtocol, e.Protocol).
		Int(FieldStatus, e.Status).
		Int64(FieldBytesIn, e.BytesIn).
		Int64(FieldBytesOut, e.BytesOut).
		Float64(FieldTimeRead, ms(e.Read)).
		Float64(FieldTimeWAF, ms(e.WAF)).
		Float64(FieldTimeConnect, ms(e.Connect)).
		Float64(FieldTimeResponse, ms(e.Response)).
		Float64(FieldTimeTotal, ms(e.Total))
	if e.TLS != nil {
		ev.Str(FieldTLSVersion, TLSVersion(e.TLS.Version)).Str(FieldTLSCipher, tls.CipherSuiteName(e.TLS.CipherSuite))
	} else {
		ev.Str(FieldTLSVersion, "").Str(FieldTLSCipher, "")
	}
	ev.Str(FieldWAFPolicy, e.WAFPolicy).
		Str(FieldWAFAction, e.WAFAction).
		Ints(FieldWAFRules, e.WAFRules).
		Int(FieldWAFScore, e.WAFScore)
	if e.WAFTruncated {
		ev.Bool(FieldWAFTruncated, true)
	}
	if len(e.WAFMatches) > 0 {
		arr := zerolog.Arr()
		for _, m := range e.WAFMatches {
			arr.Dict(zerolog.Dict().Int("rule_id", m.RuleID).Str("msg", m.Message).Str("var", m.Variable).Str("exclusion", m.Exclusion))
		}
		ev.Array(FieldWAFMatches, arr)
	}
	if len(e.WAFUnconfirmed) > 0 {
		arr := zerolog.Arr()
		for _, u := range e.WAFUnconfirmed {
			arr.Dict(zerolog.Dict().Int("rule_id", u.RuleID).Str("check", u.Check))
		}
		ev.Array(FieldWAFUnconfirmed, arr)
	}
	if e.VPCEndpointID != "" {
		ev.Str(FieldVPCEndpoint, e.VPCEndpointID)
	}
	ev.Str(FieldUserAgent, e.UserAgent)
	if e.AccessDecision != "" {
		ev.Str(FieldAccessDecision, e.AccessDecision).Str(FieldAccessReason, e.AccessReason)
	}
	if e.Country != "" {
		ev.Str(FieldCountry, e.Country)
	}
	if e.ASN != 0 {
		ev.Uint(FieldASN, e.ASN)
	}
	if e.JA4 != "" {
		ev.Str(FieldJA4, e.JA4)
	}
	if e.JA4H != "" {
		ev.Str(FieldJA4H, e.JA4H)
	}
	if e.TraceID != "" {
		ev.Str(FieldTraceID, e.TraceID)
	}
	if e.Retries > 0 {
		ev.Int(FieldRetries, e.Retries)
	}
	if e.Error != "" {
		ev.Str(FieldError, e.Error)
	}
	if e.Termination != "" {
		ev.Str(FieldTermination, e.Termination)
	}
	if e.TermState != "" {
		ev.Str(FieldTermState, e.TermState)
	}
	if c := e.CaptureNames; c != nil {
		if len(c.RequestHeaders) > 0 {
			d := zerolog.Dict()
			for i, cp := range c.RequestHeaders {
				d.Str(cp.Name, e.CapturedRequestHeaders[i])
			}
			ev.Dict(FieldCapturedRequest, d)
		}
		if len(c.ResponseHeaders) > 0 && len(e.CapturedResponseHeaders) == len(c.ResponseHeaders) {
			d := zerolog.Dict()
			for i, cp := range c.ResponseHeaders {
				d.Str(cp.Name, e.CapturedResponseHeaders[i])
			}
			ev.Dict(FieldCapturedResponse, d)
		}
		if c.Cookie != nil {
			ev.Str(FieldCapturedCookie, e.CapturedRequestCookie).Str(FieldCapturedSetCookie, e.CapturedResponseCookie)
		}
	}
	ev.Send()
}

// TLSVersion names a TLS version as HAProxy's %sslv does ("TLSv1.3").
func TLSVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1.0"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}
