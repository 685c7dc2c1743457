package balancer

import "testing"

// The vectors were computed apart from this code, with xxhsum -H1 (Debian's
// xxhash) over key || address bytes || big-endian 32-bit port, as HAProxy's
// srv_set_dyncookie does.
func TestDynamicCookie_MatchesHAProxy(t *testing.T) {
	for _, tc := range []struct{ key, addr, want string }{
		{"secret-key-42", "10.0.1.10:8080", "414c27695d4b5754"},
		{"secret-key-42", "[2001:db8::10]:443", "fda3e0244f3e193a"},
		{"", "192.168.0.1:80", "49203b97e2ba4958"},
	} {
		got, err := DynamicCookie([]byte(tc.key), tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("DynamicCookie(%q, %s) = %s, %v; want %s", tc.key, tc.addr, got, err, tc.want)
		}
	}
	if _, err := DynamicCookie([]byte("k"), "app.internal:80"); err == nil {
		t.Error("a host name was accepted: HAProxy hashes the IP")
	}
}
