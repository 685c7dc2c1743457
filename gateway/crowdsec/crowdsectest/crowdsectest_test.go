package crowdsectest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStart checks that the LAPI answers its bouncer's key, that cscli's
// decisions reach it, and that it is gone once its test has ended.
func TestStart(t *testing.T) {
	client := &http.Client{Timeout: 5 * time.Second}
	var url string
	t.Run("run", func(t *testing.T) {
		l := Start(t)
		url = l.URL
		t.Logf("LAPI started in %v", l.Startup.Round(time.Millisecond))
		get := func(key string) int {
			t.Helper()
			req, _ := http.NewRequest("GET", l.URL+"v1/decisions?ip=198.51.100.7", nil)
			req.Header.Set("X-Api-Key", key)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := get(l.Key); c != http.StatusOK {
			t.Errorf("decisions with the bouncer's key: %d", c)
		}
		if c := get("not-" + l.Key); c != http.StatusForbidden {
			t.Errorf("decisions with a wrong key: %d, want 403", c)
		}
		l.CSCLI(t, "decisions", "add", "--ip", "198.51.100.7", "--duration", "1h")
		if out := l.CSCLI(t, "decisions", "list", "-o", "raw"); !strings.Contains(out, "198.51.100.7") {
			t.Errorf("cscli decisions list does not show the decision it added:\n%s", out)
		}
	})
	if url == "" {
		return
	}
	if resp, err := client.Get(url + "health"); err == nil {
		resp.Body.Close()
		t.Errorf("the LAPI still answers after its test ended: %s", resp.Status)
	}
}
