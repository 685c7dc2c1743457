package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/e2e/debpkg"
	"github.com/sekisho/sekisho/e2e/freeport"
)

// Redis is a redis-server process of the test's own on a loopback port.
type Redis struct {
	t    testing.TB
	Addr string
	dir  string
	cmd  *exec.Cmd
	args []string // more arguments: a replica's, a Sentinel's
	// password is the --requirepass among args, which CLI then uses.
	password string
}

// redisServer finds redis-server, installing Debian's package when it is
// missing; the test fails with how to get it when that is not possible.
func redisServer(t testing.TB) string {
	t.Helper()
	return debpkg.Need(t, "redis-server", "redis-server")
}

// StartRedis starts redis-server on a free loopback port, with its
// append-only file in the test's directory (as a production Redis keeps
// its data over a restart); it stops when the test ends. args go to
// redis-server as well.
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	bin := redisServer(t)
	r := &Redis{t: t, Addr: freeport.Addr(t), dir: t.TempDir(), args: args}
	for i := range len(args) - 1 {
		if args[i] == "--requirepass" {
			r.password = args[i+1]
		}
	}
	r.start(bin)
	t.Cleanup(r.Kill)
	return r
}

func (r *Redis) start(bin string) {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		"--dir", r.dir, "--enable-debug-command", "local"}
	r.cmd = exec.Command(bin, append(args, r.args...)...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if out, err := r.CLI("PING"); err == nil && strings.TrimSpace(out) == "PONG" {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer PING within 10s", r.Addr)
		}
	}
}

// CLI runs one redis-cli command against the server.
func (r *Redis) CLI(args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...)
	if r.password != "" {
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+r.password) // not on the command line
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Kill stops the server at once, as a crash would.
func (r *Redis) Kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Restart starts the server again on the same port, with what its
// append-only file kept.
func (r *Redis) Restart() { r.t.Helper(); r.start(redisServer(r.t)) }

// Pause stops the server's process without closing its sockets (SIGSTOP):
// Redis is there but answers nothing, as in a network partition.
func (r *Redis) Pause() { r.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (r *Redis) Resume() { r.cmd.Process.Signal(syscall.SIGCONT) }

func (r *Redis) String() string { return fmt.Sprintf("redis-server %s", r.Addr) }

// StartSentinel starts a Sentinel (redis-server --sentinel) watching
// master as "mymaster": quorum 1, down after 500 ms, so a test sees a
// failover within seconds.
func StartSentinel(t testing.TB, master *Redis) *Redis {
	t.Helper()
	bin := redisServer(t)
	addr := freeport.Addr(t)
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(addr)
	mhost, mport, _ := net.SplitHostPort(master.Addr)
	conf := filepath.Join(dir, "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`port %s
bind 127.0.0.1
dir %s
sentinel monitor mymaster %s %s 1
sentinel down-after-milliseconds mymaster 500
sentinel failover-timeout mymaster 3000
sentinel parallel-syncs mymaster 1
`, port, dir, mhost, mport)), 0o600)
	s := &Redis{t: t, Addr: addr, dir: dir}
	s.cmd = exec.Command(bin, conf, "--sentinel")
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if out, err := s.CLI("SENTINEL", "get-master-addr-by-name", "mymaster"); err == nil && strings.Contains(out, mport) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel on %s does not know its master within 10s", addr)
		}
	}
}
