package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/e2e/freeport"
)

// Under systemd (Type=notify) the gateway says READY=1 once it listens,
// and STOPPING=1 when told to stop: the real binary, a real unixgram
// socket where systemd's would be.
func TestSystemd_NotifyReadyAndStopping(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	app := StartBackend(t, "app")
	addr := freeport.Addr(t)
	cfg := filepath.Join(t.TempDir(), "sekisho.yaml")
	os.WriteFile(cfg, []byte(`
frontends:
  - name: web
    bind: [{address: "`+addr+`"}]
    default_backend: app
backends:
  - name: app
    servers: [{name: a, address: "`+app.Addr+`"}]
log: {access: "off"}
shutdown_timeout: 2s
`), 0o600)
	cmd := exec.Command(binary, "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var out syncBuffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	read := func(want string) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s on NOTIFY_SOCKET: %v\n%s", want, err, out.String())
		}
		if got := string(buf[:n]); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	read("READY=1")
	// Ready means serving: the port takes a request at once.
	resp, err := H1Client().Get("http://" + addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after READY=1: %v %v", resp, err)
	}
	resp.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	read("STOPPING=1")
}
