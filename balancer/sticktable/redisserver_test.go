package sticktable

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sekisho/sekisho/e2e/debpkg"
	"github.com/sekisho/sekisho/e2e/freeport"
)

// redisServer is a redis-server of the test's own on a loopback port,
// without persistence, stopped at the test's end.
type redisServer struct {
	tb   testing.TB
	bin  string
	port int
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// redisServerPath finds redis-server, installing Debian's package when it
// is missing; a test that cannot have it fails, as it would otherwise test
// nothing.
func redisServerPath(tb testing.TB) string {
	tb.Helper()
	return debpkg.Need(tb, "redis-server", "redis-server")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// startRedis starts a redis-server on a free loopback port and waits until
// it answers PING.
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	s := &redisServer{tb: tb, bin: redisServerPath(tb), dir: tb.TempDir()}
	s.port = freeport.Port(tb)
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	if err := s.launch(); err != nil {
		tb.Fatalf("redis-server would not start: %v", err)
	}
	tb.Cleanup(s.stop)
	return s
}

func (s *redisServer) launch() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--loglevel", "warning", "--logfile", filepath.Join(s.dir, "redis.log"))
	setPdeathsig(cmd) // no orphan server if the test binary dies
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, tail(log, 1000))
		default:
		}
		if ping(s.addr) == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.stop()
	return fmt.Errorf("redis-server on port %d did not answer PING within 5s", s.port)
}

// ping speaks RESP by hand, so that waiting for the server involves no
// client's retries or pool.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// stop kills the server and waits for it to go; its data goes with it.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// restart starts a fresh, empty server on the same port.
func (s *redisServer) restart() {
	s.tb.Helper()
	s.stop()
	var err error
	for range 20 { // the port may linger for a moment
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.tb.Fatalf("redis-server would not restart on port %d: %v", s.port, err)
}

// client returns a client of the server, closed at the test's end.
func (s *redisServer) client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:        s.addr,
		DialTimeout: time.Second,
		// The store needs calls bounded by their context.
		ContextTimeoutEnabled: true,
		// A test kills the server under load: no waiting between retries
		// beyond the store's own Timeout.
		MaxRetries: 1,
	})
	s.tb.Cleanup(func() { c.Close() })
	return c
}
