package gateway

import (
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

var statsPage = template.Must(template.New("stats").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sekisho stats</title>
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}
.ready{background:#d8f5d8}.drain{background:#fff3c4}.maint{background:#ddd}.down{background:#f7d0d0}
</style></head><body>
<h1>sekisho</h1>
<p>Up since {{.Started}} · {{.InFlight}} requests in flight · <a href="?refresh=5">refresh every 5 s</a></p>
<h2>Frontends</h2>
<table><tr><th>frontend</th><th>binds</th><th>connections</th><th>requests/s</th><th>handshakes by TLS version</th><th>distinct clients this hour</th><th>access decisions</th></tr>
{{range .Frontends}}<tr><td>{{.Name}}</td><td>{{.Binds}}</td><td>{{.Conns}}</td><td>{{printf "%.1f" .Rate}}</td><td>{{range $v, $n := .Versions}}{{$v}}: {{$n}} {{end}}</td><td>{{range $v, $n := .Distinct}}{{$v}}: {{$n}} {{end}}</td><td>{{range $d, $n := .Access}}{{$d}}: {{$n}} {{end}}</td></tr>
{{end}}</table>
<h2>Backends</h2>
{{range .Backends}}<h3>{{.Name}}</h3>
<p>requests {{.Total}} ({{printf "%.1f" .Rate}}/s) · 5xx {{.Errors}} · queue {{.Queue}}{{if .StickEntries}} · stick table {{.StickEntries}} entries{{end}}</p>
<table><tr><th>server</th><th>address</th><th>state</th><th>health</th><th>weight</th><th>in flight</th><th>latency</th></tr>
{{range .Servers}}<tr class="{{.Class}}"><td>{{.Name}}</td><td>{{.Address}}</td><td>{{.State}}</td><td>{{.Health}}</td><td>{{.Weight}}</td><td>{{.Inflight}}</td><td>{{.Latency}}</td></tr>
{{end}}</table>
{{end}}
<h2>WAF</h2>
<table><tr><th>policy</th><th>rules hash</th><th>loaded</th><th>blocks</th></tr>
{{range .Policies}}<tr><td>{{.Name}}</td><td>{{.Hash}}</td><td>{{.Loaded}}</td><td>{{.Blocks}}</td></tr>
{{end}}</table>
</body></html>
`))

type statsServer struct {
	Name, Address, State, Health, Class, Latency string
	Weight                                       int
	Inflight                                     int64
}

type statsBackend struct {
	Name                   string
	Total, Errors, Blocked uint64
	Queue, StickEntries    int
	Rate                   float64 // requests per second over the last rateWindow
	Servers                []statsServer
}

type statsFrontend struct {
	Name, Binds        string
	Conns              int64
	Rate               float64 // requests per second over the last rateWindow
	Versions, Distinct map[string]uint64
	Access             map[string]uint64 // the access step's answers by decision (deny, challenge, cleared, refused)
}

type statsPolicy struct {
	Name, Hash, Loaded string
	Blocks             uint64
}

// serveStats renders the stats page: server-side, no script, no external asset.
func (g *Gateway) serveStats(w http.ResponseWriter, r *http.Request) {
	data := struct {
		Started   string
		InFlight  int64
		Refresh   int
		Frontends []statsFrontend
		Backends  []statsBackend
		Policies  []statsPolicy
	}{Started: g.sh.started.Format(time.RFC3339), InFlight: g.sh.active.Load()}
	if n, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && n > 0 && n <= 3600 {
		data.Refresh = n
	}
	for _, f := range g.frontends {
		sf := statsFrontend{Name: f.name, Conns: f.open.Load(), Access: map[string]uint64{}}
		for d, n := range sums(g.metrics.requests.access, map[string]string{"frontend": f.name}, "decision") {
			sf.Access[d] = uint64(n)
		}
		if r := g.sh.rates.Load(); r != nil {
			sf.Rate = r.byFrontend[f.name]
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
	m := g.metrics.requests
	requests := sums(m.requests, nil, "backend")
	errors5xx := sums(m.requests, map[string]string{"code": "5xx"}, "backend")
	blocked := sums(m.blocked, nil, "policy")
	for _, p := range g.pools {
		sb := statsBackend{Name: p.Name, Queue: p.QueueLen(), Total: uint64(requests[p.Name]), Errors: uint64(errors5xx[p.Name])}
		if r := g.sh.rates.Load(); r != nil {
			sb.Rate = r.byBackend[p.Name]
		}
		if st := p.StickStore(); st != nil {
			if n, err := st.Len(r.Context()); err == nil {
				sb.StickEntries = n
			}
		}
		for _, s := range p.Servers() {
			ss := statsServer{Name: s.Name, Address: s.Address, State: s.State().String(), Weight: s.Weight(),
				Inflight: s.Inflight(), Latency: s.Latency().Round(time.Microsecond).String(), Health: "up"}
			ss.Class = ss.State
			if s.Down() {
				ss.Health, ss.Class = "down", "down"
			}
			if c := s.LastCheck(); c != nil && c.Err == "" {
				ss.Health += ", check passed in " + c.Took.Round(time.Microsecond).String()
			} else if c != nil {
				ss.Health += ", check failed: " + truncate(c.Err, 80)
			}
			sb.Servers = append(sb.Servers, ss)
		}
		data.Backends = append(data.Backends, sb)
	}
	for _, p := range g.policies {
		e := p.cur.Load()
		data.Policies = append(data.Policies, statsPolicy{Name: p.name, Hash: e.Hash(), Loaded: e.LoadedAt().Format(time.RFC3339), Blocks: uint64(blocked[p.name])})
	}
	sort.Slice(data.Backends, func(i, j int) bool { return data.Backends[i].Name < data.Backends[j].Name })
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
// a reading of counters, so the request path pays nothing.
func (sh *shared) sampleRates(stop <-chan struct{}, window time.Duration) {
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
