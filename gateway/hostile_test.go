package gateway

import (
	"bytes"
	"compress/zlib"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

func zlibbed(s string) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// Response bodies that inflate a thousandfold (64 KiB that decode to 64
// MiB), through the gateway with the default 64 KiB response_body_limit:
// in gzip or zlib, with a length or chunked, a leak in the first part or
// past the limit. Each reaches the client byte for byte, or is refused
// cleanly with the gateway's 403 page when the held part leaks; the
// request allocates at most 4 MiB (about 1 MiB measured), whatever the
// body inflates to.
// (TestResponseBody_GzipBombBounded is the plain gzip bomb.)
func TestResponseBody_HostileCompression(t *testing.T) {
	zeros := string(make([]byte, 64<<20))
	leak := leakPages[0].leak // an SQL error, rule 951230
	bodies := map[string][]byte{
		"/zlib":            zlibbed(zeros),
		"/gzip-chunked":    gzipped(zeros),
		"/gzip-leak-first": gzipped("<html><body>" + leak + zeros),
		"/gzip-leak-past":  gzipped("<html><body>" + zeros + leak),
	}
	mux := http.NewServeMux()
	for path, body := range bodies {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
			if path == "/zlib" {
				w.Header().Set("Content-Encoding", "deflate")
			}
			if strings.HasSuffix(path, "-chunked") {
				for p := body; len(p) > 0; p = p[min(len(p), 4096):] {
					w.Write(p[:min(len(p), 4096)])
					w.(http.Flusher).Flush()
				}
				return
			}
			w.Write(body)
		})
	}
	front := respGateway(t, serve(t, mux), &syncBuffer{})
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/zlib", 200},
		{"/gzip-chunked", 200},
		{"/gzip-leak-first", 403},
		{"/gzip-leak-past", 200}, // past the limit: streams uninspected, as configured
	} {
		t.Run(tc.path, func(t *testing.T) {
			getRaw(t, front+tc.path) // warm: the pools
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			resp, body := getRaw(t, front+tc.path)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes sent, 64 MiB decoded: status %d, %d bytes to the client, %.1f MiB allocated", len(bodies[tc.path]), resp.StatusCode, len(body), float64(alloc)/(1<<20))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 && !bytes.Equal(body, bodies[tc.path]) {
				t.Errorf("%d bytes to the client, want the %d sent", len(body), len(bodies[tc.path]))
			}
			if tc.status == 403 && (!bytes.Contains(body, []byte("blocked by the security policy")) || resp.Header.Get("Content-Encoding") != "") {
				t.Errorf("refused without the gateway's page: %v %q", resp.Header, body)
			}
			if alloc > 4<<20 {
				t.Errorf("the request allocated %.1f MiB: the decoding is not bounded", float64(alloc)/(1<<20))
			}
		})
	}
}
