package e2e

import (
	"bufio"
	cryptotls "crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// tour is what the README's tour says its commands print.
type tour struct {
	first string   // the server of the first request
	score int      // the SQL injection's anomaly score
	block string   // the JSON block body, its request ID as "…"
	order []string // the servers of the four requests of the loop
}

// readTour reads the tour's claims from README.md.
func readTour(t *testing.T) tour {
	t.Helper()
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## A short tour")
	end := strings.Index(text[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("README.md has no tour")
	}
	text = text[start : start+1+end]
	find := func(re string) []string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("the tour does not say %s:\n%s", re, text)
		}
		return m
	}
	var tr tour
	tr.first = find(`running\+shoes'\s+# 200, answered by (app\d)`)[1]
	tr.score, _ = strconv.Atoi(find(`949110 \(score (\d+) >= 5\)`)[1])
	if log := find(`"waf_score":(\d+)`)[1]; log != strconv.Itoa(tr.score) {
		t.Fatalf("the tour says score %d and \"waf_score\":%s", tr.score, log)
	}
	tr.block = find(`\n# (\{"status":403[^\n]*\})\n`)[1]
	tr.order = find(`grep -o '"server":"app\[0-9\]"'; done\s+# (app\d), (app\d), (app\d), (app\d)\n`)[1:]
	return tr
}

// TestDemo_ServesPassBlockAndBalancing runs the README's first command
// (on free ports), sends what the tour's commands send, in its order, and
// gets what the tour says they print: the first server, the SQL
// injection's rules and score (in its access-log line), the JSON block
// body, the round-robin order.
func TestDemo_ServesPassBlockAndBalancing(t *testing.T) {
	want := readTour(t)
	cmd := exec.Command(binary, "demo", "-http", "127.0.0.1:0", "-https", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var access syncBuffer
	go io.Copy(&access, stdout)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("demo did not stop on SIGTERM")
		}
	}()

	// The banner names both URLs once the gateway listens.
	urls := make(chan [2]string, 1)
	go func() {
		re := regexp.MustCompile(`(http://localhost:\d+)/\s+(https://localhost:\d+)/`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- [2]string{m[1], m[2]}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var plain, tls string
	select {
	case u := <-urls:
		plain, tls = u[0], u[1]
	case <-time.After(30 * time.Second):
		t.Fatal("demo printed no URLs within 30s")
	}

	get := func(client *http.Client, url string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	server := regexp.MustCompile(`"server":"(app\d)"`)
	if code, body := get(H1Client(), plain+"/search?q=running+shoes"); code != 200 || server.FindStringSubmatch(body + `"server":"none"`)[1] != want.first {
		t.Errorf("normal request: %d %s, want 200 from %s", code, body, want.first)
	}
	if code, _ := get(H1Client(), plain+"/search?q=%27%20OR%201%3D1--"); code != 403 {
		t.Errorf("SQL injection: %d, want 403", code)
	}
	code, body := get(H2Client(), tls+"/?q=<script>alert(1)</script>", "Accept", "application/json")
	if id := regexp.MustCompile(`"request_id":"[0-9a-f]+"`); code != 403 || id.ReplaceAllString(strings.TrimSpace(body), `"request_id":"…"`) != want.block {
		t.Errorf("JSON block: %d %s, want %s", code, body, want.block)
	}
	var order []string
	for i := 0; i < 4; i++ {
		_, body := get(H2Client(), tls+"/")
		m := server.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no server in %s", body)
		}
		order = append(order, m[1])
	}
	if fmt.Sprint(order) != fmt.Sprint(want.order) {
		t.Errorf("4 HTTPS requests went to %v, the tour says %v", order, want.order)
	}
	sqli := false
	for deadline := time.Now().Add(5 * time.Second); !sqli && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, l := range strings.Split(access.String(), "\n") {
			var e struct {
				Query string `json:"query"`
				Rules []int  `json:"waf_rules"`
				Score *int   `json:"waf_score"`
			}
			if json.Unmarshal([]byte(l), &e) != nil || e.Query != "q=%27%20OR%201%3D1--" {
				continue
			}
			sqli = true
			if score := -1; fmt.Sprint(e.Rules) != "[942100 949110]" || e.Score == nil || *e.Score != want.score {
				if e.Score != nil {
					score = *e.Score
				}
				t.Errorf("the SQL injection's log line: rules %v, score %d; the tour says 942100, 949110 and score %d:\n%s", e.Rules, score, want.score, l)
			}
		}
	}
	if !sqli {
		t.Errorf("no access-log line for the SQL injection:\n%s", access.String())
	}
	h3 := &http3.Transport{TLSClientConfig: &cryptotls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	h3Client := &http.Client{Transport: h3, Timeout: 10 * time.Second}
	if code, body := get(h3Client, tls+"/search?q=running+shoes"); code != 200 || !strings.Contains(body, `"server":"app`) {
		t.Errorf("HTTP/3 request: %d %q", code, body)
	}
	if code, _ := get(h3Client, tls+"/search?q=%27%20OR%201%3D1--"); code != 403 {
		t.Errorf("SQL injection over HTTP/3: %d, want 403", code)
	}
}
