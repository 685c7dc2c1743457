//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package forward

// canPeek is false where the socket cannot be peeked at: an idle
// connection the server closed is then found when a request fails on it.
const canPeek = false

func (c *conn) peek(uintptr) bool { return true }
