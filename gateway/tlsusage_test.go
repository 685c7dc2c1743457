package gateway

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The TLS usage report counts handshakes by version and cipher, and the
// distinct client addresses per version, and the admin API serves it.
func TestTLSUsage(t *testing.T) {
	backend, _ := app(t)
	g, _, _, _ := runGateway(t, frontendYAML(backend, "")+"admin: {address: \"127.0.0.1:0\"}\n", zerolog.Nop())
	secure := g.Addrs("web")[1].String()
	hello := func(src string, v uint16) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", secure, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2"} {
		hello(src, tls.VersionTLS13)
	}
	hello("127.0.0.5", tls.VersionTLS12)
	// The server records a handshake just after the client has finished
	// its own: ask until the last one is in, or 5 s.
	var body []byte
	var all map[string]TLSUsage
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + g.AdminAddr().String() + "/api/tls")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &all); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if u := all["web"]; u.Versions["TLSv1.3"]+u.Versions["TLSv1.2"] >= 5 || time.Now().After(deadline) {
			break
		}
	}
	u := all["web"]
	if u.Versions["TLSv1.3"] != 4 || u.Versions["TLSv1.2"] != 1 || u.Distinct["TLSv1.3"] != 3 || u.Distinct["TLSv1.2"] != 1 ||
		u.Ciphers["TLSv1.3"]["TLS_AES_128_GCM_SHA256"] != 4 {
		t.Fatalf("report: %s", body)
	}
}

// A window that ends becomes the previous one; one that ended long ago is
// not reported as previous. Sketches keep 10,000 addresses within 2 %.
func TestTLSUsage_Windows(t *testing.T) {
	u := newTLSUsage()
	st := &tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	for i := range 10000 {
		u.count(st, &net.TCPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 1})
	}
	if n := u.report().Distinct["TLSv1.2"]; n < 9800 || n > 10200 {
		t.Fatalf("distinct estimate %d for 10,000", n)
	}
	u.end = time.Now().Add(-time.Minute)
	r := u.report()
	if r.Previous["TLSv1.2"] < 9800 || len(r.Distinct) != 0 || r.Versions["TLSv1.2"] != 10000 {
		t.Fatalf("after the window: %+v", r)
	}
	u.end = time.Now().Add(-2 * tlsUsageWindow)
	if r := u.report(); len(r.Previous) != 0 {
		t.Fatalf("a window that ended long ago is still reported: %+v", r.Previous)
	}
}
