//go:build !linux

package forward

import (
	"errors"
	"net"
)

// CanTransparent tells whether this process may connect from clients'
// addresses: only Linux has IP_TRANSPARENT.
func CanTransparent() error {
	return errors.New("transparent source needs Linux (IP_TRANSPARENT)")
}

func transparentDialer(net.Dialer, string) (*net.Dialer, error) { return nil, CanTransparent() }
