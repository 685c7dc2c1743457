package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
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
