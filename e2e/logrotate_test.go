package e2e

import (
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logrotate's way: the access log is moved away, SIGUSR1, and the next
// lines go to a new file at the configured path.
func TestAccessLog_ReopenedOnSIGUSR1(t *testing.T) {
	app := StartBackend(t, "app")
	g := StartGateway(t, webConfig, ConfigData{"A": app.Addr})
	get := func(path string) {
		resp, err := http.Get(g.URL("http", "web") + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get("/before")
	if err := os.Rename(g.accessLog, g.accessLog+".1"); err != nil {
		t.Fatal(err)
	}
	g.Signal(syscall.SIGUSR1)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(g.Stderr(), "access log reopened"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reopen logged:\n%s", g.Stderr())
		}
	}
	get("/after")
	old, _ := os.ReadFile(g.accessLog + ".1")
	cur, _ := os.ReadFile(g.accessLog)
	if !strings.Contains(string(old), "/before") || strings.Contains(string(old), "/after") || !strings.Contains(string(cur), "/after") {
		t.Fatalf("moved file:\n%s\nnew file:\n%s", old, cur)
	}
}
