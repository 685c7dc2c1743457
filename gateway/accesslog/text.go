package accesslog

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTPLog is HAProxy's `option httplog` line, which log pipelines built for
// HAProxy parse.
const HTTPLog = `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`

// Format is a compiled log_format: HAProxy's variables among literal text.
type Format struct{ parts []part }

type part struct {
	lit string
	v   string // the variable's name, "" for literal text
	sep bool   // a run of spaces: one space, unless one was just written
}

// variables are the HAProxy log variables sekisho fills.
var variables = map[string]bool{
	"ci": true, "cp": true, "tr": true, "t": true, "ft": true, "f": true, "b": true, "s": true,
	"TR": true, "Tw": true, "Tc": true, "Tr": true, "Ta": true, "Tt": true, "Tq": true, "ST": true, "B": true, "U": true,
	"CC": true, "CS": true, "tsc": true, "ac": true, "fc": true, "bc": true, "sc": true, "rc": true, "sq": true, "bq": true,
	"hr": true, "hs": true, "r": true, "{+Q}r": true, "HM": true, "HU": true, "HV": true, "sslv": true, "sslc": true, "ID": true,
}

// ParseFormat compiles a log_format; an unknown variable is an error that names it.
func ParseFormat(s string) (*Format, error) {
	f := &Format{}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '%')
		if j < 0 {
			f.literal(s[i:])
			break
		}
		if j > 0 {
			f.literal(s[i : i+j])
		}
		i += j + 1
		if i < len(s) && s[i] == '%' {
			f.literal("%")
			i++
			continue
		}
		name := ""
		if strings.HasPrefix(s[i:], "{+Q}r") {
			name = "{+Q}r"
		} else {
			k := i
			for k < len(s) && (s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z') {
				k++
			}
			// The longest known name: %Tr, %Ta ... are not %T followed by text.
			for name = s[i:k]; name != "" && !variables[name]; name = name[:len(name)-1] {
			}
		}
		if name == "" {
			return nil, fmt.Errorf("log_format: unknown variable at %q", s[i-1:min(len(s), i+6)])
		}
		f.parts = append(f.parts, part{v: name})
		i += len(name)
	}
	return f, nil
}

// literal adds text, its runs of spaces as separators: HAProxy writes a
// separator only when the last thing written was not one, so a field that
// writes nothing (%hr without captures) leaves no double space.
func (f *Format) literal(s string) {
	for s != "" {
		n := len(s) - len(strings.TrimLeft(s, " "))
		if n > 0 {
			f.parts = append(f.parts, part{sep: true})
			s = s[n:]
			continue
		}
		n = strings.IndexByte(s, ' ')
		if n < 0 {
			n = len(s)
		}
		f.parts = append(f.parts, part{lit: s[:n]})
		s = s[n:]
	}
}

// msOr is a duration in milliseconds, or -1 when the step did not happen
// (HAProxy's convention).
func msOr(d time.Duration, happened bool) string {
	if !happened {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// braces is a capture block as HAProxy writes it, each value escaped:
// {a|b}, nothing without captures.
func braces(vals []string) string {
	if vals == nil {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('|')
		}
		headerEscapes.escape(&b, v)
	}
	b.WriteByte('}')
	return b.String()
}

// Line renders e.
func (f *Format) Line(e *Entry) string {
	var b strings.Builder
	lastSpace := true // as HAProxy: no separator at the start either
	for _, p := range f.parts {
		switch {
		case p.sep:
			if !lastSpace {
				b.WriteByte(' ')
				lastSpace = true
			}
		case p.v == "":
			b.WriteString(p.lit)
			lastSpace = false
		default:
			if v := f.value(p.v, e); v != "" {
				b.WriteString(v)
				lastSpace = false
			}
		}
	}
	return b.String()
}

// uri is the request target as the client sent it.
func (e *Entry) uri() string {
	if e.URI != "" {
		return e.URI
	}
	if e.Query != "" {
		return e.Path + "?" + e.Query
	}
	return e.Path
}

// requestLine is %r: HAProxy's <BADREQ> for a request that did not parse.
func (e *Entry) requestLine() string {
	if e.BadRequest {
		return "<BADREQ>"
	}
	return urlEscapes.String(e.Method + " " + e.uri() + " " + e.Protocol)
}

func (f *Format) value(v string, e *Entry) string {
	switch v {
	case "ci":
		return dash(e.ClientIP)
	case "cp":
		return strconv.Itoa(e.ClientPort)
	case "tr", "t":
		return e.Time.UTC().Format("02/Jan/2006:15:04:05.000")
	case "ft":
		if e.TLS != nil {
			return e.Frontend + "~"
		}
		return e.Frontend
	case "f":
		return e.Frontend
	case "b":
		if e.BadRequest {
			return e.Frontend // as HAProxy: no backend was chosen
		}
		return dash(e.Backend)
	case "s":
		if e.Server == "" {
			return "<NOSRV>"
		}
		return e.Server
	case "TR":
		return msOr(e.Read, !e.BadRequest)
	case "Tw":
		return msOr(e.Queue, e.Server != "")
	case "Tc":
		return msOr(e.Connect, e.Server != "" && !e.ConnectFailed)
	case "Tr":
		return msOr(e.Response, e.Server != "" && !e.ConnectFailed && e.Response > 0)
	case "Ta", "Tt":
		return strconv.FormatInt(e.Total.Milliseconds(), 10)
	case "Tq":
		return strconv.FormatInt((e.Read + e.WAF).Milliseconds(), 10)
	case "ST":
		return strconv.Itoa(e.Status)
	case "B":
		return strconv.FormatInt(e.HeaderBytes+e.BytesOut, 10)
	case "U":
		return strconv.FormatInt(e.BytesIn, 10)
	case "CC":
		return dash(e.CapturedRequestCookie)
	case "CS":
		return dash(e.CapturedResponseCookie)
	case "tsc":
		if e.TermState == "" {
			return "----"
		}
		return e.TermState
	case "ac":
		return strconv.FormatInt(e.ActiveConns, 10)
	case "fc":
		return strconv.FormatInt(e.FrontendConns, 10)
	case "bc":
		return strconv.FormatInt(e.BackendConns, 10)
	case "sc":
		return strconv.FormatInt(e.ServerConns, 10)
	case "rc":
		return strconv.Itoa(e.Retries)
	case "sq":
		return "0"
	case "bq":
		return strconv.Itoa(e.BackendQueue)
	case "hr":
		return braces(e.CapturedRequestHeaders)
	case "hs":
		return braces(e.CapturedResponseHeaders)
	case "r":
		return e.requestLine()
	case "{+Q}r":
		return `"` + e.requestLine() + `"`
	case "HM":
		return dash(urlEscapes.String(e.Method))
	case "HU":
		return dash(urlEscapes.String(e.uri()))
	case "HV":
		return dash(urlEscapes.String(e.Protocol))
	case "sslv":
		if e.TLS == nil {
			return "-"
		}
		return TLSVersion(e.TLS.Version)
	case "sslc":
		if e.TLS == nil {
			return "-"
		}
		return OpenSSLCipher(e.TLS.CipherSuite)
	case "ID":
		return dash(e.RequestID)
	}
	return "-"
}

// uses tells whether the format shows variable v.
func (f *Format) uses(v string) bool {
	for _, p := range f.parts {
		if p.v == v {
			return true
		}
	}
	return false
}

// textLogger writes entries as lines of a Format.
type textLogger struct {
	mu sync.Mutex
	w  io.Writer
	f  *Format
}

func (t *textLogger) write(e *Entry) {
	line := t.f.Line(e) + "\n"
	t.mu.Lock()
	io.WriteString(t.w, line)
	t.mu.Unlock()
}
