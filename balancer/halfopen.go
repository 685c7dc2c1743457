package balancer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// halfOpen checks a TCP port without opening a connection: it sends a SYN
// from a raw socket, takes a SYN-ACK as up and a RST as down. The kernel
// answers the SYN-ACK with a RST itself (no socket owns the port the SYN
// came from), so the server's application never accepts a connection and
// logs nothing. It needs CAP_NET_RAW.
func halfOpen(ctx context.Context, address string) error {
	raddr, err := net.ResolveTCPAddr("tcp", address)
	if err != nil {
		return err
	}
	dst := raddr.IP
	network := "ip4:tcp"
	if dst.To4() == nil {
		network = "ip6:tcp"
	} else {
		dst = dst.To4()
	}
	// The address the kernel would send from, for the checksum.
	probe, err := net.Dial("udp", address)
	if err != nil {
		return err
	}
	src := probe.LocalAddr().(*net.UDPAddr).IP
	probe.Close()
	if src.To4() != nil {
		src = src.To4()
	}
	conn, err := net.ListenIP(network, &net.IPAddr{IP: src})
	if err != nil {
		return fmt.Errorf("raw socket (tcp_half_open needs CAP_NET_RAW): %w", err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	conn.SetDeadline(deadline)

	sport := uint16(49152 + rand.IntN(16384))
	seq := rand.Uint32()
	syn := make([]byte, 20)
	binary.BigEndian.PutUint16(syn[0:], sport)
	binary.BigEndian.PutUint16(syn[2:], uint16(raddr.Port))
	binary.BigEndian.PutUint32(syn[4:], seq)
	syn[12] = 5 << 4 // header length: 5 words
	syn[13] = 0x02   // SYN
	binary.BigEndian.PutUint16(syn[14:], 64240)
	binary.BigEndian.PutUint16(syn[16:], tcpChecksum(src, dst, syn))
	if _, err := conn.WriteTo(syn, &net.IPAddr{IP: dst}); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("no answer to SYN: %w", err)
		}
		seg := buf[:n]
		if n < 20 || !from.(*net.IPAddr).IP.Equal(dst) ||
			binary.BigEndian.Uint16(seg[0:]) != uint16(raddr.Port) || binary.BigEndian.Uint16(seg[2:]) != sport {
			continue // another connection's segment, or our own SYN seen on loopback
		}
		flags := seg[13]
		switch {
		case flags&0x04 != 0: // RST
			return errors.New("connection refused (RST)")
		case flags&0x12 == 0x12 && binary.BigEndian.Uint32(seg[8:]) == seq+1: // SYN-ACK to our SYN
			return nil
		}
	}
}

// tcpChecksum is the TCP checksum of seg over the IPv4 or IPv6 pseudo-header.
func tcpChecksum(src, dst net.IP, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src)
	add(dst)
	sum += 6 + uint32(len(seg)) // protocol and length, as both pseudo-headers sum them
	add(seg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// CanHalfOpen reports whether this process may open the raw sockets that
// tcp_half_open checks need.
func CanHalfOpen() error {
	c, err := net.ListenIP("ip4:tcp", &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	return c.Close()
}
