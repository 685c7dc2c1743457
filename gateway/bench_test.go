package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/waf/waftest"
)

// BenchmarkGateway_InProcess is the whole request path without the client
// socket: handler → checks → WAF (CRS PL1) → reverse proxy → a real backend
// on loopback, and the access log line (to io.Discard).
func BenchmarkGateway_InProcess(b *testing.B) {
	for _, mode := range []string{"block", "off"} {
		b.Run("waf="+mode, func(b *testing.B) {
			h := benchHandler(b, mode)
			b.Run("GET", func(b *testing.B) { benchServe(b, h, waftest.BrowserGET) })
			// The bodies are built before timing: url-escaping them is not the gateway's work.
			bodies := make([]string, 256)
			for i := range bodies {
				bodies[i] = waftest.FormBody4K(i)
			}
			b.Run("POST4K", func(b *testing.B) {
				benchServe(b, h, func(i int) *http.Request { return waftest.FormPOST(bodies[i%len(bodies)], i) })
			})
		})
	}
}

func benchHandler(b *testing.B, mode string) http.Handler {
	return benchGateway(b, mode).frontends[0].handler
}

// benchGateway is one frontend with a real backend on loopback and a policy in mode.
func benchGateway(b testing.TB, mode string) *Gateway {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.Write(make([]byte, 1024))
	}))
	b.Cleanup(backend.Close)
	return benchGatewayFor(b, backend.URL, "mode: "+mode)
}

// benchGatewayFor is one frontend in front of backendURL, whose default
// policy has the settings policy (YAML, as in {name: default, <policy>}).
func benchGatewayFor(b testing.TB, backendURL, policy string) *Gateway {
	yaml := `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "` + strings.TrimPrefix(backendURL, "http://") + `"}]
waf:
  policies: [{name: default, ` + policy + `}]
`
	c, err := config.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(c, Options{Log: zerolog.Nop(), Access: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func benchServe(b *testing.B, h http.Handler, newReq func(int) *http.Request) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := newReq(i)
		r.RemoteAddr = "192.0.2.10:40000"
		i++
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkGateway_StickTable is the whole path (WAF off) with persistence
// on the client IP for 1,000 clients, the table in this process or in a
// local redis-server: what sharing sessions across replicas costs a request.
func BenchmarkGateway_StickTable(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 1024))
	}))
	b.Cleanup(backend.Close)
	for _, store := range []string{"memory", "redis"} {
		b.Run(store, func(b *testing.B) {
			yaml := `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: a, address: "` + strings.TrimPrefix(backend.URL, "http://") + `"}, {name: b, address: "` + strings.TrimPrefix(backend.URL, "http://") + `"}]
    stick: {on: src}
`
			if store == "redis" {
				yaml += "redis: {addresses: [\"" + sharedCertsRedis(b) + "\"]}\n"
			}
			c, err := config.Parse("bench.yaml", []byte(yaml))
			if err != nil {
				b.Fatal(err)
			}
			g, err := New(c, Options{Log: zerolog.Nop(), Access: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			h := g.frontends[0].handler
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := httptest.NewRequest("GET", "http://shop.example.com/", nil)
				r.RemoteAddr = fmt.Sprintf("198.51.%d.%d:40000", i/250%4, i%250)
				i++
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
