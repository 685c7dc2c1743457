package gateway

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A client that half-closes after its request (shutdown(SHUT_WR)) makes
// net/http cancel the request. When it ends before a response, the client
// gets none, as the access log's 499 says; net/http's own default would
// be a 200 with an empty body for a request no server answered.
func TestHandler_ClientGoneGetsNoMadeUpResponse(t *testing.T) {
	var got atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		select { // answers after the client's request was cancelled
		case <-r.Context().Done():
		case <-time.After(300 * time.Millisecond):
		}
		io.WriteString(w, "from the server")
	}))
	defer backend.Close()
	access := &syncBuffer{}
	g, _, _, _ := runGatewayWith(t, `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "`+strings.TrimPrefix(backend.URL, "http://")+`"}]
`, Options{Log: zerolog.Nop(), Access: access})
	for _, req := range []string{
		"GET /search?q=shoes HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: test/1.0\r\nAccept: text/html\r\n\r\n",
		"POST /contact HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: test/1.0\r\nAccept: text/html\r\n" +
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nname=Ann&",
	} {
		c, err := net.Dial("tcp", g.Addrs("web")[0].String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, _ := io.ReadAll(c)
		c.Close()
		if len(resp) > 0 && !strings.HasSuffix(string(resp), "from the server") {
			t.Errorf("%.30q: the client got a response no server sent:\n%s", req, resp)
		}
	}
	eventually(t, "two access log lines", func() bool { return strings.Count(access.String(), "\n") == 2 })
	if n := strings.Count(access.String(), `"status":499`); n != 2 {
		t.Errorf("%d lines with status 499, want 2 (the server answered after the client was gone):\n%s", n, access.String())
	}
}
