package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// A form over the WAF's body limit gets a valid 413 over HTTP/1.1, HTTP/2
// and HTTP/3. Only HTTP/1.1 closes its connection (the body was not read);
// HTTP/2 and HTTP/3 have no connection-specific headers, and the next
// request on the same connection succeeds.
func TestRefusal_413KeepsH2AndH3Connections(t *testing.T) {
	var reached atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	g, _, _, _ := runGatewayWith(t, h3GatewayYAML(backend.URL), Options{Log: zerolog.Nop()})
	base := "https://" + g.Addrs("web")[0].String()
	insecure := &tls.Config{InsecureSkipVerify: true}
	var dials atomic.Int32

	h1 := &http.Transport{TLSClientConfig: insecure, DisableCompression: true}
	h1.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	h2 := &http2.Transport{TLSClientConfig: insecure,
		DialTLSContext: func(ctx context.Context, network, addr string, c *tls.Config) (net.Conn, error) {
			dials.Add(1)
			return (&tls.Dialer{Config: c}).DialContext(ctx, network, addr)
		}}
	h3 := &http3.Transport{TLSClientConfig: insecure,
		Dial: func(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			dials.Add(1)
			return quic.DialAddr(ctx, addr, tc, qc)
		}}
	defer h3.Close()
	defer h2.CloseIdleConnections()
	defer h1.CloseIdleConnections()

	form := "message=" + strings.Repeat("a", 200<<10)
	for _, tc := range []struct {
		proto     string
		tr        http.RoundTripper
		keepsConn bool
	}{
		{"HTTP/1.1", h1, false},
		{"HTTP/2.0", h2, true},
		{"HTTP/3.0", h3, true},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			dials.Store(0)
			reached.Store(0)
			client := &http.Client{Transport: tc.tr, Timeout: 10 * time.Second}
			req, _ := http.NewRequest("POST", base+"/contact", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("User-Agent", "test/1.0")
			req.Header.Set("Accept", "text/html")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("200 KiB form: %v", err)
			}
			page, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Proto != tc.proto ||
				!strings.Contains(string(page), "413 Request Entity Too Large") {
				t.Fatalf("200 KiB form: %d over %s (%v), page %.80q", resp.StatusCode, resp.Proto, err, page)
			}
			if c, ok := resp.Header["Connection"]; ok {
				t.Errorf("413 over %s carries Connection: %q", tc.proto, c)
			}
			if resp.Close == tc.keepsConn {
				t.Errorf("413 over %s: connection closed %v, want %v", tc.proto, resp.Close, !tc.keepsConn)
			}

			second, _ := http.NewRequest("GET", base+"/after", nil)
			second.Header.Set("User-Agent", "test/1.0")
			second.Header.Set("Accept", "text/html")
			resp, err = client.Do(second)
			if err != nil {
				t.Fatalf("request after the 413: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "ok" || reached.Load() != 1 {
				t.Fatalf("request after the 413: %d %q, backend reached %d times", resp.StatusCode, body, reached.Load())
			}
			want := int32(2) // HTTP/1.1: the 413 closed the first connection
			if tc.keepsConn {
				want = 1
			}
			if n := dials.Load(); n != want {
				t.Errorf("%s: %d connections for the 413 and the request after it, want %d", tc.proto, n, want)
			}
		})
	}
}
