package listen

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"time"
)

// serverErrorHeaders follow the status line of the responses net/http
// writes itself, without calling a handler, to a request it cannot parse
// (a duplicate Host, a bad header name, control bytes, headers too long,
// an unknown transfer coding). A handler's response never has them there:
// its headers come sorted, Connection before Content-Type, with a Date.
var serverErrorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

// refusal is the status of p when it is such a response, else 0.
func refusal(p []byte) int {
	const prefix = "HTTP/1.1 "
	if len(p) < len(prefix)+3 || p[0] != 'H' || !bytes.HasPrefix(p, []byte(prefix)) {
		return 0
	}
	eol := bytes.Index(p, []byte("\r\n"))
	if eol < 0 || !bytes.HasPrefix(p[eol:], serverErrorHeaders) {
		return 0
	}
	code, err := strconv.Atoi(string(p[len(prefix) : len(prefix)+3]))
	if err != nil {
		return 0
	}
	return code
}

// refusals tells a connection's owner about the requests net/http refused.
type refusals struct {
	on    func(c *Conn, status int, start time.Time)
	start atomic.Int64 // when the bytes of the current request began to come (unix ns), 0 between requests
}

// read notes the arrival of request bytes.
func (r *refusals) read() {
	if r.on != nil && r.start.Load() == 0 {
		r.start.Store(time.Now().UnixNano())
	}
}

// write sees what the server writes: a refusal is reported, and any
// response ends the current request.
func (r *refusals) write(c *Conn, p []byte) {
	if r.on == nil {
		return
	}
	start := r.start.Swap(0)
	if code := refusal(p); code != 0 {
		t := time.Now()
		if start != 0 {
			t = time.Unix(0, start)
		}
		r.on(c, code, t)
	}
}

// Write implements net.Conn, watching for the responses net/http writes
// without a handler, which the access log must show too.
func (c *Conn) Write(p []byte) (int, error) {
	c.refused.write(c, p)
	return c.Conn.Write(p)
}
