package admin

import (
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/balancer"
)

// Row is one line of the stats: a frontend, a backend or one of its
// servers, with what HAProxy's stats say of each. The page and the CSV
// show the same rows.
type Row struct {
	PxName, SvName string
	Type           int // HAProxy's: 0 frontend, 1 backend, 2 server
	IID, SID       int
	Queue          int   // requests waiting for a server (backend)
	Current        int64 // open connections (frontend); requests in flight (backend, server)
	Limit          int64 // the server's maxconn; 0: none
	Requests       uint64
	Rate           float64   // requests per second over the last few seconds
	Codes          [6]uint64 // responses by class: 1xx to 5xx, then the others
	BytesIn        uint64
	BytesOut       uint64
	// Denied are the requests refused on purpose by reason (waf, access,
	// challenge, rate_limit); DeniedReq is their sum, HAProxy's dreq.
	Denied                                   map[string]uint64
	DeniedReq, DeniedResp                    uint64
	ReqErrors, ConnErrors, RespErrors, Abort uint64
	Retries                                  uint64 // wretr and wredis
	Status                                   string // HAProxy's: OPEN, UP, DOWN, DRAIN, MAINT, no check
	Weight, Active, Backup                   int
	Mode, Algo, Addr                         string

	// Servers only.
	Server       *balancer.Server
	Checked      bool // the backend has active health checks
	CheckType    string
	Rise, Fall   int
	ChecksFailed uint64
	LastCheck    *balancer.CheckResult // nil before the first check
	LastChange   time.Duration         // since the last change of state or health
	Class        string                // the page's row class
}

// FrontendStats is a frontend's row and what the page says of it besides.
type FrontendStats struct {
	*Row
	Binds              string
	Versions, Distinct map[string]uint64 // TLS handshakes by version; distinct clients by version this hour
	Access             map[string]uint64 // the access step's answers by decision, those that happened
}

// BackendStats is a backend's row and its servers'.
type BackendStats struct {
	*Row
	Servers      []*Row
	StickEntries int
}

// PolicyStats is a WAF policy and the requests it blocked.
type PolicyStats struct {
	Policy
	Blocks uint64
}

// Snapshot is what the stats page and its CSV show, read at once.
type Snapshot struct {
	Version  string
	PID      int
	Started  time.Time
	Uptime   time.Duration
	InFlight int64
	// QUICServerID is the server ID in this replica's QUIC connection
	// IDs, "" without one: what its load balancer target must be
	// registered under.
	QUICServerID string
	Frontends    []FrontendStats
	Backends     []BackendStats
	Policies     []PolicyStats
}

// statsFuncs format the stats page's values.
var statsFuncs = template.FuncMap{
	"dur":   humanDuration,
	"since": func(t time.Time) string { return humanDuration(time.Since(t)) },
	"short": func(s string) string {
		if len(s) > 160 {
			return s[:160]
		}
		return s
	},
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
<p>version {{.Version}} · pid {{.PID}} · up {{dur .Uptime}} (since {{.Started.Format "2006-01-02T15:04:05Z07:00"}}) · {{.InFlight}} requests in flight{{if .QUICServerID}} · QUIC server ID {{.QUICServerID}}{{end}} · <a href="?refresh=5">refresh every 5 s</a> · <a href="stats;csv">CSV</a></p>
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
{{range .Policies}}<tr><td>{{.Name}}</td><td>{{.Hash}}</td><td>{{.LoadedAt.Format "2006-01-02T15:04:05Z07:00"}}</td><td>{{.Blocks}}</td></tr>
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

// stats renders the stats page: server-side, no script, no external
// asset; ?format=csv (or /stats;csv) is HAProxy's CSV of the same rows.
func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("format") == "csv" {
		a.statsCSV(w, r)
		return
	}
	data := struct {
		*Snapshot
		Refresh int
	}{Snapshot: a.g.Stats(r.Context())}
	if n, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && n > 0 && n <= 3600 {
		data.Refresh = n
	}
	sort.Slice(data.Backends, func(i, j int) bool { return data.Backends[i].PxName < data.Backends[j].PxName })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	statsPage.Execute(w, data)
}
