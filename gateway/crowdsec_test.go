package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/gateway/crowdsec/crowdsectest"
)

// sekisho as a bouncer of a real CrowdSec LAPI (Debian's crowdsec): a ban
// added with cscli denies the address, a captcha on a range challenges it,
// a deleted decision lets the client in again; the reason is logged.
func TestCrowdSec_DecisionsDenyAndChallenge(t *testing.T) {
	lapi := crowdsectest.Start(t)
	backend, hits := challengeBackend(t)
	key := filepath.Join(t.TempDir(), "crowdsec.key")
	os.WriteFile(key, []byte(lapi.Key+"\n"), 0o600)
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
    access: {crowdsec: true}
    routes:
      - {path_prefix: /js/, backend: app, waf_policy: "off", challenge: {mode: js}}
      - {path_prefix: /, backend: app, waf_policy: "off"}
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "%s"}]
crowdsec: {url: %q, api_key_file: %q, interval: 100ms}
`, backend, lapi.URL, key), Options{Log: zerolog.Nop(), Access: &access})
	web := "http://" + g.Addrs("web")[0].String()

	lapi.CSCLI(t, "decisions", "add", "--ip", "198.51.100.7", "--duration", "1h", "--type", "ban", "--reason", "sekisho-test")
	lapi.CSCLI(t, "decisions", "add", "--range", "203.0.113.0/24", "--duration", "1h", "--type", "captcha")
	eventually(t, "the ban applies", func() bool { return as(t, web+"/", "198.51.100.7") == 403 })
	eventually(t, "the captcha challenges", func() bool { return as(t, web+"/", "203.0.113.50") == 403 })
	before := hits.Load()
	if s := as(t, web+"/", "192.0.2.1"); s != 200 || hits.Load() != before+1 {
		t.Errorf("a client CrowdSec has no decision on: %d", s)
	}
	if s := as(t, web+"/", "198.51.100.7"); s != 403 || hits.Load() != before+1 {
		t.Errorf("the banned address reached the backend: %d", s)
	}
	log := access.String()
	for _, want := range []string{`"access_decision":"deny","access_reason":"crowdsec ban `, `"access_decision":"challenge","access_reason":"challenge pow; crowdsec captcha `} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %s:\n%s", want, log)
		}
	}
	lapi.CSCLI(t, "decisions", "delete", "--ip", "198.51.100.7")
	eventually(t, "the deleted ban no longer applies", func() bool { return as(t, web+"/", "198.51.100.7") == 200 })
}
