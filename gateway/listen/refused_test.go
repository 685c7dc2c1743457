package listen

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The requests net/http refuses without calling a handler are reported
// with the status it wrote, once each; a handler's own 400 (even plain
// text, closing the connection) is not, nor a request that parses.
func TestListener_OnRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int
	l := New(ln, Options{OnRefused: func(c *Conn, status int, start time.Time) {
		if time.Since(start) > 5*time.Second || c.RemoteAddr() == nil {
			t.Errorf("start %v, remote %v", start, c.RemoteAddr())
		}
		mu.Lock()
		got = append(got, status)
		mu.Unlock()
	}})
	srv := &http.Server{MaxHeaderBytes: 1 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.Header().Set("Connection", "close")
			http.Error(w, "400 Bad Request", http.StatusBadRequest)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()

	for _, c := range []struct {
		name, req string
		want      int
	}{
		{"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad header name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n", 400},
		{"control byte in the request line", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"headers too long", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", 8<<10) + "\r\n\r\n", 431},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"after a good request on the same connection", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"a handler's 400", "GET /bad HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"a good request", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0},
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(nc, c.req)
		resp, _ := io.ReadAll(nc)
		nc.Close()
		mu.Lock()
		g := append([]int(nil), got...)
		mu.Unlock()
		want := []int{}
		if c.want != 0 {
			want = []int{c.want}
		}
		if len(g) != len(want) || (len(g) == 1 && g[0] != want[0]) {
			t.Errorf("%s: reported %v, want %v (response %.80q)", c.name, g, want, resp)
		}
	}
}
