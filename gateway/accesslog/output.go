package accesslog

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// File is an access log file that can be reopened, so that logrotate can
// move it away and the next line goes to a new file (SIGUSR1).
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenFile opens (creating, appending) the file at path.
func OpenFile(path string) (*File, error) {
	f := &File{path: path}
	if err := f.Reopen(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reopen closes the file and opens path again.
func (f *File) Reopen() error {
	nf, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Write writes one line.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Write(p)
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Close()
}

// Syslog sends each line as an RFC 5424 message (facility local0,
// severity info) over UDP, TCP (octet-counted framing, RFC 6587) or a
// unix datagram socket. A TCP connection that breaks is dialed again on
// the next line; a line that cannot be sent is dropped, never waited on
// beyond a short timeout.
type Syslog struct {
	mu       sync.Mutex
	network  string
	addr     string
	conn     net.Conn
	hostname string
	pid      string
}

// syslogPRI is local0.info: <16*8+6>.
const syslogPRI = "<134>"

// OpenSyslog reads a destination such as syslog+udp://127.0.0.1:514,
// syslog+tcp://logs.internal:6514 or syslog+unix:///dev/log.
func OpenSyslog(dest string) (*Syslog, error) {
	u, err := url.Parse(dest)
	if err != nil {
		return nil, err
	}
	s := &Syslog{pid: strconv.Itoa(os.Getpid())}
	s.hostname, _ = os.Hostname()
	switch u.Scheme {
	case "syslog+udp":
		s.network, s.addr = "udp", u.Host
	case "syslog+tcp":
		s.network, s.addr = "tcp", u.Host
	case "syslog+unix":
		s.network, s.addr = "unixgram", u.Path
	default:
		return nil, fmt.Errorf("%q: want syslog+udp://host:port, syslog+tcp://host:port or syslog+unix:///path", dest)
	}
	if s.addr == "" {
		return nil, fmt.Errorf("%q: no address", dest)
	}
	return s, s.dial()
}

func (s *Syslog) dial() error {
	c, err := net.DialTimeout(s.network, s.addr, time.Second)
	if err != nil {
		return err
	}
	s.conn = c
	return nil
}

// Write sends one line as one message.
func (s *Syslog) Write(p []byte) (int, error) {
	n := len(p)
	if n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	msg := fmt.Sprintf("%s1 %s %s sekisho %s access - %s", syslogPRI, time.Now().UTC().Format(time.RFC3339Nano), s.hostname, s.pid, p)
	if s.network == "tcp" {
		msg = strconv.Itoa(len(msg)) + " " + msg
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if s.conn == nil {
			if err := s.dial(); err != nil {
				return n, nil // dropped: the access log must not stop the gateway
			}
		}
		s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := s.conn.Write([]byte(msg)); err == nil {
			return n, nil
		}
		s.conn.Close()
		s.conn = nil
	}
	return n, nil
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.Close()
}
