package balancer

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// silentListener is a TCP port on 127.0.0.1 that answers no SYN at all:
// a listener with a backlog of 0 whose accept queue is full, so the kernel
// drops new SYNs without a SYN-ACK or a RST. What the half-open check
// hears from it is only what the test sends.
func silentListener(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; ; i++ { // fill the accept queue; bounded
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return port
		}
		t.Cleanup(func() { c.Close() })
		if i == 8 {
			t.Fatal("the accept queue of a listener with backlog 0 does not fill")
		}
	}
}

// answerSYN waits for the SYN of a half-open check to port and answers it
// from the address from with a SYN-ACK whose acknowledgment number is the
// SYN's sequence number plus ackDelta (1 is the right answer).
func answerSYN(t *testing.T, from net.IP, port int, ackDelta uint32) {
	t.Helper()
	sniff, err := net.ListenIP("ip4:tcp", &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	send, err := net.ListenIP("ip4:tcp", &net.IPAddr{IP: from})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer sniff.Close()
		defer send.Close()
		sniff.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		for {
			n, _, err := sniff.ReadFrom(buf)
			if err != nil {
				return
			}
			seg := buf[:n]
			if n < 20 || int(binary.BigEndian.Uint16(seg[2:])) != port || seg[13] != 0x02 {
				continue
			}
			synack := make([]byte, 20)
			binary.BigEndian.PutUint16(synack[0:], uint16(port))
			copy(synack[2:4], seg[0:2]) // to the check's port
			binary.BigEndian.PutUint32(synack[4:], 0x5eed)
			binary.BigEndian.PutUint32(synack[8:], binary.BigEndian.Uint32(seg[4:])+ackDelta)
			synack[12], synack[13] = 5<<4, 0x12 // SYN, ACK
			binary.BigEndian.PutUint16(synack[14:], 65535)
			binary.BigEndian.PutUint16(synack[16:], tcpChecksum(from.To4(), net.IPv4(127, 0, 0, 1).To4(), synack))
			send.WriteTo(synack, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)})
			return
		}
	}()
}

// The half-open check takes as up only a SYN-ACK that acknowledges its own
// SYN (ack = its sequence number + 1) and comes from the server's address:
// a stray or forged SYN-ACK with another acknowledgment number, or from
// another address, leaves the check without an answer, so the server is
// not reported up by it.
func TestHalfOpen_OnlyASynAckToItsSYN(t *testing.T) {
	if err := CanHalfOpen(); err != nil {
		t.Fatalf("this test needs CAP_NET_RAW (run it as root): %v", err)
	}
	port := silentListener(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		return halfOpen(ctx, addr)
	}
	if err := check(); err == nil || !strings.Contains(err.Error(), "no answer to SYN") {
		t.Fatalf("unanswered SYN: %v, want no answer", err)
	}
	local := net.IPv4(127, 0, 0, 1)
	for _, tc := range []struct {
		name  string
		from  net.IP
		delta uint32
		ok    bool
	}{
		{"ack = seq+1", local, 1, true},
		{"ack = seq", local, 0, false},
		{"ack = seq+2", local, 2, false},
		{"ack = seq-1", local, ^uint32(0), false},
		{"ack = seq+1 from another address", net.IPv4(127, 0, 0, 2), 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answerSYN(t, tc.from, port, tc.delta)
			err := check()
			var ne net.Error
			if tc.ok && err != nil {
				t.Fatalf("the right SYN-ACK: %v", err)
			}
			if !tc.ok && (err == nil || !errors.As(err, &ne) || !ne.Timeout()) {
				t.Fatalf("a SYN-ACK that does not answer the SYN: %v, want a timeout", err)
			}
		})
	}
}
