package listen

import "bytes"

// framingScan watches the bytes of an HTTP/1 connection for request header
// blocks that carry both Content-Length and Transfer-Encoding. net/http
// honours Transfer-Encoding and silently drops Content-Length, so the handler
// cannot tell such a request from an ordinary chunked one; RFC 9112 §6.1 asks
// a server to close the connection after answering it, because a proxy in
// front may have framed it the other way.
//
// The scan sees body bytes too. A body that happens to contain both header
// names on lines of their own counts as a false alarm: the worst outcome is
// a refused request and a closed connection, never a missed one.
type framingScan struct {
	name     [len("transfer-encoding")]byte
	n        int  // bytes of the current line's name seen
	skipping bool // past the name: skip to the end of the line
	cl, te   bool // seen in the current block
}

// feed scans p and returns how many ambiguous header blocks ended in it.
func (s *framingScan) feed(p []byte) (ambiguous int) {
	for len(p) > 0 {
		if s.skipping {
			i := bytes.IndexByte(p, '\n') // vectorised: body bytes pass here
			if i < 0 {
				return ambiguous
			}
			p = p[i+1:]
			s.skipping, s.n = false, 0
			continue
		}
		c := p[0]
		p = p[1:]
		switch {
		case c == '\n':
			if s.n == 0 { // blank line: the block ends
				if s.cl && s.te {
					ambiguous++
				}
				s.cl, s.te = false, false
			}
			s.n = 0
		case c == '\r' && s.n == 0:
		case c == ':':
			switch string(s.name[:min(s.n, len(s.name))]) {
			case "content-length":
				s.cl = s.n == len("content-length")
			case "transfer-encoding":
				s.te = s.n == len("transfer-encoding")
			}
			s.skipping = true
		default:
			if s.n >= len(s.name) {
				s.skipping = true
				continue
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			s.name[s.n] = c
			s.n++
		}
	}
	return ambiguous
}
