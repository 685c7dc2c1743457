package tcpproxy

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
)

// spliceSupported tells New to splice between TCP sockets by default.
const spliceSupported = true

// spliceChunk is the most one splice(2) is asked to move, and the pipe
// capacity asked for (the default is 64 KiB): with the default, loopback
// transfers took ten times the calls and twice the CPU. Pages are
// allocated only for bytes in flight.
const spliceChunk = 1 << 20

// spliceNonblock keeps splice(2) from blocking on the pipe; the sockets
// are non-blocking already.
const spliceNonblock = 0x2

// spliceLoop moves src's bytes to dst through a pipe with splice(2), so
// they never enter user space, as io.Copy between *net.TCPConn's does.
// It runs the steps itself, over the sockets' RawConns, so that each is
// seen: the idle clock and the byte count stay exact, a failure is put on
// the side that failed, and no deadline is needed. A connection waiting
// for bytes holds no pipe. It returns false, having moved every byte it
// read, when splicing cannot go on (no pipe to be had, a socket splice(2)
// refuses): the caller copies the rest.
func (x *session) spliceLoop(dst, src *net.TCPConn, from side, m *meter) bool {
	rsrc, err := src.SyscallConn()
	if err != nil {
		return false
	}
	rdst, err := dst.SyscallConn()
	if err != nil {
		return false
	}
	var p *pipe
	noPipe := false
	defer func() {
		if p != nil {
			p.put()
		}
	}()
	for {
		var n int
		var serr error
		rerr := rsrc.Read(func(fd uintptr) bool {
			if p == nil {
				if p, serr = getPipe(); serr != nil {
					noPipe = true
					return true
				}
			}
			n, serr = splice(p.w, int(fd), spliceChunk)
			if serr == syscall.EAGAIN {
				p.put() // empty: an idle connection holds no descriptors
				p = nil
				return false // wait until src is readable
			}
			return true
		})
		if noPipe || rerr == nil && errors.Is(serr, syscall.EINVAL) {
			// No pipe, or a socket splice(2) refuses: a failed drain
			// moves nothing, so copying can take over.
			return false
		}
		if rerr == nil {
			rerr = serr
		}
		if rerr != nil {
			x.fail(from, rerr)
			return true
		}
		if n == 0 {
			x.finish(from, dst)
			return true
		}
		x.touch() // a read is activity, even if the write then stalls
		for n > 0 {
			var w int
			werr := rdst.Write(func(fd uintptr) bool {
				w, serr = splice(int(fd), p.r, n)
				return serr != syscall.EAGAIN // else wait until dst is writable
			})
			if werr == nil {
				werr = serr
			}
			if w == 0 && werr == nil {
				werr = io.ErrNoProgress
			}
			n -= w
			m.moved(w)
			if werr != nil {
				p.close() // bytes left in it are lost with the connection
				p = nil
				x.fail(from.other(), werr)
				return true
			}
		}
	}
}

// splice moves up to max bytes from in to out, retrying interrupted calls.
func splice(out, in, max int) (int, error) {
	for {
		n, err := syscall.Splice(in, nil, out, nil, max, spliceNonblock)
		if !errors.Is(err, syscall.EINTR) {
			if n < 0 {
				n = 0
			}
			return int(n), err
		}
	}
}

// pipe is a kernel pipe that bytes cross between two sockets.
type pipe struct {
	r, w    int
	cleanup runtime.Cleanup
}

// pipes keeps empty pipes for the next burst; one the pool drops is
// closed by its cleanup.
var pipes sync.Pool

func getPipe() (*pipe, error) {
	if v := pipes.Get(); v != nil {
		return v.(*pipe), nil
	}
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, err
	}
	// Refused past fs.pipe-user-pages-soft: the default size still works.
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[0]), syscall.F_SETPIPE_SZ, spliceChunk)
	p := &pipe{r: fds[0], w: fds[1]}
	p.cleanup = runtime.AddCleanup(p, closePipe, fds)
	return p, nil
}

// put returns an empty pipe to the pool.
func (p *pipe) put() { pipes.Put(p) }

// close closes a pipe that may hold bytes.
func (p *pipe) close() {
	p.cleanup.Stop()
	closePipe([2]int{p.r, p.w})
}

func closePipe(fds [2]int) {
	syscall.Close(fds[0])
	syscall.Close(fds[1])
}
