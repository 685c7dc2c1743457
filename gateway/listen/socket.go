package listen

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// Socket is a bound TCP address that outlives the Listeners over it: a
// config reload attaches a new Listener (new TLS and PROXY settings, a new
// server) and the socket hands each accepted connection to the current
// one, so the reload neither closes the socket nor misses a connection.
type Socket struct {
	ln     net.Listener
	cur    atomic.Pointer[socketView]
	owner  *Listener // over cur; handed over to the next one
	closed chan struct{}
	once   sync.Once
}

// NewSocket holds ln; it accepts from the first Attach on.
func NewSocket(ln net.Listener) *Socket {
	return &Socket{ln: ln, closed: make(chan struct{})}
}

// Addr is the bound address.
func (s *Socket) Addr() net.Addr { return s.ln.Addr() }

// SocketKey names a bind across reloads: its address, or for a port
// chosen by the kernel (:0), the frontend and the bind's rank among those.
func SocketKey(frontend, address string, seen map[string]int) string {
	_, port, _ := net.SplitHostPort(address)
	n := seen[address]
	seen[address]++
	if port != "0" && n == 0 {
		return address
	}
	return frontend + "/" + address + "#" + strconv.Itoa(n)
}

// Attach makes a Listener with o, over a new view of s, the one that gets
// connections; the Listener before it hands over what it was still
// preparing (HandOver). Attach and Close are for one goroutine.
func (s *Socket) Attach(o Options) *Listener {
	v := &socketView{s: s, conns: make(chan net.Conn), done: make(chan struct{})}
	l := New(v, o)
	s.cur.Store(v)
	if s.owner != nil {
		s.owner.HandOver(l)
	} else {
		go s.accept()
	}
	s.owner = l
	return l
}

func (s *Socket) accept() {
	for {
		c, err := accept(s.ln, s.closed)
		if err != nil {
			return
		}
		s.hand(c)
	}
}

// hand gives c to the current view, or to its successor should it close
// meanwhile.
func (s *Socket) hand(c net.Conn) {
	for {
		v := s.cur.Load()
		select {
		case v.conns <- c:
			return
		case <-v.done:
			if s.cur.Load() == v { // closed without a successor: shutting down
				c.Close()
				return
			}
		case <-s.closed:
			c.Close()
			return
		}
	}
}

// Close stops accepting and closes the socket; connections accepted
// before stay with their Listeners.
func (s *Socket) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.ln.Close()
	})
}

// socketView is one generation's net.Listener over a socket: closing it
// detaches the generation, not the socket.
type socketView struct {
	s     *Socket
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (v *socketView) Accept() (net.Conn, error) {
	select {
	case c := <-v.conns:
		select {
		case <-v.done:
			// Closed meanwhile (select picks at random among ready
			// cases): the successor gets it, not a server shutting down.
			v.s.hand(c)
			return nil, net.ErrClosed
		default:
			return c, nil
		}
	case <-v.done:
		return nil, net.ErrClosed
	}
}

func (v *socketView) Close() error {
	v.once.Do(func() { close(v.done) })
	return nil
}

func (v *socketView) Addr() net.Addr { return v.s.ln.Addr() }
