package certs

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sekisho/sekisho/e2e/debpkg"
	"github.com/sekisho/sekisho/e2e/freeport"
)

// testRedis is a redis-server process of the test's own on a loopback port.
type testRedis struct {
	t    testing.TB
	addr string
	cmd  *exec.Cmd
}

// redisServerBin finds redis-server, installing Debian's package when it
// is missing; the test fails with how to get it when that is not possible.
func redisServerBin(t testing.TB) string {
	t.Helper()
	return debpkg.Need(t, "redis-server", "redis-server")
}

// startRedis starts an empty, memory-only redis-server on a free loopback
// port; it is killed when the test ends.
func startRedis(t testing.TB) *testRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return startRedisAt(t, addr)
}

// startRedisAt starts an empty redis-server on addr.
func startRedisAt(t testing.TB, addr string) *testRedis {
	t.Helper()
	r := &testRedis{t: t, addr: addr}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *testRedis) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command(redisServerBin(r.t), "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer PING within 10s: %v", r.addr, err)
		}
	}
}

// kill stops the server at once, as a crash would; its data is gone.
func (r *testRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// client returns a client of the server.
func (r *testRedis) client(t testing.TB) redis.UniversalClient { return redisClient(t, r.addr) }

// redisClient returns a client of addr, closed when the test ends, set up
// as the gateway sets up its own.
func redisClient(t testing.TB, addr string) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true, MaxRetries: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

// freeLoopbackPort returns a port nothing listens on, for a client to
// find closed.
func freeLoopbackPort(t testing.TB) int { return freeport.Port(t) }

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
