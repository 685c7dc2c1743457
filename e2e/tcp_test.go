package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// lineServer answers each line with "<client address it saw> <line>"
// behind a listener that requires a PROXY header.
func lineServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{Listener: ln, ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
	t.Cleanup(func() { pl.Close() })
	go func() {
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
					fmt.Fprintf(c, "%s %s\n", host, sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A TCP frontend carries a line protocol to a server that reads the PROXY
// header: the server sees the client's own address, the client its
// answers, and the access log one line for the connection.
func TestTCPFrontend_LineProtocolWithProxyHeader(t *testing.T) {
	server := lineServer(t)
	g := StartGateway(t, `
frontends:
  - name: smtp-ish
    mode: tcp
    bind: [{address: "127.0.0.1:0"}]
    backend: lines
    send_proxy: v2
    idle_timeout: 5s
backends:
  - name: lines
    balance: source
    servers: [{address: "{{.Server}}"}]
log:
  access: {{.AccessLog}}
`, ConfigData{"Server": server})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", g.Addrs["smtp-ish"])
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"HELO client.example", "MAIL FROM:<a@example.com>", "QUIT"} {
		fmt.Fprintf(c, "%s\n", line)
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := "127.0.0.2 " + line + "\n"; got != want {
			t.Fatalf("answer %q, want %q", got, want)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the server's side did not end after the client's")
	}
	c.Close()
	var entry map[string]any
	for deadline := time.Now().Add(5 * time.Second); entry == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, e := range g.AccessLog() {
			if e["protocol"] == "tcp" {
				entry = e
			}
		}
	}
	if entry == nil || entry["client_ip"] != "127.0.0.2" || entry["termination"] != "client_closed" ||
		entry["bytes_in"] != float64(len("HELO client.example\nMAIL FROM:<a@example.com>\nQUIT\n")) || entry["backend"] != "lines" {
		t.Fatalf("access log entry %v", entry)
	}
	if strings.Contains(g.Stderr(), `"level":"error"`) {
		t.Fatalf("errors in the log:\n%s", g.Stderr())
	}
}
