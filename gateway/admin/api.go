package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/balancer/sticktable"
)

// The admin API (on the admin listener, behind its token):
//
//	GET  /stats                                 the stats page (HTML)
//	GET  /stats;csv, /stats?format=csv          the same as HAProxy's stats CSV
//	GET  /api/backends                          backends, their servers and states
//	PUT  /api/backends/{backend}/servers/{server}   {"state": "ready|drain|maint", "weight": 0..256}, either or both
//	GET  /api/tables                            stick tables (persistence, rate limits) and their sizes
//	GET  /api/tables/{table}?offset=N&limit=N   a page of a table's entries, most recently used first
//	DELETE /api/tables/{table}/entries/{key}    clear an entry (a client's persistence, its rate count)
//	GET  /api/bans                              the bans in force
//	DELETE /api/bans/{client}                   lift a client's ban
//	GET  /api/tls                               TLS usage per frontend
//	POST /api/reload                            reload the config file (if run with one) and the WAF rules folders
type api struct {
	g   Gateway
	log zerolog.Logger
}

func (a *api) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /stats", a.stats)
	mux.HandleFunc("GET /stats;csv", a.statsCSV)
	mux.HandleFunc("GET /api/backends", a.backends)
	mux.HandleFunc("PUT /api/backends/{backend}/servers/{server}", a.setServer)
	mux.HandleFunc("GET /api/tables", a.tables)
	mux.HandleFunc("GET /api/tables/{table}", a.tableEntries)
	mux.HandleFunc("DELETE /api/tables/{table}/entries/{key}", a.clearEntry)
	mux.HandleFunc("GET /api/bans", a.bans)
	mux.HandleFunc("DELETE /api/bans/{client}", a.liftBan)
	mux.HandleFunc("GET /api/tls", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, a.g.TLSUsage()) })
	mux.HandleFunc("POST /api/reload", a.reload)
}

func (a *api) reload(w http.ResponseWriter, _ *http.Request) {
	if err := a.g.Reload(); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "policies": a.g.Policies()})
		return
	}
	writeJSON(w, http.StatusOK, a.g.Policies())
}

// Policy is a WAF policy and the rules it runs: their hash and load time.
type Policy struct {
	Name     string    `json:"policy"`
	Hash     string    `json:"hash"`
	LoadedAt time.Time `json:"loaded_at"`
}

// ServerInfo is a backend's server as the API lists it.
type ServerInfo struct {
	Name      string  `json:"name"`
	Address   string  `json:"address"`
	State     string  `json:"state"`
	Down      bool    `json:"down"`
	Weight    int     `json:"weight"`
	Backup    bool    `json:"backup"`
	Inflight  int64   `json:"inflight"`
	LatencyMS float64 `json:"latency_ms"`
	// The last active health check: when, how long, and its error ("" when it passed).
	Check *CheckInfo `json:"check,omitempty"`
}

// CheckInfo is a server's last active health check.
type CheckInfo struct {
	At     time.Time `json:"at"`
	TookMS float64   `json:"took_ms"`
	Error  string    `json:"error,omitempty"`
}

// BackendInfo is a backend as the API lists it.
type BackendInfo struct {
	Name    string       `json:"name"`
	Queue   int          `json:"queue"`
	Usable  bool         `json:"usable"`
	Servers []ServerInfo `json:"servers"`
}

func (a *api) backends(w http.ResponseWriter, _ *http.Request) {
	out := []BackendInfo{}
	for _, p := range a.g.Pools() {
		b := BackendInfo{Name: p.Name, Queue: p.QueueLen(), Usable: p.Usable()}
		for _, s := range p.Servers() {
			as := ServerInfo{Name: s.Name, Address: s.Address, State: s.State().String(), Down: s.Down(),
				Weight: s.Weight(), Backup: s.Backup, Inflight: s.Inflight(), LatencyMS: ms(s.Latency())}
			if c := s.LastCheck(); c != nil {
				as.Check = &CheckInfo{At: c.At, TookMS: ms(c.Took), Error: c.Err}
			}
			b.Servers = append(b.Servers, as)
		}
		out = append(out, b)
	}
	writeJSON(w, http.StatusOK, out)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (a *api) setServer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		State  *string `json:"state"`
		Weight *int    `json:"weight"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if body.State == nil && body.Weight == nil {
		writeError(w, http.StatusBadRequest, `body: give "state", "weight" or both`)
		return
	}
	backend, server := r.PathValue("backend"), r.PathValue("server")
	s := a.server(backend, server)
	if s == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no server %q in backend %q", server, backend))
		return
	}
	var st balancer.State
	if body.State != nil {
		var err error
		if st, err = balancer.ParseState(*body.State); err != nil {
			writeError(w, http.StatusBadRequest, "state: "+err.Error())
			return
		}
	}
	if body.Weight != nil {
		if err := a.g.SetServerWeight(backend, server, *body.Weight); err != nil {
			writeError(w, http.StatusBadRequest, "weight: "+err.Error())
			return
		}
	}
	if body.State != nil {
		a.g.SetServerState(backend, server, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": s.State().String(), "weight": s.Weight()})
}

// server finds a backend's server by name, or nil.
func (a *api) server(backend, server string) *balancer.Server {
	for _, p := range a.g.Pools() {
		if p.Name == backend {
			return p.Server(server)
		}
	}
	return nil
}

// Table is a stick table with its name and config.
type Table struct {
	Name   string
	Config sticktable.Config
	Store  sticktable.Store
}

type tableSize struct {
	Name    string `json:"name"`
	Entries int    `json:"entries"`
	Error   string `json:"error,omitempty"`
}

func (a *api) tables(w http.ResponseWriter, r *http.Request) {
	out := []tableSize{}
	for _, t := range a.g.Tables() {
		n, err := t.Store.Len(r.Context())
		ts := tableSize{Name: t.Name, Entries: n}
		if err != nil {
			ts.Error = err.Error()
		}
		out = append(out, ts)
	}
	writeJSON(w, http.StatusOK, out)
}

type tableEntry struct {
	Key     string `json:"key"`
	Server  string `json:"server,omitempty"`
	ConnCur int64  `json:"conn_cur"`
	ReqRate int64  `json:"req_rate"`
	GPC     int64  `json:"gpc"`
}

// MaxPage bounds a page of table entries or bans.
const MaxPage = 1000

func (a *api) tableEntries(w http.ResponseWriter, r *http.Request) {
	t, ok := a.table(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	offset, limit := 0, 100
	for name, v := range map[string]*int{"offset": &offset, "limit": &limit} {
		if s := q.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, name+": want a number ≥ 0")
				return
			}
			*v = n
		}
	}
	limit = min(limit, MaxPage)
	entries, err := t.Store.Entries(r.Context(), offset, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	out := make([]tableEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, tableEntry{Key: t.Config.Display(e.Key), Server: e.Server, ConnCur: e.ConnCur, ReqRate: e.ReqRate, GPC: e.GPC})
	}
	writeJSON(w, http.StatusOK, map[string]any{"table": t.Name, "offset": offset, "limit": limit, "entries": out})
}

func (a *api) clearEntry(w http.ResponseWriter, r *http.Request) {
	t, ok := a.table(w, r)
	if !ok {
		return
	}
	key, err := t.Config.Key(r.PathValue("key"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "key: "+err.Error())
		return
	}
	if err := t.Store.Delete(r.Context(), key); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	a.log.Info().Str("table", t.Name).Str("key", r.PathValue("key")).Msg("stick table entry cleared")
	writeJSON(w, http.StatusOK, map[string]string{"cleared": r.PathValue("key")})
}

// table finds the request's {table}, or answers 404.
func (a *api) table(w http.ResponseWriter, r *http.Request) (Table, bool) {
	for _, t := range a.g.Tables() {
		if t.Name == r.PathValue("table") {
			return t, true
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no table %q", r.PathValue("table")))
	return Table{}, false
}

// Ban is one ban as the API lists it.
type Ban struct {
	Frontend string    `json:"frontend"`
	Client   string    `json:"client"`
	Action   string    `json:"action"`
	Until    time.Time `json:"until"`
}

func (a *api) bans(w http.ResponseWriter, r *http.Request) {
	bans, err := a.g.Bans(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if bans == nil {
		bans = []Ban{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"bans": bans})
}

func (a *api) liftBan(w http.ResponseWriter, r *http.Request) {
	client := r.PathValue("client")
	addr, _, _ := strings.Cut(client, "|") // "ADDRESS|JA4" for bans by src+ja4
	if _, err := netip.ParseAddr(addr); err != nil {
		writeError(w, http.StatusBadRequest, "client: not an IP address (or ADDRESS|JA4)")
		return
	}
	if err := a.g.LiftBan(r.Context(), client); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	a.log.Info().Str("client", client).Msg("ban lifted")
	writeJSON(w, http.StatusOK, map[string]string{"lifted": client})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
