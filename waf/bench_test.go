package waf_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/waftest"
)

func benchInspect(b *testing.B, newReq func(i int) *http.Request) {
	benchInspectLimit(b, waf.Config{Name: "default"}, 256, newReq)
}

// benchInspectLimit inspects `distinct` different requests in turn, built
// before timing; their bodies are re-read each time.
func benchInspectLimit(b *testing.B, policy waf.Config, distinct int, newReq func(i int) *http.Request) {
	e := engine(b, policy)
	ctx := context.Background()
	conn := waf.Conn{ClientIP: "192.0.2.10", ClientPort: 40000, ServerIP: "127.0.0.1", ServerPort: 443}
	reqs := make([]*http.Request, distinct)
	bodies := make([]string, len(reqs))
	for i := range reqs {
		reqs[i] = newReq(i)
		if reqs[i].Body != nil {
			b, _ := io.ReadAll(reqs[i].Body)
			bodies[i] = string(b)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(reqs)
		i++
		r := reqs[k]
		if r.Body != nil {
			r.Body = io.NopCloser(strings.NewReader(bodies[k]))
		}
		tx := e.NewTx(ctx, "bench")
		if v := tx.InspectRequest(r, r.URL.RequestURI(), conn); v.Blocked() || v.Action != waf.ActionPass && len(v.Rules) > 0 {
			b.Fatalf("benchmark request flagged: %+v", v)
		}
		tx.Close()
	}
}

// BenchmarkWAF_BrowserGET is the WAF step alone (CRS PL1) for a browser GET.
func BenchmarkWAF_BrowserGET(b *testing.B) { benchInspect(b, waftest.BrowserGET) }

// BenchmarkWAF_FormPOST4K is the WAF step alone (CRS PL1) for a 4 KiB urlencoded form.
func BenchmarkWAF_FormPOST4K(b *testing.B) { benchInspect(b, waftest.FormPOST4K) }

// BenchmarkWAF_LoremPOST4K is the WAF step alone (CRS PL1) for the load
// harness's 4 KiB form, whose lorem ipsum text CRS's base64Decode turns
// into bytes that are not UTF-8.
func BenchmarkWAF_LoremPOST4K(b *testing.B) {
	benchInspect(b, func(i int) *http.Request { return waftest.FormPOST(waftest.LoremBody4K(i), i) })
}

// BenchmarkWAF_JSON16K is the WAF step alone (CRS PL1) for the load
// harness's 16 KiB JSON order: about 330 arguments.
func BenchmarkWAF_JSON16K(b *testing.B) {
	benchInspect(b, func(i int) *http.Request {
		r := waftest.FormPOST(waftest.JSONBody16K(i), i)
		r.Header.Set("Content-Type", "application/json")
		return r
	})
}
