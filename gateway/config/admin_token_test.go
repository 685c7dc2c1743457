package config

import (
	"strings"
	"testing"
)

// The admin listener asks for no token only on loopback: any other
// address, a wildcard, an empty host or a host name, needs token_file or
// SEKISHO_ADMIN_TOKEN, and either one is enough.
func TestParse_AdminOffLoopbackNeedsAToken(t *testing.T) {
	cases := []struct {
		address, tokenFile, env string
		ok                      bool
	}{
		{"127.0.0.1:9901", "", "", true},
		{"127.0.0.2:9901", "", "", true},
		{"[::1]:9901", "", "", true},
		{"localhost:9901", "", "", true},
		{"0.0.0.0:9901", "", "", false},
		{"[::]:9901", "", "", false},
		{":9901", "", "", false},
		{"192.0.2.10:9901", "", "", false},
		{"10.0.0.1:9901", "", "", false},
		{"[2001:db8::1]:9901", "", "", false},
		{"admin.example.com:9901", "", "", false},
		{"localhost.example.com:9901", "", "", false},
		{"192.0.2.10:9901", "/run/secrets/admin", "", true},
		{"admin.example.com:9901", "", "s3cret", true},
		{"0.0.0.0:9901", "", "s3cret", true},
	}
	for _, tc := range cases {
		t.Run(tc.address+"/file="+tc.tokenFile+"/env="+tc.env, func(t *testing.T) {
			t.Setenv(AdminTokenEnv, tc.env)
			yaml := good + "admin: {address: \"" + tc.address + "\", token_file: \"" + tc.tokenFile + "\"}\n"
			_, err := Parse("cfg.yaml", []byte(yaml))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "admin.address: "+tc.address+" is not loopback, so a token is required")) {
				t.Fatalf("err = %v, want a token required", err)
			}
		})
	}
}
