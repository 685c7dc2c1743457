package gateway

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/balancer"
)

// statsCSV fetches a stats CSV and reads it with encoding/csv: its header
// (without HAProxy's "# ") and its rows by "pxname/svname", each by column.
func statsCSV(t *testing.T, url string) ([]string, map[string]map[string]string, []string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%s: %d %s\n%s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !strings.HasPrefix(string(body), "# pxname,svname,qcur,") {
		t.Fatalf("%s does not start with HAProxy's header line:\n%s", url, body)
	}
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll() // every line as many fields as the header
	if err != nil {
		t.Fatalf("%s: %v\n%s", url, err, body)
	}
	header := records[0]
	header[0] = strings.TrimPrefix(header[0], "# ")
	rows := map[string]map[string]string{}
	var order []string
	for _, rec := range records[1:] {
		if rec[len(rec)-1] != "" || header[len(header)-1] != "" {
			t.Fatalf("a line does not end with a comma, as HAProxy's do: %q", rec)
		}
		row := map[string]string{}
		for i, name := range header {
			row[name] = rec[i]
		}
		key := row["pxname"] + "/" + row["svname"]
		rows[key] = row
		order = append(order, key)
	}
	return header, rows, order
}

// The stats CSV (/stats;csv, /stats?format=csv) is HAProxy's: its column
// names in its order, FRONTEND rows, then each backend's servers and its
// BACKEND row; encoding/csv reads it, and its numbers are the requests
// sent (bytes and retries as the access log says).
func TestStatsCSV_MatchesRequests(t *testing.T) {
	g, entries := statsGateway(t)
	admin := "http://" + g.AdminAddr().String()
	header, rows, order := statsCSV(t, admin+"/stats;csv")
	// HAProxy's positions (its management guide numbers the fields).
	if len(header) != 78 || header[len(header)-1] != "" {
		t.Fatalf("%d columns (the last %q), want HAProxy's 77 up to algo and a trailing comma", len(header), header[len(header)-1])
	}
	for i, name := range map[int]string{0: "pxname", 1: "svname", 7: "stot", 17: "status", 23: "lastchg", 32: "type", 36: "check_status",
		39: "hrsp_1xx", 48: "req_tot", 49: "cli_abrt", 65: "check_desc", 73: "addr", 75: "mode", 76: "algo"} {
		if header[i] != name {
			t.Errorf("column %d is %q, want HAProxy's %q", i, header[i], name)
		}
	}
	for i, name := range []string{"pxname", "svname", "scur", "stot", "bin", "bout", "dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis",
		"status", "lastchg", "check_status", "check_duration", "hrsp_1xx", "hrsp_5xx", "req_tot", "cli_abrt", "type"} {
		if !strings.Contains(","+strings.Join(header, ",")+",", ","+name+",") {
			t.Errorf("no column %s (%d)", name, i)
		}
	}
	wantOrder := []string{"web/FRONTEND", "app/a", "app/dead", "app/BACKEND", "gone/dead2", "gone/BACKEND", "broken/broken", "broken/BACKEND",
		"checked/c1", "checked/c2", "checked/BACKEND"}
	if fmt.Sprint(order) != fmt.Sprint(wantOrder) {
		t.Errorf("rows %v, want %v", order, wantOrder)
	}
	retries := fmt.Sprint(logSum(entries, "retries", map[string]string{"backend": "app"}))
	for key, want := range map[string]map[string]string{
		"web/FRONTEND": {"type": "0", "status": "OPEN", "req_tot": "18", "stot": "", "dreq": "4", "dresp": "1", "ereq": "1", "econ": "",
			"bin": "7", "bout": fmt.Sprint(logSum(entries, "bytes_out", nil)), "mode": "http", "pid": "1", "iid": "1", "sid": "0",
			"hrsp_1xx": "0", "hrsp_2xx": "7", "hrsp_3xx": "1", "hrsp_4xx": "7", "hrsp_5xx": "3", "hrsp_other": "0"},
		"app/a": {"type": "2", "status": "no check", "stot": "10", "req_tot": "10", "scur": "0", "weight": "1", "act": "1", "bck": "0",
			"bin": "7", "bout": fmt.Sprint(logSum(entries, "bytes_out", map[string]string{"server": "a"})),
			"dreq": "", "dresp": "1", "econ": "0", "eresp": "0", "wretr": retries, "wredis": retries, "check_status": "",
			"hrsp_2xx": "6", "hrsp_3xx": "1", "hrsp_4xx": "2", "hrsp_5xx": "1", "sid": "1"},
		"app/dead": {"status": "no check", "stot": "0", "sid": "2"},
		"app/BACKEND": {"type": "1", "status": "UP", "stot": "14", "req_tot": "14", "qcur": "0", "act": "2", "weight": "2", "algo": "roundrobin",
			"bin": "7", "dreq": "4", "dresp": "1", "econ": "0", "eresp": "0", "wretr": retries, "wredis": retries,
			"hrsp_2xx": "6", "hrsp_3xx": "1", "hrsp_4xx": "6", "hrsp_5xx": "1"},
		"gone/dead2":     {"stot": "1", "hrsp_5xx": "1", "econ": "1"},
		"gone/BACKEND":   {"stot": "1", "econ": "1", "eresp": "0"},
		"broken/broken":  {"stot": "1", "hrsp_5xx": "1", "eresp": "1", "econ": "0"},
		"broken/BACKEND": {"stot": "1", "eresp": "1"},
		"checked/c1": {"status": "DRAIN", "check_status": "L7OK", "check_desc": "Layer7 check passed", "chkfail": "0", "stot": "1", "hrsp_2xx": "1",
			"check_rise": "1", "check_fall": "1"},
		"checked/c2":      {"status": "DOWN", "check_status": "L4CON", "check_desc": "Layer4 connection problem"},
		"checked/BACKEND": {"status": "DOWN", "act": "0", "weight": "0"},
	} {
		row := rows[key]
		if row == nil {
			t.Errorf("no row %s", key)
			continue
		}
		for col, w := range want {
			if row[col] != w {
				t.Errorf("%s: %s = %q, want %q", key, col, row[col], w)
			}
		}
	}
	if retries == "0" {
		t.Error("no request was retried: app's dead server should have been tried first once in two")
	}
	c1, c2 := rows["checked/c1"], rows["checked/c2"]
	if d, err := strconv.Atoi(c1["check_duration"]); err != nil || d < 0 || d > 1000 {
		t.Errorf("c1's check_duration %q", c1["check_duration"])
	}
	if n, err := strconv.Atoi(c2["chkfail"]); err != nil || n < 1 || !strings.Contains(c2["last_chk"], "connection refused") || strings.ContainsAny(c2["last_chk"], `,"`) {
		t.Errorf("c2's chkfail %q, last_chk %q", c2["chkfail"], c2["last_chk"])
	}
	// c1 was drained just now; a and the others have not changed since the gateway started.
	if n, err := strconv.Atoi(c1["lastchg"]); err != nil || n > 1 {
		t.Errorf("c1's lastchg %q, want 0 or 1 s", c1["lastchg"])
	}
	g.SetServerState("app", "dead", balancer.Maint)
	_, rows2, order2 := statsCSV(t, admin+"/stats?format=csv")
	if fmt.Sprint(order2) != fmt.Sprint(order) || rows2["app/dead"]["status"] != "MAINT" || rows2["web/FRONTEND"]["req_tot"] != "18" {
		t.Errorf("?format=csv: rows %v, app/dead %s, FRONTEND req_tot %s", order2, rows2["app/dead"]["status"], rows2["web/FRONTEND"]["req_tot"])
	}
}
