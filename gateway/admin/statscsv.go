package admin

import (
	"encoding/csv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/balancer"
)

// CheckStatus is HAProxy's check_status for the server's last check: L4OK,
// L4CON, L4TOUT for tcp checks; L7OK, L7STS (a status not expected), L7RSP,
// L7TOUT, or the layer 4 ones when the connect failed, for http checks;
// PROCOK, PROCERR, PROCTOUT for exec checks; INI before the first.
func (r *Row) CheckStatus() string {
	return checkStatus(r.CheckType, r.LastCheck)
}

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
func (r *Row) csvFields() map[string]string {
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
			st := r.CheckStatus()
			f["chkfail"], f["check_status"], f["check_desc"] = u(r.ChecksFailed), st, checkDescriptions[st]
			f["check_rise"], f["check_fall"] = strconv.Itoa(r.Rise), strconv.Itoa(r.Fall)
			if c := r.LastCheck; c != nil {
				f["check_duration"] = i(c.Took.Milliseconds())
				f["last_chk"] = csvText(c.Err)
				if code, ok := strings.CutPrefix(c.Err, "status "); ok && st == "L7STS" {
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

// statsCSV writes the stats as HAProxy's "show stat" CSV (its stats
// page's ;csv): a header line "# pxname,svname,...", then each frontend,
// then each backend's servers followed by its BACKEND row; each line ends
// with a comma, as HAProxy's do.
func (a *api) statsCSV(w http.ResponseWriter, r *http.Request) {
	snap := a.g.Stats(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	header := append([]string{"# " + statsColumns[0]}, statsColumns[1:]...)
	cw.Write(append(header, ""))
	write := func(row *Row) {
		f := row.csvFields()
		rec := make([]string, len(statsColumns)+1)
		for i, c := range statsColumns {
			rec[i] = f[c]
		}
		cw.Write(rec)
	}
	for _, fr := range snap.Frontends {
		write(fr.Row)
	}
	for _, b := range snap.Backends {
		for _, s := range b.Servers {
			write(s)
		}
		write(b.Row)
	}
	cw.Flush()
}
