package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/waf/alert/alerttest"
)

// accessYAML is a frontend behind trusted X-Forwarded-For with the given
// access rules, lists and geoip; /shop/ routes to the backend, /admin/
// has its own rules (only the office).
func accessYAML(backend, access, extra string) string {
	return fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
    access: %s
    routes:
      - {path_prefix: /admin/, backend: app, waf_policy: "off", access: {allow: [office], deny: [everyone]}}
      - {path_prefix: /, backend: app, waf_policy: "off"}
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "%s"}]
%s`, access, backend, extra)
}

// A file list denies as soon as the file says so; the allow list comes
// first; a route's rules replace the frontend's; a list that turns corrupt
// keeps its last good copy and raises ip_list.failed.
func TestAccess_FileListsAllowDenyAndReload(t *testing.T) {
	backend, _ := challengeBackend(t)
	dir := t.TempDir()
	blocked := filepath.Join(dir, "blocked.txt")
	os.WriteFile(blocked, []byte("# nobody yet\n192.0.2.1\n"), 0o600)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cret"), 0o600)
	receiver := alerttest.NewReceiver(t, []byte("s3cret"))
	extra := fmt.Sprintf(`ip_lists:
  - {name: blocked, file: %q, interval: 20ms}
  - {name: office, cidrs: ["198.51.100.0/24", "2001:db8::/32"]}
  - {name: everyone, cidrs: ["0.0.0.0/0", "::/0"]}
alerts:
  window: 100ms
  endpoints: [{name: ops, url: %q, secret_file: %q, events: [ip_list.failed, access.denied]}]
admin: {address: "127.0.0.1:0"}
`, blocked, receiver.URL, secret)
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, accessYAML(backend, "{allow: [office], deny: [blocked]}", extra), Options{Log: zerolog.Nop(), Access: &access})
	web := "http://" + g.Addrs("web")[0].String()

	if s := as(t, web+"/shop/", "203.0.113.9"); s != 200 {
		t.Fatalf("not listed yet: %d", s)
	}
	os.WriteFile(blocked+".new", []byte("203.0.113.0/24\n198.51.100.7\n"), 0o600)
	os.Rename(blocked+".new", blocked)
	eventually(t, "the new list denies", func() bool { return as(t, web+"/shop/", "203.0.113.9") == 403 })
	if s := as(t, web+"/shop/", "198.51.100.7"); s != 200 {
		t.Errorf("in the office list and the deny list: %d, want 200 (allow comes first)", s)
	}
	if s := as(t, web+"/admin/", "198.51.100.7"); s != 200 {
		t.Errorf("/admin/ from the office: %d", s)
	}
	if s := as(t, web+"/admin/", "192.0.2.50"); s != 403 {
		t.Errorf("/admin/ from elsewhere: %d (the route's rules replace the frontend's)", s)
	}
	if !strings.Contains(access.String(), `"access_decision":"deny","access_reason":"list blocked"`) {
		t.Errorf("no access log line naming the list: %s", access.String())
	}
	eventually(t, "access.denied alert", func() bool {
		for _, m := range receiver.Events() {
			if m["type"] == "access.denied" && m["client_ip"] == "203.0.113.9" && m["message"] == "list blocked" {
				return true
			}
		}
		return false
	})
	resp, err := http.Get("http://" + g.AdminAddr().String() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`<td>deny: [1-9]\d* </td>`).Match(page) {
		t.Errorf("the stats page shows no access decisions:\n%s", page)
	}

	os.WriteFile(blocked+".new", []byte("203.0.113.0/24\nnot an address\n"), 0o600)
	os.Rename(blocked+".new", blocked)
	eventually(t, "ip_list.failed alert", func() bool {
		for _, m := range receiver.Events() {
			if m["type"] == "ip_list.failed" && strings.Contains(fmt.Sprint(m["message"]), "blocked.txt:2") {
				return true
			}
		}
		return false
	})
	if s := as(t, web+"/shop/", "203.0.113.9"); s != 403 {
		t.Errorf("after a corrupt file: %d, want the last good copy to still deny", s)
	}
}

// A list that does not load at start is a config error naming the list and
// the file's line.
func TestAccess_BadListIsAConfigError(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.txt")
	os.WriteFile(bad, []byte("10.0.0.0/8\n10.0.0.300\n"), 0o600)
	c, err := config.Parse("test.yaml", []byte(accessYAML("127.0.0.1:9", "{deny: [bad]}", fmt.Sprintf(`ip_lists:
  - {name: bad, file: %q}
  - {name: office, cidrs: ["198.51.100.0/24"]}
  - {name: everyone, cidrs: ["0.0.0.0/0"]}
`, bad))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(c, Options{Log: zerolog.Nop()}); err == nil || !strings.Contains(err.Error(), "ip_lists[0] (bad)") || !strings.Contains(err.Error(), "bad.txt:2") {
		t.Errorf("error %v, want it to name ip_lists[0] and bad.txt:2", err)
	}
	if _, err := config.Parse("test.yaml", []byte(accessYAML("127.0.0.1:9", "{deny: [nosuch]}", "ip_lists: [{name: office, cidrs: [10.0.0.0/8]}, {name: everyone, cidrs: [0.0.0.0/0]}]\n"))); err == nil || !strings.Contains(err.Error(), `frontends[0].access.deny[0]: unknown list "nosuch"`) {
		t.Errorf("unknown list: %v", err)
	}
}

// A list from a URL, fetched again with If-None-Match; country and AS
// rules from .mmdb databases; the access log says the client's country
// and AS; a challenge rule gets pow where the route has no challenge.
func TestAccess_URLListAndGeoIP(t *testing.T) {
	backend, _ := challengeBackend(t)
	var fetches atomic.Int32
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprintln(w, "; a DROP-style list\n192.0.2.0/24 ; SBL1")
	}))
	t.Cleanup(lists.Close)
	countryDB := writeTestMMDB(t, "GeoLite2-Country", map[string]mmdbtype.Map{
		"198.51.100.0/24": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("KP")}},
		"203.0.113.0/24":  {"country": mmdbtype.Map{"iso_code": mmdbtype.String("JP")}},
	})
	asnDB := writeTestMMDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"203.0.113.0/25": {"autonomous_system_number": mmdbtype.Uint32(64496), "autonomous_system_organization": mmdbtype.String("Example")},
		"100.64.0.0/24":  {"autonomous_system_number": mmdbtype.Uint32(64496), "autonomous_system_organization": mmdbtype.String("Example")},
	})
	extra := fmt.Sprintf(`ip_lists:
  - {name: drop, url: %q, interval: 50ms}
  - {name: office, cidrs: ["10.0.0.0/8"]}
  - {name: everyone, cidrs: ["0.0.0.0/0"]}
geoip: {country_db: %q, asn_db: %q}
`, lists.URL, countryDB, asnDB)
	var access syncBuffer
	g, _, _, _ := runGatewayWith(t, accessYAML(backend, "{deny: [drop], allow_countries: [JP], deny_countries: [KP], challenge_asns: [64496]}", extra), Options{Log: zerolog.Nop(), Access: &access})
	web := "http://" + g.Addrs("web")[0].String()
	// JP is allowed before any deny; the AS rule would challenge 203.0.113.7, but the allow comes first.
	for client, want := range map[string]int{"192.0.2.7": 403, "198.51.100.7": 403, "203.0.113.7": 200, "203.0.113.200": 200, "100.64.0.9": 403, "10.1.1.1": 200} {
		if s := as(t, web+"/shop/", client); s != want {
			t.Errorf("%s: %d, want %d", client, s, want)
		}
	}
	eventually(t, "conditional refetches", func() bool { return fetches.Load() >= 3 })
	if s := as(t, web+"/shop/", "192.0.2.7"); s != 403 {
		t.Errorf("after 304s: %d", s)
	}
	log := access.String()
	for _, want := range []string{`"access_reason":"list drop"`, `"access_reason":"country KP"`, `"country":"JP","asn":64496`,
		`"access_decision":"pass","access_reason":"allowed by country JP"`, `"access_decision":"challenge","access_reason":"challenge pow; asn 64496"`} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %s:\n%s", want, log)
		}
	}
}

// writeTestMMDB writes a MaxMind-format database of dbType.
func writeTestMMDB(t *testing.T, dbType string, records map[string]mmdbtype.Map) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true, Description: map[string]string{"en": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, _ := net.ParseCIDR(cidr)
		if err := w.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}
