package gateway

import (
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// statsFuncs format the stats page's values.
var statsFuncs = template.FuncMap{
	"dur":   humanDuration,
	"since": func(t time.Time) string { return humanDuration(time.Since(t)) },
	"short": func(s string) string { return truncate(s, 160) },
	"codes": func(c [6]uint64) []uint64 { return c[:5] }, // 1xx to 5xx
}

var statsPage = template.Must(template.New("stats").Funcs(statsFuncs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sekisho stats</title>
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}
.ready{background:#d8f5d8}.drain{background:#fff3c4}.maint{background:#ddd}.down{background:#f7d0d0}.total{background:#e8e8d0;font-weight:bold}
</style></head><body>
<h1>sekisho</h1>
<p>version {{.Version}} · pid {{.PID}} · up {{dur .Uptime}} (since {{.Started.Format "2006-01-02T15:04:05Z07:00"}}) · {{.InFlight}} requests in flight · <a href="?refresh=5">refresh every 5 s</a> · <a href="stats;csv">CSV</a></p>
<h2>Frontends</h2>
<table><tr><th>frontend</th><th>binds</th><th>connections</th><th>requests</th><th>requests/s</th><th>bytes in</th><th>bytes out</th><th>denied: WAF</th><th>denied: access</th><th>challenged</th><th>rate-limited</th><th>denied responses</th><th>request errors</th><th>1xx</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>handshakes by TLS version</th><th>distinct clients this hour</th><th>access decisions</th></tr>
{{range .Frontends}}<tr><td>{{.PxName}}</td><td>{{.Binds}}</td><td>{{.Current}}</td><td>{{.Requests}}</td><td>{{printf "%.1f" .Rate}}</td><td>{{.BytesIn}}</td><td>{{.BytesOut}}</td><td>{{index .Denied "waf"}}</td><td>{{index .Denied "access"}}</td><td>{{index .Denied "challenge"}}</td><td>{{index .Denied "rate_limit"}}</td><td>{{.DeniedResp}}</td><td>{{.ReqErrors}}</td>{{range .Codes | codes}}<td>{{.}}</td>{{end}}<td>{{range $v, $n := .Versions}}{{$v}}: {{$n}} {{end}}</td><td>{{range $v, $n := .Distinct}}{{$v}}: {{$n}} {{end}}</td><td>{{range $d, $n := .Access}}{{$d}}: {{$n}} {{end}}</td></tr>
{{end}}</table>
<h2>Backends</h2>
{{range .Backends}}<h3>{{.PxName}}</h3>
<p>requests {{.Requests}} ({{printf "%.1f" .Rate}}/s) · 5xx {{index .Codes 4}} · queue {{.Queue}}{{if .StickEntries}} · stick table {{.StickEntries}} entries{{end}} · {{.Status}}{{if .Algo}} · balance {{.Algo}}{{end}} · denied: WAF {{index .Denied "waf"}}, access {{index .Denied "access"}}, challenged {{index .Denied "challenge"}}, rate-limited {{index .Denied "rate_limit"}}</p>
<table><tr><th>server</th><th>address</th><th>status</th><th>last change</th><th>weight</th><th>in flight</th><th>requests</th><th>1xx</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>bytes in</th><th>bytes out</th><th>denied requests</th><th>denied responses</th><th>connect errors</th><th>response errors</th><th>client aborts</th><th>retries</th><th>redispatches</th><th>latency</th><th>last check</th><th>failed checks</th></tr>
{{range .Servers}}<tr class="{{.Class}}"><td>{{.SvName}}</td><td>{{.Addr}}</td><td>{{.Status}}</td><td>{{dur .LastChange}} ago</td><td>{{.Weight}}</td><td>{{.Current}}{{if .Limit}} / {{.Limit}}{{end}}</td><td>{{.Requests}}</td>{{range .Codes | codes}}<td>{{.}}</td>{{end}}<td>{{.BytesIn}}</td><td>{{.BytesOut}}</td><td></td><td>{{.DeniedResp}}</td><td>{{.ConnErrors}}</td><td>{{.RespErrors}}</td><td>{{.Abort}}</td><td>{{.Retries}}</td><td>{{.Retries}}</td><td>{{.Server.Latency | dur}}</td><td>{{if not .Checked}}no check{{else if not .LastCheck}}{{.CheckStatus}}: no check yet{{else}}{{.CheckStatus}} in {{dur .LastCheck.Took}}, {{since .LastCheck.At}} ago{{if .LastCheck.Err}}: {{short .LastCheck.Err}}{{end}}{{end}}</td><td>{{if .Checked}}{{.ChecksFailed}}{{end}}</td></tr>
{{end}}<tr class="total"><td>Backend</td><td></td><td>{{.Status}}</td><td></td><td>{{.Weight}}</td><td>{{.Current}}</td><td>{{.Requests}}</td>{{range .Codes | codes}}<td>{{.}}</td>{{end}}<td>{{.BytesIn}}</td><td>{{.BytesOut}}</td><td>{{.DeniedReq}}</td><td>{{.DeniedResp}}</td><td>{{.ConnErrors}}</td><td>{{.RespErrors}}</td><td>{{.Abort}}</td><td>{{.Retries}}</td><td>{{.Retries}}</td><td></td><td></td><td></td></tr>
</table>
{{end}}
<h2>WAF</h2>
<table><tr><th>policy</th><th>rules hash</th><th>loaded</th><th>blocks</th></tr>
{{range .Policies}}<tr><td>{{.Name}}</td><td>{{.Hash}}</td><td>{{.Loaded}}</td><td>{{.Blocks}}</td></tr>
{{end}}</table>
</body></html>
`))

// humanDuration is d to the second (to the microsecond under one), with
// days: "3d4h5m6s".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Microsecond).String()
	case d < 24*time.Hour:
		return d.Truncate(time.Second).String()
	}
	days := d / (24 * time.Hour)
	return strconv.Itoa(int(days)) + "d" + (d - days*24*time.Hour).Truncate(time.Second).String()
}

type statsFrontend struct {
	*statsRow
	Binds              string
	Versions, Distinct map[string]uint64
	Access             map[string]uint64 // the access step's answers by decision (deny, challenge, cleared, refused), those that happened
}

type statsPolicy struct {
	Name, Hash, Loaded string
	Blocks             uint64
}

// serveStats renders the stats page: server-side, no script, no external
// asset; ?format=csv (or /stats;csv) is HAProxy's CSV of the same rows.
func (g *Gateway) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("format") == "csv" {
		g.serveStatsCSV(w, r)
		return
	}
	snap := g.stats(r.Context())
	data := struct {
		*statsSnapshot
		Refresh   int
		Frontends []statsFrontend
		Policies  []statsPolicy
	}{statsSnapshot: snap}
	if n, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && n > 0 && n <= 3600 {
		data.Refresh = n
	}
	for i, f := range g.frontends {
		sf := statsFrontend{statsRow: snap.Frontends[i], Access: map[string]uint64{}}
		for d, n := range sums(g.metrics.requests.access, map[string]string{"frontend": f.name}, "decision") {
			if n > 0 {
				sf.Access[d] = uint64(n)
			}
		}
		for i, b := range f.binds {
			if i > 0 {
				sf.Binds += ", "
			}
			if i < len(f.lns) {
				sf.Binds += f.lns[i].Addr().String() // the bound port, for :0 too
			} else {
				sf.Binds += b.Address
			}
			if b.TLS {
				sf.Binds += " (TLS)"
			}
		}
		for _, q := range f.quic {
			// HTTP/3's UDP sockets are listeners too: an operator checks
			// the port a firewall must open.
			sf.Binds += ", " + q.pc.LocalAddr().String() + " (HTTP/3, UDP)"
		}
		if u, ok := g.TLSUsage(f.name); ok {
			sf.Versions, sf.Distinct = u.Versions, u.Distinct
		}
		data.Frontends = append(data.Frontends, sf)
	}
	blocked := sums(g.metrics.requests.blocked, nil, "policy")
	for _, p := range g.policies {
		e := p.cur.Load()
		data.Policies = append(data.Policies, statsPolicy{Name: p.name, Hash: e.Hash(), Loaded: e.LoadedAt().Format(time.RFC3339), Blocks: uint64(blocked[p.name])})
	}
	sort.Slice(snap.Backends, func(i, j int) bool { return snap.Backends[i].PxName < snap.Backends[j].PxName })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	statsPage.Execute(w, data)
}

// rateWindow is the span of the stats page's request rates.
const rateWindow = 5 * time.Second

// requestRates are requests per second by frontend and by backend over
// the last rateWindow, from the Prometheus counters.
type requestRates struct {
	byFrontend, byBackend map[string]float64
}

// sampleRates computes requestRates every window until stop is closed:
// a reading of counters, so the request path pays nothing. It also makes
// the serving generation's series (prepareMetrics) as it starts and at
// each tick: the scrapes do too, but the series of vectors registered
// apart from the state collector (TLS, health checks, reloads) could miss
// the first scrape after a reload.
func (sh *shared) sampleRates(stop <-chan struct{}, window time.Duration) {
	if g := sh.cur.Load(); g != nil {
		g.prepareMetrics()
	}
	t := time.NewTicker(window)
	defer t.Stop()
	byFrontendAndBackend := func() (f, b map[string]float64) {
		f, b = map[string]float64{}, map[string]float64{}
		for k, v := range sums(sh.metrics.requests.requests, nil, "frontend", "backend") {
			fe, be, _ := strings.Cut(k, "|")
			f[fe] += v
			b[be] += v
		}
		return f, b
	}
	prevF, prevB := byFrontendAndBackend()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if g := sh.cur.Load(); g != nil {
				g.prepareMetrics()
			}
			f, b := byFrontendAndBackend()
			secs := now.Sub(last).Seconds()
			r := &requestRates{byFrontend: map[string]float64{}, byBackend: map[string]float64{}}
			for k, v := range f {
				r.byFrontend[k] = (v - prevF[k]) / secs
			}
			for k, v := range b {
				r.byBackend[k] = (v - prevB[k]) / secs
			}
			sh.rates.Store(r)
			prevF, prevB, last = f, b, now
		}
	}
}
