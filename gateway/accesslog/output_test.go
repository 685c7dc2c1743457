package accesslog

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A reopened file takes the lines after logrotate moved the old one away.
func TestFile_Reopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("one\n"))
	os.Rename(path, path+".1")
	f.Write([]byte("two\n")) // still the moved file, as logrotate expects until the signal
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("three\n"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\ntwo\n" || string(cur) != "three\n" {
		t.Fatalf("moved file %q, new file %q", old, cur)
	}
}

var rfc5424 = regexp.MustCompile(`^<134>1 \d{4}-\d{2}-\d{2}T[0-9:.]+Z \S+ sekisho \d+ access - \{"a":1\}$`)

// Lines reach a syslog server as RFC 5424 messages, over UDP and over TCP
// with octet-counted framing.
func TestSyslog(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc.Close()
	s, err := OpenSyslog("syslog+udp://" + pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte(`{"a":1}` + "\n"))
	buf := make([]byte, 2048)
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || !rfc5424.Match(buf[:n]) {
		t.Fatalf("udp: %q %v", buf[:n], err)
	}
	s.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		lenStr, _ := r.ReadString(' ')
		msg := make([]byte, len(`<134>1 `)+200)
		n, _ := r.Read(msg)
		got <- lenStr + string(msg[:n])
	}()
	ts, err := OpenSyslog("syslog+tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	ts.Write([]byte(`{"a":1}` + "\n"))
	framed := <-got
	size, msg, _ := strings.Cut(framed, " ")
	if !rfc5424.MatchString(msg) || size == "" || len(msg) != atoi(size) {
		t.Fatalf("tcp: %q", framed)
	}
	if _, err := OpenSyslog("syslog+smoke://x"); err == nil {
		t.Fatal("a bad scheme was accepted")
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
