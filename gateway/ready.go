package gateway

import (
	"net/http"
	"strings"
)

// Ready tells whether the gateway should get traffic, and if not, why:
// it serves on every listener, is not shutting down, and every backend a
// route needs has a server that may take a request. Redis is not asked: a
// replica serves from its local tables without it.
func (g *Gateway) Ready() (bool, []string) {
	g = g.current()
	var why []string
	if g.draining.Load() {
		why = append(why, "shutting down")
	}
	if !g.serving.Load() {
		why = append(why, "not serving yet")
	}
	for _, p := range g.routed {
		if !p.Usable() {
			why = append(why, "backend "+p.Name+": no usable server")
		}
	}
	return len(why) == 0, why
}

// serveHealth answers /healthz (the process runs) and /readyz (Ready).
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasSuffix(r.URL.Path, "/healthz") {
		w.Write([]byte("ok\n"))
		return
	}
	if ok, why := g.Ready(); !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: " + strings.Join(why, "; ") + "\n"))
		return
	}
	w.Write([]byte("ready\n"))
}
