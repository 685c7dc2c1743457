package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestResolve(t *testing.T) {
	vpc := []string{"10.0.0.0/8", "2001:db8:aa::/48", "192.0.2.7"}
	for _, tc := range []struct {
		name    string
		trusted []string
		source  string
		peer    string
		headers map[string][]string
		want    string
	}{
		{"untrusted peer: its header is ignored", vpc, "", "203.0.113.9", map[string][]string{"X-Forwarded-For": {"1.1.1.1"}}, "203.0.113.9"},
		{"no trusted proxies at all", nil, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"1.1.1.1"}}, "10.0.0.5"},
		{"trusted peer, one hop", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"198.51.100.20"}}, "198.51.100.20"},
		{"spoofed left part is skipped", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.20"}}, "198.51.100.20"},
		{"trusted hops on the right are skipped", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.20, 10.1.2.3, 192.0.2.7"}}, "198.51.100.20"},
		{"several header lines are one chain", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.20, 10.9.9.9"}}, "198.51.100.20"},
		{"all trusted: the leftmost", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"10.2.2.2, 10.3.3.3"}}, "10.2.2.2"},
		{"garbage ends the walk at the last trusted hop", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"198.51.100.20, not-an-ip, 10.3.3.3"}}, "10.3.3.3"},
		{"no header: the peer", vpc, "", "10.0.0.5", nil, "10.0.0.5"},
		{"ports and brackets", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"[2001:db8:bb::1]:4711, 10.0.0.9:80"}}, "2001:db8:bb::1"},
		{"IPv4-mapped peer is trusted as IPv4", vpc, "", "::ffff:10.0.0.5", map[string][]string{"X-Forwarded-For": {"198.51.100.20"}}, "198.51.100.20"},
		{"IPv6 trusted proxy", vpc, "", "2001:db8:aa::1", map[string][]string{"X-Forwarded-For": {"198.51.100.20"}}, "198.51.100.20"},
		{"zone in an entry is not an address", vpc, "", "10.0.0.5", map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "10.0.0.5"},
		{"Forwarded", vpc, "forwarded", "10.0.0.5", map[string][]string{"Forwarded": {`for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.8;by=10.0.0.5`}}, "2001:db8:cafe::17"},
		{"Forwarded unknown stops the walk", vpc, "forwarded", "10.0.0.5", map[string][]string{"Forwarded": {`for=198.51.100.20, for=unknown, for=10.0.0.8`}}, "10.0.0.8"},
		{"Forwarded ignored when XFF is the source", vpc, "", "10.0.0.5", map[string][]string{"Forwarded": {`for=198.51.100.20`}}, "10.0.0.5"},
		{"named header from a trusted peer", vpc, "CF-Connecting-IP", "10.0.0.5", map[string][]string{"Cf-Connecting-Ip": {"198.51.100.20"}, "X-Forwarded-For": {"6.6.6.6"}}, "198.51.100.20"},
		{"named header from an untrusted peer", vpc, "CF-Connecting-IP", "203.0.113.9", map[string][]string{"Cf-Connecting-Ip": {"198.51.100.20"}}, "203.0.113.9"},
		{"named header repeated", vpc, "X-Real-IP", "10.0.0.5", map[string][]string{"X-Real-Ip": {"198.51.100.20", "6.6.6.6"}}, "10.0.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.trusted, tc.source)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			for k, vs := range tc.headers {
				h[k] = vs
			}
			if got := r.Resolve(netip.MustParseAddr(tc.peer), h); got.String() != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNew_RejectsBadCIDRs(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "ten", "10.0.0.1/8/2"} {
		if _, err := New([]string{bad}, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// No header content may crash the resolver or yield an invalid address.
func FuzzResolve(f *testing.F) {
	f.Add("6.6.6.6, 198.51.100.20, 10.0.0.9", `for="[2001:db8::1]:80";proto=http, for=10.0.0.8`)
	f.Add("[::1", "for=")
	r, _ := New([]string{"10.0.0.0/8"}, "")
	rf, _ := New([]string{"10.0.0.0/8"}, "forwarded")
	peer := netip.MustParseAddr("10.0.0.5")
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		h := http.Header{"X-Forwarded-For": {xff}, "Forwarded": {fwd}}
		for _, res := range []*Resolver{r, rf} {
			if a := res.Resolve(peer, h); !a.IsValid() || a.Zone() != "" {
				t.Fatalf("resolved %v from %q / %q", a, xff, fwd)
			}
		}
	})
}
