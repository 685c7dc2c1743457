package gateway

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/gateway/config"
)

// After a known mix of traffic the scraped metrics say what happened.
func TestMetrics_CountTraffic(t *testing.T) {
	var access syncBuffer
	_, addr := namedServer(t, "127.0.0.1:0", "a")
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
waf:
  policies:
    - name: default
      directives: |
        SecRule ARGS:probe "@streq attack" "id:9020003,phase:1,deny,status:403,log,msg:'probe'"
backends:
  - name: app
    servers: [{name: a, address: "%s"}, {name: b, address: "127.0.0.1:9", state: maint}]
    stick: {on: src}
admin: {address: "127.0.0.1:0"}
`, addr), Options{Log: zerolog.Nop(), Access: &access})
	web := "http://" + g.Addrs("web")[0].String()
	// "ls 300 lexus" is a shell command to CRS (932250) and prose to the
	// semantic check: it passes, and the rejected match is counted and logged.
	for _, q := range []string{"/?q=1", "/?q=2", "/?q=ls+300+lexus", "/?probe=attack", "/?probe=attack"} {
		resp, err := http.Get(web + q)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + g.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) float64 {
		f, ok := families[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
		for _, m := range f.Metric {
			match := true
			for _, lp := range m.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					match = false
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		return -1
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sekisho_requests_total", map[string]string{"backend": "app", "server": "a", "code": "2xx"}, 3},
		{"sekisho_requests_total", map[string]string{"backend": "app", "server": "", "code": "4xx"}, 2},
		{"sekisho_waf_blocks_total", map[string]string{"policy": "default", "rule": "9020003"}, 2},
		{"sekisho_waf_unconfirmed_total", map[string]string{"policy": "default", "rule": "932250", "check": "shell"}, 1},
		{"sekisho_request_duration_seconds", map[string]string{"frontend": "web", "part": "total"}, 5},
		{"sekisho_request_duration_seconds", map[string]string{"frontend": "web", "part": "server"}, 3},
		{"sekisho_server_up", map[string]string{"server": "a"}, 1},
		{"sekisho_server_up", map[string]string{"server": "b"}, 0},
		{"sekisho_server_admin_state", map[string]string{"server": "b", "state": "maint"}, 1},
		{"sekisho_stick_table_entries", map[string]string{"table": "app"}, 1},
		{"sekisho_requests_in_flight", nil, 0},
		{"sekisho_connections_open", map[string]string{"frontend": "web"}, 1}, // the client's keep-alive connection
		{"sekisho_backend_queue", map[string]string{"backend": "app"}, 0},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if line := waitLine(t, &access, 2); !strings.Contains(line, `"waf_unconfirmed":[{"rule_id":932250,"check":"shell"}]`) {
		t.Errorf("the access log line of the passed request does not name the rejected match: %s", line)
	}
}

// scrapeFamilies reads the admin listener's /metrics.
func scrapeFamilies(t *testing.T, g *Gateway) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + g.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// series finds the series of a family with exactly these labels; ok is
// false when there is none. Its value is a counter's or gauge's, or a
// histogram's sample count.
func series(families map[string]*dto.MetricFamily, name string, labels map[string]string) (value float64, ok bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for _, lp := range m.Label {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// The series of every frontend, backend, server and policy the config
// names are there at 0 before the first request, and those of a backend
// a reload adds at the first scrape after it; each server has one
// sekisho_server_state series per state, 1 for its own.
func TestMetrics_PresentAtZeroFromStart(t *testing.T) {
	_, addrA := namedServer(t, "127.0.0.1:0", "a")
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    routes:
      - {path_prefix: /app/, backend: app, waf_policy: default}
    default_backend: other
    default_waf_policy: default
waf:
  policies: [{name: default, mode: block}]
backends:
  - name: app
    servers: [{name: a, address: "%s"}, {name: b, address: "%s"}]
    health_check: {type: tcp, interval: 20ms, rise: 1, fall: 1}
  - name: other
    servers: [{name: o, address: "%s"}]
admin: {address: "127.0.0.1:0"}
`, addrA, dead, addrA)
	path := filepath.Join(t.TempDir(), "sekisho.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g, _, _, _ := runGatewayWith(t, yaml, Options{Log: zerolog.Nop(), LoadConfig: func() (*config.Config, error) { return config.Load(path) }})
	s, _ := g.server("app", "b")
	eventually(t, "b down", s.Down)
	families := scrapeFamilies(t, g)
	type want struct {
		name   string
		labels map[string]string
	}
	var wants []want
	add := func(name string, labels ...string) {
		l := map[string]string{}
		for i := 0; i < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
		wants = append(wants, want{name, l})
	}
	for _, b := range [][2]string{{"app", "a"}, {"app", "b"}, {"app", ""}, {"other", "o"}, {"other", ""}} {
		for _, code := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
			for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
				add("sekisho_requests_total", "frontend", "web", "backend", b[0], "server", b[1], "code", code, "protocol", proto)
			}
		}
		add("sekisho_bytes_in_total", "frontend", "web", "backend", b[0], "server", b[1])
		add("sekisho_bytes_out_total", "frontend", "web", "backend", b[0], "server", b[1])
		for _, k := range []string{"connect", "response", "client_abort"} {
			add("sekisho_request_errors_total", "frontend", "web", "backend", b[0], "server", b[1], "kind", k)
		}
		if b[1] != "" {
			add("sekisho_retries_total", "backend", b[0], "server", b[1])
			add("sekisho_responses_denied_total", "frontend", "web", "backend", b[0], "server", b[1])
		}
	}
	add("sekisho_request_errors_total", "frontend", "web", "backend", "", "server", "", "kind", "request")
	for _, b := range []string{"app", "other"} {
		for _, r := range []string{"waf", "access", "challenge", "rate_limit"} {
			add("sekisho_requests_denied_total", "frontend", "web", "backend", b, "reason", r)
		}
		for _, code := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
			add("sekisho_backend_request_duration_seconds", "backend", b, "code", code)
		}
	}
	for _, part := range []string{"total", "waf", "server"} {
		add("sekisho_request_duration_seconds", "frontend", "web", "part", part)
	}
	for _, d := range []string{"deny", "challenge", "cleared", "refused"} {
		add("sekisho_access_decisions_total", "frontend", "web", "decision", d)
	}
	for _, r := range []string{"version", "cipher", "sni", "not_tls", "client_gone", "other"} {
		add("sekisho_tls_handshake_failures_total", "frontend", "web", "reason", r)
	}
	add("sekisho_waf_blocked_requests_total", "policy", "default")
	add("sekisho_waf_rules_reloads_total", "policy", "default", "result", "failed")
	add("sekisho_health_checks_total", "backend", "app", "server", "a", "result", "failed")
	add("sekisho_config_reloads_total", "result", "ok")
	add("sekisho_config_reloads_total", "result", "failed")
	for _, w := range wants {
		if v, ok := series(families, w.name, w.labels); !ok || v != 0 {
			t.Errorf("%s%v = %v (present: %v), want 0 before any request", w.name, w.labels, v, ok)
		}
	}
	for server, state := range map[string]string{"a": "up", "b": "down", "o": "up"} {
		backend := "app"
		if server == "o" {
			backend = "other"
		}
		for _, st := range []string{"up", "down", "drain", "maint"} {
			v, ok := series(families, "sekisho_server_state", map[string]string{"backend": backend, "server": server, "state": st})
			if want := map[bool]float64{true: 1, false: 0}[st == state]; !ok || v != want {
				t.Errorf("sekisho_server_state{%s/%s,%s} = %v (present: %v), want %v", backend, server, st, v, ok, want)
			}
		}
		for _, st := range []string{"ready", "drain", "maint"} {
			v, ok := series(families, "sekisho_server_admin_state", map[string]string{"backend": backend, "server": server, "state": st})
			if want := map[bool]float64{true: 1, false: 0}[st == "ready"]; !ok || v != want {
				t.Errorf("sekisho_server_admin_state{%s/%s,%s} = %v (present: %v), want %v", backend, server, st, v, ok, want)
			}
		}
	}
	if v, ok := series(families, "sekisho_server_last_change_timestamp_seconds", map[string]string{"backend": "app", "server": "b"}); !ok || time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("b's last change at %v (present: %v), want when it went down", v, ok)
	}
	if f := families["sekisho_build_info"]; f == nil || len(f.Metric) != 1 || f.Metric[0].Gauge.GetValue() != 1 {
		t.Errorf("sekisho_build_info: %v", f)
	}

	// A backend that a reload adds has its series at the first scrape.
	yaml = strings.Replace(yaml, "      - {path_prefix: /app/, backend: app, waf_policy: default}\n",
		"      - {path_prefix: /app/, backend: app, waf_policy: default}\n      - {path_prefix: /more/, backend: more, waf_policy: default}\n", 1)
	yaml = strings.Replace(yaml, "admin:", fmt.Sprintf("  - name: more\n    servers: [{name: m, address: %q}]\nadmin:", addrA), 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	families = scrapeFamilies(t, g)
	for _, w := range []want{
		{"sekisho_requests_total", map[string]string{"frontend": "web", "backend": "more", "server": "m", "code": "5xx", "protocol": "HTTP/2.0"}},
		{"sekisho_retries_total", map[string]string{"backend": "more", "server": "m"}},
		{"sekisho_server_state", map[string]string{"backend": "more", "server": "m", "state": "maint"}},
		{"sekisho_config_reloads_total", map[string]string{"result": "failed"}},
	} {
		if v, ok := series(families, w.name, w.labels); !ok || v != 0 {
			t.Errorf("after the reload, %s%v = %v (present: %v), want 0", w.name, w.labels, v, ok)
		}
	}
	if v, _ := series(families, "sekisho_config_reloads_total", map[string]string{"result": "ok"}); v != 1 {
		t.Errorf("sekisho_config_reloads_total{ok} = %v after a reload", v)
	}
}

// sekisho_backend_request_duration_seconds counts each request by its
// backend and status class; the new counters count what the stats show.
func TestMetrics_DurationByBackendAndCode(t *testing.T) {
	addr := statusServer(t)
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
waf:
  policies:
    - name: default
      directives: |
        SecRule ARGS:probe "@streq attack" "id:9020003,phase:1,deny,status:403,log,msg:'probe'"
backends:
  - name: app
    servers: [{name: a, address: "%s"}]
admin: {address: "127.0.0.1:0"}
`, addr), Options{Log: zerolog.Nop()})
	web := "http://" + g.Addrs("web")[0].String()
	for _, p := range []string{"/", "/", "/", "/status/503", "/status/404", "/?probe=attack"} {
		resp, err := http.Post(web+p, "application/x-www-form-urlencoded", strings.NewReader("x=12"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var families map[string]*dto.MetricFamily
	eventually(t, "six requests counted", func() bool {
		families = scrapeFamilies(t, g)
		n := 0.0
		for _, code := range []string{"2xx", "4xx", "5xx"} {
			v, _ := series(families, "sekisho_backend_request_duration_seconds", map[string]string{"backend": "app", "code": code})
			n += v
		}
		return n == 6
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sekisho_backend_request_duration_seconds", map[string]string{"backend": "app", "code": "2xx"}, 3},
		{"sekisho_backend_request_duration_seconds", map[string]string{"backend": "app", "code": "4xx"}, 2},
		{"sekisho_backend_request_duration_seconds", map[string]string{"backend": "app", "code": "5xx"}, 1},
		{"sekisho_backend_request_duration_seconds", map[string]string{"backend": "app", "code": "1xx"}, 0},
		{"sekisho_requests_denied_total", map[string]string{"frontend": "web", "backend": "app", "reason": "waf"}, 1},
		{"sekisho_bytes_in_total", map[string]string{"frontend": "web", "backend": "app", "server": "a"}, 5 * 4},
		{"sekisho_bytes_out_total", map[string]string{"frontend": "web", "backend": "app", "server": "a"}, 5},
	} {
		if got, ok := series(families, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present: %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}
