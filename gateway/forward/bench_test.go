package forward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkBackend_ServeHTTP is the forwarding path alone: ReverseProxy and
// the transport to a real server on loopback (keep-alive), without the
// client's socket. The server reads the body and answers 1 KiB.
func BenchmarkBackend_ServeHTTP(b *testing.B) {
	page := make([]byte, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.Write(page)
	}))
	defer srv.Close()
	be := newBackend(b, strings.TrimPrefix(srv.URL, "http://"))
	for _, tc := range []struct {
		name   string
		method string
		body   string
		length int64 // -1: chunked
	}{
		{"GET", "GET", "", 0},
		{"POST4K", "POST", strings.Repeat("a", 4096), 4096},
		{"POST1M", "POST", strings.Repeat("a", 1<<20), 1 << 20},
		{"POST1M-chunked", "POST", strings.Repeat("a", 1<<20), -1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				r := httptest.NewRequest(tc.method, "http://shop.example.com/app/search?q=1", body)
				r.ContentLength = tc.length
				r.Header.Set("User-Agent", "Mozilla/5.0")
				r.Header.Set("Accept", "text/html")
				r.Body = io.NopCloser(r.Body) // not seen as in memory: streamed as from a socket
				x := &Exchange{ClientIP: "192.0.2.1", Proto: "http"}
				w := httptest.NewRecorder()
				be.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
				if w.Code != 200 {
					b.Fatalf("status %d, err %v", w.Code, x.Err)
				}
			}
		})
	}
}
