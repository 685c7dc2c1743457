package gateway

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// fakeRoute53 answers the Route 53 API calls the provider makes (AWS
// itself is out of reach from tests) for one public hosted zone, and
// serves the zone's TXT records over DNS so that Pebble can see them.
type fakeRoute53 struct {
	zone  string // "shop.test."
	mu    sync.Mutex
	txt   map[string][]string // name -> quoted values
	calls []string
}

const r53ns = "https://route53.amazonaws.com/doc/2013-04-01/"

type r53Set struct {
	Name    string   `xml:"Name"`
	Type    string   `xml:"Type"`
	TTL     int64    `xml:"TTL"`
	Records []string `xml:"ResourceRecords>ResourceRecord>Value"`
}

func (f *fakeRoute53) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") {
		http.Error(w, "unsigned", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	change := `<ChangeInfo><Id>/change/C1</Id><Status>INSYNC</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo>`
	switch {
	case r.URL.Path == "/2013-04-01/hostedzonesbyname":
		fmt.Fprintf(w, `<ListHostedZonesByNameResponse xmlns="%s"><HostedZones><HostedZone><Id>/hostedzone/Z1</Id><Name>%s</Name><CallerReference>r</CallerReference><Config><PrivateZone>false</PrivateZone></Config></HostedZone></HostedZones><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListHostedZonesByNameResponse>`, r53ns, f.zone)
	case r.URL.Path == "/2013-04-01/hostedzone/Z1/rrset" && r.Method == "GET":
		name := r.URL.Query().Get("name")
		var sets string
		if vs := f.txt[name]; len(vs) > 0 {
			var recs string
			for _, v := range vs {
				recs += "<ResourceRecord><Value>" + xmlEscape(v) + "</Value></ResourceRecord>"
			}
			sets = fmt.Sprintf(`<ResourceRecordSet><Name>%s</Name><Type>TXT</Type><TTL>60</TTL><ResourceRecords>%s</ResourceRecords></ResourceRecordSet>`, name, recs)
		}
		fmt.Fprintf(w, `<ListResourceRecordSetsResponse xmlns="%s"><ResourceRecordSets>%s</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>`, r53ns, sets)
	case strings.TrimSuffix(r.URL.Path, "/") == "/2013-04-01/hostedzone/Z1/rrset" && r.Method == "POST":
		var req struct {
			Changes []struct {
				Action string `xml:"Action"`
				Set    r53Set `xml:"ResourceRecordSet"`
			} `xml:"ChangeBatch>Changes>Change"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := xml.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, c := range req.Changes {
			switch c.Action {
			case "UPSERT":
				f.txt[c.Set.Name] = c.Set.Records
			case "DELETE":
				delete(f.txt, c.Set.Name)
			}
		}
		fmt.Fprintf(w, `<ChangeResourceRecordSetsResponse xmlns="%s">%s</ChangeResourceRecordSetsResponse>`, r53ns, change)
	case strings.HasPrefix(r.URL.Path, "/2013-04-01/change/"):
		fmt.Fprintf(w, `<GetChangeResponse xmlns="%s">%s</GetChangeResponse>`, r53ns, change)
	default:
		http.Error(w, "not emulated: "+r.URL.Path, http.StatusNotFound)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// dns serves the zone: TXT from the fake's records, A 127.0.0.1 for all.
func (f *fakeRoute53) dns(t *testing.T) string {
	t.Helper()
	return serveDNS(t, dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, qq := range q.Question {
			switch qq.Qtype {
			case dns.TypeTXT:
				for _, v := range f.txt[strings.ToLower(qq.Name)] {
					s, _ := strconv.Unquote(v)
					m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{s}})
				}
			case dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			case dns.TypeSOA:
				m.Answer = append(m.Answer, &dns.SOA{Hdr: dns.RR_Header{Name: f.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "ns." + f.zone, Mbox: "admin." + f.zone, Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 60})
			}
		}
		w.WriteMsg(m)
	}))
}

// DNS-01 through Route 53: the provider finds the hosted zone, signs its
// calls with credentials from the environment (the AWS chain), writes the
// TXT record and removes it after issuance.
func TestACME_DNS01ThroughRoute53(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	fake := &fakeRoute53{zone: "shop.test.", txt: map[string][]string{}}
	api := httptest.NewServer(fake)
	defer api.Close()
	dnsAddr := fake.dns(t)
	backend, _ := app(t)
	tlsPort := freePort(t)
	directory, httpsRoot, authority := pebble(t, pebbleOptions{tlsPort: tlsPort, resolver: dnsAddr})
	yaml := fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:%d", tls: true}]
    tls:
      acme:
        directory: %s
        ca_root_file: %s
        email: ops@shop.test
        domains: ["*.shop.test", shop.test]
        storage: %s
        dns01:
          provider: route53
          route53: {endpoint: "%s"}
          resolvers: ["%s"]
          propagation_timeout: -1s
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
`, tlsPort, directory, httpsRoot, t.TempDir(), api.URL, dnsAddr, strings.TrimPrefix(backend, "http://"))
	var logs syncBuffer
	runGateway(t, yaml, zerolog.New(&logs))
	resp := awaitCertificate(t, tlsPort, pebbleRoots(authority), "www.shop.test", &logs)
	if got := resp.TLS.PeerCertificates[0].DNSNames; resp.StatusCode != 200 || !strings.Contains(strings.Join(got, ","), "*.shop.test") {
		t.Fatalf("status %d, certificate for %v", resp.StatusCode, got)
	}
	// certmagic cleans the challenge up after it has stored the
	// certificate, which may be just after the certificate is served.
	left := func() int { fake.mu.Lock(); defer fake.mu.Unlock(); return len(fake.txt) }
	for deadline := time.Now().Add(10 * time.Second); left() != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.txt) != 0 {
		t.Errorf("TXT records left behind after 10s: %v", fake.txt)
	}
}
