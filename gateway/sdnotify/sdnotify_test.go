package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a unixgram socket as systemd does and returns what arrives.
func listen(t *testing.T, name string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	got := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return got
}

func receive(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(2 * time.Second):
		t.Fatal("nothing arrived on the notify socket within 2s")
		return ""
	}
}

func TestNotify_PathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	got := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	for _, c := range []struct {
		send func() error
		want string
	}{{Ready, "READY=1"}, {Stopping, "STOPPING=1"}} {
		if err := c.send(); err != nil {
			t.Fatal(err)
		}
		if s := receive(t, got); s != c.want {
			t.Fatalf("got %q, want %q", s, c.want)
		}
	}
}

func TestNotify_AbstractSocketAndReloading(t *testing.T) {
	name := "@sekisho-sdnotify-test-" + strconv.Itoa(unix.Getpid())
	got := listen(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	var before unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &before)
	if err := Reloading(); err != nil {
		t.Fatal(err)
	}
	s := receive(t, got)
	lines := strings.Split(s, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC=", s)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before.Nano()/1000 || usec > before.Nano()/1000+int64(time.Minute/time.Microsecond) {
		t.Fatalf("MONOTONIC_USEC %q is not the monotonic clock now (%d µs)", lines[1], before.Nano()/1000)
	}
}

func TestNotify_UnsetDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
}

func TestNotify_MissingSocketIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := Ready(); err == nil {
		t.Fatal("no error for a socket that does not exist")
	}
}
