package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Without CAP_NET_RAW (the gateway run as nobody), a backend with
// tcp_half_open checks refuses to start and names the capability; with
// fallback: tcp it starts and says it checks with connects instead.
func TestHalfOpen_WithoutCapNetRaw(t *testing.T) {
	dir, bin, asNobody := unprivileged(t)
	config := func(fallback string) string {
		p := filepath.Join(dir, "cfg"+fallback+".yaml")
		os.WriteFile(p, []byte(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "127.0.0.1:9"}]
    health_check: {type: tcp_half_open`+fallback+`}
log: {access: "off"}
`), 0o644)
		return p
	}
	run := func(cfg string) *exec.Cmd { return asNobody(bin, "run", "-c", cfg) }

	out, err := run(config("")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CAP_NET_RAW") || !strings.Contains(string(out), "fallback: tcp") {
		t.Fatalf("without the capability: err %v, output:\n%s", err, out)
	}

	cmd := run(config(", fallback: tcp"))
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(buf.String(), `"message":"listening"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("with fallback: tcp the gateway did not start:\n%s", buf.String())
		}
	}
	if !strings.Contains(buf.String(), "checking with tcp connects instead") {
		t.Errorf("no fallback warning:\n%s", buf.String())
	}
}

// syncBuffer collects a process's output while the test reads it.
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

// unprivileged gives a folder that nobody can read and a copy of the
// binary in it, and a way to run a command as nobody with no capability,
// to show what sekisho refuses without its privileges.
func unprivileged(t *testing.T) (dir, bin string, asNobody func(name string, args ...string) *exec.Cmd) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is needed to run the gateway without privileges: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test drops root's privileges to show the refusal; run it as root")
	}
	dir, err = os.MkdirTemp("", "sekisho-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin = filepath.Join(dir, "sekisho")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	return dir, bin, func(name string, args ...string) *exec.Cmd {
		return exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", name}, args...)...)
	}
}
