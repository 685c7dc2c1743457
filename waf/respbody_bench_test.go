package waf_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/waftest"
)

// BenchmarkInspectResponseBody is the response phases alone (headers, then
// a 1 KiB HTML body) after a browser GET passed, in the default policy.
func BenchmarkInspectResponseBody(b *testing.B) {
	e := engine(b, waf.Config{Name: "default"})
	page := []byte(`<!doctype html><html><head><title>Orders</title></head><body><h1>Your orders</h1>` +
		strings.Repeat(`<tr><td><a href="/orders/10231">#10231</a></td><td>2026-11-30</td><td>$42.00</td></tr>`, 11) + `</body></html>`)
	h := http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Length": {"1024"}}
	b.ReportAllocs()
	b.StopTimer()
	for i := range b.N {
		r := waftest.BrowserGET(i)
		tx := e.NewTx(context.Background(), "bench")
		tx.InspectRequest(r, r.URL.RequestURI(), waf.Conn{ClientIP: "192.0.2.10"})
		b.StartTimer()
		tx.InspectResponseHeaders(200, "HTTP/1.1", h)
		if v := tx.InspectResponseBody(page); v == nil || v.Blocked() {
			b.Fatalf("verdict %+v", v)
		}
		b.StopTimer()
		tx.Close()
	}
}
