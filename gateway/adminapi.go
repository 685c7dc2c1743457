package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/console"
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
//	GET  /api/tls                               TLS usage per frontend (TLSUsage)
//	POST /api/reload                            reload the config file (if run with one) and the WAF rules folders
//
// Each answer is about the generation that serves when it is asked, so a
// config reload shows at once.
func (g *Gateway) adminAPI(mux *http.ServeMux) {
	now := func(h func(*Gateway, http.ResponseWriter, *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { h(g.current(), w, r) }
	}
	mux.HandleFunc("GET /stats", now((*Gateway).serveStats))
	mux.HandleFunc("GET /stats;csv", now((*Gateway).serveStatsCSV))
	(&console.Handler{Store: liveEvents{g}}).Register(mux)
	mux.HandleFunc("GET /api/backends", now((*Gateway).apiBackends))
	mux.HandleFunc("PUT /api/backends/{backend}/servers/{server}", now((*Gateway).apiSetServer))
	mux.HandleFunc("GET /api/tables", now((*Gateway).apiTables))
	mux.HandleFunc("GET /api/tables/{table}", now((*Gateway).apiTableEntries))
	mux.HandleFunc("DELETE /api/tables/{table}/entries/{key}", now((*Gateway).apiClearEntry))
	mux.HandleFunc("GET /api/bans", now((*Gateway).apiBans))
	mux.HandleFunc("DELETE /api/bans/{client}", now((*Gateway).apiLiftBan))
	mux.HandleFunc("GET /api/tls", now(func(g *Gateway, w http.ResponseWriter, r *http.Request) {
		out := map[string]TLSUsage{}
		for _, f := range g.frontends {
			if u, ok := g.TLSUsage(f.name); ok {
				out[f.name] = u
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("POST /api/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Reload(); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "policies": g.current().policyStatus()})
			return
		}
		writeJSON(w, http.StatusOK, g.current().policyStatus())
	})
}

type apiServer struct {
	Name      string  `json:"name"`
	Address   string  `json:"address"`
	State     string  `json:"state"`
	Down      bool    `json:"down"`
	Weight    int     `json:"weight"`
	Backup    bool    `json:"backup"`
	Inflight  int64   `json:"inflight"`
	LatencyMS float64 `json:"latency_ms"`
	// The last active health check: when, how long, and its error ("" when it passed).
	Check *apiCheck `json:"check,omitempty"`
}

type apiCheck struct {
	At     time.Time `json:"at"`
	TookMS float64   `json:"took_ms"`
	Error  string    `json:"error,omitempty"`
}

type apiBackend struct {
	Name    string      `json:"name"`
	Queue   int         `json:"queue"`
	Usable  bool        `json:"usable"`
	Servers []apiServer `json:"servers"`
}

func (g *Gateway) apiBackends(w http.ResponseWriter, _ *http.Request) {
	out := []apiBackend{}
	for _, p := range g.pools {
		b := apiBackend{Name: p.Name, Queue: p.QueueLen(), Usable: p.Usable()}
		for _, s := range p.Servers() {
			as := apiServer{Name: s.Name, Address: s.Address, State: s.State().String(), Down: s.Down(),
				Weight: s.Weight(), Backup: s.Backup, Inflight: s.Inflight(), LatencyMS: float64(s.Latency().Microseconds()) / 1000}
			if c := s.LastCheck(); c != nil {
				as.Check = &apiCheck{At: c.At, TookMS: float64(c.Took.Microseconds()) / 1000, Error: c.Err}
			}
			b.Servers = append(b.Servers, as)
		}
		out = append(out, b)
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) apiSetServer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		State  *string `json:"state"`
		Weight *int    `json:"weight"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	if body.State == nil && body.Weight == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body: give "state", "weight" or both`})
		return
	}
	backend, server := r.PathValue("backend"), r.PathValue("server")
	s, err := g.server(backend, server)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no server %q in backend %q", server, backend)})
		return
	}
	var st balancer.State
	if body.State != nil {
		if st, err = balancer.ParseState(*body.State); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "state: " + err.Error()})
			return
		}
	}
	if body.Weight != nil {
		if err := g.SetServerWeight(backend, server, *body.Weight); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "weight: " + err.Error()})
			return
		}
	}
	if body.State != nil {
		g.SetServerState(backend, server, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": s.State().String(), "weight": s.Weight()})
}

type apiTable struct {
	Name    string `json:"name"`
	Entries int    `json:"entries"`
	Error   string `json:"error,omitempty"`
}

func (g *Gateway) apiTables(w http.ResponseWriter, r *http.Request) {
	out := []apiTable{}
	for _, t := range g.tables {
		n, err := t.store.Len(r.Context())
		a := apiTable{Name: t.name, Entries: n}
		if err != nil {
			a.Error = err.Error()
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, out)
}

type apiEntry struct {
	Key     string `json:"key"`
	Server  string `json:"server,omitempty"`
	ConnCur int64  `json:"conn_cur"`
	ReqRate int64  `json:"req_rate"`
	GPC     int64  `json:"gpc"`
}

// maxEntriesPage bounds a page of table entries.
const maxEntriesPage = 1000

func (g *Gateway) apiTableEntries(w http.ResponseWriter, r *http.Request) {
	t, ok := g.table(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	offset, limit := 0, 100
	for name, v := range map[string]*int{"offset": &offset, "limit": &limit} {
		if s := q.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": name + ": want a number ≥ 0"})
				return
			}
			*v = n
		}
	}
	limit = min(limit, maxEntriesPage)
	entries, err := t.store.Entries(r.Context(), offset, limit)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	out := make([]apiEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, apiEntry{Key: t.cfg.Display(e.Key), Server: e.Server, ConnCur: e.ConnCur, ReqRate: e.ReqRate, GPC: e.GPC})
	}
	writeJSON(w, http.StatusOK, map[string]any{"table": t.name, "offset": offset, "limit": limit, "entries": out})
}

func (g *Gateway) apiClearEntry(w http.ResponseWriter, r *http.Request) {
	t, ok := g.table(w, r)
	if !ok {
		return
	}
	key, err := t.cfg.Key(r.PathValue("key"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "key: " + err.Error()})
		return
	}
	if err := t.store.Delete(r.Context(), key); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	g.log.Info().Str("table", t.name).Str("key", r.PathValue("key")).Msg("stick table entry cleared")
	writeJSON(w, http.StatusOK, map[string]string{"cleared": r.PathValue("key")})
}

// table finds the request's {table}, or answers 404.
func (g *Gateway) table(w http.ResponseWriter, r *http.Request) (namedStore, bool) {
	for _, t := range g.tables {
		if t.name == r.PathValue("table") {
			return t, true
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no table %q", r.PathValue("table"))})
	return namedStore{}, false
}

// policyStatus is what each WAF policy runs: its rules' hash and load time.
func (g *Gateway) policyStatus() []map[string]any {
	var out []map[string]any
	for _, p := range g.policies {
		e := p.cur.Load()
		out = append(out, map[string]any{"policy": p.name, "hash": e.Hash(), "loaded_at": e.LoadedAt()})
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
