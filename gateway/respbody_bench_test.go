package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/waf/waftest"
)

// benchPage is a 1 KiB HTML page, text for the response rules to read.
var benchPage = func() string {
	p := `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Orders - Example Shop</title>` +
		`<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script></head>` +
		`<body><header><nav><a href="/">Home</a> <a href="/orders">Orders</a> <a href="/account">Account</a></nav></header>` +
		`<main><h1>Your orders</h1><table><tr><th>Order</th><th>Date</th><th>Total</th></tr>` +
		`<tr><td><a href="/orders/10231">#10231</a></td><td>2026-11-30</td><td>$42.00</td></tr>` +
		`<tr><td><a href="/orders/10198">#10198</a></td><td>2026-11-12</td><td>$17.50</td></tr></table>` +
		`<form action="/search" method="get"><input name="q" placeholder="Search orders"><button>Search</button></form></main>`
	p += strings.Repeat(" ", 1024-len(p)-len("</body></html>")) + "</body></html>"
	return p
}()

// BenchmarkGateway_ResponseInspection is the in-process GET of
// BenchmarkGateway_InProcess answered with a 1 KiB HTML page, the response
// body inspected (the default) or not (inspect_response_body: false). It
// reports the process's CPU time per request too, steadier than the wall
// time on a busy machine.
func BenchmarkGateway_ResponseInspection(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, benchPage)
	}))
	b.Cleanup(backend.Close)
	for _, body := range []string{"on", "off"} {
		b.Run("body="+body, func(b *testing.B) {
			g := benchGatewayFor(b, backend.URL, "inspect_response_body: "+map[string]string{"on": "true", "off": "false"}[body])
			h := g.frontends[0].handler
			start := processCPU()
			benchServe(b, h, waftest.BrowserGET)
			// Everything the process did for the requests: gateway, WAF,
			// the backend, the garbage collector.
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
