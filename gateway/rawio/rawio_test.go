package rawio

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair returns a connected loopback pair, both ends wrapped.
func pair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	client, server = Wrap(c), Wrap(s)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestWrap(t *testing.T) {
	c, _ := pair(t)
	if isRaw(c) != (runtime.GOOS == "linux") {
		t.Fatalf("Wrap gave %T on %s", c, runtime.GOOS)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if Wrap(p1) != p1 {
		t.Fatal("a connection that is not TCP must come back as it was")
	}
}

// The bytes arrive whole and in order, in writes that fill the socket and
// must wait for the reader, small or as large as the whole.
func TestConn_CopiesBytes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		total, each int
	}{
		{"one byte", 1, 1},
		{"small writes", 64 << 10, 512},
		{"32 KiB writes past the socket buffers", 16 << 20, 32 << 10},
		{"1 MiB writes", 16 << 20, 1 << 20},
		{"one large write", 16 << 20, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := pair(t)
			data := make([]byte, tc.total)
			for i := range data {
				data[i] = byte(i*7 + i>>11)
			}
			werr := make(chan error, 1)
			go func() {
				// The reader starts late, so writes meet a full socket.
				for p := data; len(p) > 0; {
					k := min(tc.each, len(p))
					n, err := c.Write(p[:k])
					if err != nil || n != k {
						werr <- errors.Join(err, errors.New("short write"))
						return
					}
					p = p[k:]
				}
				werr <- c.(interface{ CloseWrite() error }).CloseWrite()
			}()
			time.Sleep(20 * time.Millisecond)
			got, err := io.ReadAll(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("got %d bytes, not the %d written", len(got), len(data))
			}
		})
	}
}

// sameAsTCP checks that err reads as the error net.TCPConn gives for the
// same call (op), on the same connection.
func sameAsTCP(t *testing.T, c net.Conn, err error, op func(*net.TCPConn) error) {
	t.Helper()
	rc, ok := c.(*Conn)
	if !ok {
		return // nothing raw to compare
	}
	if want := op(rc.TCPConn); err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("error %q; net.TCPConn's is %q", err, want)
	}
}

func TestConn_Errors(t *testing.T) {
	t.Run("peer closed: EOF", func(t *testing.T) {
		c, s := pair(t)
		s.Close()
		n, err := c.Read(make([]byte, 10))
		if n != 0 || err != io.EOF {
			t.Fatalf("Read = %d, %v; want 0, EOF", n, err)
		}
	})
	t.Run("read deadline: a timeout", func(t *testing.T) {
		c, _ := pair(t)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		_, err := c.Read(make([]byte, 10))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after the deadline = %v; want a timeout", err)
		}
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Fatalf("Read returned after %v, before its deadline", d)
		}
		sameAsTCP(t, c, err, func(tc *net.TCPConn) error { _, err := tc.Read(make([]byte, 10)); return err })
	})
	t.Run("write deadline: a timeout", func(t *testing.T) {
		c, _ := pair(t) // nobody reads: the socket buffers fill
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 32<<10)
		var err error
		for i := 0; i < 10000 && err == nil; i++ {
			_, err = c.Write(buf)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write to a full socket = %v; want a timeout", err)
		}
	})
	t.Run("Close ends a blocked Read", func(t *testing.T) {
		c, _ := pair(t)
		done := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 10)); done <- err }()
		time.Sleep(20 * time.Millisecond)
		c.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read on a closed conn = %v; want net.ErrClosed", err)
			}
			sameAsTCP(t, c, err, func(tc *net.TCPConn) error { _, err := tc.Read(make([]byte, 10)); return err })
		case <-time.After(5 * time.Second):
			t.Fatal("Read still blocked 5 s after Close")
		}
	})
	t.Run("peer reset: ECONNRESET or EPIPE, no SIGPIPE", func(t *testing.T) {
		c, s := pair(t)
		s.(interface{ SetLinger(int) error }).SetLinger(0) // Close sends RST
		s.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = c.Write([]byte("after the reset"))
			time.Sleep(time.Millisecond)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "write" ||
			!(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			t.Fatalf("Write to a reset peer = %#v; want a write OpError with ECONNRESET or EPIPE", err)
		}
	})
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRoundTrip is a 512-byte request and its echo from another
// process on loopback: while the echo is awaited this process is idle, as a
// gateway is between requests. cpu-ns/op is this process's CPU (all its
// threads, sysmon's too) per exchange, which is what raw I/O saves:
//
//	go test -run - -bench RoundTrip -cpu 1 ./gateway/rawio
func BenchmarkRoundTrip(b *testing.B) {
	echo := exec.Command(os.Args[0], "-test.run=^$")
	echo.Env = append(os.Environ(), "RAWIO_ECHO=1")
	out, err := echo.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := echo.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { echo.Process.Kill(); echo.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal("echo server: ", err)
	}
	for _, raw := range []bool{false, true} {
		name := "net"
		if raw {
			name = "rawio"
		}
		b.Run(name, func(b *testing.B) {
			c, err := net.Dial("tcp", strings.TrimSpace(addr))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if raw {
				if c = Wrap(c); !isRaw(c) {
					b.Fatalf("no raw I/O on %s", runtime.GOOS)
				}
			}
			msg, buf := bytes.Repeat([]byte("x"), 512), make([]byte, 512)
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func isRaw(c net.Conn) bool { _, ok := c.(*Conn); return ok }

// TestMain runs the echo server of BenchmarkRoundTrip when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("RAWIO_ECHO") == "" {
		os.Exit(m.Run())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		go io.Copy(c, c)
	}
}
