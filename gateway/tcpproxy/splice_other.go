//go:build !linux

package tcpproxy

import "net"

// spliceSupported is false: only Linux has splice(2).
const spliceSupported = false

func (x *session) spliceLoop(dst, src *net.TCPConn, from side, m *meter) bool { return false }
