package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// maxHeaderBytes is the limit the tests configure: not net/http's default.
const maxHeaderBytes = 8192

func maxHeaderGateway(t *testing.T) (plain, secure string, reached *atomic.Int32) {
	t.Helper()
	reached = new(atomic.Int32)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    http3: true
    limits: {max_header_bytes: %d}
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, maxHeaderBytes, strings.TrimPrefix(backend.URL, "http://")), Options{Log: zerolog.Nop()})
	addrs := g.Addrs("web")
	return addrs[0].String(), addrs[1].String(), reached
}

// head is a request head (request line, headers, the blank line) of
// exactly size bytes, padded in its URI or in a header.
func head(size int, inURI bool) string {
	const line, rest = "GET /p HTTP/1.1\r\n", "Host: shop.example.com\r\nUser-Agent: test/1.0\r\nAccept: text/html\r\n"
	fixed := len(line) + len(rest) + len("\r\n")
	if inURI {
		pad := strings.Repeat("a", size-fixed)
		return "GET /p" + pad + " HTTP/1.1\r\n" + rest + "\r\n"
	}
	pad := strings.Repeat("a", size-fixed-len("X-Pad: \r\n"))
	return line + rest + "X-Pad: " + pad + "\r\n\r\n"
}

// max_header_bytes bounds the request line and headers exactly, over
// HTTP/1.1: a head of max_header_bytes passes, one byte more gets 431,
// whether the URI or a header is long (net/http allows 4 KiB more).
func TestLimits_MaxHeaderBytesIsExact(t *testing.T) {
	plain, _, reached := maxHeaderGateway(t)
	for _, where := range []string{"URI", "header"} {
		for _, tc := range []struct {
			size   int
			status int
		}{
			{maxHeaderBytes, 200},
			{maxHeaderBytes + 1, 431},
		} {
			t.Run(fmt.Sprintf("%s %d", where, tc.size), func(t *testing.T) {
				req := head(tc.size, where == "URI")
				if len(req) != tc.size {
					t.Fatalf("head is %d bytes, want %d", len(req), tc.size)
				}
				before := reached.Load()
				c, err := net.Dial("tcp", plain)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, req); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("%d-byte head, long %s: %d, want %d", tc.size, where, resp.StatusCode, tc.status)
				}
				if got, want := reached.Load()-before, int32(0); tc.status == 200 {
					if got != 1 {
						t.Errorf("backend reached %d times, want 1", got)
					}
				} else if got != want {
					t.Errorf("backend reached %d times by a refused head", got)
				}
			})
		}
	}
}

// Over HTTP/2 and HTTP/3 the limit counts as those protocols do (32 bytes
// more per field, RFC 9113 6.5.2, RFC 9114 7.2.4.1), so a head just under
// max_header_bytes may be refused there; one over it never passes: HTTP/3
// answers 431, Go's HTTP/2 server 431 or, for one field longer than the
// whole limit, a GOAWAY (COMPRESSION_ERROR).
func TestLimits_MaxHeaderBytesOverH2AndH3(t *testing.T) {
	_, secure, reached := maxHeaderGateway(t)
	insecure := &tls.Config{InsecureSkipVerify: true}
	h3 := &http3.Transport{TLSClientConfig: insecure}
	defer h3.Close()
	for _, tc := range []struct {
		proto string
		tr    http.RoundTripper
	}{
		{"HTTP/2.0", &http2.Transport{TLSClientConfig: insecure}},
		{"HTTP/3.0", h3},
	} {
		for _, where := range []string{"URI", "header"} {
			t.Run(tc.proto+" "+where, func(t *testing.T) {
				client := &http.Client{Transport: tc.tr, Timeout: 5 * time.Second}
				r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head(maxHeaderBytes+1, where == "URI"))))
				if err != nil {
					t.Fatal(err)
				}
				req, _ := http.NewRequest("GET", "https://"+secure+r.RequestURI, nil)
				req.Header = r.Header
				before := reached.Load()
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
						t.Errorf("head of max_header_bytes+1 over %s: %d, want 431", resp.Proto, resp.StatusCode)
					}
				}
				if n := reached.Load() - before; n != 0 {
					t.Errorf("a head over max_header_bytes reached the backend over %s (%d times)", tc.proto, n)
				}
			})
		}
	}
}
