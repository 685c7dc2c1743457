package e2e

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
)

const exploreCfg = `
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:0
    default_backend: app
    default_waf_policy: watch
backends:
  - name: app
    servers:
      - {name: a, address: "{{.A}}"}
waf:
  policies:
    - {name: watch, mode: detect}
log:
  access: {{.AccessLog}}
`

func TestExplore(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, exploreCfg, ConfigData{"A": a.Addr})
	c := H1Client()
	base := g.URL("http", "web")
	payloads := map[string]string{
		"sqli": "1' UNION SELECT username, password FROM users--",
		"xss":  "<script>alert(document.cookie)</script>",
		"rce":  "; cat /etc/passwd",
		"trav": "../../../../etc/passwd",
	}
	for cls, p := range payloads {
		type loc struct {
			name string
			mk   func() *http.Request
		}
		hdr := func(h, v string) func() *http.Request {
			return func() *http.Request {
				r, _ := http.NewRequest("GET", base+"/search?q=shoes", nil)
				r.Header.Set(h, v)
				return r
			}
		}
		locs := []loc{
			{"query", func() *http.Request { r, _ := http.NewRequest("GET", base+"/search?q="+url.QueryEscape(p), nil); return r }},
			{"form", func() *http.Request {
				r, _ := http.NewRequest("POST", base+"/search", bytes.NewReader([]byte("q="+url.QueryEscape(p))))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			}},
			{"json", func() *http.Request {
				b := fmt.Sprintf(`{"q":%q}`, p)
				r, _ := http.NewRequest("POST", base+"/search", bytes.NewReader([]byte(b)))
				r.Header.Set("Content-Type", "application/json")
				return r
			}},
			{"multipart", func() *http.Request {
				var buf bytes.Buffer
				w := multipart.NewWriter(&buf)
				w.WriteField("q", p)
				w.Close()
				r, _ := http.NewRequest("POST", base+"/search", &buf)
				r.Header.Set("Content-Type", w.FormDataContentType())
				return r
			}},
			{"ua", hdr("User-Agent", p)},
			{"referer", hdr("Referer", p)},
			{"referer-url", hdr("Referer", "https://localhost/search?q="+p)},
			{"cookie", hdr("Cookie", "q="+p)},
			{"cookie-enc", hdr("Cookie", "q="+url.QueryEscape(p))},
			{"cookie-bt", hdr("Cookie", "q=`cat /etc/passwd`")},
			{"cookie-sub", hdr("Cookie", "q=$(cat /etc/passwd)")},
		}
		for _, l := range locs {
			r := l.mk()
			if r.Header.Get("User-Agent") == "" {
				r.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
			}
			r.Header.Set("Accept", "text/html")
			r.Header.Set("Accept-Language", "en-US")
			r.Host = "localhost"
			resp, err := c.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			m := g.LogFor(resp.Header.Get("X-Request-Id"))
			t.Logf("%-5s %-12s %d %v score=%v rules=%v", cls, l.name, resp.StatusCode, m["waf_action"], m["waf_score"], m["waf_rules"])
		}
	}
}
