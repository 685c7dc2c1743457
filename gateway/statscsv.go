package gateway

import (
	"context"
	"encoding/csv"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/balancer"
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

// statsRow is one line of the stats: a frontend, a backend or one of its
// servers, with what HAProxy's stats say of each. The page and the CSV
// show the same rows.
type statsRow struct {
	PxName, SvName string
	Type           int // HAProxy's: 0 frontend, 1 backend, 2 server
	IID, SID       int
	Queue          int   // requests waiting for a server (backend)
	Current        int64 // open connections (frontend); requests in flight (backend, server)
	Limit          int64 // the server's maxconn; 0: none
	Requests       uint64
	Rate           float64   // requests per second over the last rateWindow
	Codes          [6]uint64 // responses by class: 1xx to 5xx, then the others
	BytesIn        uint64
	BytesOut       uint64
	// Denied are the requests refused on purpose by reason (denyReasons);
	// DeniedReq is their sum, HAProxy's dreq.
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
	CheckStatus  string                // HAProxy's check_status: L4OK, L7STS...
	LastChange   time.Duration         // since the last change of state or health
	State, Class string                // sekisho_server_state's state; the page's row class
}

// statsBackend is a backend's row and its servers'.
type statsBackend struct {
	*statsRow
	Servers      []*statsRow
	StickEntries int
}

// statsSnapshot is what the stats page and its CSV show, read at once.
type statsSnapshot struct {
	Version   string
	PID       int
	Started   time.Time
	Uptime    time.Duration
	InFlight  int64
	Frontends []*statsRow
	Backends  []statsBackend
}

// stats reads the counters, the servers' states and their checks.
func (g *Gateway) stats(ctx context.Context) *statsSnapshot {
	now := time.Now()
	snap := &statsSnapshot{Version: version(), PID: os.Getpid(), Started: g.sh.started, Uptime: now.Sub(g.sh.started), InFlight: g.sh.active.Load()}
	m := g.metrics.requests
	rates := g.sh.rates.Load()
	count := func(sums map[string]float64, key ...string) uint64 {
		return uint64(math.Round(sums[strings.Join(key, "|")]))
	}
	// By frontend, by backend and by server (backend|server).
	type tally struct{ f, b, s map[string]float64 }
	by := func(c prometheus.Collector, match map[string]string) tally {
		return tally{sums(c, match, "frontend"), sums(c, match, "backend"), sums(c, match, "backend", "server")}
	}
	bytesIn, bytesOut, deniedResp, retries := by(m.bytesIn, nil), by(m.bytesOut, nil), by(m.deniedResp, nil), tally{b: sums(m.retries, nil, "backend"), s: sums(m.retries, nil, "backend", "server")}
	errs := map[string]tally{}
	for _, k := range errorKinds {
		errs[k] = by(m.reqErrors, map[string]string{"kind": k})
	}
	deniedF, deniedB := sums(m.denied, nil, "frontend", "reason"), sums(m.denied, nil, "backend", "reason")
	codesF, codesB, codesS := sums(m.requests, nil, "frontend", "code"), sums(m.requests, nil, "backend", "code"), sums(m.requests, nil, "backend", "server", "code")
	checksFailed := sums(g.metrics.healthChecks, map[string]string{"result": "failed"}, "backend", "server")
	addCodes := func(r *statsRow, sums map[string]float64, prefix string) {
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
	denials := func(r *statsRow, sums map[string]float64) {
		r.Denied = map[string]uint64{}
		for _, reason := range denyReasons {
			n := count(sums, r.PxName, reason)
			r.Denied[reason] = n
			r.DeniedReq += n
		}
	}

	iid := 0
	for _, f := range g.frontends {
		iid++
		r := &statsRow{PxName: f.name, SvName: "FRONTEND", Type: 0, IID: iid, Current: f.open.Load(), Status: "OPEN", Mode: f.cfg.Mode,
			BytesIn: count(bytesIn.f, f.name), BytesOut: count(bytesOut.f, f.name), DeniedResp: count(deniedResp.f, f.name),
			ReqErrors: count(errs["request"].f, f.name)}
		if rates != nil {
			r.Rate = rates.byFrontend[f.name]
		}
		addCodes(r, codesF, f.name)
		denials(r, deniedF)
		snap.Frontends = append(snap.Frontends, r)
	}
	backendCfg := map[string]*config.Backend{}
	for i := range g.cfg.Backends {
		backendCfg[g.cfg.Backends[i].Name] = &g.cfg.Backends[i]
	}
	tcpBackends := map[string]bool{}
	for _, f := range g.cfg.Frontends {
		if f.Mode == "tcp" {
			tcpBackends[f.Backend] = true
		}
	}
	for _, p := range g.pools {
		iid++
		bc := backendCfg[p.Name]
		b := statsBackend{statsRow: &statsRow{PxName: p.Name, SvName: "BACKEND", Type: 1, IID: iid, Queue: p.QueueLen(), Status: "DOWN", Mode: "http",
			BytesIn: count(bytesIn.b, p.Name), BytesOut: count(bytesOut.b, p.Name), DeniedResp: count(deniedResp.b, p.Name),
			ConnErrors: count(errs["connect"].b, p.Name), RespErrors: count(errs["response"].b, p.Name), Abort: count(errs["client_abort"].b, p.Name),
			Retries: count(retries.b, p.Name)}}
		if tcpBackends[p.Name] {
			b.Mode = "tcp"
		}
		if bc != nil {
			b.Algo = bc.Balance
		}
		if p.Usable() {
			b.Status = "UP"
		}
		if rates != nil {
			b.Rate = rates.byBackend[p.Name]
		}
		addCodes(b.statsRow, codesB, p.Name)
		denials(b.statsRow, deniedB)
		if st := p.StickStore(); st != nil {
			if n, err := st.Len(ctx); err == nil {
				b.StickEntries = n
			}
		}
		for i, s := range p.Servers() {
			key := p.Name + "|" + s.Name
			r := &statsRow{PxName: p.Name, SvName: s.Name, Type: 2, IID: iid, SID: i + 1, Current: s.Inflight(), Limit: s.MaxConn, Mode: b.Mode,
				BytesIn: count(bytesIn.s, key), BytesOut: count(bytesOut.s, key), DeniedResp: count(deniedResp.s, key),
				ConnErrors: count(errs["connect"].s, key), RespErrors: count(errs["response"].s, key), Abort: count(errs["client_abort"].s, key),
				Retries: count(retries.s, key), Weight: s.Weight(), Addr: s.Address, Server: s,
				LastChange: now.Sub(s.LastChange()).Truncate(time.Second), LastCheck: s.LastCheck(), State: serverState(s)}
			if bc != nil && bc.HealthCheck != nil {
				r.Checked, r.CheckType, r.Rise, r.Fall = true, bc.HealthCheck.Type, bc.HealthCheck.Rise, bc.HealthCheck.Fall
				r.ChecksFailed = count(checksFailed, key)
				r.CheckStatus = checkStatus(r.CheckType, r.LastCheck)
			}
			r.Status = strings.ToUpper(r.State)
			if r.State == "up" && !r.Checked {
				r.Status = "no check"
			}
			r.Class = s.State().String()
			if r.State == "down" {
				r.Class = "down"
			}
			if s.Backup {
				r.Backup = 1
			} else {
				r.Active = 1
			}
			if s.Usable() {
				b.Weight += r.Weight
				b.Active += r.Active
				b.Backup += r.Backup
			}
			b.Current += r.Current
			addCodes(r, codesS, key)
			b.Servers = append(b.Servers, r)
		}
		snap.Backends = append(snap.Backends, b)
	}
	return snap
}

// checkStatus is HAProxy's check_status for a check's result: L4OK,
// L4CON, L4TOUT for tcp checks; L7OK, L7STS (a status not expected), L7RSP,
// L7TOUT, or the layer 4 ones when the connect failed, for http checks;
// PROCOK, PROCERR, PROCTOUT for exec checks; INI before the first.
func checkStatus(typ string, c *balancer.CheckResult) string {
	if c == nil {
		return "INI"
	}
	timeout := strings.Contains(c.Err, "timeout") || strings.Contains(c.Err, "deadline exceeded")
	switch typ {
	case "exec":
		switch {
		case c.Err == "":
			return "PROCOK"
		case timeout || strings.Contains(c.Err, "killed"):
			return "PROCTOUT"
		}
		return "PROCERR"
	case "tcp", "tcp_half_open":
		switch {
		case c.Err == "":
			return "L4OK"
		case timeout:
			return "L4TOUT"
		}
		return "L4CON"
	}
	switch {
	case c.Err == "":
		return "L7OK"
	case strings.HasPrefix(c.Err, "status "):
		return "L7STS"
	case strings.Contains(c.Err, "dial tcp") && timeout:
		return "L4TOUT"
	case strings.Contains(c.Err, "dial tcp"):
		return "L4CON"
	case timeout:
		return "L7TOUT"
	}
	return "L7RSP"
}

// checkDescriptions are HAProxy's check_desc for each check_status.
var checkDescriptions = map[string]string{
	"INI": "Initializing", "L4OK": "Layer4 check passed", "L4TOUT": "Layer4 timeout", "L4CON": "Layer4 connection problem",
	"L7OK": "Layer7 check passed", "L7STS": "Layer7 wrong status", "L7RSP": "Layer7 invalid response", "L7TOUT": "Layer7 timeout",
	"PROCOK": "External check passed", "PROCERR": "External check error", "PROCTOUT": "External check timeout",
}

// statsColumns are HAProxy's stats CSV columns up to algo, in its order,
// so that tools reading HAProxy's CSV by name or by position read this
// one. Those sekisho has nothing for stay empty, as HAProxy leaves the
// ones that do not apply to a row.
var statsColumns = []string{
	"pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout",
	"dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight", "act",
	"bck", "chkfail", "chkdown", "lastchg", "downtime", "qlimit", "pid", "iid", "sid", "throttle",
	"lbtot", "tracked", "type", "rate", "rate_lim", "rate_max", "check_status", "check_code", "check_duration", "hrsp_1xx",
	"hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "hanafail", "req_rate", "req_rate_max", "req_tot", "cli_abrt",
	"srv_abrt", "comp_in", "comp_out", "comp_byp", "comp_rsp", "lastsess", "last_chk", "last_agt", "qtime", "ctime",
	"rtime", "ttime", "agent_status", "agent_code", "agent_duration", "check_desc", "agent_desc", "check_rise", "check_fall", "check_health",
	"agent_rise", "agent_fall", "agent_health", "addr", "cookie", "mode", "algo",
}

// csvFields are a row's values by column name, as HAProxy fills them for
// its kind of row.
func (r *statsRow) csvFields() map[string]string {
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	f := map[string]string{
		"pxname": r.PxName, "svname": r.SvName, "scur": i(r.Current), "bin": u(r.BytesIn), "bout": u(r.BytesOut),
		"dresp": u(r.DeniedResp), "status": r.Status, "pid": "1", "iid": strconv.Itoa(r.IID), "sid": strconv.Itoa(r.SID),
		"type": strconv.Itoa(r.Type), "req_tot": u(r.Requests), "mode": r.Mode,
		"hrsp_1xx": u(r.Codes[0]), "hrsp_2xx": u(r.Codes[1]), "hrsp_3xx": u(r.Codes[2]), "hrsp_4xx": u(r.Codes[3]), "hrsp_5xx": u(r.Codes[4]), "hrsp_other": u(r.Codes[5]),
	}
	rate := strconv.FormatInt(int64(math.Round(r.Rate)), 10)
	switch r.Type {
	case 0:
		f["dreq"], f["ereq"], f["req_rate"] = u(r.DeniedReq), u(r.ReqErrors), rate
	case 1, 2:
		f["stot"], f["econ"], f["eresp"], f["wretr"], f["wredis"], f["cli_abrt"] = u(r.Requests), u(r.ConnErrors), u(r.RespErrors), u(r.Retries), u(r.Retries), u(r.Abort)
		f["weight"], f["act"], f["bck"] = strconv.Itoa(r.Weight), strconv.Itoa(r.Active), strconv.Itoa(r.Backup)
	}
	switch r.Type {
	case 1:
		f["qcur"], f["dreq"], f["rate"], f["algo"] = strconv.Itoa(r.Queue), u(r.DeniedReq), rate, r.Algo
	case 2:
		f["lastchg"], f["addr"] = i(int64(r.LastChange/time.Second)), r.Addr
		if r.Limit > 0 {
			f["slim"] = i(r.Limit)
		}
		if r.Checked {
			f["chkfail"], f["check_status"], f["check_desc"] = u(r.ChecksFailed), r.CheckStatus, checkDescriptions[r.CheckStatus]
			f["check_rise"], f["check_fall"] = strconv.Itoa(r.Rise), strconv.Itoa(r.Fall)
			if c := r.LastCheck; c != nil {
				f["check_duration"] = i(c.Took.Milliseconds())
				f["last_chk"] = csvText(c.Err)
				if code, ok := strings.CutPrefix(c.Err, "status "); ok && r.CheckStatus == "L7STS" {
					f["check_code"], _, _ = strings.Cut(code, ",")
				}
			}
		}
	}
	return f
}

// csvText is free text (an error) as a field that naive readers, which
// split lines on commas, read whole too: no comma, quote or line break.
func csvText(s string) string {
	return strings.NewReplacer(",", ";", `"`, "'", "\n", " ", "\r", " ").Replace(s)
}

// serveStatsCSV writes the stats as HAProxy's "show stat" CSV (its stats
// page's ;csv): a header line "# pxname,svname,...", then each frontend,
// then each backend's servers followed by its BACKEND row; each line ends
// with a comma, as HAProxy's do.
func (g *Gateway) serveStatsCSV(w http.ResponseWriter, r *http.Request) {
	snap := g.stats(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	header := append([]string{"# " + statsColumns[0]}, statsColumns[1:]...)
	cw.Write(append(header, ""))
	write := func(row *statsRow) {
		f := row.csvFields()
		rec := make([]string, len(statsColumns)+1)
		for i, c := range statsColumns {
			rec[i] = f[c]
		}
		cw.Write(rec)
	}
	for _, fr := range snap.Frontends {
		write(fr)
	}
	for _, b := range snap.Backends {
		for _, s := range b.Servers {
			write(s)
		}
		write(b.statsRow)
	}
	cw.Flush()
}
