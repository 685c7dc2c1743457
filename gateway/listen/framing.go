package listen

import "bytes"

// framingScan watches the bytes of an HTTP/1 connection for request header
// blocks that carry both Content-Length and Transfer-Encoding. net/http
// honours Transfer-Encoding and silently drops Content-Length, so the handler
// cannot tell such a request from an ordinary chunked one; RFC 9112 §6.1 asks
// a server to close the connection after answering it, because a proxy in
// front may have framed it the other way.
//
// A block with a valid Content-Length and no Transfer-Encoding is followed
// by exactly that many body bytes (net/http frames it so, and refuses the
// request, closing the connection, when it reads the length any other
// way): those are passed over, not scanned, as long as the scan has been
// in step with net/http's framing since the connection began. A chunked
// body is not followed (its data and trailers could look like a block):
// from the first one on, or a length net/http might read otherwise, every
// byte is scanned. A scanned body that happens to contain both header
// names on lines of their own counts as a false alarm: the worst outcome
// is a refused request and a closed connection, never a missed one.
type framingScan struct {
	name     [len("transfer-encoding")]byte
	n        int  // bytes of the current line's name seen
	skipping bool // past the name: skip to the end of the line
	cl, te   bool // seen in the current block

	// The block's Content-Length, as net/http reads it: one value, or
	// several equal ones, of digits between optional blanks.
	inCL     bool  // in a Content-Length value
	clDigits bool  // digits seen in this value
	clEnd    bool  // blanks after the digits: no more may come
	clCur    int64 // this value
	clVal    int64 // the block's value
	clLines  int   // Content-Length lines in the block
	clBad    bool  // a value net/http might read otherwise: scan the body
	body     int64 // body bytes still to pass over
	unsynced bool  // a body was not followed: no more passing over
}

// maxCL bounds the lengths parsed; ParseUint(v, 10, 63) refuses more.
const maxCL = 1<<63 - 1

// feed scans p and returns how many ambiguous header blocks ended in it.
func (s *framingScan) feed(p []byte) (ambiguous int) {
	for len(p) > 0 {
		if s.body > 0 {
			k := min(s.body, int64(len(p)))
			p = p[k:]
			s.body -= k
			continue
		}
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
		if s.inCL {
			s.clValue(c)
			continue
		}
		switch {
		case c == '\n':
			if s.n == 0 { // blank line: the block ends
				if s.cl && s.te {
					ambiguous++
				}
				switch {
				case s.te || s.clBad:
					s.unsynced = true
				case s.cl && s.clLines > 0 && !s.unsynced:
					s.body = s.clVal
				}
				s.cl, s.te = false, false
				s.clLines, s.clBad = 0, false
			}
			s.n = 0
		case c == '\r' && s.n == 0:
		case c == ':':
			switch string(s.name[:min(s.n, len(s.name))]) {
			case "content-length":
				s.cl = s.n == len("content-length")
				if s.cl {
					s.inCL, s.clDigits, s.clEnd, s.clCur = true, false, false, 0
					continue
				}
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

// clValue takes one byte of a Content-Length value.
func (s *framingScan) clValue(c byte) {
	switch {
	case '0' <= c && c <= '9' && !s.clEnd:
		if s.clCur > (maxCL-int64(c-'0'))/10 {
			s.clBad = true
		}
		s.clCur = s.clCur*10 + int64(c-'0')
		s.clDigits = true
	case c == ' ' || c == '\t' || c == '\r':
		s.clEnd = s.clDigits
	case c == '\n':
		switch {
		case !s.clDigits:
			s.clBad = true
		case s.clLines > 0 && s.clCur != s.clVal:
			s.clBad = true
		}
		s.clVal = s.clCur
		s.clLines++
		s.inCL, s.n = false, 0
	default:
		s.clBad = true
		s.inCL, s.skipping = false, true
	}
}
