package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/sekisho/sekisho/balancer"
)

// The admin API (on the admin listener, behind its token):
//
//	GET  /stats                                 the stats page (HTML)
//	GET  /api/backends                          backends, their servers and states
//	PUT  /api/backends/{backend}/servers/{server}   {"state": "ready|drain|maint"}
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
	mux.HandleFunc("GET /api/backends", now((*Gateway).apiBackends))
	mux.HandleFunc("PUT /api/backends/{backend}/servers/{server}", now((*Gateway).apiSetServer))
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
			b.Servers = append(b.Servers, apiServer{Name: s.Name, Address: s.Address, State: s.State().String(), Down: s.Down(),
				Weight: s.Weight, Backup: s.Backup, Inflight: s.Inflight(), LatencyMS: float64(s.Latency().Microseconds()) / 1000})
		}
		out = append(out, b)
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) apiSetServer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		State string `json:"state"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	st, err := balancer.ParseState(body.State)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "state: " + err.Error()})
		return
	}
	if err := g.SetServerState(r.PathValue("backend"), r.PathValue("server"), st); err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": st.String()})
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
