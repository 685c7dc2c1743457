package gateway

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/gateway/config"
)

// Version is the version sekisho was built as, for the stats page, its
// CSV and sekisho_build_info; cmd/sekisho sets it. Empty, the module's
// version and VCS revision from the build info stand in.
var Version string

// version is Version, or what the build info says.
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// stats reads the counters, the servers' states and their checks, for
// the stats page and its CSV.
func (g *Gateway) stats(ctx context.Context) *admin.Snapshot {
	now := time.Now()
	snap := &admin.Snapshot{Version: version(), PID: os.Getpid(), Started: g.sh.started, Uptime: now.Sub(g.sh.started), InFlight: g.sh.active.Load()}
	if id := g.sh.serverID; id != nil {
		snap.QUICServerID = id.String()
	}
	sr := g.readStats(now)
	for _, f := range g.frontends {
		sr.iid++
		snap.Frontends = append(snap.Frontends, g.frontendStats(f, sr.frontendRow(f)))
	}
	for _, p := range g.pools {
		sr.iid++
		snap.Backends = append(snap.Backends, sr.backendStats(ctx, p))
	}
	blocked := sums(g.metrics.requests.blocked, nil, "policy")
	for _, p := range g.Policies() {
		snap.Policies = append(snap.Policies, admin.PolicyStats{Policy: p, Blocks: uint64(blocked[p.Name])})
	}
	return snap
}

// tally is a counter's sums by frontend, by backend and by server (backend|server).
type tally struct{ f, b, s map[string]float64 }

func tallyOf(c prometheus.Collector, match map[string]string) tally {
	return tally{sums(c, match, "frontend"), sums(c, match, "backend"), sums(c, match, "backend", "server")}
}

// statsReader holds the counters' sums that the rows are read from.
type statsReader struct {
	now                                 time.Time
	iid                                 int
	rates                               *requestRates
	bytesIn, bytesOut, deniedResp       tally
	retries                             tally
	errs                                map[string]tally // by kind
	deniedF, deniedB                    map[string]float64
	codesF, codesB, codesS, checkFailed map[string]float64
	backendCfg                          map[string]*config.Backend
	tcpBackends                         map[string]bool
}

func (g *Gateway) readStats(now time.Time) *statsReader {
	m := g.metrics.requests
	sr := &statsReader{now: now, rates: g.sh.rates.Load(),
		bytesIn: tallyOf(m.bytesIn, nil), bytesOut: tallyOf(m.bytesOut, nil), deniedResp: tallyOf(m.deniedResp, nil),
		retries: tally{b: sums(m.retries, nil, "backend"), s: sums(m.retries, nil, "backend", "server")},
		errs:    map[string]tally{},
		deniedF: sums(m.denied, nil, "frontend", "reason"), deniedB: sums(m.denied, nil, "backend", "reason"),
		codesF: sums(m.requests, nil, "frontend", "code"), codesB: sums(m.requests, nil, "backend", "code"),
		codesS:      sums(m.requests, nil, "backend", "server", "code"),
		checkFailed: sums(g.metrics.healthChecks, map[string]string{"result": "failed"}, "backend", "server"),
		backendCfg:  map[string]*config.Backend{}, tcpBackends: map[string]bool{}}
	for _, k := range errorKinds {
		sr.errs[k] = tallyOf(m.reqErrors, map[string]string{"kind": k})
	}
	for i := range g.cfg.Backends {
		sr.backendCfg[g.cfg.Backends[i].Name] = &g.cfg.Backends[i]
	}
	for _, f := range g.cfg.Frontends {
		if f.Mode == "tcp" {
			sr.tcpBackends[f.Backend] = true
		}
	}
	return sr
}

func count(sums map[string]float64, key ...string) uint64 {
	return uint64(math.Round(sums[strings.Join(key, "|")]))
}

// addCodes adds the responses of the row whose key is prefix by class.
func addCodes(r *admin.Row, sums map[string]float64, prefix string) {
	for k, v := range sums {
		rest, ok := strings.CutPrefix(k, prefix+"|")
		if !ok || strings.Contains(rest, "|") {
			continue
		}
		i := 5 // other
		if len(rest) == 3 && rest[0] >= '1' && rest[0] <= '5' {
			i = int(rest[0] - '1')
		}
		r.Codes[i] += uint64(math.Round(v))
		r.Requests += uint64(math.Round(v))
	}
}

// addDenials fills the row's denials by reason, and their sum.
func addDenials(r *admin.Row, sums map[string]float64) {
	r.Denied = map[string]uint64{}
	for _, reason := range denyReasons {
		n := count(sums, r.PxName, reason)
		r.Denied[reason] = n
		r.DeniedReq += n
	}
}

func (sr *statsReader) frontendRow(f *frontend) *admin.Row {
	r := &admin.Row{PxName: f.name, SvName: "FRONTEND", Type: 0, IID: sr.iid, Current: f.open.Load(), Status: "OPEN", Mode: f.cfg.Mode,
		BytesIn: count(sr.bytesIn.f, f.name), BytesOut: count(sr.bytesOut.f, f.name), DeniedResp: count(sr.deniedResp.f, f.name),
		ReqErrors: count(sr.errs["request"].f, f.name)}
	if sr.rates != nil {
		r.Rate = sr.rates.byFrontend[f.name]
	}
	addCodes(r, sr.codesF, f.name)
	addDenials(r, sr.deniedF)
	return r
}

// frontendStats adds what the page says of a frontend besides its row:
// where it listens, its TLS usage and its access decisions.
func (g *Gateway) frontendStats(f *frontend, row *admin.Row) admin.FrontendStats {
	sf := admin.FrontendStats{Row: row, Access: map[string]uint64{}}
	for d, n := range sums(g.metrics.requests.access, map[string]string{"frontend": f.name}, "decision") {
		if n > 0 {
			sf.Access[d] = uint64(n)
		}
	}
	var binds []string
	for i, b := range f.binds {
		addr := b.Address
		if i < len(f.lns) {
			addr = f.lns[i].Addr().String() // the bound port, for :0 too
		}
		if b.TLS {
			addr += " (TLS)"
		}
		binds = append(binds, addr)
	}
	for _, q := range f.quic {
		// HTTP/3's UDP sockets are listeners too: an operator checks
		// the port a firewall must open.
		binds = append(binds, q.pc.LocalAddr().String()+" (HTTP/3, UDP)")
	}
	sf.Binds = strings.Join(binds, ", ")
	if u, ok := g.TLSUsage(f.name); ok {
		sf.Versions, sf.Distinct = u.Versions, u.Distinct
	}
	return sf
}

func (sr *statsReader) backendStats(ctx context.Context, p *balancer.Pool) admin.BackendStats {
	bc := sr.backendCfg[p.Name]
	b := admin.BackendStats{Row: &admin.Row{PxName: p.Name, SvName: "BACKEND", Type: 1, IID: sr.iid, Queue: p.QueueLen(), Status: "DOWN", Mode: "http",
		BytesIn: count(sr.bytesIn.b, p.Name), BytesOut: count(sr.bytesOut.b, p.Name), DeniedResp: count(sr.deniedResp.b, p.Name),
		ConnErrors: count(sr.errs["connect"].b, p.Name), RespErrors: count(sr.errs["response"].b, p.Name), Abort: count(sr.errs["client_abort"].b, p.Name),
		Retries: count(sr.retries.b, p.Name)}}
	if sr.tcpBackends[p.Name] {
		b.Mode = "tcp"
	}
	if bc != nil {
		b.Algo = bc.Balance
	}
	if p.Usable() {
		b.Status = "UP"
	}
	if sr.rates != nil {
		b.Rate = sr.rates.byBackend[p.Name]
	}
	addCodes(b.Row, sr.codesB, p.Name)
	addDenials(b.Row, sr.deniedB)
	if st := p.StickStore(); st != nil {
		if n, err := st.Len(ctx); err == nil {
			b.StickEntries = n
		}
	}
	for i, s := range p.Servers() {
		r := sr.serverRow(p.Name, i, s, bc, b.Mode)
		if s.Usable() {
			b.Weight += r.Weight
			b.Active += r.Active
			b.Backup += r.Backup
		}
		b.Current += r.Current
		b.Servers = append(b.Servers, r)
	}
	return b
}

func (sr *statsReader) serverRow(backend string, i int, s *balancer.Server, bc *config.Backend, mode string) *admin.Row {
	key := backend + "|" + s.Name
	r := &admin.Row{PxName: backend, SvName: s.Name, Type: 2, IID: sr.iid, SID: i + 1, Current: s.Inflight(), Limit: s.MaxConn, Mode: mode,
		BytesIn: count(sr.bytesIn.s, key), BytesOut: count(sr.bytesOut.s, key), DeniedResp: count(sr.deniedResp.s, key),
		ConnErrors: count(sr.errs["connect"].s, key), RespErrors: count(sr.errs["response"].s, key), Abort: count(sr.errs["client_abort"].s, key),
		Retries: count(sr.retries.s, key), Weight: s.Weight(), Addr: s.Address, Server: s,
		LastChange: sr.now.Sub(s.LastChange()).Truncate(time.Second), LastCheck: s.LastCheck()}
	if bc != nil && bc.HealthCheck != nil {
		r.Checked, r.CheckType, r.Rise, r.Fall = true, bc.HealthCheck.Type, bc.HealthCheck.Rise, bc.HealthCheck.Fall
		r.ChecksFailed = count(sr.checkFailed, key)
	}
	state := serverState(s)
	r.Status = strings.ToUpper(state)
	if state == "up" && !r.Checked {
		r.Status = "no check"
	}
	r.Class = s.State().String()
	if state == "down" {
		r.Class = "down"
	}
	if s.Backup {
		r.Backup = 1
	} else {
		r.Active = 1
	}
	addCodes(r, sr.codesS, key)
	return r
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
