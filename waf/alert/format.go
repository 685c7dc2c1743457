package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// render makes the request body of a at ep.
func (ep *endpoint) render(a *Alert) ([]byte, error) {
	var b bytes.Buffer
	switch ep.format {
	case FormatSlack:
		return marshal(&b, slackPayload{Text: slackText(a)})
	case FormatTemplate:
		if err := ep.tmpl.Execute(&b, a); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	default:
		return marshal(&b, jsonPayload{Alert: a, Text: a.Summary()})
	}
}

// jsonPayload is FormatJSON's body: the Alert's fields and a summary.
type jsonPayload struct {
	*Alert
	Text string `json:"summary"`
}

type slackPayload struct {
	Text string `json:"text"`
}

// marshal encodes without escaping <, > and &, which would make paths and
// rule messages unreadable to whoever reads the payload raw.
func marshal(b *bytes.Buffer, v any) ([]byte, error) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var templateFuncs = template.FuncMap{
	// json quotes a value for a JSON template, so that a hostile path
	// cannot break out of its string.
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		out, err := marshal(&b, v)
		return strings.TrimSuffix(string(out), "\n"), err
	},
}

// parseTemplate parses an endpoint's template and runs it once over an
// alert with every field set, so that a misspelt field is a config error
// rather than a failed delivery during an incident.
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	sample := &Alert{
		Event: Event{Type: EventWAFBlock, Severity: SeverityWarning, Time: now, RequestID: "r", ClientIP: "192.0.2.1",
			Host: "example.com", Path: "/", Route: "r", Policy: "p", Backend: "b", Server: "s", Score: 5, Message: "m",
			Matches: []Match{{RuleID: 942100, Message: "m", Variable: "ARGS:q", Exclusion: "x"}},
			Fields:  map[string]string{"k": "v"}},
		Count: 2, First: now, Last: now,
	}
	var b bytes.Buffer
	if err := t.Execute(&b, sample); err != nil {
		return nil, err
	}
	return t, nil
}

var slackIcons = map[Severity]string{SeverityInfo: ":information_source:", SeverityWarning: ":warning:", SeverityCritical: ":rotating_light:"}

// slackText is the alert in Slack's mrkdwn, each value escaped so that a
// request cannot put a link or a mention into the channel.
func slackText(a *Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s *[%s] %s*", slackIcons[a.Severity], strings.ToUpper(a.Severity.String()), slackEscape(a.Type))
	if a.Count > 1 {
		fmt.Fprintf(&b, " ×%d from %s to %s", a.Count, a.First.UTC().Format(time.RFC3339), a.Last.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, " at %s", a.Time.UTC().Format(time.RFC3339))
	}
	line := func(label, v string, code bool) {
		if v == "" {
			return
		}
		v = slackEscape(truncate(v, 500))
		if code {
			v = "`" + strings.ReplaceAll(v, "`", "'") + "`"
		}
		fmt.Fprintf(&b, "\n*%s:* %s", label, v)
	}
	line("Client IP", a.ClientIP, true)
	line("Host", a.Host, true)
	line("Path", a.Path, true)
	line("Route", a.Route, false)
	line("Policy", a.Policy, false)
	line("Backend", a.Backend, false)
	line("Server", a.Server, true)
	line("Request ID", a.RequestID, true)
	if a.Score != 0 {
		line("Anomaly score", strconv.Itoa(a.Score), false)
	}
	for _, m := range a.Matches {
		fmt.Fprintf(&b, "\n• Rule *%d*", m.RuleID)
		if m.Variable != "" {
			fmt.Fprintf(&b, " on `%s`", strings.ReplaceAll(slackEscape(truncate(m.Variable, 200)), "`", "'"))
		}
		if m.Message != "" {
			fmt.Fprintf(&b, ": %s", slackEscape(truncate(m.Message, 300)))
		}
		if m.Exclusion != "" {
			fmt.Fprintf(&b, "\n```%s```", codeBlock(m.Exclusion))
		}
	}
	if a.Message != "" {
		fmt.Fprintf(&b, "\n```%s```", codeBlock(a.Message))
	}
	for _, k := range slices.Sorted(maps.Keys(a.Fields)) {
		line(k, a.Fields[k], false)
	}
	return b.String()
}

func codeBlock(s string) string {
	return strings.ReplaceAll(slackEscape(truncate(s, 2000)), "```", "'''")
}

// slackEscape escapes the three characters Slack gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
