package listen

import (
	"io"
	"net"
	"testing"
	"time"
)

// A socket serves one Listener at a time; attaching the next one moves
// every later connection to it, and none is lost or refused.
func TestSocket_AttachMovesConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSocket(ln)
	defer s.Close()
	serve := func(l *Listener, name string) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, name)
			c.Close()
		}
	}
	read := func() string {
		t.Helper()
		c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	a := s.Attach(Options{})
	go serve(a, "a")
	for range 5 {
		if got := read(); got != "a" {
			t.Fatalf("before the second attach: %q, want a", got)
		}
	}
	b := s.Attach(Options{})
	go serve(b, "b")
	for range 5 {
		if got := read(); got != "b" {
			t.Fatalf("after the second attach: %q, want b", got)
		}
	}
	if _, err := a.Accept(); err == nil {
		t.Error("the first listener still accepts")
	}
	s.Close()
	if c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the closed socket still takes connections")
	}
}
