package forward

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// A server that takes a request on a reused keep-alive connection and
// never answers gets it once, and the client its 504 at the response
// header timeout: a timeout is not a connection the server closed while
// idle, which is what the transport's own retry is for.
func TestTransport_HungServerOnReusedConnectionIsNotRetried(t *testing.T) {
	const timeout = time.Second
	var requests atomic.Int32
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			if requests.Add(1) > 1 {
				c.Read(make([]byte, 1)) // hangs until the gateway gives up
				return
			}
			c.Write([]byte(okResponse))
		}
	})
	b := newBackend(t, srv.addr())
	b.transport.headerTimeout = timeout

	w, _ := forwardOnce(t, b, context.Background(), "GET", "", 0, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	start := time.Now()
	w, x := forwardOnce(t, b, context.Background(), "GET", "", 0, nil)
	took := time.Since(start)
	if w.Code != http.StatusGatewayTimeout {
		t.Fatalf("hung server: %d (%v), want 504", w.Code, x.Err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("the server got %d requests, want 2 (the hung one once)", n)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections to the server, want 1 (the reused one)", n)
	}
	// Not a timing assertion of speed: a second attempt would take a
	// second timeout, so twice the timeout is what a retry cannot beat.
	if took >= 2*timeout {
		t.Errorf("504 after %v, want it at the %v timeout", took, timeout)
	}
}
