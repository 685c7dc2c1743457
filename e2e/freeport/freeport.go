// Package freeport hands tests loopback ports that a process other than the
// test's own will bind: a sekisho replica, redis-server, HAProxy, a CA.
//
// The usual trick (listen on port 0, read the port, close) picks from the
// kernel's ephemeral range, where every outgoing connection of every test
// process running at the same time also takes its local port: between the
// close and the other process's bind, the port can be gone. Ports here come
// from below that range, where only explicit binds land, and each is locked
// by a file for the life of the test process, so parallel test packages never
// hand out the same one.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// Below Linux's default ephemeral range (32768–60999) and above the ports
// daemons on a developer's machine usually take.
const lo, hi = 20000, 32000

var (
	mu   sync.Mutex
	held = map[int]*os.File{} // locks kept open until the process exits
)

// Port returns a loopback port that is free for TCP and UDP now and that no
// other caller in any test process will be given.
func Port(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "sekisho-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("freeport: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if held[p] != nil {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatalf("freeport: %v", err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test process holds it
			continue
		}
		if bindable(p) {
			held[p] = f
			return p
		}
		f.Close()
	}
	t.Fatalf("freeport: no free loopback port in %d-%d after 200 tries", lo, hi)
	return 0
}

// Addr returns "127.0.0.1:port" for a Port.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

// bindable reports whether nothing holds port p on 127.0.0.1, over TCP
// (servers) and UDP (HTTP/3, DNS).
func bindable(p int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}
