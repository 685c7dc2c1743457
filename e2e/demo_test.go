package e2e

import (
	"bufio"
	cryptotls "crypto/tls"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestDemo_ServesPassBlockAndBalancing runs the README's first command
// (on free ports) and does what its printed curl commands do.
func TestDemo_ServesPassBlockAndBalancing(t *testing.T) {
	cmd := exec.Command(binary, "demo", "-http", "127.0.0.1:0", "-https", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
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

	get := func(client *http.Client, url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(H1Client(), plain+"/search?q=running+shoes"); code != 200 {
		t.Errorf("normal request: %d, want 200", code)
	}
	if code, _ := get(H1Client(), plain+"/search?q=%27%20OR%201%3D1--"); code != 403 {
		t.Errorf("SQL injection: %d, want 403", code)
	}
	servers := map[string]int{}
	for i := 0; i < 4; i++ {
		_, body := get(H2Client(), tls+"/")
		for _, s := range []string{`"server":"app1"`, `"server":"app2"`} {
			if strings.Contains(body, s) {
				servers[s]++
			}
		}
	}
	if servers[`"server":"app1"`] != 2 || servers[`"server":"app2"`] != 2 {
		t.Errorf("4 HTTPS requests went to %v, want 2 each", servers)
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
