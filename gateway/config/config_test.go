package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:8080
    routes:
      - host: shop.example.com
        path_prefix: /api
        backend: app
        waf_policy: strict
    default_backend: app
backends:
  - name: app
    servers:
      - address: 127.0.0.1:9001
      - address: 127.0.0.1:9002
        weight: 3
waf:
  policies:
    - name: strict
      paranoia_level: 2
`

func TestParse_FillsSafeDefaults(t *testing.T) {
	c, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Frontends[0]
	if f.Limits.ReadHeaderTimeout != 10*time.Second || f.Limits.MaxHeaderBytes != 64<<10 {
		t.Errorf("limits = %+v", f.Limits)
	}
	if f.DefaultWAFPolicy != DefaultPolicy {
		t.Errorf("default_waf_policy = %q", f.DefaultWAFPolicy)
	}
	b := c.Backends[0]
	if b.Balance != "roundrobin" || *b.Servers[0].Weight != 1 || *b.Servers[1].Weight != 3 || b.Servers[1].Name != "s2" {
		t.Errorf("backend = %+v", b)
	}
	if len(c.WAF.Policies) != 2 || c.WAF.Policies[0].Mode != "block" || c.WAF.Policies[0].InboundAnomalyThreshold != 5 {
		t.Errorf("policies = %+v", c.WAF.Policies)
	}
}

func TestParse_ErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", strings.Replace(good, "      paranoia_level: 2", "      paranoia_level: 2\n      paranioa: 3", 1),
			[]string{`cfg.yaml:22: waf.policies[0].paranioa: unknown key "paranioa"`}},
		{"wrong type", strings.Replace(good, "weight: 3", "weight: heavy", 1),
			[]string{"cfg.yaml:17: backends[0].servers[1].weight: cannot unmarshal"}},
		{"bad values", strings.NewReplacer("paranoia_level: 2", "paranoia_level: 7", "backend: app\n", "backend: ap\n", "127.0.0.1:9001", "127.0.0.1").Replace(good),
			[]string{
				`cfg.yaml:9: frontends[0].routes[0].backend: unknown backend "ap"`,
				`cfg.yaml:15: backends[0].servers[0].address: "127.0.0.1" is not host:port`,
				`cfg.yaml:21: waf.policies[0].paranoia_level: 7 is outside 1..4`,
			}},
		{"missing key points at its parent", strings.Replace(good, "      - address: 127.0.0.1:8080\n", "      - tls: true\n", 1),
			[]string{`cfg.yaml:5: frontends[0].bind[0].address: "" is not host:port`, `cfg.yaml:3: frontends[0].tls: a bind has tls: true`}},
		{"syntax", "frontends: [\n", []string{"cfg.yaml:1: did not find expected node content"}},
		{"ACME http-01 without a plain bind", strings.Replace(good, "      - address: 127.0.0.1:8080\n", "      - address: 127.0.0.1:8443\n        tls: true\n    tls: {acme: {email: ops@example.com, domains: [shop.example.com]}}\n", 1),
			[]string{`frontends[0].tls.acme.challenges: http-01 is answered on this frontend's plain-HTTP binds`}},
		{"admin off loopback without a token", good + "admin: {address: \"0.0.0.0:9901\"}\n",
			[]string{`admin.address: 0.0.0.0:9901 is not loopback, so a token is required`}},
		{"redirect and HSTS without TLS", strings.Replace(good, "    default_backend: app\n", "    default_backend: app\n    redirect_https: true\n    hsts: {max_age: 1h}\n", 1),
			[]string{`frontends[0].redirect_https: needs a bind with tls: true`, `frontends[0].hsts: needs a bind with tls: true`}},
		{"HSTS preload needs a year and subdomains", strings.NewReplacer("      - address: 127.0.0.1:8080\n", "      - address: 127.0.0.1:8443\n        tls: true\n    tls: {self_signed: [localhost], cipher_suites: [DES-CBC3-SHA]}\n",
			"    default_backend: app\n", "    default_backend: app\n    hsts: {max_age: 1h, preload: true}\n").Replace(good),
			[]string{`frontends[0].hsts.preload: needs include_subdomains: true and a max_age of at least 8760h`,
				`frontends[0].tls.cipher_suites[0]: "DES-CBC3-SHA" is not a TLS 1.2 cipher suite`}},
		{"rate limit, retries and stick", strings.NewReplacer("        waf_policy: strict\n", "        waf_policy: strict\n        rate_limit: {key: \"query:q\", requests: 0, action: drop}\n",
			"        weight: 3\n", "        weight: 3\n    retries: -1\n    retry_on: [timeout]\n    stick: {on: header}\n").Replace(good),
			[]string{`cfg.yaml:11: frontends[0].routes[0].rate_limit.key: "query:q" is not src, ja4, src+ja4, header:NAME or cookie:NAME`,
				`frontends[0].routes[0].rate_limit.requests: must be at least 1`,
				`frontends[0].routes[0].rate_limit.action: "drop" is not deny, tarpit or challenge`,
				`backends[0].retries: must not be negative`,
				`backends[0].retry_on[0]: "timeout" is not conn-failure`,
				`backends[0].stick.on: "header" is not src, cookie, ja4 or src+ja4`}},
		{"redis", good + "redis: {addresses: [\"10.0.0.1:6379\", \"10.0.0.2\"], db: 2, cluster: true, master_name: m, password_file: /nonexistent/redis.pw, tls: {cert_file: c.pem}}\n",
			[]string{`redis.addresses[1]: "10.0.0.2" is not host:port`,
				`redis.cluster: a Cluster has no master_name (that is Sentinel)`,
				`redis.password_file: stat /nonexistent/redis.pw: no such file or directory`,
				`redis.tls: cert_file and key_file go together`}},
		{"tcp frontend", strings.Replace(good, "backends:\n", "  - name: raw\n    mode: tcp\n    bind: [{address: 127.0.0.1:2525}]\n    backend: nope\n    send_proxy: v3\n    routes: [{backend: app}]\nbackends:\n", 1),
			[]string{`frontends[1].backend: unknown backend "nope"`, `frontends[1].send_proxy: "v3" is not v1 or v2`,
				`frontends[1].mode: a tcp frontend has no routes`}},
		{"max_header_bytes within net/http's slack", strings.Replace(good, "    default_backend: app\n", "    default_backend: app\n    limits: {max_header_bytes: 4096}\n", 1),
			[]string{`cfg.yaml:12: frontends[0].limits.max_header_bytes: must be more than 4096`}},
		{"redis, several addresses", good + "redis: {addresses: [\"10.0.0.1:6379\", \"10.0.0.2:6379\"]}\n",
			[]string{`redis.addresses: several addresses need cluster: true or a Sentinel master_name`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tc.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors:\n%v\nlack %q", err, w)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("frontends: [{name: a, bind: [{address: ':1'}], default_backend: b}]\nbackends: [{name: b, servers: [{address: 'x:1'}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil && c == nil {
			t.Fatal("no config and no error")
		}
		var errs Errors
		if err != nil && !errors.As(err, &errs) {
			t.Fatalf("error is not Errors: %v", err)
		}
	})
}
