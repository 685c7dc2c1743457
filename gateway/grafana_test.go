package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// dashboardPath is the Grafana dashboard that deploy/ ships.
var dashboardPath = filepath.Join("..", "deploy", "grafana", "sekisho.json")

// promqlKeywords are the words of PromQL that are not metric names where
// a name could stand (functions and aggregations are followed by "(").
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true, "atan2": true,
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGroupings = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlVariables = regexp.MustCompile(`\$\{?\w+\}?`)
	promqlTokens    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|[0-9][0-9A-Za-z_.]*`)
)

// promqlMetricNames are the metric names a PromQL expression selects:
// what is left once strings, label matchers, ranges, groupings, Grafana's
// variables, numbers, keywords and function names are taken out.
func promqlMetricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGroupings.ReplaceAllString(s, " ")
	s = promqlVariables.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promqlTokens.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || promqlKeywords[strings.ToLower(tok)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if !slices.Contains(names, tok) {
			names = append(names, tok)
		}
	}
	return names
}

func TestPromqlMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`histogram_quantile(0.99, sum by (le, backend) (rate(sekisho_backend_request_duration_seconds_bucket{backend=~"$backend"}[$__rate_interval])))`: "sekisho_backend_request_duration_seconds_bucket",
		`sum(rate(a_total{code="5xx",x=~"by (x)"}[5m])) / sum without (code) (rate(b_total[1h:1m]))`:                                                    "a_total b_total",
		`time() - (process_start_time_seconds{instance=~"$instance"} and on (instance, job) sekisho_build_info)`:                                        "process_start_time_seconds sekisho_build_info",
		`topk(10, sum(rate(c_total[5m])) by (rule)) > bool 0 or vector(0)`:                                                                              "c_total",
		`(x_seconds - time()) / 86400`:          "x_seconds",
		`sekisho_server_state{state="up"} == 1`: "sekisho_server_state",
	} {
		if got := strings.Join(promqlMetricNames(expr), " "); got != want {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
}

// dashboardQueries are the dashboard's PromQL expressions: its panels'
// targets (rows' nested panels too) and the metrics its variables query
// (label_values(SELECTOR, LABEL), query_result(EXPR)).
func dashboardQueries(t *testing.T, dash map[string]any) (exprs []string) {
	t.Helper()
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash["panels"])
	templating, _ := dash["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	for _, v := range vars {
		v := v.(map[string]any)
		if v["type"] != "query" {
			continue
		}
		q, _ := v["query"].(string)
		if m, ok := v["query"].(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		switch {
		case strings.HasPrefix(q, "label_values("):
			args := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
			if i := strings.LastIndexByte(args, ','); i >= 0 {
				exprs = append(exprs, args[:i])
			}
		case strings.HasPrefix(q, "query_result("):
			exprs = append(exprs, strings.TrimSuffix(strings.TrimPrefix(q, "query_result("), ")"))
		default:
			t.Errorf("variable %v: a query this test cannot read: %q", v["name"], q)
		}
	}
	return exprs
}

// The Grafana dashboard is well formed (unique panel ids, every panel on
// the grid with a query, every query on the dashboard's data source,
// balanced brackets), it graphs what operators read first, and every
// metric its queries name is in the /metrics of a running gateway with a
// TLS frontend, a backend with health checks, a WAF policy, a rate limit
// and Redis, after a few requests.
func TestGrafanaDashboard_MetricsExist(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if dash["uid"] != "sekisho" || dash["title"] == "" || dash["schemaVersion"] == nil {
		t.Errorf("uid %v, title %v, schemaVersion %v", dash["uid"], dash["title"], dash["schemaVersion"])
	}
	ids := map[float64]bool{}
	var panels []map[string]any
	var flatten func(list []any)
	flatten = func(list []any) {
		for _, p := range list {
			p := p.(map[string]any)
			panels = append(panels, p)
			if nested, ok := p["panels"].([]any); ok {
				flatten(nested)
			}
		}
	}
	top, _ := dash["panels"].([]any)
	flatten(top)
	for _, p := range panels {
		id, _ := p["id"].(float64)
		if id == 0 || ids[id] {
			t.Errorf("panel %q: id %v missing or used twice", p["title"], p["id"])
		}
		ids[id] = true
		grid, _ := p["gridPos"].(map[string]any)
		if grid == nil || grid["w"].(float64) <= 0 || grid["h"].(float64) <= 0 || grid["x"].(float64)+grid["w"].(float64) > 24 {
			t.Errorf("panel %q: gridPos %v", p["title"], grid)
		}
		if p["type"] == "row" {
			continue
		}
		if ds, _ := p["datasource"].(map[string]any); ds["uid"] != "${datasource}" {
			t.Errorf("panel %q: datasource %v, want the dashboard's variable", p["title"], p["datasource"])
		}
		targets, _ := p["targets"].([]any)
		refs := map[string]bool{}
		for _, tg := range targets {
			tg := tg.(map[string]any)
			ref, _ := tg["refId"].(string)
			if e, _ := tg["expr"].(string); e == "" || ref == "" || refs[ref] {
				t.Errorf("panel %q: target %v without a query or with a refId used twice", p["title"], tg)
			}
			refs[ref] = true
		}
		if len(targets) == 0 {
			t.Errorf("panel %q has no query", p["title"])
		}
	}
	exprs := dashboardQueries(t, dash)
	used := map[string]bool{}
	for _, e := range exprs {
		depth := map[rune]int{}
		for _, r := range promqlStrings.ReplaceAllString(e, `""`) {
			switch r {
			case '(', '{', '[':
				depth[r]++
			case ')':
				depth['(']--
			case '}':
				depth['{']--
			case ']':
				depth['[']--
			}
		}
		if depth['('] != 0 || depth['{'] != 0 || depth['['] != 0 {
			t.Errorf("unbalanced brackets: %s", e)
		}
		names := promqlMetricNames(e)
		if len(names) == 0 {
			t.Errorf("no metric in %s", e)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	// What the dashboard is for: requests by frontend and code, duration
	// quantiles by backend, WAF blocks by rule, access decisions, server
	// states, Redis, TLS handshakes.
	for _, n := range []string{"sekisho_requests_total", "sekisho_backend_request_duration_seconds_bucket", "sekisho_waf_blocks_total",
		"sekisho_access_decisions_total", "sekisho_server_state", "sekisho_redis_up", "sekisho_tls_handshakes_total",
		"sekisho_requests_denied_total", "sekisho_bytes_in_total", "sekisho_bytes_out_total", "sekisho_request_errors_total", "sekisho_retries_total"} {
		if !used[n] {
			t.Errorf("no panel graphs %s", n)
		}
	}

	exported := runDashboardGateway(t)
	var missing []string
	for n := range used {
		if !exported[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics a running gateway does not export: %v", missing)
	}
	t.Logf("%d queries name %d metrics", len(exprs), len(used))
}

// runDashboardGateway runs a gateway with what the dashboard graphs, sends
// it requests (over TLS, one the WAF blocks, one a semantic check saves
// from CRS), and returns the names of the samples its /metrics has: each
// family's, and a histogram's _bucket, _sum and _count.
func runDashboardGateway(t *testing.T) map[string]bool {
	t.Helper()
	_, addr := namedServer(t, "127.0.0.1:0", "a")
	redisAddr := sharedCertsRedis(t)
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    routes:
      - {path_prefix: /limited/, backend: app, waf_policy: default, rate_limit: {requests: 100, period: 1m}}
    default_backend: app
    default_waf_policy: default
waf:
  policies:
    - name: default
      directives: |
        SecRule ARGS:probe "@streq attack" "id:9020003,phase:1,deny,status:403,log,msg:'probe'"
backends:
  - name: app
    servers: [{name: a, address: %q}]
    health_check: {type: tcp, interval: 50ms}
redis: {addresses: [%q]}
admin: {address: "127.0.0.1:0"}
`, addr, redisAddr), Options{Log: zerolog.Nop()})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	plain, secure := "http://"+g.Addrs("web")[0].String(), "https://"+g.Addrs("web")[1].String()
	for _, u := range []string{plain + "/", secure + "/", plain + "/?probe=attack", plain + "/?q=ls+300+lexus", secure + "/limited/x"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var families map[string]*dto.MetricFamily
	eventually(t, "the requests counted", func() bool {
		families = scrapeFamilies(t, g)
		h1, _ := series(families, "sekisho_requests_total", map[string]string{"frontend": "web", "backend": "app", "server": "a", "code": "2xx", "protocol": "HTTP/1.1"})
		h2, _ := series(families, "sekisho_requests_total", map[string]string{"frontend": "web", "backend": "app", "server": "a", "code": "2xx", "protocol": "HTTP/2.0"})
		return h1 == 2 && h2 == 2
	})
	exported := map[string]bool{}
	for name, f := range families {
		exported[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			exported[name+"_bucket"], exported[name+"_sum"], exported[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			exported[name+"_sum"], exported[name+"_count"] = true, true
		}
	}
	return exported
}
