package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// namedServer answers with its name on addr ("127.0.0.1:0" for a free port).
func namedServer(t *testing.T, addr, name string) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln, ln.Addr().String()
}

// A server that dies is taken out by the health check within fall ×
// interval, no request fails meanwhile (connects that are refused go to
// the other server), and it is back after rise good checks.
func TestHealth_DeadServerOutAndBackWithoutFailedRequests(t *testing.T) {
	lnA, addrA := namedServer(t, "127.0.0.1:0", "a")
	_, addrB := namedServer(t, "127.0.0.1:0", "b")
	var logs syncBuffer
	g, _, _, _ := runGateway(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: off
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: a, address: "%s"}, {name: b, address: "%s"}]
    health_check: {type: tcp, interval: 50ms, rise: 2, fall: 3}
`, addrA, addrB), zerolog.New(&logs))
	url := "http://" + g.Addrs("web")[0].String() + "/"
	get := func() string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if got := get() + get(); got != "ab" && got != "ba" {
		t.Fatalf("both servers up: %q", got)
	}
	lnA.Close()
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), `"server":"a","up":false`) {
		get() // every request succeeds while the check notices
		if time.Now().After(deadline) {
			t.Fatalf("a not taken out within 2s:\n%s", logs.String())
		}
	}
	if got := get() + get() + get(); got != "bbb" {
		t.Fatalf("with a out: %q", got)
	}
	namedServer(t, addrA, "a")
	eventually(t, "a back", func() bool { return strings.Contains(logs.String(), `"server":"a","up":true`) })
	if got := get() + get(); got != "ab" && got != "ba" {
		t.Fatalf("a back: %q", got)
	}
}
