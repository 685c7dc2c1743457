package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Records are JSON lines; the file rotates at its size and keeps Keep old
// ones; a full queue drops and counts rather than waits.
func TestLog_WritesRotatesAndDrops(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(Config{Path: path, MaxSize: 8192, Keep: 2}, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{Time: time.Unix(1_800_000_000, 0), RequestID: "r1", ClientIP: "192.0.2.1", Method: "GET", URI: "/search?q=%27",
		Action: "block", Status: 403, Score: 5, Matches: []Match{{RuleID: 942100, Message: "SQL Injection", Variable: "ARGS:q"}}}
	for range 100 {
		l.Write(rec)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, name := range []string{"audit.log", "audit.log.1", "audit.log.2"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st, _ := f.Stat()
		if st.Size() > 8192 {
			t.Errorf("%s holds %d bytes, over max_size", name, st.Size())
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var got Record
			if err := json.Unmarshal(sc.Bytes(), &got); err != nil || got.Matches[0].Variable != "ARGS:q" {
				t.Fatalf("%s: line %q: %v", name, sc.Text(), err)
			}
			total++
		}
		f.Close()
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.log.3")); err == nil {
		t.Error("a third rotated file, keep is 2")
	}
	if total == 0 || total >= 100 {
		t.Fatalf("%d lines in the kept files: rotation kept nothing or dropped nothing", total)
	}

	slow, _ := Open(Config{Path: filepath.Join(dir, "slow.log"), QueueSize: 1}, nil)
	slow.mu.Lock() // the writer is stuck: Write must not wait
	start := time.Now()
	for range 1000 {
		slow.Write(rec)
	}
	if d := time.Since(start); d > time.Second || slow.Dropped() < 990 {
		t.Fatalf("1000 writes with the writer stuck took %s, dropped %d", d, slow.Dropped())
	}
	slow.mu.Unlock()
	slow.Close()
	if !strings.HasPrefix((&Config{}).Validate().Error(), "path: is required") {
		t.Fatal("validation")
	}
}
