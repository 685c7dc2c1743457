package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// app is a backend that records the paths it serves and sends its own HSTS.
func app(t *testing.T) (url string, paths func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Strict-Transport-Security", "max-age=5")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func frontendYAML(backendURL, extra string) string {
	return `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]` + extra + `}
    default_backend: app
    redirect_https: true
    hsts: {max_age: 1h, include_subdomains: true}
backends:
  - name: app
    servers: [{address: "` + strings.TrimPrefix(backendURL, "http://") + `"}]
`
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func TestFrontend_RedirectsToHTTPSAndSetsHSTS(t *testing.T) {
	backend, paths := app(t)
	g, _, _, _ := runGateway(t, frontendYAML(backend, ""), zerolog.Nop())
	addrs := g.Addrs("web")
	plain, secure := "http://"+addrs[0].String(), "https://"+addrs[1].String()
	_, tlsPort, _ := net.SplitHostPort(addrs[1].String())
	client := &http.Client{CheckRedirect: noRedirects, Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, plain+"/shop/cart?item=42&q=a%20b", strings.NewReader("x=1"))
		req.Host = "shop.example.com"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := "https://shop.example.com:" + tlsPort + "/shop/cart?item=42&q=a%20b"
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("%s: %d to %q, want 308 to %q", method, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP", method)
		}
	}
	if p := paths(); len(p) != 0 {
		t.Fatalf("redirected requests reached the backend: %v", p)
	}

	// ACME HTTP-01 challenges stay on plain HTTP.
	resp, err := client.Get(plain + "/.well-known/acme-challenge/token123")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("ACME challenge: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}

	resp, err = client.Get(secure + "/shop")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Strict-Transport-Security"); resp.StatusCode != 200 || len(got) != 1 || got[0] != "max-age=3600; includeSubDomains" {
		t.Errorf("over TLS: %d, HSTS %q, want the gateway's alone", resp.StatusCode, got)
	}
	if p := paths(); len(p) != 2 || p[0] != "/.well-known/acme-challenge/token123" || p[1] != "/shop" {
		t.Errorf("backend saw %v", p)
	}
}

// syncBuffer is a log sink the test reads while the gateway writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// eventually polls cond for up to 5 s: handshakes are recorded on the
// server's goroutine, after the client has its answer.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url string, tc *tls.Config) (*http.Response, error) {
	t.Helper()
	tc.InsecureSkipVerify = true
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := c.Get(url)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// In observe mode a TLS 1.0 client is served, counted by version, cipher
// and client IP, and logged; a TLS 1.3 client is not counted.
func TestFrontend_ObserveCountsHandshakesBelowThePolicy(t *testing.T) {
	backend, _ := app(t)
	var logs syncBuffer
	g, _, _, _ := runGateway(t, frontendYAML(backend, ", observe: true"), zerolog.New(&logs))
	url := "https://" + g.Addrs("web")[1].String() + "/"

	resp, err := get(t, url, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("TLS 1.0 in observe mode: %v %v", resp, err)
	}
	if _, err := get(t, url, &tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the TLS 1.0 handshake counted", func() bool { return len(g.TLSReport("web").Below) > 0 })
	r := g.TLSReport("web")
	if len(r.Below) != 1 || r.Below[0].Version != "TLSv1.0" || r.Below[0].Reason != "version" || r.Below[0].ClientIP != "127.0.0.1" || r.Below[0].Count != 1 || r.Below[0].Cipher == "" {
		t.Fatalf("report %+v", r.Below)
	}
	if l := logs.String(); !strings.Contains(l, `"tls_version":"TLSv1.0"`) || !strings.Contains(l, "below the policy") || !strings.Contains(l, `"client_ip":"127.0.0.1"`) {
		t.Errorf("log lacks the handshake:\n%s", l)
	}
}

// Without observe, TLS 1.0 and 1.1 and a client with no suite of the
// policy are refused and counted by reason, as is plain HTTP sent to the
// TLS port.
func TestFrontend_CountsFailedHandshakes(t *testing.T) {
	backend, paths := app(t)
	g, _, _, _ := runGateway(t, frontendYAML(backend, ""), zerolog.Nop())
	addr := g.Addrs("web")[1].String()
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, err := get(t, "https://"+addr+"/", &tls.Config{MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("%s was served", tls.VersionName(v))
		}
	}
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
	if _, err := get(t, "https://"+addr+"/", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: cbc}); err == nil {
		t.Error("a client with only CBC and RSA key exchange suites was served")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.Copy(io.Discard, c)
	c.Close()
	eventually(t, "4 failures counted", func() bool {
		f := g.TLSReport("web").Failed
		return f["version"] == 2 && f["cipher"] == 1 && f["not_tls"] == 1
	})
	if p := paths(); len(p) != 0 {
		t.Errorf("backend saw %v", p)
	}
}

// A flood of failed handshakes is counted in full but logged at most
// logsPerSecond times a second, the next line saying how many were held back.
func TestTLSWatch_BoundsItsLog(t *testing.T) {
	var logs syncBuffer
	w := newTLSWatch("web", nil, newMetrics(), zerolog.New(&logs))
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}
	for range 25 {
		w.handshakeError(io.EOF, remote)
	}
	if n := strings.Count(logs.String(), "\n"); n != logsPerSecond {
		t.Fatalf("%d lines logged for 25 failures, want %d", n, logsPerSecond)
	}
	if got := w.report().Failed["client_gone"]; got != 25 {
		t.Fatalf("counted %d, want 25", got)
	}
	time.Sleep(time.Second)
	w.handshakeError(io.EOF, remote)
	if !strings.Contains(logs.String(), `"suppressed":15`) {
		t.Errorf("the next line does not report the 15 held back:\n%s", logs.String())
	}
}
