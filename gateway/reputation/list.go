package reputation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The bounds of a list, so that a wrong or hostile source (a binary, an
// endless stream) fails with an error instead of exhausting memory.
const (
	MaxLines   = 10_000_000 // lines in one list, comments included
	MaxLineLen = 256        // bytes in one line, before trimming
)

// quoteMax bounds how much of a bad line an error repeats.
const quoteMax = 64

// ParseError is a line of a list that is not an address or prefix, or a
// list that breaks a bound.
type ParseError struct {
	Name string // the file or URL the list came from
	Line int    // 1-based; 0 when the error is not about one line
	Text string // the line, cut to 64 bytes
	Err  error
}

// Error reads name:line: "text": why, as compilers do, so editors can jump to it.
func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.Name, e.Err)
	}
	if e.Text == "" {
		return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %q: %v", e.Name, e.Line, e.Text, e.Err)
}

// Unwrap gives the cause, such as a read error.
func (e *ParseError) Unwrap() error { return e.Err }

var (
	errNotPrefix = errors.New("not an IP address or CIDR prefix")
	errLongLine  = fmt.Errorf("line longer than %d bytes", MaxLineLen)
	errManyLines = fmt.Errorf("more than %d lines", MaxLines)
)

// ParseList reads a list of one IP address or CIDR prefix per line. Spaces
// around an entry are trimmed, blank lines are skipped, and # or ; starts a
// comment (the latter is how Spamhaus DROP annotates its entries). Host bits
// of a prefix are masked off; an address is its /32 or /128. name says where
// the list came from in errors.
func ParseList(name string, r io.Reader) ([]netip.Prefix, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen+2) // longer lines fail at 4 KiB, or are measured below
	var out []netip.Prefix
	line := 0
	for sc.Scan() {
		line++
		if line > MaxLines {
			return nil, &ParseError{Name: name, Err: errManyLines}
		}
		raw := sc.Text()
		if len(raw) > MaxLineLen {
			return nil, &ParseError{name, line, quote(raw), errLongLine}
		}
		p, ok, err := parseLine(raw, line == 1)
		if err != nil {
			return nil, &ParseError{name, line, quote(raw), err}
		}
		if ok {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Name: name, Line: line + 1, Err: errLongLine}
		}
		return nil, &ParseError{Name: name, Err: err}
	}
	return out, nil
}

// parseLine parses one line; ok is false for a blank or comment line.
func parseLine(s string, first bool) (p netip.Prefix, ok bool, err error) {
	if first {
		s = strings.TrimPrefix(s, "\uFEFF") // a byte order mark left by an editor
	}
	if i := strings.IndexAny(s, "#;"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, false, nil
	}
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(s)
		if err == nil && a.Zone() != "" {
			err = errNotPrefix // a zone scopes an address to one host's link
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil {
		return netip.Prefix{}, false, errNotPrefix
	}
	return p.Masked(), true, nil
}

// quote cuts a line for an error message.
func quote(s string) string {
	if len(s) <= quoteMax {
		return s
	}
	return s[:quoteMax] + "..."
}

// FileList is a list read from a file and read again when the file changes.
// Set its fields, then call Load.
//
// Changes are found by polling the file's modification time, size and
// identity (inode), which also sees a file replaced by rename or a
// Kubernetes ConfigMap's symlink swap. Replace the file by renaming a
// complete new one over it: a file caught while being written is reread at
// the next poll, but one written in place in several steps may be read
// between them.
type FileList struct {
	Path     string        // the list's file
	Interval time.Duration // how often to look for changes; 0 reads the file only in Load
	OnError  func(error)   // told when a change cannot be read and the old set is kept

	cur      atomic.Pointer[PrefixSet]
	seen     os.FileInfo // the file behind cur, or the corrupt one last tried
	lastErr  string      // the failure last reported, so a lasting one is told once
	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// errChanged is a file that changed while it was read.
var errChanged = errors.New("changed while being read")

// Load reads the file and starts watching it. Its error, which names the file
// (and the line), is a configuration error: there is no previous set to keep.
func (l *FileList) Load() error {
	if l.done != nil {
		return fmt.Errorf("%s: list already loaded", l.Path)
	}
	var fi os.FileInfo
	var set *PrefixSet
	var err error
	for try := range 3 { // a writer racing the first read gets a moment to finish
		if fi, set, err = l.read(); !errors.Is(err, errChanged) {
			break
		}
		time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	l.cur.Store(set)
	l.seen = fi
	l.done = make(chan struct{})
	if l.Interval <= 0 {
		close(l.done)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go every(ctx, l.Interval, l.done, l.check)
	return nil
}

// Set is the current list: an atomic load, for the request path.
func (l *FileList) Set() *PrefixSet { return l.cur.Load() }

// Close stops watching the file; Set keeps answering with the last set.
func (l *FileList) Close() {
	l.stopOnce.Do(func() {
		if l.stop != nil {
			l.stop()
		}
	})
	if l.done != nil {
		<-l.done
	}
}

// read parses the file, and fails with errChanged if the path no longer
// leads to the same, unmodified file once it has been read.
func (l *FileList) read() (os.FileInfo, *PrefixSet, error) {
	f, err := os.Open(l.Path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", l.Path)
	}
	prefixes, err := ParseList(l.Path, f)
	if now, serr := os.Stat(l.Path); serr != nil || !sameFile(fi, now) {
		return nil, nil, fmt.Errorf("%s: %w", l.Path, errChanged) // half written is not corrupt
	}
	if err != nil {
		return fi, nil, err
	}
	return fi, NewPrefixSet(prefixes), nil
}

// sameFile reports whether two looks at a path saw the same contents.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// check is one poll: it rereads the file if it changed, and keeps the
// current set if the file is gone, unreadable or corrupt.
func (l *FileList) check() {
	fi, err := os.Stat(l.Path)
	if err == nil && sameFile(fi, l.seen) {
		return
	}
	if err == nil {
		var set *PrefixSet
		if fi, set, err = l.read(); err == nil {
			l.cur.Store(set)
			l.seen, l.lastErr = fi, ""
			return
		}
		if errors.Is(err, errChanged) {
			return // being written: try again next poll
		}
		if fi != nil {
			l.seen = fi // corrupt: not worth reparsing until it changes
		}
	}
	l.report(fmt.Errorf("%w (keeping the previous %d prefixes)", err, l.Set().Len()))
}

// report tells OnError about a failure unless it was the last one told.
func (l *FileList) report(err error) {
	if msg := err.Error(); msg != l.lastErr {
		l.lastErr = msg
		if l.OnError != nil {
			l.OnError(err)
		}
	}
}

// every calls fn each interval until ctx ends, then closes done.
func every(ctx context.Context, interval time.Duration, done chan<- struct{}, fn func()) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
