package reputation

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseList(t *testing.T) {
	in := "\uFEFF# a block list\n" +
		"192.0.2.1\n" +
		"  198.51.100.0/24  \n" +
		"\n" +
		"\t2001:db8::/32\t# documentation\r\n" +
		"203.0.113.7/24 ; SBL123\n" +
		"2001:db8::1\n" +
		"::ffff:192.0.2.0/120\n" +
		"   # indented comment\n" +
		"10.0.0.0/8"
	got, err := ParseList("test", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := prefixes(t, "192.0.2.1/32", "198.51.100.0/24", "2001:db8::/32", "203.0.113.0/24",
		"2001:db8::1/128", "::ffff:192.0.2.0/120", "10.0.0.0/8")
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestParseListErrors(t *testing.T) {
	long := "10.0.0.1" + strings.Repeat(" ", MaxLineLen)
	tests := []struct {
		name, in, want string
	}{
		{"garbage", "10.0.0.1\n<html>\n", `blocks.txt:2: "<html>": not an IP address or CIDR prefix`},
		{"bad bits", "# x\n\n10.0.0.0/33\n", `blocks.txt:3: "10.0.0.0/33": not an IP address`},
		{"zone", "fe80::1%eth0\n", `blocks.txt:1: "fe80::1%eth0": not an IP address`},
		{"zone in prefix", "fe80::1%eth0/64\n", `blocks.txt:1:`},
		{"two on a line", "10.0.0.1 10.0.0.2\n", `blocks.txt:1: "10.0.0.1 10.0.0.2"`},
		{"hostname", "example.com\n", `blocks.txt:1: "example.com"`},
		{"long line", "10.0.0.1\n" + long + "\n", `blocks.txt:2: "10.0.0.1 `},
		{"long last line", "10.0.0.1\n" + strings.Repeat("1", MaxLineLen+1), "...\": line longer than 256 bytes"},
		{"longer than the buffer", "10.0.0.1\n" + strings.Repeat("1", 5000), "blocks.txt:2: line longer than 256 bytes"},
		{"long quoted", "10.0.0.1\n" + strings.Repeat("x", MaxLineLen) + "\n", `blocks.txt:2: "` + strings.Repeat("x", quoteMax) + `...": not an IP`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseList("blocks.txt", strings.NewReader(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a ParseError containing %q", err, tt.want)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

// repeatReader is an endless stream of one byte, without the memory.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestParseListBounds(t *testing.T) {
	_, err := ParseList("big", io.LimitReader(repeatReader('\n'), MaxLines+1))
	if err == nil || !strings.Contains(err.Error(), "big: more than 10000000 lines") {
		t.Fatalf("err = %v, want too many lines", err)
	}
	got, err := ParseList("big", io.LimitReader(repeatReader('\n'), MaxLines))
	if err != nil || len(got) != 0 {
		t.Fatalf("exactly MaxLines lines: %v, %v", got, err)
	}
	_, err = ParseList("endless", repeatReader('1'))
	if err == nil || !strings.Contains(err.Error(), "endless:1: line longer") {
		t.Fatalf("err = %v, want a long line", err)
	}
	readErr := errors.New("connection reset")
	_, err = ParseList("feed", io.MultiReader(strings.NewReader("10.0.0.1\n"), errReader{readErr}))
	if !errors.Is(err, readErr) || !strings.HasPrefix(err.Error(), "feed: ") {
		t.Fatalf("err = %v, want the read error named after the list", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzParseList(f *testing.F) {
	f.Add("10.0.0.0/8\n# c\n\n2001:db8::1\n")
	f.Add("\uFEFF1.2.3.4 ; x\r\n::ffff:1.2.3.4/128")
	f.Add("fe80::1%eth0\n")
	f.Add("1.2.3.4/33")
	f.Add(strings.Repeat("1", 300))
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseList("fuzz", strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "fuzz") || len(pe.Text) > quoteMax+3 {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		var b strings.Builder
		for _, p := range got {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("%v is not a valid masked prefix", p)
			}
			b.WriteString(p.String() + "\n")
		}
		again, err := ParseList("fuzz", strings.NewReader(b.String()))
		if err != nil || !slices.Equal(got, again) {
			t.Fatalf("printing and parsing %v gave %v, %v", got, again, err)
		}
		s := NewPrefixSet(got)
		for _, p := range got {
			if !s.Contains(p.Addr()) {
				t.Fatalf("the set lost %v", p)
			}
		}
	})
}

// errs collects what a list reports.
type errs struct {
	mu   sync.Mutex
	list []error
}

func (e *errs) add(err error) { e.mu.Lock(); e.list = append(e.list, err); e.mu.Unlock() }

func (e *errs) get() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data to path the way lists should be updated: by rename.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	writeFile(t, path+".new", data)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("198.51.100.1")
)

func TestFileListLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.txt")
	writeFile(t, path, "# test\n192.0.2.0/24\n")
	l := &FileList{Path: path}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.Set().Contains(addrA) || l.Set().Contains(addrB) || l.Set().Len() != 1 {
		t.Fatal("wrong initial set")
	}
	if err := l.Load(); err == nil {
		t.Fatal("a second Load succeeded")
	}

	missing := &FileList{Path: filepath.Join(dir, "nope.txt")}
	if err := missing.Load(); err == nil || !strings.Contains(err.Error(), "nope.txt") {
		t.Fatalf("missing file: err = %v, want one naming it", err)
	}
	missing.Close() // harmless after a failed Load
	writeFile(t, path, "192.0.2.0/24\n\nnot-an-ip\n")
	bad := &FileList{Path: path}
	if err := bad.Load(); err == nil || !strings.Contains(err.Error(), path+`:3: "not-an-ip"`) {
		t.Fatalf("corrupt file: err = %v, want one naming file and line", err)
	}
	if err := (&FileList{Path: dir}).Load(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: err = %v", err)
	}
}

// TestFileListCheck drives the polls by hand to go through every case.
func TestFileListCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.txt")
	writeFile(t, path, "192.0.2.0/24\n")
	var reported errs
	l := &FileList{Path: path, OnError: reported.add}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	first := l.Set()
	l.check()
	if l.Set() != first {
		t.Fatal("an unchanged file was reloaded")
	}

	writeFile(t, path, "192.0.2.0/24\n198.51.100.0/24\n") // in place, longer
	l.check()
	if !l.Set().Contains(addrB) {
		t.Fatal("change not picked up")
	}
	good := l.Set()

	replaceFile(t, path, "192.0.2.0/24\n198.51.100.0/24\n10.0.0.0/8\n# fine\nbroken line here\n")
	l.check()
	l.check()
	if l.Set() != good {
		t.Fatal("a corrupt file replaced the set")
	}
	if got := reported.get(); len(got) != 1 || !strings.Contains(got[0].Error(), path+`:5: "broken line here"`) ||
		!strings.Contains(got[0].Error(), "keeping the previous 2 prefixes") {
		t.Fatalf("reported %v, want one error naming file and line", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.check()
	l.check()
	if l.Set() != good {
		t.Fatal("a removed file replaced the set")
	}
	if got := reported.get(); len(got) != 2 || !strings.Contains(got[1].Error(), path) || !errors.Is(got[1], os.ErrNotExist) {
		t.Fatalf("reported %v, want the removal once", got)
	}

	if err := os.Mkdir(path, 0o755); err != nil { // unreadable as a list, and not for its contents
		t.Fatal(err)
	}
	l.check()
	l.check()
	if got := reported.get(); len(got) != 3 || !strings.Contains(got[2].Error(), path+": not a regular file") {
		t.Fatalf("reported %v, want the directory once", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	replaceFile(t, path, "203.0.113.0/24\n")
	l.check()
	if l.Set().Contains(addrA) || !l.Set().Contains(netip.MustParseAddr("203.0.113.9")) {
		t.Fatal("the file put back was not loaded")
	}
	if len(reported.get()) != 3 {
		t.Fatal("success reported as an error")
	}
}

func TestFileListUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "block.txt")
	writeFile(t, path, "192.0.2.0/24\n")
	var reported errs
	l := &FileList{Path: path, OnError: reported.add}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, path, "198.51.100.0/24\n")
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	l.check()
	if !l.Set().Contains(addrA) || len(reported.get()) != 1 || !errors.Is(reported.get()[0], os.ErrPermission) {
		t.Fatalf("unreadable file: reported %v", reported.get())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	l.check()
	if !l.Set().Contains(addrB) {
		t.Fatal("the file made readable again was not loaded")
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestFileListWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.txt")
	writeFile(t, path, "192.0.2.0/24\n")
	var reported errs
	l := &FileList{Path: path, Interval: 10 * time.Millisecond, OnError: reported.add}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	replaceFile(t, path, "198.51.100.0/24\n")
	eventually(t, "the change", func() bool { return l.Set().Contains(addrB) })
	good := l.Set()
	replaceFile(t, path, "garbage\n")
	eventually(t, "the report", func() bool { return len(reported.get()) == 1 })
	os.Remove(path)
	eventually(t, "the second report", func() bool { return len(reported.get()) == 2 })
	l.Close()
	l.Close()
	if l.Set() != good {
		t.Fatal("the set changed on failures")
	}
}
