package fingerprint

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

var update = flag.Bool("update", false, "rewrite testdata/*.hello from the live clients")

// readAll reads c through a small buffer, as a TLS stack reads a record
// header and then its body, until the writer closes.
func readAll(c net.Conn) {
	buf := make([]byte, 7)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func pipeThrough(t *testing.T, chunks ...[]byte) *RecordingConn {
	t.Helper()
	client, server := net.Pipe()
	rc := NewRecordingConn(server)
	go func() {
		for _, c := range chunks {
			_, _ = client.Write(c)
		}
		client.Close()
	}()
	readAll(rc)
	return rc
}

func TestRecordingConn(t *testing.T) {
	msg := buildHello(specHello())
	stream := records(msg, 300)
	rc := pipeThrough(t, stream[:100], stream[100:], []byte{23, 3, 3, 0, 5, 1, 2, 3, 4, 5})
	got, err := rc.ClientHello()
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if !rc.done.Load() || rc.buf != nil {
		t.Error("still recording after the hello")
	}
}

func TestRecordingConn_Incomplete(t *testing.T) {
	stream := records(buildHello(specHello()), 300)
	rc := pipeThrough(t, stream[:len(stream)-1])
	if _, err := rc.ClientHello(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("got %v", err)
	}
}

func TestRecordingConn_NotTLS(t *testing.T) {
	rc := pipeThrough(t, []byte("GET / HTTP/1.1\r\n\r\n"))
	if _, err := rc.ClientHello(); !errors.Is(err, ErrNotClientHello) {
		t.Fatalf("got %v", err)
	}
	if !rc.done.Load() || rc.buf != nil {
		t.Error("still recording")
	}
}

// TestRecordingConn_Bound: a hello that does not end within 16 KiB stops
// the recording and frees what it held.
func TestRecordingConn_Bound(t *testing.T) {
	huge := append([]byte{typeClientHello, 0x00, 0xf0, 0x00}, make([]byte, 0xf000)...)
	rc := pipeThrough(t, records(huge, 1<<14))
	if _, err := rc.ClientHello(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if !rc.done.Load() || rc.buf != nil {
		t.Error("still recording")
	}
}

// TestRecordingConn_ConcurrentClientHello asks for the hello while the
// reader is still recording (run with -race).
func TestRecordingConn_ConcurrentClientHello(t *testing.T) {
	msg := buildHello(chromeLikeHelloSpec())
	stream := records(msg, 64)
	client, server := net.Pipe()
	rc := NewRecordingConn(server)
	go func() {
		for len(stream) > 0 {
			n := min(5, len(stream))
			_, _ = client.Write(stream[:n])
			stream = stream[n:]
		}
		client.Close()
	}()
	done := make(chan struct{})
	go func() { readAll(rc); close(done) }()
	for {
		got, err := rc.ClientHello()
		if err == nil {
			if !bytes.Equal(got, msg) {
				t.Fatal("wrong hello")
			}
			break
		}
		if !errors.Is(err, ErrIncomplete) {
			t.Fatal(err)
		}
	}
	<-done
}

// capture is what one TLS handshake showed the test server.
type capture struct {
	raw     []byte // the hello RecordingConn recorded
	rawJA4  string
	infoJA4 string
}

// recordingListener wraps accepted connections the way the gateway would.
type recordingListener struct{ net.Listener }

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewRecordingConn(c), nil
}

// startServer runs an HTTPS server (h2 and http/1.1) on 127.0.0.1 whose
// GetConfigForClient reports JA4 both from the raw hello and from
// ClientHelloInfo.
func startServer(t *testing.T) (*httptest.Server, <-chan capture) {
	t.Helper()
	caps := make(chan capture, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Listener = recordingListener{srv.Listener}
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients hang up at will
	srv.TLS = &tls.Config{GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		c := capture{infoJA4: FromClientHelloInfo(hi).JA4(TransportTCP)}
		raw, err := hi.Conn.(*RecordingConn).ClientHello()
		if err != nil {
			t.Errorf("recorded hello: %v", err)
		} else if h, err := ParseClientHello(raw); err != nil {
			t.Errorf("parse recorded hello: %v", err)
		} else {
			c.raw, c.rawJA4 = raw, h.JA4(TransportTCP)
		}
		caps <- c
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, caps
}

// goClientJA4 is Go 1.26's crypto/tls client with the default config
// and ALPN h2, http/1.1, checked by hand against JA4.md (sha256sum of
// the lists below, which the test logs as JA4_r):
//
//	t      TLS over TCP
//	13     supported_versions 0304, 0303
//	d / i  server_name sent for a host name, not for an IP address
//	13     cipher suites 1301 1302 1303, ECDHE AES-GCM c02b c02f c02c c030,
//	       ChaCha20 cca9 cca8 and CBC c009 c013 c00a c014; no GREASE
//	12/11  extensions 0000 (SNI, host names only) 0005 000a 000b 000d 0010
//	       0012 0017 002b 0032 0033 ff01
//	h2     first ALPN protocol "h2"
//	f57a46bbacb6  1301,1302,1303,c009,c00a,c013,c014,c02b,c02c,c02f,c030,cca8,cca9
//	ab7e3b40a677  0005,000a,000b,000d,0012,0017,002b,0032,0033,ff01_0804,0403,
//	              0807,0805,0806,0401,0501,0601,0503,0603
//
// crypto/tls changes its hello between Go releases; a Go upgrade that
// breaks this test should update the constants after checking the raw
// lists again (go test -run RealClient -v prints them).
const (
	goClientJA4SNI   = "t13d1312h2_f57a46bbacb6_ab7e3b40a677"
	goClientJA4NoSNI = "t13i1311h2_f57a46bbacb6_ab7e3b40a677"
)

func TestRealClient_Go(t *testing.T) {
	srv, caps := startServer(t)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	for _, tc := range []struct {
		serverName string
		want       string
		file       string
	}{
		{"example.com", goClientJA4SNI, "go1.26-client.hello"},
		{"127.0.0.1", goClientJA4NoSNI, ""},
	} {
		t.Run(tc.serverName, func(t *testing.T) {
			conf := &tls.Config{ServerName: tc.serverName, RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}
			c, err := tls.Dial("tcp", srv.Listener.Addr().String(), conf)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			got := <-caps
			h, _ := ParseClientHello(got.raw)
			t.Logf("JA4_r %s", h.JA4R(TransportTCP))
			if got.rawJA4 != got.infoJA4 {
				t.Errorf("raw hello gives %s, ClientHelloInfo %s", got.rawJA4, got.infoJA4)
			}
			if got.rawJA4 != tc.want {
				t.Errorf("Go client: %s, want %s", got.rawJA4, tc.want)
			}
			writeTestdata(t, tc.file, got.raw)
		})
	}
}

// TestRealClient_QUIC: over QUIC only ClientHelloInfo is at hand (the
// hello travels encrypted in CRYPTO frames). quic-go's client is Go's
// crypto/tls, TLS 1.3 only; checked by hand like goClientJA4:
//
//	q13d   QUIC, TLS 1.3, server_name sent
//	03     1301 1302 1303, the only suites QUIC allows (55b375c5d22e)
//	13     goClientJA4's twelve plus 0039 quic_transport_parameters
//	h3     ALPN "h3"
//	f902b76752af  0005,000a,000b,000d,0012,0017,002b,0032,0033,0039,ff01_
//	              0804,0403,0807,0805,0806,0503,0603 (no PKCS#1 v1.5)
func TestRealClient_QUIC(t *testing.T) {
	srvCert, _ := startServer(t) // for its certificate
	got := make(chan string, 1)
	srvConf := &tls.Config{
		Certificates: []tls.Certificate{srvCert.TLS.Certificates[0]},
		NextProtos:   []string{"h3"},
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			got <- FromClientHelloInfo(hi).JA4(TransportQUIC)
			return nil, nil
		},
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", srvConf, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srvCert.Certificate())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, ln.Addr().String(), &tls.Config{ServerName: "example.com", RootCAs: pool, NextProtos: []string{"h3"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseWithError(0, "")
	if ja4, want := <-got, "q13d0313h3_55b375c5d22e_f902b76752af"; ja4 != want {
		t.Errorf("quic-go client: %s, want %s", ja4, want)
	}
}

// TestRealClient_Curl runs the system's curl, when there is one, with
// its default hello and with a narrowed TLS 1.3 cipher list.
func TestRealClient_Curl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	srv, caps := startServer(t)
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name   string
		args   []string
		prefix string // JA4_a as far as it does not depend on curl's build
		file   string
	}{
		{"default", nil, "t13d", "curl-default.hello"},
		{"TLS 1.3 ciphers narrowed", []string{"--tls13-ciphers", "TLS_AES_128_GCM_SHA256"}, "t13d", ""},
		{"HTTP/1.1 only", []string{"--http1.1"}, "t13d", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"-sS", "-o", "/dev/null", "--cacert", certFile,
				"--resolve", "example.com:" + strconv.Itoa(port) + ":127.0.0.1",
				"https://example.com:" + strconv.Itoa(port) + "/"}, tc.args...)
			if out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput(); err != nil {
				t.Fatalf("curl: %v: %s", err, out)
			}
			got := <-caps
			h, _ := ParseClientHello(got.raw)
			t.Logf("JA4 %s, JA4_r %s", got.rawJA4, h.JA4R(TransportTCP))
			if got.rawJA4 != got.infoJA4 {
				t.Errorf("raw hello gives %s, ClientHelloInfo %s", got.rawJA4, got.infoJA4)
			}
			if !strings.HasPrefix(got.rawJA4, tc.prefix) {
				t.Errorf("curl: %s, want it to start %s", got.rawJA4, tc.prefix)
			}
			if alpn := got.rawJA4[8:10]; tc.args == nil && alpn != "h2" && alpn != "h1" {
				t.Errorf("curl's ALPN: %s", alpn)
			}
			writeTestdata(t, tc.file, got.raw)
		})
	}
}

func writeTestdata(t *testing.T, file string, b []byte) {
	if !*update || file == "" {
		return
	}
	if err := os.WriteFile(filepath.Join("testdata", file), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRecordedHellos pins the JA4 of hellos recorded from real clients
// (go test -update rewrites them): unlike the live tests they do not
// move with the installed Go or curl.
func TestRecordedHellos(t *testing.T) {
	for file, want := range map[string]string{
		"go1.26-client.hello": goClientJA4SNI,
		// curl 7.88.1 with OpenSSL 3.0.19 (Debian 12), as this package's
		// author recorded it.
		"curl-default.hello": "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseClientHello(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := h.JA4(TransportTCP); got != want {
			t.Errorf("%s: %s, want %s", file, got, want)
		}
	}
}
