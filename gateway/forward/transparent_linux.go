package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// transparentControl marks a socket IP_TRANSPARENT (IPV6_TRANSPARENT), so
// it may bind the client's own address, as HAProxy's `usesrc clientip`.
func transparentControl(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// CanTransparent tells whether this process may connect from clients'
// addresses: IP_TRANSPARENT needs CAP_NET_ADMIN.
func CanTransparent() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TRANSPARENT, 1); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("setting IP_TRANSPARENT needs CAP_NET_ADMIN: %w", err)
		}
		return err
	}
	return nil
}

// transparentDialer connects from the client's own address (any port).
func transparentDialer(d net.Dialer, client string) (*net.Dialer, error) {
	a, err := netip.ParseAddr(client)
	if err != nil {
		return nil, fmt.Errorf("transparent source: client address %q: %w", client, err)
	}
	d.LocalAddr = &net.TCPAddr{IP: a.Unmap().AsSlice()}
	d.Control = transparentControl
	return &d, nil
}
