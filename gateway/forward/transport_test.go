package forward

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is a backend written by hand on a real socket, for the cases a
// net/http server would not produce: serve runs once per accepted
// connection, with the index of that connection.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int32
	wg       sync.WaitGroup
}

func newRawServer(t *testing.T, serve func(i int, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(s.accepted.Add(1)) - 1
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(i, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

// readRequest reads one request and its body, as a server does.
func readRequest(br *bufio.Reader) (*http.Request, string, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(r.Body)
	return r, string(b), err
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// forwardOnce sends one request through b directly (no client socket).
func forwardOnce(t *testing.T, b *Backend, ctx context.Context, method, body string, length int64, h http.Header) (*httptest.ResponseRecorder, *Exchange) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = io.NopCloser(strings.NewReader(body)) // not known to be in memory
	}
	r := httptest.NewRequest(method, "http://shop.example.com/x", rd)
	r.ContentLength = length
	for k, v := range h {
		r.Header[k] = v
	}
	x := &Exchange{ClientIP: "192.0.2.1", Proto: "http"}
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r.WithContext(WithExchange(ctx, x)))
	return w, x
}

// Keep-alive: one connection carries request after request, whatever the
// body's framing, and what a response says about the connection is obeyed.
func TestTransport_ConnectionReuse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		response  string // after the status line
		method    string
		body      string
		length    int64
		wantBody  string
		wantConns int32 // for three requests
	}{
		{"content-length", "Content-Length: 5\r\n\r\nhello", "GET", "", 0, "hello", 1},
		{"chunked response", "Transfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", "GET", "", 0, "hello", 1},
		{"HEAD, a length and no body", "Content-Length: 1000\r\n\r\n", "HEAD", "", 0, "", 1},
		{"204", "\r\n", "GET", "", 0, "", 1},
		{"buffered body", "Content-Length: 2\r\n\r\nok", "POST", "a=1", 3, "ok", 1},
		{"streamed body with a length", "Content-Length: 2\r\n\r\nok", "POST", strings.Repeat("b", bufferedBodyMax+10), bufferedBodyMax + 10, "ok", 1},
		{"chunked request body", "Content-Length: 2\r\n\r\nok", "POST", "c=3&d=4", -1, "ok", 1},
		{"Connection: close", "Connection: close\r\nContent-Length: 2\r\n\r\nok", "GET", "", 0, "ok", 3},
		{"body to the end of the connection", "\r\nuntil close", "GET", "", 0, "until close", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got sync.Map // request bodies as the server read them
			srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
				for {
					r, body, err := readRequest(br)
					if err != nil {
						return
					}
					got.Store(body, true)
					status := "200 OK"
					if strings.HasPrefix(tc.name, "204") {
						status = "204 No Content"
					}
					io.WriteString(c, "HTTP/1.1 "+status+"\r\n"+tc.response)
					if r.Method == "GET" && strings.HasPrefix(tc.response, "\r\n") && status == "200 OK" {
						return // close-delimited
					}
				}
			})
			b := newBackend(t, srv.addr())
			for i := range 3 {
				w, x := forwardOnce(t, b, context.Background(), tc.method, tc.body, tc.length, nil)
				if w.Code/100 != 2 || w.Body.String() != tc.wantBody {
					t.Fatalf("request %d: status %d body %q err %v", i, w.Code, w.Body.String(), x.Err)
				}
				if tc.body != "" {
					if _, ok := got.Load(tc.body); !ok {
						t.Fatalf("request %d: the server did not get the body", i)
					}
				}
			}
			if n := srv.accepted.Load(); n != tc.wantConns {
				t.Fatalf("%d connections for 3 requests, want %d", n, tc.wantConns)
			}
		})
	}
}

// A chunked response's trailers reach the client.
func TestTransport_ChunkedTrailers(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
	})
	addr := frontend(t, newBackend(t, srv.addr()))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" || resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("body %q trailer %v", b, resp.Trailer)
	}
}

// An idle connection the server has closed, or on which it sent something
// unasked (a 408), is not used: every request goes out on a live one, a POST
// included, and none gets the stale bytes.
func TestTransport_StaleIdleConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after string // written after the first response, before closing
	}{
		{"closed", ""},
		{"408 then closed", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, okResponse) // keep-alive, by HTTP/1.1's default
				io.WriteString(c, tc.after)
			})
			b := newBackend(t, srv.addr())
			for i, method := range []string{"GET", "POST", "GET", "POST"} {
				time.Sleep(20 * time.Millisecond) // the close reaches the gateway's side
				body := ""
				if method == "POST" {
					body = "amount=10"
				}
				w, x := forwardOnce(t, b, context.Background(), method, body, int64(len(body)), nil)
				if w.Code != 200 || w.Body.String() != "ok" {
					t.Fatalf("request %d (%s): status %d body %q err %v", i, method, w.Code, w.Body.String(), x.Err)
				}
			}
		})
	}
}

// A reused connection that ends after the request went out, before any byte
// of a response (the server closed it as the request was sent): an
// idempotent request, or one marked so, is sent again on a new connection,
// a POST is not (it may have had effects), as http.Transport does.
func TestTransport_ReplayAfterServerClosedIdle(t *testing.T) {
	for _, tc := range []struct {
		method  string
		body    string
		header  http.Header
		replays bool
	}{
		{"GET", "", nil, true},
		{"HEAD", "", nil, true},
		{"POST", "amount=10", nil, false},
		{"POST", "amount=10", http.Header{"Idempotency-Key": {"k1"}}, true},
		{"POST", strings.Repeat("s", bufferedBodyMax+1), http.Header{"Idempotency-Key": {"k1"}}, false}, // streamed: not replayable
	} {
		t.Run(fmt.Sprintf("%s %d %v", tc.method, len(tc.body), tc.header), func(t *testing.T) {
			var requests atomic.Int32
			srv := newRawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
				for n := 0; ; n++ {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					requests.Add(1)
					if i == 0 && n == 1 {
						return // the second request on the first connection: closed without a word
					}
					io.WriteString(c, okResponse)
				}
			})
			b := newBackend(t, srv.addr())
			if w, x := forwardOnce(t, b, context.Background(), "GET", "", 0, nil); w.Code != 200 {
				t.Fatalf("first request: %d %v", w.Code, x.Err)
			}
			w, x := forwardOnce(t, b, context.Background(), tc.method, tc.body, int64(len(tc.body)), tc.header)
			if tc.replays {
				if w.Code != 200 || requests.Load() != 3 || srv.accepted.Load() != 2 {
					t.Fatalf("status %d after %d requests on %d connections (err %v); want 200 after a replay on a new connection", w.Code, requests.Load(), srv.accepted.Load(), x.Err)
				}
			} else if w.Code != http.StatusBadGateway || requests.Load() != 2 {
				t.Fatalf("status %d after %d requests; want 502 and no replay", w.Code, requests.Load())
			}
		})
	}
}

// 1xx responses before the final one are relayed to the client (103 Early
// Hints), and the final response follows on the same connection.
func TestTransport_InformationalResponses(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
			io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n")
			io.WriteString(c, okResponse)
		}
	})
	be := newBackend(t, srv.addr())
	addr := frontend(t, be)
	var got []string
	var mu sync.Mutex
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			got = append(got, strconv.Itoa(code)+" "+h.Get("Link"))
			mu.Unlock()
			return nil
		},
	})
	for range 2 {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, b)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 || got[0] != "103 </style.css>; rel=preload" || got[1] != "102 " {
		t.Fatalf("1xx seen by the client: %q", got)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// A client that goes away ends the exchange at once: the waiting request
// and the connection to the server are dropped, and nothing is written.
func TestTransport_ClientCancel(t *testing.T) {
	closed := make(chan struct{})
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		c.Read(make([]byte, 1)) // until the gateway closes the connection
		close(closed)
	})
	b := newBackend(t, srv.addr())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	w, x := forwardOnce(t, b, ctx, "GET", "", 0, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v after the cancel", d)
	}
	if !errors.Is(x.Err, context.Canceled) || w.Body.Len() != 0 {
		t.Fatalf("err %v, %d bytes written; want context.Canceled and nothing", x.Err, w.Body.Len())
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the connection to the server stayed open")
	}
}

// A client that goes away while the response body streams: the copy ends
// and the connection to the server is closed, not reused.
func TestTransport_ClientCancelDuringBody(t *testing.T) {
	ended := make(chan struct{})
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		// Chunked, so the proxy flushes each part as it comes.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nfirst part\r\n")
		c.Read(make([]byte, 1)) // until the gateway closes the connection
		close(ended)
	})
	addr := frontend(t, newBackend(t, srv.addr()))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
	resp := readResponse(t, c)
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first part" {
		t.Fatalf("read %q: %v", buf, err)
	}
	c.Close()
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("the server's connection stayed open after the client left")
	}
}

// The response header timeout gives a 504.
func TestTransport_ResponseHeaderTimeout(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		readRequest(br)
		c.Read(make([]byte, 1))
	})
	c := newBackend(t, srv.addr())
	c.transport.headerTimeout = 200 * time.Millisecond
	for _, body := range []string{"", strings.Repeat("x", bufferedBodyMax+1)} {
		start := time.Now()
		w, x := forwardOnce(t, c, context.Background(), "POST", body, int64(len(body)), nil)
		if w.Code != http.StatusGatewayTimeout || time.Since(start) > 3*time.Second {
			t.Fatalf("body %d: status %d after %v (%v), want 504 after 200ms", len(body), w.Code, time.Since(start), x.Err)
		}
	}
}

// Expect: 100-continue: the body goes after the server's 100, and not at
// all when the server answers at once and closes; held in memory or
// streamed alike.
func TestTransport_ExpectContinue(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accept   bool
		size     int
		wantCode int
	}{
		{"100 then the body", true, 6, 200},
		{"100 then the streamed body", true, bufferedBodyMax + 1, 200},
		{"refused at once", false, 6, http.StatusExpectationFailed},
		{"streamed body refused at once", false, bufferedBodyMax + 1, http.StatusExpectationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("f", tc.size)
			gotBody := make(chan string, 1)
			srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
				r, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if r.Header.Get("Expect") != "100-continue" {
					io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
					return
				}
				time.Sleep(50 * time.Millisecond) // a body sent too early would be here by now
				if br.Buffered() > 0 {
					gotBody <- "body before 100"
					return
				}
				if !tc.accept {
					io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
					c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					b, _ := io.ReadAll(br)
					gotBody <- string(b)
					return
				}
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
				b, _ := io.ReadAll(r.Body)
				gotBody <- string(b)
				io.WriteString(c, okResponse)
			})
			addr := frontend(t, newBackend(t, srv.addr()))
			req, _ := http.NewRequest("PUT", "http://"+addr+"/upload", strings.NewReader(body))
			req.Header.Set("Expect", "100-continue")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			want := body
			if !tc.accept {
				want = ""
			}
			if got := <-gotBody; got != want {
				t.Fatalf("server got %d bytes of body, want %d", len(got), len(want))
			}
		})
	}
}

// A server that answers a streamed upload early (a 413 before reading it)
// is heard: the client gets that answer, not a 502.
func TestTransport_EarlyResponseToStreamedBody(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	defer app.Close()
	b := newBackend(t, strings.TrimPrefix(app.URL, "http://"))
	body := strings.Repeat("z", 4<<20)
	w, x := forwardOnce(t, b, context.Background(), "POST", body, int64(len(body)), nil)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%v), want 413", w.Code, x.Err)
	}
}

// A streamed body of several copy buffers reaches the server byte for byte,
// with a length or chunked, through the copy buffers or, when all are lent,
// without them; and every buffer lent comes back.
func TestTransport_StreamedBodyArrivesWhole(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	defer app.Close()
	b := newBackend(t, strings.TrimPrefix(app.URL, "http://"))
	addr := frontend(t, b)
	data := make([]byte, 2*copyBufferSize+12345)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	want := fmt.Sprintf("%d %x", len(data), sha256.Sum256(data))
	for _, tc := range []struct {
		name   string
		length int64
		lent   int32 // copy buffers already lent
	}{
		{"with a length", int64(len(data)), 0},
		{"chunked", -1, 0},
		{"every copy buffer lent", int64(len(data)), copyBuffersMax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copyBuffersLent.Add(tc.lent)
			defer copyBuffersLent.Add(-tc.lent)
			// Only a Reader: the client then streams the body as a client would.
			req, _ := http.NewRequest("POST", "http://"+addr+"/upload", struct{ io.Reader }{bytes.NewReader(data)})
			req.ContentLength = tc.length
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != want {
				t.Fatalf("status %d, the server got %q; want %q", resp.StatusCode, got, want)
			}
			deadline := time.Now().Add(5 * time.Second)
			for copyBuffersLent.Load() != tc.lent && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := copyBuffersLent.Load() - tc.lent; n != 0 {
				t.Fatalf("%d copy buffers still lent after the request", n)
			}
		})
	}
}

// 101 Switching Protocols hands the connection over: bytes flow both ways
// between the client and the server after it.
func TestTransport_Upgrade(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil || r.Header.Get("Upgrade") != "websocket" {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello ")
		line, _ := br.ReadString('\n')
		io.WriteString(c, "echo: "+line)
	})
	addr := frontend(t, newBackend(t, srv.addr()))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: shop.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "ping\n")
	got, _ := io.ReadAll(br)
	if string(got) != "hello echo: ping\n" {
		t.Fatalf("got %q", got)
	}
}

// Idle connections beyond the per-server bound are closed, and those left
// idle past the idle timeout are closed by the sweep.
func TestTransport_IdleBounds(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // keep the requests concurrent
			io.WriteString(c, okResponse)
		}
	})
	b := newBackend(t, srv.addr()) // 4 idle per server
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { forwardOnce(t, b, context.Background(), "GET", "", 0, nil) })
	}
	wg.Wait()
	b.transport.mu.Lock()
	idle := len(b.transport.idle[srv.addr()])
	b.transport.mu.Unlock()
	if n := srv.accepted.Load(); n != 8 || idle != 4 {
		t.Fatalf("%d connections, %d idle; want 8 and 4", n, idle)
	}
	b.transport.mu.Lock()
	for _, c := range b.transport.idle[srv.addr()] {
		c.idleAt = c.idleAt.Add(-time.Hour)
	}
	b.transport.mu.Unlock()
	b.transport.sweep()
	b.transport.mu.Lock()
	idle = len(b.transport.idle[srv.addr()])
	b.transport.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle after the sweep, want 0", idle)
	}
}

// What http.Transport refuses to send is refused here too: a header value
// with a line break never reaches the server as two headers.
func TestTransport_RefusesInvalidHeaders(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err == nil {
			io.WriteString(c, okResponse)
		}
	})
	b := newBackend(t, srv.addr())
	for _, h := range []http.Header{
		{"X-Note": {"a\r\nX-Injected: 1"}},
		{"Bad Name": {"v"}},
	} {
		w, _ := forwardOnce(t, b, context.Background(), "GET", "", 0, h)
		if w.Code != http.StatusBadGateway {
			t.Fatalf("%v: status %d, want 502", h, w.Code)
		}
	}
	if n := srv.accepted.Load(); n != 0 {
		t.Fatalf("the server was reached (%d connections)", n)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// A streamed body that fails midway (the client went away) ends the
// exchange with that error, and the server's connection is closed: it
// would otherwise wait for the rest of the body.
func TestTransport_StreamedBodyFails(t *testing.T) {
	ended := make(chan int, 1)
	srv := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, r.Body) // until the connection closes
		ended <- int(n)
	})
	b := newBackend(t, srv.addr())
	clientErr := errors.New("client connection reset")
	body := io.MultiReader(strings.NewReader(strings.Repeat("a", 70000)), failingReader{clientErr})
	r := httptest.NewRequest("POST", "http://shop.example.com/upload", body)
	r.ContentLength = 200000
	x := &Exchange{ClientIP: "192.0.2.1", Proto: "http"}
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
	if w.Code != http.StatusBadGateway || !errors.Is(x.Err, clientErr) {
		t.Fatalf("status %d, err %v; want 502 with the body's error", w.Code, x.Err)
	}
	select {
	case n := <-ended:
		if n > 70000 {
			t.Fatalf("server read %d body bytes, more than the client sent", n)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the server's connection stayed open")
	}
}
