package gateway

import (
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// apiBan is one ban as the admin API lists it.
type apiBan struct {
	Frontend string    `json:"frontend"`
	Client   string    `json:"client"`
	Action   string    `json:"action"`
	Until    time.Time `json:"until"`
}

// apiBans lists the bans in force, every frontend's (up to a page each).
func (g *Gateway) apiBans(w http.ResponseWriter, r *http.Request) {
	out := []apiBan{}
	now := time.Now()
	for _, f := range g.frontends {
		if f.handler == nil || f.handler.bans == nil {
			continue
		}
		bans, err := f.handler.bans.list(r.Context(), now)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		out = append(out, bans...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"bans": out})
}

// apiLiftBan ends a client's ban on every frontend.
func (g *Gateway) apiLiftBan(w http.ResponseWriter, r *http.Request) {
	client := r.PathValue("client")
	addr, _, _ := strings.Cut(client, "|") // "ADDRESS|JA4" for bans by src+ja4
	if _, err := netip.ParseAddr(addr); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "client: not an IP address (or ADDRESS|JA4)"})
		return
	}
	for _, f := range g.frontends {
		if f.handler != nil && f.handler.bans != nil {
			b := f.handler.bans
			if err := b.lift(r.Context(), client); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
				return
			}
		}
	}
	g.log.Info().Str("client", client).Msg("ban lifted")
	writeJSON(w, http.StatusOK, map[string]string{"lifted": client})
}
