package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The helpers below run inside the test's network namespaces: the test
// binary re-executes itself there with one of these set.
const (
	envTransparentServer = "SEKISHO_E2E_TRANSPARENT_SERVER" // listen address: answer with the peer's address
	envTransparentClient = "SEKISHO_E2E_TRANSPARENT_CLIENT" // URL: GET it, print the body
)

// TestTransparentHelper is not a test: it is the server or the client of
// TestTransparentSource, in a namespace; without its variables it does nothing.
func TestTransparentHelper(t *testing.T) {
	if addr := os.Getenv(envTransparentServer); addr != "" {
		http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.RemoteAddr)
		}))
		return
	}
	if url := os.Getenv(envTransparentClient); url != "" {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s\n", resp.StatusCode, b)
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netnsTopology makes three namespaces: a client (10.77.1.2), the gateway
// (10.77.1.1 towards the client, 10.77.2.1 towards the server, with the
// policy routing a transparent source needs: what arrives from the server
// side is delivered locally, whatever its destination), and a server
// (10.77.2.2, routing back through the gateway).
func netnsTopology(t *testing.T) (cli, gw, srv string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test builds network namespaces: run it as root (ip netns needs CAP_SYS_ADMIN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the ip command is needed: apt-get install -y iproute2")
	}
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	cli, gw, srv = "skc"+id, "skg"+id, "sks"+id
	for _, ns := range []string{cli, gw, srv} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	ipCmd(t, "link", "add", "c"+id, "netns", cli, "type", "veth", "peer", "name", "g1"+id, "netns", gw)
	ipCmd(t, "link", "add", "s"+id, "netns", srv, "type", "veth", "peer", "name", "g2"+id, "netns", gw)
	for _, c := range [][]string{
		{cli, "addr", "add", "10.77.1.2/24", "dev", "c" + id}, {cli, "link", "set", "c" + id, "up"},
		{cli, "route", "add", "default", "via", "10.77.1.1"},
		{gw, "addr", "add", "10.77.1.1/24", "dev", "g1" + id}, {gw, "link", "set", "g1" + id, "up"},
		{gw, "addr", "add", "10.77.2.1/24", "dev", "g2" + id}, {gw, "link", "set", "g2" + id, "up"},
		{gw, "rule", "add", "iif", "g2" + id, "lookup", "100"},
		{gw, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"},
		{srv, "addr", "add", "10.77.2.2/24", "dev", "s" + id}, {srv, "link", "set", "s" + id, "up"},
		{srv, "route", "add", "default", "via", "10.77.2.1"},
	} {
		ipCmd(t, append([]string{"-n", c[0]}, c[1:]...)...)
	}
	return cli, gw, srv
}

// inNetns starts a command in a namespace; it is killed when the test ends.
func inNetns(t *testing.T, ns string, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// source: client makes the server see the client's own address at its
// socket, through a gateway in its own namespace.
func TestTransparentSource(t *testing.T) {
	cli, gw, srv := netnsTopology(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	server := inNetns(t, srv, []string{envTransparentServer + "=10.77.2.2:8080"}, self, "-test.run=^TestTransparentHelper$")
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })

	dir := t.TempDir()
	cfg := filepath.Join(dir, "sekisho.yaml")
	os.WriteFile(cfg, []byte(`
frontends:
  - name: web
    bind: [{address: "10.77.1.1:8080"}]
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "10.77.2.2:8080"}]
    source: client
log: {access: "off"}
`), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gwCmd := exec.CommandContext(ctx, "ip", "netns", "exec", gw, binary, "run", "-c", cfg)
	var gwOut syncBuffer
	gwCmd.Stdout, gwCmd.Stderr = &gwOut, &gwOut
	if err := gwCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gwCmd.Process.Kill(); gwCmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(gwOut.String(), `"message":"listening"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not listen:\n%s", gwOut.String())
		}
	}
	var out []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		// The server may still be starting: ask until it answers.
		out, err = inNetns(t, cli, []string{envTransparentClient + "=http://10.77.1.1:8080/"}, self, "-test.run=^TestTransparentHelper$").CombinedOutput()
		if strings.HasPrefix(string(out), "200 ") || time.Now().After(deadline) {
			break
		}
	}
	host, _, _ := net.SplitHostPort(strings.TrimSpace(strings.TrimPrefix(strings.Split(string(out), "\n")[0], "200 ")))
	if host != "10.77.1.2" {
		t.Fatalf("the server saw %q, want the client's own address 10.77.1.2\nclient: %s\ngateway: %s", out, out, gwOut.String())
	}
}

// Without CAP_NET_ADMIN, source: client refuses to start and says why.
func TestTransparentSource_RefusedWithoutCapNetAdmin(t *testing.T) {
	dir, bin, asNobody := unprivileged(t)
	cfg := filepath.Join(dir, "cfg.yaml")
	os.WriteFile(cfg, []byte(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "127.0.0.1:9"}]
    source: client
log: {access: "off"}
`), 0o644)
	out, err := asNobody(bin, "run", "-c", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CAP_NET_ADMIN") || !strings.Contains(string(out), "source: client") {
		t.Fatalf("without the capability: err %v, output:\n%s", err, out)
	}
}
