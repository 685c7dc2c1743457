package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The httplog format over real TLS requests with captures: each line has
// HAProxy's layout; and a custom log_format with SSL:{%sslv,%sslc} feeds
// the source documents' pipeline (sed | sort | uniq -c) the right counts.
func TestHTTPLog_RealRequestsAndThePipeline(t *testing.T) {
	backend, _ := app(t)
	for _, tc := range []struct{ name, logCfg string }{
		{"httplog", "format: httplog"},
		{"custom", `log_format: "%ci:%cp [%tr] %ft %b/%s %ST %B SSL:{%sslv,%sslc} %{+Q}r"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var access syncBuffer
			g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    default_backend: app
    default_waf_policy: "off"
    capture:
      request_headers: [{name: Host, len: 20}, {name: User-Agent, len: 5}]
      response_headers: [{name: Content-Type, len: 30}]
      cookie: {name: JSESSIONID, len: 20}
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{name: s1, address: "%s"}]
log:
  %s
`, strings.TrimPrefix(backend, "http://"), tc.logCfg), Options{Log: zerolog.Nop(), Access: &access})
			url := "https://" + g.Addrs("web")[0].String() + "/search?q=shoes"
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS13, tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS12} {
				c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}}}
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("User-Agent", "Mozilla/5.0")
				req.Header.Set("Cookie", "JSESSIONID=ABCDEF0123; theme=dark")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			lines := strings.Split(strings.TrimSpace(access.String()), "\n")
			if len(lines) != 5 {
				t.Fatalf("%d lines:\n%s", len(lines), access.String())
			}
			if tc.name == "httplog" {
				layout := regexp.MustCompile(`^127\.0\.0\.1:\d+ \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}\.\d{3}\] web~ app/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ JSESSIONID=ABCDEF012 - ---- \d+/\d+/\d+/\d+/0 0/0 \{127\.0\.0\.1:\d+\|Mozil\} \{[^|}]*\} "GET /search\?q=shoes HTTP/1\.1"$`)
				for _, l := range lines {
					if !layout.MatchString(l) {
						t.Fatalf("not HAProxy's httplog layout:\n%s", l)
					}
				}
				return
			}
			log := filepath.Join(t.TempDir(), "access.log")
			os.WriteFile(log, []byte(access.String()), 0o644)
			out, err := exec.Command("sh", "-c", `sed 's/.*SSL:{\([^}]*\)}.*/\1/' `+log+` | sort | uniq -c`).Output()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(strings.Fields(string(out)), " ")
			want := "2 TLSv1.2,ECDHE-ECDSA-AES128-GCM-SHA256 3 TLSv1.3,TLS_AES_128_GCM_SHA256" // OpenSSL's names, as HAProxy's %sslc
			if got != want {
				t.Fatalf("pipeline: %q, want %q", got, want)
			}
		})
	}
}
