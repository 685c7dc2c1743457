//go:build unix

package tcpproxy

import (
	"context"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/listen"
)

// BenchmarkTransfer sends 64 MiB from a client to a server that counts
// them: directly, through the proxy splicing and copying, and through a
// bare io.Copy relay between *net.TCPConn's (which splices too, with no
// accounting) for reference. cpu-ms/op is the whole process's CPU, the
// client's and the server's included (the same in every case).
//
//	go test -run '^$' -bench Transfer -benchtime 10x -count 5 ./gateway/tcpproxy/
func BenchmarkTransfer(b *testing.B) {
	sink := startSink(b)
	b.Run("direct", func(b *testing.B) { transfer(b, sink) })
	for _, mode := range copyModes {
		b.Run("proxy-"+mode.name, func(b *testing.B) {
			pool := newPool(b, balancer.Config{Servers: []balancer.ServerConfig{{Address: sink}}})
			f := startFrontend(b, Options{Pool: pool, IdleTimeout: 30 * time.Second, DisableSplice: mode.disableSplice}, listen.Options{})
			go func() {
				for range f.logs {
				}
			}()
			transfer(b, f.addr)
		})
	}
	b.Run("io.Copy-relay", func(b *testing.B) { transfer(b, startRelay(b, sink)) })
}

const transferSize = 64 << 20

func transfer(b *testing.B, addr string) {
	chunk := make([]byte, 256<<10)
	b.SetBytes(transferSize)
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < transferSize; n += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != strconv.Itoa(transferSize) {
			b.Fatalf("the server counted %q, %v", got, err)
		}
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
	b.ReportMetric(float64(cpu)/1e6/float64(b.N), "cpu-ms/op")
}

// startSink serves connections that are read to EOF, then answered with
// the byte count.
func startSink(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				var n int64
				for {
					m, err := c.Read(buf)
					n += int64(m)
					if err != nil {
						break
					}
				}
				io.WriteString(c, strconv.FormatInt(n, 10))
			}()
		}
	}()
	return ln.Addr().String()
}

// startRelay is the simplest relay: io.Copy both ways between the TCP
// conns, which splices on Linux.
func startRelay(b *testing.B, to string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(func() { cancel(); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var d net.Dialer
				s, err := d.DialContext(ctx, "tcp", to)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{})
				go func() {
					io.Copy(c, s)
					c.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				io.Copy(s, c)
				s.(*net.TCPConn).CloseWrite()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}
