package forward

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/balancer"
)

func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newBackend(t testing.TB, addrs ...string) *Backend {
	t.Helper()
	c := balancer.Config{Name: "app"}
	for _, a := range addrs {
		c.Servers = append(c.Servers, balancer.ServerConfig{Address: a})
	}
	pool, err := balancer.New(c)
	if err != nil {
		t.Fatal(err)
	}
	b := New(pool, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second, MaxIdleConnsPerServer: 4, Retries: 3})
	t.Cleanup(b.Close)
	return b
}

func TestBackend_RetriesRefusedServerWithTheWholeBody(t *testing.T) {
	var got atomic.Value
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		io.WriteString(w, "ok")
	}))
	defer live.Close()
	b := newBackend(t, deadAddr(t), strings.TrimPrefix(live.URL, "http://"))

	for _, tc := range []struct {
		name   string
		body   string
		length int64
	}{
		{"read whole", "name=Ann&message=hello", 22},
		{"streamed, no length", "name=Ann&message=hello", -1},
		{"streamed, over the buffer", strings.Repeat("a", bufferedBodyMax+1), bufferedBodyMax + 1},
	} {
		for i := 0; i < 4; i++ { // round robin starts on either server; both orders must succeed
			x := &Exchange{ClientIP: "192.0.2.1", Proto: "http"}
			r := httptest.NewRequest("POST", "http://shop.example.com/contact", strings.NewReader(tc.body))
			r.ContentLength = tc.length
			w := httptest.NewRecorder()
			b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
			if w.Code != 200 || got.Load() != tc.body {
				t.Fatalf("%s, request %d: status %d, %d bytes at server, err %v", tc.name, i, w.Code, len(got.Load().(string)), x.Err)
			}
			if x.Server == nil || x.Server.Address != strings.TrimPrefix(live.URL, "http://") {
				t.Fatalf("%s, request %d: served by %v", tc.name, i, x.Server)
			}
		}
	}
}

// Bodies read whole share pooled buffers: requests in flight at once, and
// retried on a second server, each deliver their own body.
func TestBackend_PooledBodiesStayApart(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		fmt.Fprintf(w, "%x", h.Sum(nil))
	}
	app := httptest.NewServer(http.HandlerFunc(echo))
	defer app.Close()
	// Every other connection is refused first: those requests are sent again.
	b := newBackend(t, deadAddr(t), strings.TrimPrefix(app.URL, "http://"))
	addr := frontend(t, b)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i%26), byte(i)}, (1000+i*500)/2)
			resp, err := http.Post("http://"+addr+"/orders", "application/json", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("%x", sha256.Sum256(body)); string(got) != want {
				errs <- fmt.Errorf("request %d (%d bytes): the server got another body (status %d)", i, len(body), resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// frontend serves b on a real listener, as the gateway does.
func frontend(t *testing.T, b *Backend) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), &Exchange{ClientIP: "192.0.2.1", Proto: "http"})))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// sendHalfUpload sends a request that declares a 1000-byte body and the
// first part of it.
func sendHalfUpload(t *testing.T, addr, part string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 1000\r\n\r\n"+part)
	return c
}

func readResponse(t *testing.T, c net.Conn) *http.Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A small body is read whole before a server is picked (nginx's
// proxy_request_buffering): a client that sends it slowly holds no server
// connection meanwhile, and the server gets all of it.
func TestBackend_ReadsSmallBodiesWhole(t *testing.T) {
	var calls atomic.Int32
	var got atomic.Value
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		io.WriteString(w, "ok")
	}))
	defer app.Close()
	addr := frontend(t, newBackend(t, strings.TrimPrefix(app.URL, "http://")))

	body := strings.Repeat("x", 1000)
	c := sendHalfUpload(t, addr, body[:500])
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Fatalf("the server got the request before its body was complete (%d calls)", n)
	}
	io.WriteString(c, body[500:])
	resp := readResponse(t, c)
	if resp.StatusCode != 200 || got.Load() != body {
		t.Fatalf("status %d, server got %d bytes", resp.StatusCode, len(got.Load().(string)))
	}
}

// A body shorter than its Content-Length is a 400, and no server sees it.
func TestBackend_TruncatedBodyIs400(t *testing.T) {
	var calls atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer app.Close()
	addr := frontend(t, newBackend(t, strings.TrimPrefix(app.URL, "http://")))

	c := sendHalfUpload(t, addr, strings.Repeat("x", 500))
	c.(*net.TCPConn).CloseWrite()
	if resp := readResponse(t, c); resp.StatusCode != http.StatusBadRequest || calls.Load() != 0 {
		t.Fatalf("status %d, %d calls at the server; want 400 and none", resp.StatusCode, calls.Load())
	}
}

func TestBackend_AllServersDownIs503(t *testing.T) {
	b := newBackend(t, deadAddr(t), deadAddr(t))
	x := &Exchange{}
	r := httptest.NewRequest("GET", "http://shop.example.com/", nil)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
	if w.Code != http.StatusServiceUnavailable || x.Attempts != 2 {
		t.Fatalf("status %d after %d attempts, want 503 after 2", w.Code, x.Attempts)
	}
}

// A server that took the request and then failed is not retried: the
// request may have had effects.
func TestBackend_NoRetryAfterTheRequestWasSent(t *testing.T) {
	var hits atomic.Int32
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer broken.Close()
	b := newBackend(t, strings.TrimPrefix(broken.URL, "http://"), strings.TrimPrefix(broken.URL, "http://"))
	x := &Exchange{}
	r := httptest.NewRequest("POST", "http://shop.example.com/pay", strings.NewReader("amount=10"))
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
	if w.Code != http.StatusBadGateway || hits.Load() != 1 {
		t.Fatalf("status %d, server hit %d times; want 502 after exactly 1", w.Code, hits.Load())
	}
}

func TestRewrite_SetsForwardedHeadersAndKeepsTarget(t *testing.T) {
	var seen *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r }))
	defer srv.Close()
	b := newBackend(t, strings.TrimPrefix(srv.URL, "http://"))
	x := &Exchange{ClientIP: "192.0.2.7", Proto: "https"}
	r := httptest.NewRequest("GET", "http://shop.example.com/caf%C3%A9/a%20b?x=1&y=%2F", nil)
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
	if seen == nil {
		t.Fatalf("not forwarded: %d", w.Code)
	}
	if seen.RequestURI != "/caf%C3%A9/a%20b?x=1&y=%2F" || seen.Host != "shop.example.com" {
		t.Errorf("target %q host %q", seen.RequestURI, seen.Host)
	}
	for k, want := range map[string]string{"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com"} {
		if got := seen.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// Persistence by an inserted cookie: the first response names the server
// (HAProxy's dynamic cookie), the client's next requests go to it whatever
// round robin would say, the server never sees the cookie (indirect) but
// sees the client's own, and when that server is down the client moves and
// is told so.
func TestBackend_CookiePersistence(t *testing.T) {
	var cookies [2]atomic.Value
	var addrs [2]string
	for i := range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cookies[i].Store(r.Header.Get("Cookie"))
			io.WriteString(w, strconv.Itoa(i))
		}))
		defer srv.Close()
		addrs[i] = strings.TrimPrefix(srv.URL, "http://")
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("secret-key-42\n"), 0o600)
	c := balancer.Config{Name: "app", Cookie: &balancer.CookieConfig{Name: "SRV", Indirect: true, NoCache: true, HTTPOnly: true, DynamicKeyFile: keyFile}}
	for _, a := range addrs {
		c.Servers = append(c.Servers, balancer.ServerConfig{Address: a})
	}
	pool, err := balancer.New(c)
	if err != nil {
		t.Fatal(err)
	}
	b := New(pool, Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second, MaxIdleConnsPerServer: 4, Retries: 3})
	t.Cleanup(b.Close)
	do := func(cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://shop.example.com/cart", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		b.ServeHTTP(w, r)
		return w
	}
	first := do("")
	set := first.Result().Cookies()
	server, _ := strconv.Atoi(first.Body.String())
	want, _ := balancer.DynamicCookie([]byte("secret-key-42"), addrs[server])
	if len(set) != 1 || set[0].Name != "SRV" || set[0].Value != want || !set[0].HttpOnly || first.Header().Get("Cache-Control") != "private" {
		t.Fatalf("first response: cookies %v, Cache-Control %q; want SRV=%s", set, first.Header().Get("Cache-Control"), want)
	}
	for range 6 {
		w := do("theme=dark; SRV=" + want)
		if w.Body.String() != strconv.Itoa(server) || len(w.Result().Cookies()) != 0 {
			t.Fatalf("sticky request went to %s, cookies %v", w.Body.String(), w.Result().Cookies())
		}
	}
	if got := cookies[server].Load(); got != "theme=dark" {
		t.Errorf("server saw Cookie %q, want the client's own only", got)
	}
	pool.Servers()[server].SetDown(true)
	w := do("SRV=" + want)
	other := 1 - server
	moved := w.Result().Cookies()
	otherValue, _ := balancer.DynamicCookie([]byte("secret-key-42"), addrs[other])
	if w.Body.String() != strconv.Itoa(other) || len(moved) != 1 || moved[0].Value != otherValue {
		t.Fatalf("with its server down: served by %s, cookies %v", w.Body.String(), moved)
	}
}
